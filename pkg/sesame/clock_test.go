package sesame

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
)

// TestClockObserve feeds the clock a sequence of answers, each dated by a
// cloud whose clock is off the host's by the given offset, and checks what
// it measures, when it corrects and what it logs.
func TestClockObserve(t *testing.T) {
	type obs struct {
		offset    time.Duration // the cloud's clock minus the host's
		corrected bool          // want: signing with the cloud's time afterwards
		log       string        // want: the one line logged, "" for none
	}
	tests := []struct {
		name string
		seq  []obs
	}{
		{"a right clock says nothing", []obs{
			{0, false, ""}, {2 * time.Second, false, ""}, {-29 * time.Second, false, ""},
		}},
		{"host behind: one warning, then quiet", []obs{
			{10 * time.Minute, true, `level=WARN msg="the host's clock is 10m0s behind the Sesame cloud's: signing commands with the cloud's time; fix the host's clock (NTP)" offset=10m0s`},
			{10*time.Minute + time.Second, true, ""},
			{10*time.Minute - 20*time.Second, true, ""},
			{10 * time.Minute, true, ""},
		}},
		{"host ahead", []obs{
			{-2 * time.Hour, true, `level=WARN msg="the host's clock is 2h0m0s ahead of the Sesame cloud's`},
		}},
		{"a large change warns again, once", []obs{
			{time.Minute, true, `level=WARN msg="the host's clock is 1m0s behind`},
			{5 * time.Minute, true, `level=WARN msg="the host's clock is now 5m0s behind the Sesame cloud's: signing commands with the cloud's time" offset=5m0s`},
			{5*time.Minute + 10*time.Second, true, ""},
		}},
		{"back to normal: one line", []obs{
			{-10 * time.Minute, true, `level=WARN`},
			{time.Second, false, `level=INFO msg="the host's clock agrees with the Sesame cloud's again: signing commands with the host's time" offset=1s`},
			{0, false, ""},
		}},
		{"hovering around the threshold does not flap", []obs{
			{31 * time.Second, true, `level=WARN`},
			{29 * time.Second, true, ""},
			{31 * time.Second, true, ""},
			{25 * time.Second, true, ""},
			{19 * time.Second, false, `level=INFO`},
			{29 * time.Second, false, ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, buf := logcapture.New()
			c := newClock(log)
			if _, _, measured := c.Offset(); measured {
				t.Fatal("measured before any answer")
			}
			host := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
			logged := 0
			for i, o := range tt.seq {
				host = host.Add(time.Minute)
				// The cloud writes its Date (whole seconds) 100 ms into a
				// 200-ms round trip.
				cloud := host.Add(100*time.Millisecond + o.offset)
				date := cloud.UTC().Format(http.TimeFormat)
				off, ok := c.observe(date, host, host.Add(200*time.Millisecond))
				if !ok {
					t.Fatalf("%d: Date %q not taken", i, date)
				}
				if d := off - o.offset; d < -time.Second || d > time.Second {
					t.Errorf("%d: measured %s, want %s within 1s", i, off, o.offset)
				}
				gotOff, corrected, measured := c.Offset()
				if !measured || gotOff != off || corrected != o.corrected {
					t.Errorf("%d: Offset() = %s, %v, %v; want %s, %v, true", i, gotOff, corrected, measured, off, o.corrected)
				}
				// Signing: the host's time, or the cloud's.
				at := host.Add(200 * time.Millisecond)
				want := at
				if o.corrected {
					want = at.Add(off)
				}
				if got := c.signTime(at); !got.Equal(want) {
					t.Errorf("%d: signTime = %s, want %s", i, got, want)
				}
				lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
				if buf.String() == "" {
					lines = nil
				}
				switch {
				case o.log == "" && len(lines) != logged:
					t.Errorf("%d: logged %q, want nothing", i, lines[logged:])
				case o.log != "" && len(lines) != logged+1:
					t.Errorf("%d: logged %q, want one line containing %q", i, lines[logged:], o.log)
				case o.log != "" && !strings.Contains(lines[logged], o.log):
					t.Errorf("%d: logged %q, want it to contain %q", i, lines[logged], o.log)
				}
				logged = len(lines)
			}
		})
	}
}

func TestClockIgnoresBadDates(t *testing.T) {
	log, buf := logcapture.New()
	c := newClock(log)
	now := time.Now()
	for _, date := range []string{"", "yesterday", "Mon, 99 Jan 2026 00:00:00 GMT"} {
		if _, ok := c.observe(date, now, now); ok {
			t.Errorf("Date %q was taken", date)
		}
	}
	if _, _, measured := c.Offset(); measured {
		t.Error("measured from no usable Date")
	}
	if got := c.signTime(now); !got.Equal(now) {
		t.Errorf("signTime = %s, want the host's time %s", got, now)
	}
	if buf.String() != "" {
		t.Errorf("logged %q", buf.String())
	}
	select {
	case <-c.changed:
		t.Error("changed signalled without a measurement")
	default:
	}
}

// TestClockChangedSignals: the first measurement, a move of the offset by
// 2 s or more, and a change of the signing clock are signalled (one slot);
// the same offset again, or jitter of a second, is not.
func TestClockChangedSignals(t *testing.T) {
	c := newClock(slog.New(slog.DiscardHandler))
	host := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	observe := func(off time.Duration) {
		t.Helper()
		at := host.Add(off)
		if _, ok := c.observe(at.UTC().Format(http.TimeFormat), host.Add(500*time.Millisecond), host.Add(500*time.Millisecond)); !ok {
			t.Fatal("Date not taken")
		}
	}
	signalled := func() bool {
		select {
		case <-c.changed:
			return true
		default:
			return false
		}
	}
	observe(0)
	if !signalled() {
		t.Error("first measurement not signalled")
	}
	observe(0)
	if signalled() {
		t.Error("the same offset signalled again")
	}
	observe(time.Second)
	observe(-time.Second)
	if signalled() {
		t.Error("a second of jitter signalled")
	}
	observe(3 * time.Second)
	if !signalled() {
		t.Error("a move of 3 s not signalled")
	}
	observe(10 * time.Minute)
	observe(10 * time.Minute) // one slot: still one signal
	if !signalled() || signalled() {
		t.Error("a new offset: want exactly one signal")
	}
}
