// Package access decides what a card tap may do: the allowlist, and the
// lockout that stops someone trying card after card.
package access

import (
	"encoding/hex"
	"strings"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
)

// Card is one allowlisted card.
type Card struct {
	UID  []byte
	Name string
}

// Verdict is the outcome of one tap.
type Verdict int

const (
	// Granted: the card is on the allowlist.
	Granted Verdict = iota + 1
	// Denied: the card is not on the allowlist (or its UID is random).
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
	Holder  string    // the card holder when Granted
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

// Policy holds the allowlist and the lockout state. It is not safe for
// concurrent use: the reader's goroutine owns it.
type Policy struct {
	cards    map[string]string // uppercase hex UID -> holder
	limit    int
	window   time.Duration
	duration time.Duration

	unknown []time.Time // recent unknown taps, oldest first
	until   time.Time   // lockout end
}

// New builds a policy with the default lockout.
func New(cards []Card) *Policy {
	p := &Policy{
		cards:    make(map[string]string, len(cards)),
		limit:    DefaultLimit,
		window:   DefaultWindow,
		duration: DefaultDuration,
	}
	for _, c := range cards {
		p.cards[key(c.UID)] = c.Name
	}
	return p
}

func key(uid []byte) string { return strings.ToUpper(hex.EncodeToString(uid)) }

// Known reports whether the card is on the allowlist (random UIDs never are).
func (p *Policy) Known(c nfc.Card) bool {
	if c.Random() {
		return false
	}
	_, ok := p.cards[key(c.UID)]
	return ok
}

// Decide judges one tap at time now.
func (p *Policy) Decide(c nfc.Card, now time.Time) Decision {
	if now.Before(p.until) {
		return Decision{Verdict: Ignored, Until: p.until, Random: c.Random()}
	}
	if !c.Random() {
		if name, ok := p.cards[key(c.UID)]; ok {
			return Decision{Verdict: Granted, Holder: name}
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
		return Decision{Verdict: LockedOut, Until: p.until, Random: c.Random()}
	}
	return Decision{Verdict: Denied, Random: c.Random()}
}
