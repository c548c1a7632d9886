// Package indicator drives the LEDs (green, red) and the optional active
// buzzer by the card reader, so that a person at the door sees and hears
// what happened to their tap.
//
// # Patterns
//
// A transient Pattern plays once (card_read, unlocking, locking, denied,
// lockout, failed, ready, ok, ko); a standing Condition (offline,
// reader_gone, jammed) repeats for as long as it is set. Both are pure
// data (see Sequence and the tables in patterns.go); Table and Markdown
// describe them, and tests keep this comment and the README's table equal
// to the data. Within its kind, the higher priority wins; every transient
// pattern outranks every standing condition. The length is a pattern's
// play time, or a condition's period.
//
// go test -update writes this table from the data:
//
//	card_read    once, priority 2, 150ms
//	  green      on 100ms, off 50ms
//	  buzzer     on 60ms, off 90ms
//	unlocking    once, priority 3, 3.1s
//	  green      on 3s, off 100ms
//	locking      once, priority 3, 1.3s
//	  green      6× (on 100ms, off 100ms), off 100ms
//	denied       once, priority 4, 1.3s
//	  red        6× (on 100ms, off 100ms), off 100ms
//	  buzzer     on 100ms, off 100ms, on 100ms, off 1s
//	lockout      once, priority 6, 6.25s
//	  green      12× (off 250ms, on 250ms), off 250ms
//	  red        12× (on 250ms, off 250ms), off 250ms
//	  buzzer     3× (on 150ms, off 100ms), off 5.5s
//	failed       once, priority 5, 2.1s
//	  red        on 2s, off 100ms
//	  buzzer     on 800ms, off 1.3s
//	ready        once, priority 1, 800ms
//	  green      2× (on 200ms, off 200ms)
//	  red        off 200ms, on 400ms, off 200ms
//	ok           once, priority 3, 1.6s
//	  green      on 1.5s, off 100ms
//	ko           once, priority 4, 1.3s
//	  red        6× (on 100ms, off 100ms), off 100ms
//	  buzzer     on 100ms, off 100ms, on 100ms, off 1s
//	offline      while set, priority 1, period 2s
//	  red        on 200ms, off 1.8s
//	reader_gone  while set, priority 2, period 2s
//	  red        on 200ms, off 200ms, on 200ms, off 1.4s
//	jammed       while set, priority 3, period 2s
//	  red        on 1.5s, off 500ms
//	enrolling    while set, priority 4, period 1s
//	  green      on 450ms, off 550ms
//	  red        off 500ms, on 450ms, off 50ms
//
// Every track ends off (a short trailing gap), so that consecutive
// patterns are told apart. No pattern relies on the buzzer: without one,
// the LEDs alone still tell every pattern apart (except ko, which is
// denied by design). The standing conditions never use the buzzer.
//
// # Priority and pre-emption
//
// Show hands a pattern to the indicator's goroutine and returns at once;
// Set does the same for a standing condition. A pattern pre-empts a
// running pattern of lower or equal priority and is dropped while one of
// higher priority runs (not queued: by the time it could play, it would
// describe something that is over). Every pattern interrupts a standing
// condition, which starts again from its beginning when the pattern ends.
// Of the conditions set, the one of highest priority shows. Requests wait
// in a single slot: of several that arrive before the goroutine takes
// them, the highest priority (the newest among equals) wins, as if each
// had been shown in turn.
//
// An outcome shown within card_read's 150 ms replaces the blip (its beep
// may be cut short): the outcome is the feedback then.
//
// # Outputs
//
// Run owns the outputs: it drives them off when it starts and, when its
// context ends, drives them off, halts them and releases them (Close, when
// the pin has one). An output error is logged once per output and
// otherwise ignored: the indicator never stops or panics because of a pin.
// A Pin whose Out blocks delays only the indicator's goroutine (and Run's
// return), never Show or Set.
package indicator

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Pin is what the indicator needs from an output; every gpio.PinOut (a
// periph.io pin, a gpiotest.Pin) is one.
type Pin interface {
	Out(l gpio.Level) error
	Halt() error
	String() string
}

var _ Pin = gpio.PinOut(nil)

// Outputs are the pins New drives. A nil Pin is an output not fitted.
type Outputs struct {
	Green, Red, Buzzer Pin
	// LEDActiveLow: the LEDs light when their pin is Low (wired from 3.3 V
	// through the resistor to the pin). Off is then High.
	LEDActiveLow bool
	// BuzzerActiveLow: the buzzer sounds when its pin is Low (some ready-made
	// buzzer modules). Kept apart from the LEDs so that active-low LEDs
	// never leave an NPN-driven buzzer sounding.
	BuzzerActiveLow bool
}

// Indicator shows patterns on the outputs. Create it with New or Open,
// run it with Run. A nil *Indicator, or one without outputs, is disabled:
// Show and Set do nothing and Run returns at once.
type Indicator struct {
	pins      [numOutputs]Pin
	activeLow [numOutputs]bool
	log       *slog.Logger

	started atomic.Bool
	wake    chan struct{} // capacity 1: a poke, never a blocking send

	mu      sync.Mutex
	pending Pattern                 // best request the goroutine has not taken; 0 = none
	conds   [numConditions + 1]bool // indexed by Condition
}

// New returns an indicator for the given outputs; with none of them
// fitted it is disabled. log may be nil.
func New(o Outputs, log *slog.Logger) *Indicator {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Indicator{
		pins:      [numOutputs]Pin{o.Green, o.Red, o.Buzzer},
		activeLow: [numOutputs]bool{o.LEDActiveLow, o.LEDActiveLow, o.BuzzerActiveLow},
		log:       log,
		wake:      make(chan struct{}, 1),
	}
}

// Enabled reports whether any output is fitted. A disabled indicator
// accepts every call and does nothing.
func (i *Indicator) Enabled() bool {
	return i != nil && (i.pins[Green] != nil || i.pins[Red] != nil || i.pins[Buzzer] != nil)
}

// Has reports whether output o is fitted.
func (i *Indicator) Has(o Output) bool {
	return i != nil && o >= 0 && o < numOutputs && i.pins[o] != nil
}

// HasBuzzer reports whether a buzzer is fitted.
func (i *Indicator) HasBuzzer() bool { return i.Has(Buzzer) }

// Show asks for pattern p and returns at once (see the package comment for
// which request wins). It is safe on a nil or disabled Indicator and
// before or after Run; invalid patterns are ignored.
func (i *Indicator) Show(p Pattern) {
	if !i.Enabled() || !p.valid() {
		return
	}
	i.mu.Lock()
	if i.pending == 0 || patterns[p].Priority >= patterns[i.pending].Priority {
		i.pending = p
	}
	i.mu.Unlock()
	i.poke()
}

// Set sets or clears standing condition c and returns at once. Setting a
// condition that is already set changes nothing (its loop is not
// restarted). Safe on a nil or disabled Indicator; invalid conditions are
// ignored.
func (i *Indicator) Set(c Condition, on bool) {
	if !i.Enabled() || !c.valid() {
		return
	}
	i.mu.Lock()
	i.conds[c] = on
	i.mu.Unlock()
	i.poke()
}

func (i *Indicator) poke() {
	select {
	case i.wake <- struct{}{}:
	default: // a poke is already waiting; it will see this request too
	}
}

// take returns the pending request (clearing it) and the highest-priority
// standing condition that is set (0 for none).
func (i *Indicator) take() (Pattern, Condition) {
	i.mu.Lock()
	defer i.mu.Unlock()
	p := i.pending
	i.pending = 0
	var top Condition
	for _, c := range Conditions() {
		if i.conds[c] && (top == 0 || conditions[c].Priority > conditions[top].Priority) {
			top = c
		}
	}
	return p, top
}

// Run plays the patterns until ctx is done, then drives every output off,
// halts and releases it, and returns nil. It returns at once with nil on a
// disabled indicator, and an error only when called a second time.
func (i *Indicator) Run(ctx context.Context) error {
	if !i.Enabled() {
		return nil
	}
	if !i.started.CompareAndSwap(false, true) {
		return errors.New("indicator: Run called more than once")
	}
	p := player{ind: i}
	defer p.shutdown()
	p.write([numOutputs]bool{})

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		now := time.Now()
		p.update(now)
		var tick <-chan time.Time
		if next, ok := p.deadline(); ok {
			timer.Reset(next.Sub(now))
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-i.wake:
		case <-tick:
		}
		timer.Stop()
	}
}

// player is Run's state; only Run's goroutine touches it.
type player struct {
	ind *Indicator

	seq       *Sequence // nil: idle, all off
	frames    []Frame
	start     time.Time
	next      int       // index of the next frame to apply
	transient Pattern   // the pattern playing, or 0 when seq is a condition
	standing  Condition // the condition playing (transient == 0), or 0

	level  [numOutputs]gpio.Level // last level written successfully
	known  [numOutputs]bool       // level holds the pin's state
	failed [numOutputs]int        // failed writes, for the log
}

// update takes new requests and applies the frames that are due at now.
func (p *player) update(now time.Time) {
	req, top := p.ind.take()
	if req != 0 {
		switch {
		case p.transient == 0 || patterns[req].Priority >= patterns[p.transient].Priority:
			p.play(req.Sequence(), now)
			p.transient, p.standing = req, 0
		default:
			p.ind.log.Debug("indicator pattern dropped: a higher one is showing",
				"pattern", req.String(), "showing", p.transient.String())
		}
	}
	for {
		p.apply(now)
		if p.seq == nil || p.next < len(p.frames) {
			break
		}
		end := p.start.Add(p.seq.Length())
		if now.Before(end) {
			break
		}
		switch {
		case p.transient != 0:
			p.transient = 0
			p.seq, p.frames = nil, nil // the standing condition below starts afresh
			p.write([numOutputs]bool{})
		case now.Sub(end) < p.seq.Length():
			p.start, p.next = end, 0 // the loop keeps its phase
			continue
		default:
			p.start, p.next = now, 0 // far behind (a slow pin): restart the loop
			continue
		}
		break
	}
	if p.transient == 0 && p.standing != top {
		p.standing = top
		if top == 0 {
			p.seq, p.frames = nil, nil
			p.write([numOutputs]bool{})
		} else {
			p.play(top.Sequence(), now)
		}
	}
}

func (p *player) play(s *Sequence, now time.Time) {
	p.seq, p.frames, p.start, p.next = s, s.Frames(), now, 0
}

// apply writes the latest frame that is due, skipping any that a slow pin
// made us miss.
func (p *player) apply(now time.Time) {
	if p.seq == nil {
		return
	}
	due := -1
	for p.next < len(p.frames) && !now.Before(p.start.Add(p.frames[p.next].At)) {
		due = p.next
		p.next++
	}
	if due >= 0 {
		p.write(p.frames[due].On)
	}
}

// deadline returns when update has work to do: the next frame, or the end of
// the sequence; false when idle.
func (p *player) deadline() (time.Time, bool) {
	if p.seq == nil {
		return time.Time{}, false
	}
	if p.next < len(p.frames) {
		return p.start.Add(p.frames[p.next].At), true
	}
	return p.start.Add(p.seq.Length()), true
}

// write drives the fitted outputs to on, writing only those that change.
func (p *player) write(on [numOutputs]bool) {
	for o, pin := range p.ind.pins {
		if pin == nil {
			continue
		}
		l := gpio.Level(on[o] != p.ind.activeLow[o])
		if p.known[o] && p.level[o] == l {
			continue
		}
		p.out(Output(o), l)
	}
}

func (p *player) out(o Output, l gpio.Level) {
	pin := p.ind.pins[o]
	if err := pin.Out(l); err != nil {
		p.known[o] = false
		p.failed[o]++
		if p.failed[o] == 1 {
			p.ind.log.Warn("indicator output failed; further errors on it are not logged",
				"output", o.String(), "pin", pin.String(), "err", err)
		}
		return
	}
	p.level[o], p.known[o] = l, true
}

// shutdown drives every output off, halts and releases it.
func (p *player) shutdown() {
	for o, pin := range p.ind.pins {
		if pin == nil {
			continue
		}
		p.out(Output(o), gpio.Level(p.ind.activeLow[o]))
		if err := pin.Halt(); err != nil {
			p.ind.log.Warn("indicator output halt failed", "output", Output(o).String(), "pin", pin.String(), "err", err)
		}
		switch c := pin.(type) {
		case io.Closer:
			if err := c.Close(); err != nil {
				p.ind.log.Warn("indicator output release failed", "output", Output(o).String(), "pin", pin.String(), "err", err)
			}
		case interface{ Close() }: // periph's gpioioctl lines
			c.Close()
		}
		if p.failed[o] > 0 {
			p.ind.log.Warn("indicator output had errors", "output", Output(o).String(), "pin", pin.String(), "failed_writes", p.failed[o])
		}
	}
	p.ind.log.Debug("indicator stopped")
}
