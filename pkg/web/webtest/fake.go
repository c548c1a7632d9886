// Package webtest is a fake of the bridge's Access service for the access
// page's tests: an in-memory list, a log, enrollments driven by Tap, doors
// whose state a granted tap changes.
package webtest

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/web"
)

// Fake implements web.Access.
type Fake struct {
	mu     sync.Mutex
	cards  map[string]web.Card
	log    []web.LogEntry // oldest first
	doors  []web.DoorStatus
	reader string
	enroll chan web.EnrollEvent // non-nil while an enrollment runs
	name   string
	editor string
	subs   map[chan struct{}]struct{}
	Now    func() time.Time
	Loc    *time.Location
	calls  []string // "save Alice by Bob (HA user)", ...
}

// Calls returns the changes made so far, oldest first.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// LastCall is the latest change, or "".
func (f *Fake) LastCall() string {
	c := f.Calls()
	if len(c) == 0 {
		return ""
	}
	return c[len(c)-1]
}

// New returns a fake with the given doors (the first is the reader's).
func New(doors ...web.DoorStatus) *Fake {
	return &Fake{cards: map[string]web.Card{}, doors: doors, reader: "connected",
		subs: map[chan struct{}]struct{}{}, Now: time.Now, Loc: time.Local}
}

// Hash is the fake's keyed UID hash (12 hex digits, as the bridge's).
func Hash(uid string) string {
	h := sha256.Sum256([]byte("webtest\x00" + uid))
	return hex.EncodeToString(h[:6])
}

func (f *Fake) changed() {
	for ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Add puts a card on the list directly (managed or not).
func (f *Fake) Add(c web.Card) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.Action == "" {
		c.Action = "toggle"
	}
	f.cards[c.UID] = c
	f.changed()
}

// Cards implements web.Access.
func (f *Fake) Cards() []web.Card {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]web.Card, 0, len(f.cards))
	for _, c := range f.cards {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b web.Card) int { return strings.Compare(a.Name+a.UID, b.Name+b.UID) })
	return out
}

// Save implements web.Access, validating as the real service does.
func (f *Fake) Save(c web.Card, editor string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, ok := f.cards[c.UID]
	if ok && old.Managed {
		return errors.New("the card is managed by the configuration")
	}
	var errs []error
	if strings.TrimSpace(c.Name) == "" {
		errs = append(errs, web.FieldError{Field: "name", Message: "required"})
	}
	if c.ValidFrom != "" && c.ValidUntil != "" && c.ValidUntil < c.ValidFrom {
		errs = append(errs, web.FieldError{Field: "valid_until", Message: "before valid from"})
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	c.UpdatedBy, c.UpdatedAt = editor, f.Now()
	if ok {
		c.AddedBy, c.AddedAt = old.AddedBy, old.AddedAt
	}
	f.cards[c.UID] = c
	f.calls = append(f.calls, "save "+c.Name+" by "+editor)
	f.changed()
	return nil
}

// Remove implements web.Access.
func (f *Fake) Remove(uid, editor string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cards[uid]
	switch {
	case !ok:
		return errors.New("no such card")
	case c.Managed:
		return errors.New("the card is managed by the configuration")
	}
	delete(f.cards, uid)
	f.calls = append(f.calls, "remove "+c.Name+" by "+editor)
	f.changed()
	return nil
}

// SetEnabled implements web.Access.
func (f *Fake) SetEnabled(uid string, on bool, editor string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cards[uid]
	switch {
	case !ok:
		return errors.New("no such card")
	case c.Managed:
		return errors.New("the card is managed by the configuration")
	}
	c.Enabled, c.UpdatedBy, c.UpdatedAt = on, editor, f.Now()
	f.cards[uid] = c
	f.calls = append(f.calls, fmt.Sprintf("enabled %s=%v by %s", c.Name, on, editor))
	f.changed()
	return nil
}

// Enroll implements web.Access: the next Tap enrolls.
func (f *Fake) Enroll(name, editor string) (<-chan web.EnrollEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.enroll != nil {
		return nil, errors.New("an enrollment is already running")
	}
	f.enroll = make(chan web.EnrollEvent, 4)
	f.name, f.editor = name, editor
	f.enroll <- web.EnrollEvent{Kind: "waiting", Name: name, Message: "Tap " + name + "'s card on the reader within 30 seconds."}
	return f.enroll, nil
}

// Enrolling reports whether an enrollment waits for a tap.
func (f *Fake) Enrolling() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.enroll != nil
}

func (f *Fake) endEnroll(ev web.EnrollEvent) {
	f.enroll <- ev
	close(f.enroll)
	f.enroll = nil
}

// CancelEnroll implements web.Access.
func (f *Fake) CancelEnroll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.enroll != nil {
		f.endEnroll(web.EnrollEvent{Kind: "cancelled", Name: f.name, Message: "Enrollment cancelled."})
	}
}

// Tap is a card on the reader of the first door: it enrolls while an
// enrollment runs, else is judged like the bridge judges it.
func (f *Fake) Tap(uid string) web.LogEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.Now()
	door := ""
	if len(f.doors) > 0 {
		door = f.doors[0].Name
	}
	e := web.LogEntry{Time: now, Door: door, Card: Hash(uid)}
	c, known := f.cards[uid]
	if f.enroll != nil {
		if known {
			e.Result, e.Reason, e.Holder = "enroll_failed", "already_listed", c.Name
			f.endEnroll(web.EnrollEvent{Kind: "already_listed", Name: f.name, Message: "That card is already on the list as " + c.Name + "."})
		} else {
			c = web.Card{UID: uid, Name: f.name, Action: "toggle", Enabled: true, AddedBy: f.editor, AddedAt: now}
			f.cards[uid] = c
			e.Result, e.Holder = "enrolled", c.Name
			f.endEnroll(web.EnrollEvent{Kind: "enrolled", Name: c.Name, UID: uid, Message: c.Name + "'s card is on the list."})
		}
	} else {
		e.Result, e.Reason = "denied", f.reason(c, known, now)
		if known {
			e.Holder = c.Name
		}
		if e.Reason == "" {
			e.Result, e.Outcome = "granted", "success"
			if len(f.doors) > 0 {
				if f.doors[0].State == "UNLOCKED" {
					f.doors[0].State = "LOCKED"
				} else {
					f.doors[0].State = "UNLOCKED"
				}
			}
		}
	}
	f.log = append(f.log, e)
	f.changed()
	return e
}

func (f *Fake) reason(c web.Card, known bool, now time.Time) string {
	now = now.In(f.Loc)
	day := now.Format("2006-01-02")
	hm := now.Format("15:04")
	switch {
	case !known:
		return "unknown"
	case !c.Enabled:
		return "disabled"
	case c.ValidFrom != "" && day < c.ValidFrom:
		return "not_yet_valid"
	case c.ValidUntil != "" && day > c.ValidUntil:
		return "expired"
	case len(c.Weekdays) > 0 && !slices.Contains(c.Weekdays, now.Weekday()):
		return "outside_hours"
	case c.From != "" && c.To != "":
		in := hm >= c.From && hm < c.To
		if c.To < c.From {
			in = hm >= c.From || hm < c.To
		}
		if !in {
			return "outside_hours"
		}
	}
	if len(c.Doors) > 0 && len(f.doors) > 0 && !slices.Contains(c.Doors, f.doors[0].ID) {
		return "not_this_door"
	}
	return ""
}

// AddLog appends an entry as is.
func (f *Fake) AddLog(e web.LogEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, e)
	f.changed()
}

func match(e web.LogEntry, q web.LogFilter) bool {
	return (q.Person == "" || strings.EqualFold(e.Holder, q.Person)) &&
		(q.Door == "" || e.Door == q.Door) &&
		(q.Result == "" || e.Result == q.Result) &&
		(q.From.IsZero() || !e.Time.Before(q.From)) &&
		(q.To.IsZero() || e.Time.Before(q.To))
}

// Log implements web.Access.
func (f *Fake) Log(q web.LogFilter) []web.LogEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	limit := q.Limit
	if limit <= 0 {
		limit = 200
	}
	var out []web.LogEntry
	for i := len(f.log) - 1; i >= 0 && len(out) < limit; i-- {
		if match(f.log[i], q) {
			out = append(out, f.log[i])
		}
	}
	return out
}

// WriteCSV implements web.Access.
func (f *Fake) WriteCSV(w io.Writer, q web.LogFilter) error {
	q.Limit = 1 << 30
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"time", "door", "holder", "card", "result", "reason", "outcome"})
	for _, e := range f.Log(q) {
		_ = cw.Write([]string{e.Time.Format(time.RFC3339), e.Door, e.Holder, e.Card, e.Result, e.Reason, e.Outcome})
	}
	cw.Flush()
	return cw.Error()
}

// Doors implements web.Access.
func (f *Fake) Doors() []web.DoorStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.doors)
}

// SetReader sets the reader's status.
func (f *Fake) SetReader(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reader = s
}

// Reader implements web.Access.
func (f *Fake) Reader() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reader
}

// Changes implements web.Access.
func (f *Fake) Changes() (<-chan struct{}, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan struct{}, 1)
	f.subs[ch] = struct{}{}
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, ch)
	}
}

// Subscribers counts the open Changes subscriptions (the page's streams).
func (f *Fake) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

var _ web.Access = (*Fake)(nil)
