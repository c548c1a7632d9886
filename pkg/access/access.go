// Package access decides what a card tap may do: the access list (cards,
// their validity, hours and doors, kept in a file), the lockout that stops
// someone trying card after card, the keyed UID hash and the access log.
package access

import (
	"encoding/hex"
	"strings"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
)

// Card is one card of the options (NFC_CARDS): a managed entry.
type Card struct {
	UID    []byte
	Name   string
	Action string // "" = none; the bridge then uses its default
}

// Verdict is the outcome of one tap.
type Verdict int

const (
	// Granted: the card is on the list and valid now, at this door.
	Granted Verdict = iota + 1
	// Denied: unknown (or random UID), or listed but not valid now (Reason).
	Denied
	// LockedOut: this unknown tap started a lockout.
	LockedOut
	// Ignored: a lockout is in force; the card was not looked at.
	Ignored
)

func (v Verdict) String() string {
	switch v {
	case Granted:
		return "granted"
	case Denied:
		return "denied"
	case LockedOut:
		return "locked_out"
	case Ignored:
		return "ignored"
	}
	return "unknown"
}

// Decision is what Decide concluded.
type Decision struct {
	Verdict Verdict
	Holder  string    // the card holder when the card is listed (granted or not)
	Entry   Entry     // the card's entry when listed
	Reason  string    // why not granted: ReasonUnknown, ReasonDisabled, ...
	Random  bool      // the UID is a random one (a phone)
	Until   time.Time // end of the lockout when LockedOut or Ignored
}

// Lockout defaults: after 5 unknown taps within 60 s, all cards are ignored
// for 60 s.
const (
	DefaultLimit    = 5
	DefaultWindow   = 60 * time.Second
	DefaultDuration = 60 * time.Second
)

// Policy judges taps against the list and keeps the lockout. The lockout
// is not safe for concurrent use: the reader's goroutine owns the Policy;
// the list may be edited meanwhile from anywhere.
type Policy struct {
	list     *List
	limit    int
	window   time.Duration
	duration time.Duration

	unknown []time.Time // recent unknown taps, oldest first
	until   time.Time   // lockout end
}

// New builds a policy over an in-memory list of the given cards.
func New(cards []Card) *Policy {
	entries := make([]Entry, 0, len(cards))
	for _, c := range cards {
		entries = append(entries, Entry{UID: key(c.UID), Name: c.Name, Action: c.Action})
	}
	return NewPolicy(NewList(entries))
}

// NewPolicy builds a policy with the default lockout over list.
func NewPolicy(list *List) *Policy {
	return &Policy{list: list, limit: DefaultLimit, window: DefaultWindow, duration: DefaultDuration}
}

// List is the policy's access list.
func (p *Policy) List() *List { return p.list }

func key(uid []byte) string { return strings.ToUpper(hex.EncodeToString(uid)) }

// Known reports whether the card is on the list (random UIDs never are).
func (p *Policy) Known(c nfc.Card) bool {
	if c.Random() {
		return false
	}
	_, ok := p.list.Lookup(key(c.UID))
	return ok
}

// Decide judges one tap at door (a lock id) at time now. Only unknown
// cards count towards the lockout: a listed card outside its hours is
// someone the list knows.
func (p *Policy) Decide(c nfc.Card, now time.Time, door string) Decision {
	if now.Before(p.until) {
		return Decision{Verdict: Ignored, Until: p.until, Random: c.Random(), Reason: ReasonLockout}
	}
	if !c.Random() {
		if e, ok := p.list.Lookup(key(c.UID)); ok {
			if why := e.Check(now, door, p.list.loc); why != "" {
				return Decision{Verdict: Denied, Holder: e.Name, Entry: e, Reason: why}
			}
			return Decision{Verdict: Granted, Holder: e.Name, Entry: e}
		}
	}
	// Unknown: count it, and lock out when too many came too fast.
	keep := p.unknown[:0]
	for _, t := range p.unknown {
		if now.Sub(t) < p.window {
			keep = append(keep, t)
		}
	}
	p.unknown = append(keep, now)
	if len(p.unknown) >= p.limit {
		p.unknown = p.unknown[:0]
		p.until = now.Add(p.duration)
		return Decision{Verdict: LockedOut, Until: p.until, Random: c.Random(), Reason: ReasonUnknown}
	}
	return Decision{Verdict: Denied, Random: c.Random(), Reason: ReasonUnknown}
}

// ChangingID reports a card whose ID says it may change from one tap to
// the next, so that enrolling it would enroll nothing: a random ISO14443A
// UID (4 bytes starting 08: phones, privacy cards), and a FeliCa IDm
// starting 02FE (the manufacturer code Android's host card emulation for
// FeliCa, HCE-F, requires; an app or the system may pick a new IDm in that
// range at any time). Cards issued by a manufacturer (Suica, office cards)
// and Osaifu-Keitai's Mobile FeliCa chip keep their IDm.
func ChangingID(c nfc.Card) bool {
	if c.Random() {
		return true
	}
	return c.Kind == nfc.FeliCa && len(c.UID) == 8 && c.UID[0] == 0x02 && c.UID[1] == 0xFE
}
