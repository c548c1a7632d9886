package main

// The access page (pkg/web) on the bridge's Access service: the standalone
// listener (WEB_LISTEN) and Home Assistant's ingress (INGRESS_LISTEN).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"

	"golang.org/x/sync/errgroup"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/access"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/bridge"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/config"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/web"
)

// startWeb starts the page's listeners in g (none when neither is set).
// A port that cannot be opened stops the bridge, like any part failing.
func startWeb(ctx context.Context, g *errgroup.Group, cfg config.Config, acc *bridge.Access, log *slog.Logger) error {
	if cfg.Web.Listen == "" && cfg.Web.Ingress == "" {
		return nil
	}
	if acc == nil {
		log.Warn("web: the access page shows no cards: no card reader is configured (NFC_DEVICE)")
	}
	page := pageAccess{acc}
	if cfg.Web.Ingress != "" {
		s, err := web.New(web.Options{Access: page, Ingress: true, Supervisor: cfg.Web.Supervisor, Logger: log})
		if err != nil {
			return err
		}
		if err := serveWeb(ctx, g, s, cfg.Web.Ingress, "ingress", log); err != nil {
			return err
		}
	}
	if cfg.Web.Listen != "" {
		if cfg.Web.Password.IsZero() {
			log.Warn("web: the access page has no password (WEB_PASSWORD): anyone on this machine can open it", "addr", cfg.Web.Listen)
		}
		s, err := web.New(web.Options{Access: page, Password: cfg.Web.Password.Reveal(), Logger: log})
		if err != nil {
			return err
		}
		if err := serveWeb(ctx, g, s, cfg.Web.Listen, "standalone", log); err != nil {
			return err
		}
	}
	return nil
}

// serveWeb opens addr now (a port in use stops the start) and serves it in g.
func serveWeb(ctx context.Context, g *errgroup.Group, s *web.Server, addr, kind string, log *slog.Logger) error {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("web: %s page: %w", kind, err)
	}
	log.Info("web: access page listening", "kind", kind, "addr", l.Addr().String())
	g.Go(func() error { return s.Serve(ctx, l) })
	return nil
}

// pageAccess adapts the bridge's Access service (pkg/access's types) to
// the page's interface (pkg/web's).
type pageAccess struct{ a *bridge.Access }

var _ web.Access = pageAccess{}

func toCard(e access.Entry) web.Card {
	return web.Card{
		UID: e.UID, Name: e.Name, Action: e.Action, Enabled: e.Enabled,
		ValidFrom: e.ValidFrom, ValidUntil: e.ValidUntil, Weekdays: e.Weekdays,
		From: e.From, To: e.To, Doors: e.Doors, Managed: e.Managed,
		AddedBy: e.AddedBy, AddedAt: e.AddedAt, UpdatedBy: e.UpdatedBy, UpdatedAt: e.UpdatedAt,
	}
}

func toEntry(c web.Card) access.Entry {
	return access.Entry{
		UID: c.UID, Name: c.Name, Action: c.Action, Enabled: c.Enabled,
		ValidFrom: c.ValidFrom, ValidUntil: c.ValidUntil, Weekdays: c.Weekdays,
		From: c.From, To: c.To, Doors: c.Doors, Managed: c.Managed,
		AddedBy: c.AddedBy, AddedAt: c.AddedAt, UpdatedBy: c.UpdatedBy, UpdatedAt: c.UpdatedAt,
	}
}

// formFields maps access.Entry's field names (in its FieldErrors) to the
// page's form fields.
var formFields = map[string]string{
	"Name": "name", "Action": "action", "ValidFrom": "valid_from", "ValidUntil": "valid_until",
	"Weekdays": "weekday", "From": "from", "To": "to", "Doors": "door",
}

// toFieldErrors turns the service's FieldErrors into the page's, keeping
// any other error as it is.
func toFieldErrors(err error) error {
	if err == nil {
		return nil
	}
	var leaves []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if fe, ok := errors.AsType[access.FieldError](e); ok {
			leaves = append(leaves, web.FieldError{Field: formFields[fe.Field], Message: fe.Message})
			return
		}
		leaves = append(leaves, e)
	}
	walk(err)
	return errors.Join(leaves...)
}

func (p pageAccess) Cards() []web.Card {
	es := p.a.Cards()
	out := make([]web.Card, len(es))
	for i, e := range es {
		out[i] = toCard(e)
	}
	return out
}

func (p pageAccess) Save(c web.Card, editor string) error {
	return toFieldErrors(p.a.Save(toEntry(c), editor))
}

func (p pageAccess) Remove(uid, editor string) error { return p.a.Remove(uid, editor) }

func (p pageAccess) SetEnabled(uid string, on bool, editor string) error {
	return p.a.SetEnabled(uid, on, editor)
}

// enrollRelay bounds the adapter's copy of an enrollment's events; the
// service sends two.
const enrollRelay = 4

func (p pageAccess) Enroll(name, editor string) (<-chan web.EnrollEvent, error) {
	in, err := p.a.Enroll(name, editor)
	if err != nil {
		return nil, toFieldErrors(err)
	}
	out := make(chan web.EnrollEvent, enrollRelay)
	// Ends when the service closes its channel (after the final event,
	// within EnrollTimeout, or at once on CancelEnroll).
	go func() {
		defer close(out)
		for ev := range in {
			out <- web.EnrollEvent{Kind: ev.Kind, Name: ev.Name, UID: ev.UID, Message: ev.Message}
		}
	}()
	return out, nil
}

func (p pageAccess) CancelEnroll() { p.a.CancelEnroll() }

func toFilter(f web.LogFilter) access.LogFilter {
	return access.LogFilter{Person: f.Person, Door: f.Door, Result: f.Result, From: f.From, To: f.To, Limit: f.Limit}
}

func (p pageAccess) Log(f web.LogFilter) []web.LogEntry {
	es := p.a.Log(toFilter(f))
	out := make([]web.LogEntry, len(es))
	for i, e := range es {
		out[i] = web.LogEntry{Time: e.Time, Door: e.Door, Holder: e.Holder, Card: e.Card, Result: e.Result, Reason: e.Reason, Outcome: e.Outcome}
	}
	return out
}

func (p pageAccess) WriteCSV(w io.Writer, f web.LogFilter) error {
	return p.a.WriteCSV(w, toFilter(f))
}

func (p pageAccess) Doors() []web.DoorStatus {
	ds := p.a.Doors()
	out := make([]web.DoorStatus, len(ds))
	for i, d := range ds {
		out[i] = web.DoorStatus{ID: d.ID, Name: d.Name, State: d.State}
	}
	return out
}

func (p pageAccess) Reader() string { return p.a.Reader() }

func (p pageAccess) Changes() (<-chan struct{}, func()) { return p.a.Changes() }
