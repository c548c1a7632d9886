package bridge

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/access"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// Feedback shows what happened on the LEDs and buzzer by the door. Both
// calls must return at once.
type Feedback interface {
	// Show plays a transient pattern.
	Show(pattern string)
	// Set turns a standing condition on or off.
	Set(condition string, on bool)
}

// Feedback patterns and conditions the bridge uses.
const (
	PatternCardRead  = "card_read"
	PatternUnlocking = "unlocking"
	PatternLocking   = "locking"
	PatternDenied    = "denied"
	PatternLockout   = "lockout"
	PatternFailed    = "failed"
	PatternReady     = "ready"

	ConditionOffline    = "offline"
	ConditionJammed     = "jammed"
	ConditionReaderGone = "reader_gone"
)

// CardAction is what an allowlisted card does.
type CardAction int

const (
	CardNone CardAction = iota // Home Assistant decides
	CardToggle
	CardUnlock
	CardLock
)

func (a CardAction) String() string {
	switch a {
	case CardToggle:
		return "toggle"
	case CardUnlock:
		return "unlock"
	case CardLock:
		return "lock"
	}
	return "none"
}

func (a CardAction) hass() hass.Action {
	switch a {
	case CardToggle:
		return hass.ActionToggle
	case CardUnlock:
		return hass.ActionUnlock
	case CardLock:
		return hass.ActionLock
	}
	return 0
}

// Reader configures the card reader's part of the bridge.
type Reader struct {
	Policy *access.Policy // the access list and the lockout; owned by the goroutine calling Tap
	// Log is the access log; nil keeps one in memory.
	Log    *access.Log
	Action CardAction // the default action: cards of the options, enrolled cards
	LockID string     // the lock allowed cards drive
	// AllTags sends every card (except random UIDs) to HA's tag registry;
	// otherwise only allowlisted cards.
	AllTags bool
	// Hash is the log form of a UID.
	Hash func(uid []byte) string
}

// readerState is the bridge's view of the reader and the door's feedback.
type readerState struct {
	mu        sync.Mutex
	status    []byte // last reader status payload
	jammed    map[string]bool
	cloudDown bool
	mqttDown  bool
	offline   bool // the last offline condition given to the feedback
	readyDone bool
}

// Tap handles one card tap. It must be called from one goroutine (the
// reader's) and never blocks: the command goes to the lock's worker, the
// messages to the outbox, the feedback to its own goroutine. While an
// enrollment waits, the tap enrolls the card and opens nothing.
func (b *Bridge) Tap(c nfc.Card, at time.Time) {
	r := b.reader
	if r == nil {
		return
	}
	if e := b.access.takeAny(); e != nil {
		b.access.enrollTap(e, c)
		return
	}
	hash := r.Hash(c.UID)
	d := r.Policy.Decide(c, at, r.LockID)
	w := b.byID[r.LockID] // New checked that it exists
	loc := r.Policy.List().Location()
	ev := hass.AccessEvent{Holder: hass.UnknownHolder, CardType: c.Kind.String(), Action: CardNone.String(), Lock: w.lock.Name}
	le := access.LogEntry{Time: at, Door: w.lock.Name, Card: hash, Result: access.ResultDenied, Reason: d.Reason, Holder: d.Holder}
	switch d.Verdict {
	case access.Ignored:
		// Nothing is published; the person at the door sees why.
		b.log.Debug("card ignored: lockout in force", "card", hash, "until", d.Until.UTC().Format(time.RFC3339))
		b.show(PatternLockout)
		b.access.log.Append(le)
		return
	case access.Granted:
		action := cardAction(d.Entry.Action, r.Action)
		ev.EventType, ev.Holder, ev.Action = hass.EventAccessGranted, d.Holder, action.String()
		le.Result = access.ResultGranted
		b.show(PatternCardRead) // before the command, whose own pattern follows
		// The grant is queued (not sent: Publish never waits) before the
		// command, so that it always comes before the command's own
		// action_succeeded/action_failed, however fast that is.
		b.publishJSON(b.topics.ReaderEvent(), false, ev)
		if action != CardNone {
			// The access log gets the tap with its command's outcome.
			w.submit(action.hass(), d.Holder, at, b.tapHooks(d.Holder, w, le))
		} else {
			b.access.log.Append(le)
		}
		b.log.Info("card accepted", "holder", d.Holder, "card", hash, "action", action.String())
		b.publishTag(c)
		return
	case access.Denied, access.LockedOut:
		ev.EventType, ev.Reason = hass.EventAccessDenied, d.Reason
		ev.Message = reasonMessage(d, w.lock.Name, loc)
		if d.Holder != "" {
			// Listed, but not now or not here: named, not counted for the
			// lockout, and in the tag registry as a known card.
			ev.Holder = d.Holder
			b.log.Warn("card refused", logAttrs(d, hash)...)
			b.publishTag(c)
			b.show(PatternDenied)
			break
		}
		if r.AllTags && !c.Random() {
			ev.UID = c.HexUID()
		}
		b.log.Warn("unknown card refused", "card", hash, "random_uid", d.Random, "reason", d.Reason)
		if r.AllTags && !c.Random() {
			b.publishTag(c)
		}
		if d.Verdict == access.Denied {
			b.show(PatternDenied)
		}
	}
	b.access.log.Append(le)
	b.publishJSON(b.topics.ReaderEvent(), false, ev)
	if d.Verdict == access.LockedOut {
		until := d.Until.UTC().Format(time.RFC3339)
		b.log.Warn("too many unknown cards: ignoring every card until the lockout ends",
			"unknown_taps", access.DefaultLimit, "within", access.DefaultWindow, "until", until)
		b.show(PatternLockout)
		b.publishJSON(b.topics.ReaderEvent(), false, hass.AccessEvent{
			EventType: hass.EventLockout, Holder: hass.UnknownHolder, CardType: c.Kind.String(),
			Action: CardNone.String(), Lock: ev.Lock, Until: until, Reason: access.ReasonLockout,
			Message: reasonMessage(access.Decision{Reason: access.ReasonLockout, Until: d.Until}, w.lock.Name, loc),
		})
	}
}

// cardAction is an entry's action; "" (a card of the options) is the
// reader's default.
func cardAction(s string, def CardAction) CardAction {
	switch s {
	case access.ActionToggle:
		return CardToggle
	case access.ActionUnlock:
		return CardUnlock
	case access.ActionLock:
		return CardLock
	case access.ActionNone:
		return CardNone
	}
	return def
}

func (b *Bridge) publishTag(c nfc.Card) {
	// The tag registry needs the UID itself; never retained (HA would scan
	// it again on every reconnect).
	b.pub.Publish(b.topics.ReaderTag(), 1, false, []byte(c.HexUID()))
}

// tapHooks follow a card's command to the LEDs and the event entity.
func (b *Bridge) tapHooks(holder string, w *worker, le access.LogEntry) *hooks {
	return &hooks{
		sending: func(a hass.Action) {
			if a == hass.ActionUnlock {
				b.show(PatternUnlocking)
			} else {
				b.show(PatternLocking)
			}
		},
		done: func(a hass.Action, outcome, detail string) {
			le.Outcome = outcome
			b.access.log.Append(le)
			ev := hass.AccessEvent{EventType: hass.EventActionSucceeded, Holder: holder, Action: a.String(), Lock: w.lock.Name, Result: outcome, Detail: detail}
			if outcome != hass.ResultSuccess {
				ev.EventType = hass.EventActionFailed
				b.show(PatternFailed)
			}
			b.publishJSON(b.topics.ReaderEvent(), false, ev)
		},
	}
}

// ReaderStatus publishes the reader's connectivity; it is the nfc.Reader's
// OnStatus.
func (b *Bridge) ReaderStatus(s nfc.Status, device string, err error) {
	st := hass.ReaderState{Status: string(s), Device: device}
	if err != nil {
		st.Detail = err.Error()
	}
	payload, jerr := hass.JSON(st)
	if jerr != nil {
		b.log.Error("cannot encode the reader status", "err", jerr)
		return
	}
	// On the reader's goroutine, which also delivers the taps: never wait
	// for room in the outbox here. The status is kept, and announceReader
	// publishes it again at every (re)connect should this one be dropped.
	b.rs.mu.Lock()
	b.rs.status = payload
	b.pub.Publish(b.topics.ReaderStatus(), 1, true, payload)
	b.rs.mu.Unlock()
	b.set(ConditionReaderGone, s != nfc.StatusConnected)
}

// MQTTConnected tells the bridge whether MQTT is up (the feedback shows
// "offline" while it is not).
func (b *Bridge) MQTTConnected(up bool) {
	b.rs.mu.Lock()
	b.rs.mqttDown = !up
	b.rs.mu.Unlock()
	b.updateOffline()
}

// cloudAnswered records whether the Sesame cloud was reachable.
func (b *Bridge) cloudAnswered(err error) {
	var down bool
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled):
		return // we gave up, the cloud did not fail
	case sesame.IsTransient(err) || errors.Is(err, context.DeadlineExceeded):
		down = true
	}
	b.rs.mu.Lock()
	changed := b.rs.cloudDown != down
	b.rs.cloudDown = down
	b.rs.mu.Unlock()
	if changed {
		if down {
			b.log.Warn("the Sesame cloud is unreachable", "err", err)
		} else {
			b.log.Info("the Sesame cloud answers again")
		}
		b.updateOffline()
	}
}

func (b *Bridge) updateOffline() {
	b.rs.mu.Lock()
	off := b.rs.mqttDown || b.rs.cloudDown
	changed := off != b.rs.offline
	b.rs.offline = off
	b.rs.mu.Unlock()
	if changed {
		b.set(ConditionOffline, off)
	}
}

// setJammed tracks which locks are jammed; the feedback shows "jammed"
// while any is.
func (b *Bridge) setJammed(lockID string, jammed bool) {
	b.rs.mu.Lock()
	was := len(b.rs.jammed) > 0
	if jammed {
		b.rs.jammed[lockID] = true
	} else {
		delete(b.rs.jammed, lockID)
	}
	now := len(b.rs.jammed) > 0
	b.rs.mu.Unlock()
	if was != now {
		b.set(ConditionJammed, now)
	}
}

func (b *Bridge) show(p string) {
	if b.feedback != nil {
		b.feedback.Show(p)
	}
}

func (b *Bridge) set(c string, on bool) {
	if b.feedback != nil {
		b.feedback.Set(c, on)
	}
}

// handleFeedback plays a pattern Home Assistant asked for.
func (b *Bridge) handleFeedback(m mqtt.Message) {
	switch {
	case m.Retained && len(m.Payload) > 0:
		b.warn.Warn("retained feedback", "ignoring retained feedback command and clearing it from the broker", "topic", m.Topic)
		b.clearRetained(m.Topic)
		return
	case len(m.Payload) == 0, m.Duplicate:
		return
	case b.feedback == nil:
		b.warn.Warn("feedback without leds", "ignoring feedback command: no LED or buzzer is configured", "topic", m.Topic)
		return
	}
	name, err := hass.ParseFeedback(m.Payload, b.feedbackNames)
	if err != nil {
		b.warn.Warn("bad feedback", "ignoring feedback command", "topic", m.Topic, "err", err)
		return
	}
	b.show(name)
}

// announceReader publishes the reader's discovery and last status.
func (b *Bridge) announceReader() {
	if !b.hasReaderDevice() {
		return
	}
	b.announceReaderConfig()
	// Sent outside the lock ReaderStatus takes; should the status change
	// meanwhile, the newest goes out last.
	var sent []byte
	for {
		b.rs.mu.Lock()
		status := b.rs.status
		b.rs.mu.Unlock()
		if status == nil || bytes.Equal(status, sent) {
			return
		}
		b.send(b.topics.ReaderStatus(), true, status)
		sent = status
	}
}

// announceReaderConfig publishes the reader's discovery document (with the
// card select's options) and the select's state.
func (b *Bridge) announceReaderConfig() {
	rd := hass.Reader{NFC: b.reader != nil, Feedback: b.feedbackNames}
	if b.access != nil {
		rd.Cards, _ = b.access.labels()
	}
	b.send(b.topics.DeviceConfig(b.discovery.ReaderDeviceID()), true, hass.Marshal(b.discovery.ReaderConfig(rd)))
	if b.access != nil {
		b.access.publishSelected()
	}
}

func (b *Bridge) hasReaderDevice() bool { return b.reader != nil || len(b.feedbackNames) > 0 }
