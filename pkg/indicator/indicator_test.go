package indicator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/indicator/indicatortest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
)

// rig is a running indicator on fake pins, inside a synctest bubble.
type rig struct {
	green, red, buzzer *indicatortest.Pin
	ind                *Indicator
	o                  Outputs
	stop               context.CancelFunc
	done               chan error
	t0                 time.Time
}

// startRig starts Run and lets one second pass, so that the timelines
// (measured from r.t0) hold only what the test asks for, not Run's
// initial "all off".
func startRig(t *testing.T, o Outputs, setup func(*rig)) *rig {
	t.Helper()
	r := &rig{
		green:  indicatortest.NewPin("GPIO23", 23),
		red:    indicatortest.NewPin("GPIO24", 24),
		buzzer: indicatortest.NewPin("GPIO25", 25),
		done:   make(chan error, 1),
	}
	if setup != nil {
		setup(r)
	}
	o.Green, o.Red, o.Buzzer = r.green, r.red, r.buzzer
	r.o = o
	log, _ := logcapture.New()
	r.ind = New(o, log)
	ctx, cancel := context.WithCancel(t.Context())
	r.stop = cancel
	go func() { r.done <- r.ind.Run(ctx) }()
	time.Sleep(time.Second)
	r.t0 = time.Now()
	return r
}

// shutdown cancels Run and waits for it.
func (r *rig) shutdown(t *testing.T) {
	t.Helper()
	r.stop()
	if err := <-r.done; err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
}

// at sleeps until offset d after t0.
func (r *rig) at(d time.Duration) {
	time.Sleep(time.Until(r.t0.Add(d)))
}

// timelines returns the three pins' timelines since t0, as on/off.
func (r *rig) timelines() [numOutputs]string {
	return [numOutputs]string{
		r.green.Timeline(r.t0, r.o.LEDActiveLow),
		r.red.Timeline(r.t0, r.o.LEDActiveLow),
		r.buzzer.Timeline(r.t0, r.o.BuzzerActiveLow),
	}
}

func (r *rig) check(t *testing.T, want [numOutputs]string) {
	t.Helper()
	got := r.timelines()
	for o := range numOutputs {
		if got[o] != want[o] {
			t.Errorf("%s timeline\n got: %s\nwant: %s", o, got[o], want[o])
		}
	}
}

func TestPatternTimelines(t *testing.T) {
	for _, tc := range []struct {
		p    Pattern
		want [numOutputs]string // green, red, buzzer
	}{
		{CardRead, [3]string{"+0s on +100ms off", "", "+0s on +60ms off"}},
		{Unlocking, [3]string{"+0s on +3s off", "", ""}},
		{OK, [3]string{"+0s on +1.5s off", "", ""}},
		{Locking, [3]string{
			"+0s on +100ms off +200ms on +300ms off +400ms on +500ms off +600ms on +700ms off +800ms on +900ms off +1s on +1.1s off",
			"", ""}},
		{Denied, [3]string{"",
			"+0s on +100ms off +200ms on +300ms off +400ms on +500ms off +600ms on +700ms off +800ms on +900ms off +1s on +1.1s off",
			"+0s on +100ms off +200ms on +300ms off"}},
		{Failed, [3]string{"", "+0s on +2s off", "+0s on +800ms off"}},
		{Ready, [3]string{"+0s on +200ms off +400ms on +600ms off", "+200ms on +600ms off", ""}},
		{Lockout, [3]string{
			"+250ms on +500ms off +750ms on +1s off +1.25s on +1.5s off +1.75s on +2s off +2.25s on +2.5s off +2.75s on +3s off " +
				"+3.25s on +3.5s off +3.75s on +4s off +4.25s on +4.5s off +4.75s on +5s off +5.25s on +5.5s off +5.75s on +6s off",
			"+0s on +250ms off +500ms on +750ms off +1s on +1.25s off +1.5s on +1.75s off +2s on +2.25s off +2.5s on +2.75s off " +
				"+3s on +3.25s off +3.5s on +3.75s off +4s on +4.25s off +4.5s on +4.75s off +5s on +5.25s off +5.5s on +5.75s off",
			"+0s on +150ms off +250ms on +400ms off +500ms on +650ms off"}},
	} {
		t.Run(tc.p.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := startRig(t, Outputs{}, nil)
				r.ind.Show(tc.p)
				r.at(20 * time.Second)
				r.check(t, tc.want)
				r.shutdown(t)
			})
		})
	}
}

// expected derives the timelines of s played from t0 for d from its
// frames: the player must write exactly the changes the data describes.
func expected(s *Sequence, d time.Duration) [numOutputs]string {
	var items [numOutputs][]string
	var last [numOutputs]bool
	for start := time.Duration(0); start < d; start += s.Length() {
		for _, f := range s.Frames() {
			for o := range numOutputs {
				if f.On[o] != last[o] {
					items[o] = append(items[o], fmt.Sprintf("+%v %s", start+f.At, onOff(f.On[o])))
					last[o] = f.On[o]
				}
			}
		}
		if !s.Loop {
			break
		}
	}
	var out [numOutputs]string
	for o := range numOutputs {
		out[o] = strings.Join(items[o], " ")
	}
	return out
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func TestEverySequencePlaysItsFrames(t *testing.T) {
	for _, p := range Patterns() {
		t.Run(p.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := startRig(t, Outputs{}, nil)
				r.ind.Show(p)
				r.at(20 * time.Second)
				r.check(t, expected(p.Sequence(), 20*time.Second))
				r.shutdown(t)
			})
		})
	}
	for _, c := range Conditions() {
		t.Run(c.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := startRig(t, Outputs{}, nil)
				r.ind.Set(c, true)
				r.at(3*c.Sequence().Length() - time.Nanosecond)
				r.check(t, expected(c.Sequence(), 3*c.Sequence().Length()))
				r.shutdown(t)
			})
		})
	}
}

func TestPreemption(t *testing.T) {
	t.Run("higher pre-empts, lower is dropped", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := startRig(t, Outputs{}, nil)
			r.ind.Show(Unlocking)
			r.at(500 * time.Millisecond)
			r.ind.Show(Denied)
			r.at(650 * time.Millisecond)
			r.ind.Show(CardRead) // lower than denied: dropped, not queued
			r.ind.Show(OK)       // likewise
			r.at(10 * time.Second)
			r.check(t, [3]string{
				"+0s on +500ms off",
				"+500ms on +600ms off +700ms on +800ms off +900ms on +1s off +1.1s on +1.2s off +1.3s on +1.4s off +1.5s on +1.6s off",
				"+500ms on +600ms off +700ms on +800ms off",
			})
			r.shutdown(t)
		})
	})
	t.Run("equal priority pre-empts", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := startRig(t, Outputs{}, nil)
			r.ind.Show(Unlocking)
			r.at(time.Second)
			r.ind.Show(Locking) // green is already on: the first change is at +1.1s
			r.at(10 * time.Second)
			r.check(t, [3]string{
				"+0s on +1.1s off +1.2s on +1.3s off +1.4s on +1.5s off +1.6s on +1.7s off +1.8s on +1.9s off +2s on +2.1s off",
				"", "",
			})
			r.shutdown(t)
		})
	})
	t.Run("a tap's outcome replaces the card_read blip", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := startRig(t, Outputs{}, nil)
			r.ind.Show(CardRead)
			r.at(30 * time.Millisecond)
			r.ind.Show(Denied)
			r.at(10 * time.Second)
			r.check(t, [3]string{
				"+0s on +30ms off",
				"+30ms on +130ms off +230ms on +330ms off +430ms on +530ms off +630ms on +730ms off +830ms on +930ms off +1.03s on +1.13s off",
				"+0s on +130ms off +230ms on +330ms off", // the blip runs into denied's first beep
			})
			r.shutdown(t)
		})
	})
	t.Run("of requests not yet taken, the highest wins", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			green := indicatortest.NewPin("GPIO23", 0)
			red := indicatortest.NewPin("GPIO24", 0)
			ind := New(Outputs{Green: green, Red: red}, nil)
			// Before Run, all four land in the slot.
			ind.Show(CardRead)
			ind.Show(Failed)
			ind.Show(Unlocking)
			ind.Show(Ready)
			t0 := time.Now()
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- ind.Run(ctx) }()
			time.Sleep(10 * time.Second)
			if got, want := green.Timeline(t0, false), "+0s off"; got != want {
				t.Errorf("green %q, want %q: only Run's initial off", got, want)
			}
			if got, want := red.Timeline(t0, false), "+0s off +0s on +2s off"; got != want {
				t.Errorf("red %q, want %q: failed, the highest request", got, want)
			}
			cancel()
			<-done
		})
	})
}

func TestStandingConditions(t *testing.T) {
	t.Run("resumes after a transient", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := startRig(t, Outputs{}, nil)
			r.ind.Set(Offline, true)
			r.at(2500 * time.Millisecond)
			r.ind.Show(Unlocking) // ends at +5.6s; offline starts again there
			r.at(8 * time.Second)
			r.check(t, [3]string{
				"+2.5s on +5.5s off",
				"+0s on +200ms off +2s on +2.2s off +5.6s on +5.8s off +7.6s on +7.8s off",
				"",
			})
			r.shutdown(t)
		})
	})
	t.Run("interrupted while on", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := startRig(t, Outputs{}, nil)
			r.ind.Set(Jammed, true)
			r.at(time.Second)
			r.ind.Show(CardRead) // red goes off for the blip
			r.at(3 * time.Second)
			r.check(t, [3]string{
				"+1s on +1.1s off",
				"+0s on +1s off +1.15s on +2.65s off",
				"+1s on +1.06s off",
			})
			r.shutdown(t)
		})
	})
	t.Run("highest condition shows", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := startRig(t, Outputs{}, nil)
			r.ind.Set(Offline, true)
			r.ind.Set(Jammed, true) // jammed wins from the start
			r.at(3 * time.Second)
			r.ind.Set(ReaderGone, true) // lower than jammed: nothing changes
			r.ind.Set(Jammed, true)     // already set: its loop is not restarted
			r.at(4500 * time.Millisecond)
			r.ind.Set(Jammed, false) // reader_gone is next
			r.at(6500 * time.Millisecond)
			r.ind.Set(ReaderGone, false) // back to offline
			r.at(8700 * time.Millisecond)
			r.ind.Set(Offline, false) // all clear: off
			r.at(12 * time.Second)
			r.check(t, [3]string{"",
				"+0s on +1.5s off +2s on +3.5s off +4s on +4.7s off +4.9s on +5.1s off +6.5s on +6.7s off +8.5s on +8.7s off",
				""})
			r.shutdown(t)
		})
	})
	t.Run("a pattern outranks every condition", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := startRig(t, Outputs{}, nil)
			r.ind.Show(Ready) // the lowest pattern
			r.ind.Set(Jammed, true)
			r.at(900 * time.Millisecond) // ready ends at +800ms, jammed follows
			r.check(t, [3]string{"+0s on +200ms off +400ms on +600ms off", "+200ms on +600ms off +800ms on", ""})
			r.shutdown(t)
		})
	})
}

func TestActiveLow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, Outputs{LEDActiveLow: true}, nil)
		// Run started by driving everything off: LEDs High, buzzer Low.
		for _, tc := range []struct {
			pin  *indicatortest.Pin
			want gpio.Level
		}{{r.green, gpio.High}, {r.red, gpio.High}, {r.buzzer, gpio.Low}} {
			if w := tc.pin.Writes(); len(w) != 1 || w[0].L != tc.want {
				t.Errorf("%s: initial writes %v, want one %v", tc.pin, w, tc.want)
			}
		}
		r.ind.Show(CardRead)
		r.at(time.Second)
		raw := func(p *indicatortest.Pin) string { return p.Timeline(r.t0, false) } // "on" = High
		if got, want := raw(r.green), "+0s off +100ms on"; got != want {
			t.Errorf("green levels %q, want %q (Low lights an active-low LED)", got, want)
		}
		if got, want := raw(r.buzzer), "+0s on +60ms off"; got != want {
			t.Errorf("buzzer levels %q, want %q (LED_ACTIVE_LOW leaves the buzzer active-high)", got, want)
		}
		r.ind.Show(Unlocking)
		r.at(1500 * time.Millisecond)
		r.shutdown(t)
		for _, tc := range []struct {
			pin  *indicatortest.Pin
			want gpio.Level
		}{{r.green, gpio.High}, {r.red, gpio.High}, {r.buzzer, gpio.Low}} {
			if l, _ := tc.pin.Level(); l != tc.want {
				t.Errorf("%s after shutdown: %v, want %v (off)", tc.pin, l, tc.want)
			}
		}
	})
}

func TestBuzzerActiveLow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, Outputs{BuzzerActiveLow: true}, nil)
		r.ind.Show(CardRead)
		r.at(time.Second)
		if got, want := r.buzzer.Timeline(r.t0, false), "+0s off +60ms on"; got != want {
			t.Errorf("buzzer levels %q, want %q", got, want)
		}
		if got, want := r.green.Timeline(r.t0, false), "+0s on +100ms off"; got != want {
			t.Errorf("green levels %q, want %q", got, want)
		}
		r.shutdown(t)
		if l, _ := r.buzzer.Level(); l != gpio.High {
			t.Errorf("buzzer after shutdown: %v, want High (off)", l)
		}
	})
}

func TestShutdown(t *testing.T) {
	for _, low := range []bool{false, true} {
		t.Run(fmt.Sprintf("led_active_low=%v", low), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := startRig(t, Outputs{LEDActiveLow: low}, nil)
				r.ind.Set(Jammed, true)
				r.ind.Show(Lockout)
				r.at(260 * time.Millisecond) // lockout: green and buzzer on
				r.ind.Show(Failed)           // red and buzzer on
				r.at(300 * time.Millisecond)
				r.shutdown(t)
				for _, p := range []*indicatortest.Pin{r.green, r.red, r.buzzer} {
					activeLow := low && p != r.buzzer
					if l, _ := p.Level(); bool(l) != activeLow {
						t.Errorf("%s left at %v, want off", p, l)
					}
					if p.Halts() != 1 || p.Closes() != 1 {
						t.Errorf("%s: %d halts, %d closes; want 1 each", p, p.Halts(), p.Closes())
					}
				}
				// Nothing is written after Run returned.
				n := len(r.red.Writes())
				r.ind.Show(Denied)
				r.ind.Set(Offline, true)
				time.Sleep(time.Minute)
				if len(r.red.Writes()) != n {
					t.Errorf("writes after Run returned: %v", r.red.Writes()[n:])
				}
			})
		})
	}
}

// A slow or stuck pattern cannot delay a tap's command: Show and Set
// return at once even while the indicator's goroutine is stuck in Out.
func TestShowNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var stuck atomic.Bool
		r := startRig(t, Outputs{}, func(r *rig) {
			r.green.Hook = func(gpio.Level) error {
				if stuck.CompareAndSwap(true, false) {
					time.Sleep(time.Hour) // a GPIO write that hangs for an hour
				}
				return nil
			}
		})
		stuck.Store(true)
		r.ind.Show(Unlocking)
		synctest.Wait() // the goroutine is now inside the green pin's Out
		before := time.Now()
		for i := range 1000 {
			r.ind.Show(CardRead)
			r.ind.Set(Offline, i%2 == 0)
		}
		r.ind.Show(Denied)
		r.ind.Show(CardRead) // lower than the waiting denied: it stays denied
		r.ind.Set(Offline, false)
		if d := time.Since(before); d != 0 {
			t.Errorf("Show and Set took %v while the output was stuck, want 0", d)
		}
		if got := r.red.Writes(); len(got) != 1 {
			t.Errorf("red written %v while green was stuck, want only the initial off", got)
		}
		// When the write returns, the waiting request plays.
		r.at(time.Hour + 10*time.Second)
		want := expected(Denied.Sequence(), time.Minute)[Red]
		if got := r.red.Timeline(r.t0.Add(time.Hour), false); got != want {
			t.Errorf("after the stuck write, red\n got: %s\nwant: %s", got, want)
		}
		r.shutdown(t)
	})
}

// A Run stuck in a write still returns once the write does, and a cancel
// during the stuck write is honoured then.
func TestShutdownWhileStuck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var stuck atomic.Bool
		r := startRig(t, Outputs{}, func(r *rig) {
			r.red.Hook = func(gpio.Level) error {
				if stuck.Load() {
					<-release
				}
				return nil
			}
		})
		stuck.Store(true)
		r.ind.Show(Failed)
		synctest.Wait()
		r.stop()
		synctest.Wait()
		select {
		case err := <-r.done:
			t.Fatalf("Run returned %v during a stuck write", err)
		default:
		}
		stuck.Store(false)
		close(release)
		if err := <-r.done; err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
		if l, _ := r.red.Level(); l != gpio.Low {
			t.Errorf("red left %v, want Low", l)
		}
	})
}

func TestOutputErrorsLoggedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, buf := logcapture.New()
		broken := indicatortest.NewPin("GPIO24", 24)
		broken.Hook = func(gpio.Level) error {
			return errors.New("write /dev/gpiochip0: input/output error")
		}
		green := indicatortest.NewPin("GPIO23", 23)
		ind := New(Outputs{Green: green, Red: broken}, log)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- ind.Run(ctx) }()
		t0 := time.Now()
		ind.Show(Denied)
		time.Sleep(5 * time.Second)
		ind.Show(Locking)
		ind.Set(ReaderGone, true)
		time.Sleep(10 * time.Second)
		// The other output carried on.
		want := expected(Locking.Sequence(), time.Minute)[Green]
		if got := green.Timeline(t0.Add(5*time.Second), false); got != want {
			t.Errorf("green after red's errors\n got: %s\nwant: %s", got, want)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
		out := buf.String()
		if n := strings.Count(out, "indicator output failed"); n != 1 {
			t.Errorf("logged the failure %d times, want once:\n%s", n, out)
		}
		if !strings.Contains(out, "pin=GPIO24(24)") || !strings.Contains(out, "input/output error") {
			t.Errorf("the log does not name the pin and the error:\n%s", out)
		}
		if !strings.Contains(out, "failed_writes=") {
			t.Errorf("shutdown does not report the count of failed writes:\n%s", out)
		}
	})
}

func TestDisabled(t *testing.T) {
	var nilInd *Indicator
	for name, ind := range map[string]*Indicator{"nil": nilInd, "no outputs": New(Outputs{}, nil)} {
		t.Run(name, func(t *testing.T) {
			ind.Show(Denied)
			ind.Set(Offline, true)
			if ind.Enabled() || ind.HasBuzzer() || ind.Has(Green) {
				t.Errorf("Enabled %v, HasBuzzer %v, Has(Green) %v; want all false", ind.Enabled(), ind.HasBuzzer(), ind.Has(Green))
			}
			if err := ind.Run(t.Context()); err != nil { // returns at once
				t.Errorf("Run = %v, want nil", err)
			}
		})
	}
}

func TestFitted(t *testing.T) {
	ind := New(Outputs{Red: indicatortest.NewPin("GPIO5", 0)}, nil)
	if !ind.Enabled() || ind.Has(Green) || !ind.Has(Red) || ind.HasBuzzer() || ind.Has(Output(9)) {
		t.Errorf("only red fitted: Enabled %v, green %v, red %v, buzzer %v",
			ind.Enabled(), ind.Has(Green), ind.Has(Red), ind.HasBuzzer())
	}
}

func TestInvalidRequestsIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, Outputs{}, nil)
		r.ind.Show(Pattern(0))
		r.ind.Show(Pattern(42))
		r.ind.Set(Condition(0), true)
		r.ind.Set(Condition(-1), true)
		r.at(10 * time.Second)
		r.check(t, [3]string{"", "", ""})
		r.shutdown(t)
	})
}

func TestShowBeforeRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		green := indicatortest.NewPin("GPIO23", 0)
		ind := New(Outputs{Green: green}, nil)
		ind.Show(Ready) // start-up: before Run, as main may do
		t0 := time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- ind.Run(ctx) }()
		time.Sleep(time.Second)
		if got, want := green.Timeline(t0, false), "+0s off +0s on +200ms off +400ms on +600ms off"; got != want {
			t.Errorf("green %q, want %q (Run's initial off, then ready)", got, want)
		}
		cancel()
		<-done
	})
}

func TestRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, Outputs{}, nil)
		if err := r.ind.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "more than once") {
			t.Errorf("second Run = %v, want an error", err)
		}
		r.shutdown(t)
	})
}
