package bridge

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/access"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
)

// EnrollTimeout is how long an enrollment waits for its card.
const EnrollTimeout = 30 * time.Second

// ConditionEnrolling shows while an enrollment waits for its card.
const ConditionEnrolling = "enrolling"

// PatternOK answers a successful enrollment.
const PatternOK = "ok"

// accessJobs bounds the edits from Home Assistant waiting for the access
// goroutine (each is a file write).
const accessJobs = 32

// ErrEnrollRunning: an enrollment waits for its card already.
var ErrEnrollRunning = errors.New("an enrollment is waiting for its card already")

// Access is the access list's service: what Home Assistant's entities and
// the page use to read and edit the list, enroll cards and read the log.
// Every method is safe on a nil *Access (a bridge without a reader).
type Access struct {
	b      *Bridge
	list   *access.List
	log    *access.Log
	hash   func(uid []byte) string
	action string // the default action (NFC_ACTION)
	door   string // the lock the reader drives (id)
	now    func() time.Time
	shared *sharing // nil: the list is this bridge's own

	jobs  chan func()   // edits from MQTT, run by the access goroutine
	kick  chan struct{} // the select's options changed: publish discovery again
	flush chan struct{} // pending shared changes to publish

	mu       sync.Mutex
	enroll   *enrollment
	name     string // "New card name" from Home Assistant
	selected string // UID chosen in Home Assistant's select
	subs     map[int]chan struct{}
	nextSub  int
}

type enrollment struct {
	name, editor string
	ch           chan access.EnrollEvent
	timer        *time.Timer
}

// Access is the access list's service; nil without a card reader.
func (b *Bridge) Access() *Access { return b.access }

func newAccess(b *Bridge, r *Reader, sharedPrefix string) *Access {
	a := &Access{
		b:      b,
		list:   r.Policy.List(),
		log:    r.Log,
		hash:   r.Hash,
		action: r.Action.String(),
		door:   r.LockID,
		now:    time.Now,
		jobs:   make(chan func(), accessJobs),
		kick:   make(chan struct{}, 1),
		flush:  make(chan struct{}, 1),
		subs:   map[int]chan struct{}{},
	}
	if a.log == nil {
		a.log, _ = access.OpenLog("", nil) // in memory
	}
	if sharedPrefix != "" {
		a.shared = &sharing{a: a, prefix: sharedPrefix}
	}
	a.list.OnChange(func() {
		a.signal(a.kick)
		a.signal(a.flush)
		a.notify()
	})
	a.log.OnWrite(a.notify)
	return a
}

func (a *Access) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// notify wakes every Changes subscriber.
func (a *Access) notify() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ch := range a.subs {
		a.signal(ch)
	}
}

// Changes signals every change of the cards or the log (coalesced); the
// func unsubscribes.
func (a *Access) Changes() (<-chan struct{}, func()) {
	if a == nil {
		return make(chan struct{}), func() {}
	}
	ch := make(chan struct{}, 1)
	a.mu.Lock()
	id := a.nextSub
	a.nextSub++
	a.subs[id] = ch
	a.mu.Unlock()
	return ch, func() {
		a.mu.Lock()
		delete(a.subs, id)
		a.mu.Unlock()
	}
}

// Cards are the cards, sorted by name; an options' card without its own
// action shows the default one.
func (a *Access) Cards() []access.Entry {
	if a == nil {
		return nil
	}
	es := a.list.Entries()
	for i := range es {
		if es[i].Action == "" {
			es[i].Action = a.action
		}
	}
	return es
}

// Save creates or updates the card e.UID; an empty Action takes the
// default one. The error joins access.FieldErrors, or is access.ErrManaged.
func (a *Access) Save(e access.Entry, editor string) error {
	if a == nil {
		return errors.New("no card reader configured")
	}
	if e.Action == "" {
		e.Action = a.action
	}
	if _, err := a.list.Put(e, editor, a.now()); err != nil {
		return err
	}
	a.b.log.Info("access list: card saved", "holder", strings.TrimSpace(e.Name), "card", a.hashHex(e.UID), "by", editor)
	return nil
}

// Remove deletes a card.
func (a *Access) Remove(uid, editor string) error {
	if a == nil {
		return errors.New("no card reader configured")
	}
	r, err := a.list.Remove(uid, editor, a.now())
	if err != nil {
		return err
	}
	a.b.log.Info("access list: card removed", "holder", r.Name, "card", a.hashHex(r.UID), "by", editor)
	return nil
}

// SetEnabled enables or disables a card.
func (a *Access) SetEnabled(uid string, on bool, editor string) error {
	if a == nil {
		return errors.New("no card reader configured")
	}
	r, err := a.list.SetEnabled(uid, on, editor, a.now())
	if err != nil {
		return err
	}
	a.b.log.Info("access list: card "+map[bool]string{true: "enabled", false: "disabled"}[on], "holder", r.Name, "card", a.hashHex(r.UID), "by", editor)
	return nil
}

// Log returns the access log entries f selects, newest first.
func (a *Access) Log(f access.LogFilter) []access.LogEntry {
	if a == nil {
		return nil
	}
	return a.log.Query(f)
}

// WriteCSV writes the entries f selects as CSV (times in the list's zone).
func (a *Access) WriteCSV(w io.Writer, f access.LogFilter) error {
	if a == nil {
		return access.WriteCSV(w, nil, time.Local)
	}
	return access.WriteCSV(w, a.log.Query(f), a.list.Location())
}

// Doors are the bridge's locks and their states.
func (a *Access) Doors() []access.DoorStatus {
	if a == nil {
		return nil
	}
	out := make([]access.DoorStatus, 0, len(a.b.workers))
	for _, w := range a.b.workers {
		w.pubMu.Lock()
		st := w.state
		w.pubMu.Unlock()
		if st == "" {
			st = hass.Reset
		}
		out = append(out, access.DoorStatus{ID: w.lock.ID, Name: w.lock.Name, State: string(st)})
	}
	return out
}

// Reader is the reader's status as on MQTT (connected, unplugged, ...), or
// "unknown" before the first report.
func (a *Access) Reader() string {
	if a == nil {
		return "none"
	}
	a.b.rs.mu.Lock()
	raw := a.b.rs.status
	a.b.rs.mu.Unlock()
	var st hass.ReaderState
	if raw == nil || json.Unmarshal(raw, &st) != nil {
		return "unknown"
	}
	return st.Status
}

// Enroll waits up to EnrollTimeout for the next tap and adds that card as
// name. The channel gets "waiting", then one final event, and is closed.
func (a *Access) Enroll(name, editor string) (<-chan access.EnrollEvent, error) {
	if a == nil {
		return nil, errors.New("no card reader configured")
	}
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return nil, access.FieldError{Field: "Name", Message: "required"}
	case len(name) > access.MaxName || !utf8.ValidString(name) || strings.ContainsAny(name, "\x00\r\n\t"):
		return nil, access.FieldError{Field: "Name", Message: fmt.Sprintf("one line of at most %d bytes", access.MaxName)}
	}
	e := &enrollment{name: name, editor: editor, ch: make(chan access.EnrollEvent, 2)}
	a.mu.Lock()
	if a.enroll != nil {
		a.mu.Unlock()
		return nil, ErrEnrollRunning
	}
	a.enroll = e
	e.ch <- access.EnrollEvent{Kind: access.EnrollWaiting, Name: name,
		Message: fmt.Sprintf("Tap %s's card on the reader within %s.", name, EnrollTimeout)}
	e.timer = time.AfterFunc(EnrollTimeout, func() {
		if a.take(e) {
			a.finishEnroll(e, nil, access.EnrollTimeout, fmt.Sprintf("No card was tapped within %s: nothing was added.", EnrollTimeout))
		}
	})
	a.mu.Unlock()
	a.b.set(ConditionEnrolling, true)
	a.b.log.Info("enrolling: waiting for the next card", "name", name, "by", editor, "timeout", EnrollTimeout)
	a.notify()
	return e.ch, nil
}

// CancelEnroll stops a waiting enrollment.
func (a *Access) CancelEnroll() {
	if a == nil {
		return
	}
	a.mu.Lock()
	e := a.enroll
	a.mu.Unlock()
	if e != nil && a.take(e) {
		a.finishEnroll(e, nil, access.EnrollCancelled, "The enrollment was cancelled: nothing was added.")
	}
}

// take ends e's wait; only one of the tap, the timer and a cancel wins.
func (a *Access) take(e *enrollment) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.enroll != e {
		return false
	}
	a.enroll = nil
	e.timer.Stop()
	return true
}

// takeAny ends the waiting enrollment, if any, for a tap.
func (a *Access) takeAny() *enrollment {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	e := a.enroll
	a.mu.Unlock()
	if e != nil && a.take(e) {
		return e
	}
	return nil
}

// enrollTap adds the tapped card, or says why not. The tap opens nothing.
func (a *Access) enrollTap(e *enrollment, c nfc.Card) {
	uid := c.HexUID()
	switch {
	case c.Random():
		a.finishEnroll(e, &c, access.EnrollRandomUID, "This card (or phone) shows a new random UID at every tap: it cannot be enrolled.")
		return
	case access.ChangingID(c):
		a.finishEnroll(e, &c, access.EnrollChangingIDm, "This phone emulates a FeliCa card whose IDm may change: it cannot be enrolled.")
		return
	}
	if old, ok := a.list.Lookup(uid); ok {
		a.finishEnroll(e, &c, access.EnrollAlreadyListed, fmt.Sprintf("This card is listed already, as %s: nothing was added.", old.Name))
		return
	}
	if _, err := a.list.Put(access.Entry{UID: uid, Name: e.name, Action: a.action, Enabled: true}, e.editor, a.now()); err != nil {
		a.b.log.Error("enrolling: cannot save the card", "name", e.name, "card", a.hash(c.UID), "err", err)
		a.finishEnroll(e, &c, "failed", "The card could not be saved: "+err.Error())
		return
	}
	a.finishEnroll(e, &c, access.EnrollEnrolled, fmt.Sprintf("%s's card was added.", e.name))
}

// finishEnroll ends an enrollment taken by take: the final event on the
// channel, the LEDs, Home Assistant's event, the log and the access log.
func (a *Access) finishEnroll(e *enrollment, c *nfc.Card, kind, msg string) {
	a.b.set(ConditionEnrolling, false)
	ev := access.EnrollEvent{Kind: kind, Name: e.name, Message: msg}
	hev := hass.AccessEvent{EventType: hass.EventEnrollFailed, Holder: hass.UnknownHolder, Action: CardNone.String(), Lock: a.b.byID[a.door].lock.Name, Reason: kind, Message: msg}
	le := access.LogEntry{Time: a.now(), Door: hev.Lock, Result: access.ResultEnrollFailed, Reason: kind}
	var card string
	if c != nil {
		hev.CardType = c.Kind.String()
		card = a.hash(c.UID)
		le.Card = card
	}
	if kind == access.EnrollEnrolled {
		ev.UID = c.HexUID()
		hev.EventType, hev.Holder, hev.Reason, hev.Action = hass.EventCardEnrolled, e.name, "", a.action
		le.Result, le.Reason, le.Holder = access.ResultEnrolled, "", e.name
		a.b.show(PatternOK)
		a.b.log.Info("enrolled a card", "name", e.name, "card", card, "by", e.editor)
	} else {
		if c != nil {
			a.b.show(PatternDenied)
		}
		a.b.log.Warn("enrollment failed: nothing added", "name", e.name, "reason", kind, "card", card)
	}
	a.log.Append(le)
	a.b.publishJSON(a.b.topics.ReaderEvent(), false, hev)
	e.ch <- ev
	close(e.ch)
	a.notify()
}

// hashHex is the keyed hash of a UID given in hex.
func (a *Access) hashHex(uid string) string {
	b, err := hex.DecodeString(uid)
	if err != nil {
		return "?"
	}
	return a.hash(b)
}

// labels are the select's options, name by name; a name that two cards
// share gets the card's hash too. The map goes back to the UID.
func (a *Access) labels() ([]string, map[string]string) {
	es := a.list.Entries()
	count := map[string]int{}
	for _, e := range es {
		count[e.Name]++
	}
	out := make([]string, 0, len(es))
	byLabel := make(map[string]string, len(es))
	for _, e := range es {
		l := e.Name
		if count[e.Name] > 1 {
			l = fmt.Sprintf("%s (%s)", e.Name, a.hashHex(e.UID)[:6])
		}
		out = append(out, l)
		byLabel[l] = e.UID
	}
	return out, byLabel
}

// isAccessTopic reports the reader's access command topics.
func (b *Bridge) isAccessTopic(topic string) bool {
	return slices.Contains(b.topics.ReaderCommandTopics(), topic)
}

// handleAccess takes a message on one of the reader's access topics; the
// edits go to the access goroutine (they write a file).
func (a *Access) handleAccess(m mqtt.Message) {
	b := a.b
	switch {
	case m.Retained && len(m.Payload) > 0:
		b.warn.Warn("retained access command", "ignoring retained access command and clearing it from the broker; commands must not be retained", "topic", m.Topic)
		b.clearRetained(m.Topic)
		return
	case len(m.Payload) == 0:
		return
	case m.Duplicate:
		b.warn.Warn("duplicate", "ignoring redelivered access command (MQTT DUP flag): it may have been acted on already", "topic", m.Topic)
		return
	}
	var job func()
	switch m.Topic {
	case b.topics.ReaderEnrollName():
		name := strings.TrimSpace(string(m.Payload))
		if len(name) > access.MaxName || !utf8.ValidString(name) || strings.ContainsAny(name, "\x00\r\n\t") {
			b.warn.Warn("bad card name", "ignoring the new card's name: one line of at most 64 bytes", "bytes", len(m.Payload))
			return
		}
		a.mu.Lock()
		a.name = name
		a.mu.Unlock()
		b.pub.Publish(b.topics.ReaderEnrollNameState(), 1, true, []byte(name))
		return
	case b.topics.ReaderEnroll():
		if _, err := hass.ParseCommand(hass.TopicToggle, m.Payload); err != nil {
			b.warn.Warn("bad payload", "ignoring enroll command", "topic", m.Topic, "err", err)
			return
		}
		a.mu.Lock()
		name := a.name
		a.mu.Unlock()
		job = func() { a.enrollFromHA(name) }
	case b.topics.ReaderCard():
		_, byLabel := a.labels()
		uid, ok := byLabel[string(m.Payload)]
		if !ok {
			b.warn.Warn("unknown card option", "ignoring a card that is not on the list", "bytes", len(m.Payload))
			return
		}
		a.mu.Lock()
		a.selected = uid
		a.mu.Unlock()
		b.pub.Publish(b.topics.ReaderCardState(), 1, true, m.Payload)
		return
	case b.topics.ReaderCardAction():
		act, err := hass.ParseCardAction(m.Payload)
		if err != nil {
			b.warn.Warn("bad payload", "ignoring card command", "topic", m.Topic, "err", err)
			return
		}
		a.mu.Lock()
		uid := a.selected
		a.mu.Unlock()
		job = func() { a.cardActionFromHA(act, uid) }
	default:
		return
	}
	select {
	case a.jobs <- job:
	default:
		b.warn.Warn("access busy", "ignoring an access command: too many are waiting")
	}
}

func (a *Access) enrollFromHA(name string) {
	if name == "" {
		a.refuse(hass.EventEnrollFailed, "", "no_name", `Type the new card's name into "New card name" first.`)
		return
	}
	if _, err := a.Enroll(name, SourceHA); err != nil {
		a.refuse(hass.EventEnrollFailed, name, "busy", "Not enrolling: "+err.Error()+".")
	}
}

func (a *Access) cardActionFromHA(act, uid string) {
	e, ok := a.list.Lookup(uid)
	if uid == "" || !ok {
		a.refuse(hass.EventChangeRefused, "", "no_card", `Choose a card in "Card" first.`)
		return
	}
	if e.Managed {
		a.refuse(hass.EventChangeRefused, e.Name, "managed", fmt.Sprintf("%s's card comes from the add-on options (NFC_CARDS): change it there.", e.Name))
		return
	}
	var err error
	var change, msg string
	switch act {
	case hass.PayloadRemove:
		err, change, msg = a.Remove(uid, SourceHA), "removed", fmt.Sprintf("%s's card was removed.", e.Name)
	case hass.PayloadDisable:
		err, change, msg = a.SetEnabled(uid, false, SourceHA), "disabled", fmt.Sprintf("%s's card is disabled.", e.Name)
	case hass.PayloadEnable:
		err, change, msg = a.SetEnabled(uid, true, SourceHA), "enabled", fmt.Sprintf("%s's card is enabled.", e.Name)
	}
	if err != nil {
		a.refuse(hass.EventChangeRefused, e.Name, "failed", "Not changed: "+err.Error()+".")
		return
	}
	a.b.publishJSON(a.b.topics.ReaderEvent(), false, hass.AccessEvent{EventType: hass.EventCardChanged, Holder: e.Name, Action: CardNone.String(), Change: change, Message: msg})
}

// refuse tells Home Assistant an edit was not made.
func (a *Access) refuse(event, holder, reason, msg string) {
	if holder == "" {
		holder = hass.UnknownHolder
	}
	a.b.log.Warn("access: "+msg, "reason", reason)
	a.b.publishJSON(a.b.topics.ReaderEvent(), false, hass.AccessEvent{EventType: event, Holder: holder, Action: CardNone.String(), Reason: reason, Message: msg})
}

// run is the access goroutine: Home Assistant's edits, the select's
// options, the shared list's publishing.
func (a *Access) run(ctx context.Context) {
	defer a.CancelEnroll()
	announced, _ := a.labels() // what OnConnect's announce publishes
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-a.jobs:
			job()
		case <-a.kick:
			// The reader's discovery (70 kB with 1,000 cards, and HA
			// re-registers its entities) goes out only when the select's
			// options changed, not for every edit of a card's hours.
			if l, _ := a.labels(); !slices.Equal(l, announced) {
				a.b.announceReaderConfig()
				announced = l
			} else {
				a.publishSelected()
			}
		case <-a.flush:
			if err := a.list.Flush(); err != nil {
				a.b.log.Error("shared access list: cannot write the file; the cards are used from memory", "err", err)
			}
			if a.shared != nil {
				a.shared.publishPending(ctx)
			}
		}
	}
}

// publishSelected keeps the select's state on a card that exists.
func (a *Access) publishSelected() {
	labels, byLabel := a.labels()
	a.mu.Lock()
	sel := a.selected
	a.mu.Unlock()
	for _, l := range labels {
		if byLabel[l] == sel {
			a.b.send(a.b.topics.ReaderCardState(), true, []byte(l))
			return
		}
	}
	a.mu.Lock()
	a.selected = ""
	a.mu.Unlock()
	first := hass.NoCards
	if len(labels) > 0 {
		first = labels[0]
		a.mu.Lock()
		a.selected = byLabel[first]
		a.mu.Unlock()
	}
	a.b.send(a.b.topics.ReaderCardState(), true, []byte(first))
}

// connected runs after every connect: pending shared changes go out.
func (a *Access) connected() {
	if a == nil {
		return
	}
	a.signal(a.flush)
}

// reasonMessage is the sentence a denied tap's event carries.
func reasonMessage(d access.Decision, door string, loc *time.Location) string {
	e := d.Entry
	switch d.Reason {
	case access.ReasonDisabled:
		return fmt.Sprintf("%s's card is disabled.", e.Name)
	case access.ReasonNotThisDoor:
		return fmt.Sprintf("%s's card does not open %s.", e.Name, door)
	case access.ReasonNotYetValid:
		return fmt.Sprintf("%s's card is valid from %s.", e.Name, e.ValidFrom)
	case access.ReasonExpired:
		return fmt.Sprintf("%s's card expired after %s.", e.Name, e.ValidUntil)
	case access.ReasonOutsideHours:
		var days []string
		for _, wd := range e.Weekdays {
			days = append(days, wd.String()[:3])
		}
		when := "every day"
		if len(days) > 0 {
			when = strings.Join(days, ", ")
		}
		if e.From != "" {
			when += " " + e.From + "-" + e.To
		}
		return fmt.Sprintf("%s's card opens this door only %s (%s).", e.Name, when, loc)
	case access.ReasonLockout:
		return "Too many unknown cards: the reader ignores cards until " + d.Until.In(loc).Format("15:04:05") + "."
	}
	return "This card is not on the access list."
}

// logAttrs are a decision's log attributes.
func logAttrs(d access.Decision, hash string) []any {
	return []any{slog.String("holder", d.Holder), slog.String("card", hash), slog.String("reason", d.Reason)}
}
