// Package web serves the access page: the cards on the allowlist (enrolled
// by a tap, edited, disabled, removed), the access log and the reader's and
// locks' status. It runs behind Home Assistant's ingress (the Supervisor's
// proxy authenticates the user; only its address is served) or on its own
// listener protected by a password (WEB_LISTEN, WEB_PASSWORD).
//
// Everything the page needs is embedded: html/template pages, one style
// sheet, a little plain JavaScript. State-changing requests carry a
// per-session CSRF token and must come from the page's own origin.
package web

import (
	"errors"
	"io"
	"time"
)

// The page's view of the access list. The types mirror pkg/access's (see
// the bridge's Access service); cmd/sesame2mqtt adapts one to the other, so
// that this package depends on nothing but the method set below.

// Card is one card on the allowlist.
type Card struct {
	UID        string // canonical upper-case hex; shown masked
	Name       string
	Action     string // toggle, unlock, lock, none
	Enabled    bool
	ValidFrom  string // 2006-01-02 or ""
	ValidUntil string // 2006-01-02 or ""
	Weekdays   []time.Weekday
	From, To   string   // 15:04 or ""
	Doors      []string // lock ids; empty: every door
	Managed    bool     // from NFC_CARDS / the add-on's options: read-only
	AddedBy    string
	AddedAt    time.Time
	UpdatedBy  string
	UpdatedAt  time.Time
}

// FieldError is one invalid field of a card.
type FieldError struct{ Field, Message string }

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// FieldErrors splits err (one FieldError, or errors.Join of several) into
// messages by field; any other error goes under "".
func FieldErrors(err error) map[string]string {
	out := map[string]string{}
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if fe, ok := errors.AsType[FieldError](e); ok {
			if _, dup := out[fe.Field]; !dup {
				out[fe.Field] = fe.Message
			}
			return
		}
		if _, dup := out[""]; !dup {
			out[""] = e.Error()
		}
	}
	walk(err)
	return out
}

// LogEntry is one tap in the access log.
type LogEntry struct {
	Time    time.Time
	Door    string
	Holder  string // "" for an unknown card
	Card    string // the keyed UID hash, never a raw UID
	Result  string // granted, denied, enrolled, enroll_failed
	Reason  string
	Outcome string
}

// LogFilter selects log entries; zero fields match everything.
type LogFilter struct {
	Person, Door, Result string
	From, To             time.Time // From inclusive, To exclusive
	Limit                int       // 0 = 200
}

// EnrollEvent is one step of an enrollment.
type EnrollEvent struct {
	Kind    string // waiting, enrolled, already_listed, random_uid, changing_idm, timeout, cancelled
	Name    string
	UID     string // the full UID, only in "enrolled"
	Message string
}

// Final reports whether the event ends an enrollment.
func (e EnrollEvent) Final() bool { return e.Kind != "waiting" }

// DoorStatus is one lock as the page shows it.
type DoorStatus struct{ ID, Name, State string }

// Access is what the page needs of the bridge (its Access service).
type Access interface {
	Cards() []Card
	Save(c Card, editor string) error
	Remove(uid, editor string) error
	SetEnabled(uid string, on bool, editor string) error
	Enroll(name, editor string) (<-chan EnrollEvent, error)
	CancelEnroll()
	Log(f LogFilter) []LogEntry
	WriteCSV(w io.Writer, f LogFilter) error
	Doors() []DoorStatus
	Reader() string
	Changes() (<-chan struct{}, func())
}
