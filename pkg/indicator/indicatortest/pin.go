// Package indicatortest provides a fake GPIO output that records what the
// indicator writes, for tests here and in the packages that use the
// indicator.
//
// Pin wraps periph.io's gpiotest.Pin (which keeps only the current level)
// to record every level written with its time.
package indicatortest

import (
	"fmt"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Write is one call to Out that succeeded.
type Write struct {
	At time.Time
	L  gpio.Level
}

// Pin is periph.io's gpiotest.Pin recording every level written with the
// time (use it inside a testing/synctest bubble for exact times). It can be
// registered with gpioreg.Register. Make one with NewPin.
type Pin struct {
	gpiotest.Pin
	// Hook, when set, runs at the start of every Out call, outside the
	// Pin's lock; a non-nil error is returned and nothing is recorded. Use
	// it to make Out slow, stuck or failing.
	Hook func(l gpio.Level) error

	mu     sync.Mutex // guards the records below (gpiotest.Pin has its own)
	writes []Write
	halts  int
	closes int
}

var _ gpio.PinIO = (*Pin)(nil)

// NewPin returns a recording pin named like a periph.io GPIO.
func NewPin(name string, num int) *Pin {
	return &Pin{Pin: gpiotest.Pin{N: name, Num: num, Fn: "Out"}}
}

// Out records l, unless Hook fails.
func (p *Pin) Out(l gpio.Level) error {
	if p.Hook != nil {
		if err := p.Hook(l); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.writes = append(p.writes, Write{At: time.Now(), L: l})
	p.mu.Unlock()
	return p.Pin.Out(l)
}

// Writes returns a copy of the recorded writes.
func (p *Pin) Writes() []Write {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Write(nil), p.writes...)
}

// Level returns the last level written; false when nothing was.
func (p *Pin) Level() (gpio.Level, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.writes) == 0 {
		return gpio.Low, false
	}
	return p.writes[len(p.writes)-1].L, true
}

// Timeline formats the writes at or after since as "+offset level" items,
// such as "+0s on +100ms off", where on is High (or Low when activeLow).
func (p *Pin) Timeline(since time.Time, activeLow bool) string {
	var items []string
	for _, w := range p.Writes() {
		if w.At.Before(since) {
			continue
		}
		state := "off"
		if bool(w.L) != activeLow {
			state = "on"
		}
		items = append(items, fmt.Sprintf("+%v %s", w.At.Sub(since), state))
	}
	return strings.Join(items, " ")
}

// Halts and Closes count the calls to Halt and Close.
func (p *Pin) Halts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.halts
}

// Closes counts the calls to Close.
func (p *Pin) Closes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closes
}

// Halt counts the call.
func (p *Pin) Halt() error {
	p.mu.Lock()
	p.halts++
	p.mu.Unlock()
	return p.Pin.Halt()
}

// Close counts the call (a released line, as periph's gpioioctl has).
func (p *Pin) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closes++
	return nil
}
