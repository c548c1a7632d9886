package sesame_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
)

// posts returns the commands the fake saw.
func posts(fake *sesametest.Server) []sesametest.Request {
	var out []sesametest.Request
	for _, r := range fake.Requests() {
		if r.Method == "POST" {
			out = append(out, r)
		}
	}
	return out
}

func near(got, want time.Duration) bool { return got-want < 2*time.Second && want-got < 2*time.Second }

// TestCommandWithTheHostClockOff: the cloud's clock is 10 minutes off the
// host's, in either direction. After one status read the client knows it,
// warns once naming the offset, and its commands are signed with the
// cloud's time: accepted, and the lock moves.
func TestCommandWithTheHostClockOff(t *testing.T) {
	for _, skew := range []time.Duration{10 * time.Minute, -10 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			fake := newFake(t)
			fake.SetMoveDelay(0)
			fake.SetClockSkew(skew)
			log, logs := logcapture.New()
			c := newClient(t, fake, func(o *sesame.Options) { o.Logger = log })

			if st := c.ClockState(); st.Measured || st.Corrected {
				t.Fatalf("ClockState before any answer = %+v", st)
			}
			if _, err := c.Status(ctxTimeout(t, 5*time.Second), lockUUID); err != nil {
				t.Fatal(err)
			}
			st := c.ClockState()
			if !st.Measured || !st.Corrected || !near(st.Offset, skew) {
				t.Fatalf("ClockState after a read = %+v, want the offset %s, corrected", st, skew)
			}
			select {
			case <-c.ClockChanged():
			default:
				t.Error("ClockChanged not signalled")
			}

			if err := c.Command(ctxTimeout(t, 5*time.Second), lockUUID, sesame.NewSecret(lockSecret), sesame.CmdUnlock, "Alice"); err != nil {
				t.Fatal(err)
			}
			if p := posts(fake); len(p) != 1 || !p[0].SignValid {
				t.Fatalf("commands at the fake %+v, want one, validly signed", p)
			}
			if got := fake.State(lockUUID); got != sesame.StateUnlocked {
				t.Errorf("lock %s, want unlocked", got)
			}
			warn := "the host's clock is 10m0s behind the Sesame cloud's"
			if skew < 0 {
				warn = "the host's clock is 10m0s ahead of the Sesame cloud's"
			}
			if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), warn) {
				t.Errorf("%d warnings, want one naming the offset (%q):\n%s", n, warn, logs.String())
			}
		})
	}
}

// TestFirstCommandWithTheHostClockOffIsSentAgain: a command is the very
// first request. Its answer shows the signature was stale, so the client
// signs it again with the cloud's time and sends it once more.
func TestFirstCommandWithTheHostClockOffIsSentAgain(t *testing.T) {
	fake := newFake(t)
	fake.SetMoveDelay(0)
	fake.SetClockSkew(10 * time.Minute)
	log, logs := logcapture.New()
	var cnt counter
	c := newClient(t, fake, func(o *sesame.Options) { o.Logger = log; o.Counter = &cnt })

	if err := c.Command(ctxTimeout(t, 5*time.Second), lockUUID, sesame.NewSecret(lockSecret), sesame.CmdUnlock, ""); err != nil {
		t.Fatal(err)
	}
	p := posts(fake)
	if len(p) != 2 || p[0].SignValid || !p[1].SignValid || p[0].Cmd != 83 || p[1].Cmd != 83 {
		t.Fatalf("commands at the fake %+v, want a stale one, then the same validly signed", p)
	}
	if cnt.n.Load() != 2 {
		t.Errorf("counted %d requests, want 2", cnt.n.Load())
	}
	if got := fake.State(lockUUID); got != sesame.StateUnlocked {
		t.Errorf("lock %s, want unlocked", got)
	}
	if !strings.Contains(logs.String(), "off the Sesame cloud's clock, which ignores such commands; sending it again") {
		t.Errorf("no line about sending again:\n%s", logs.String())
	}

	// Once known, the next command goes out right the first time.
	if err := c.Command(ctxTimeout(t, 5*time.Second), lockUUID, sesame.NewSecret(lockSecret), sesame.CmdLock, ""); err != nil {
		t.Fatal(err)
	}
	if p := posts(fake); len(p) != 3 || !p[2].SignValid {
		t.Errorf("commands at the fake %+v, want a third, validly signed", p)
	}
}

// TestSkewWithinOneSignatureWindowIsNotSentAgain: the signature changes
// every 256 s. A host clock 40 s behind, early in a window, signs exactly
// what the cloud's time would: sending that again would be the same
// command twice, and the lock would act twice.
func TestSkewWithinOneSignatureWindowIsNotSentAgain(t *testing.T) {
	fake := newFake(t)
	fake.SetMoveDelay(0)
	real := time.Now()
	shift := time.Duration(10-real.Unix()%256) * time.Second // the host's clock: 10 s into a window
	const offset = 40 * time.Second                          // the cloud's is 40 s ahead of it
	fake.SetClockSkew(shift + offset)
	log, logs := logcapture.New()
	var cnt counter
	c := newClient(t, fake, func(o *sesame.Options) {
		o.Logger, o.Counter = log, &cnt
		o.Now = func() time.Time { return time.Now().Add(shift) }
	})
	if err := c.Command(ctxTimeout(t, 5*time.Second), lockUUID, sesame.NewSecret(lockSecret), sesame.CmdUnlock, ""); err != nil {
		t.Fatal(err)
	}
	if p := posts(fake); len(p) != 1 || !p[0].SignValid {
		t.Fatalf("commands at the fake %+v, want exactly one, validly signed", p)
	}
	if cnt.n.Load() != 1 || strings.Contains(logs.String(), "sending it again") {
		t.Errorf("counted %d requests, log:\n%s\nwant one and no resend", cnt.n.Load(), logs.String())
	}
}

// TestHostClockFixedWhileCorrecting: the host's clock was 10 minutes slow
// and is then set right (NTP). The correction, made for the slow clock, is
// now wrong: the next command is sent again once, and the client says once
// that the clocks agree.
func TestHostClockFixedWhileCorrecting(t *testing.T) {
	fake := newFake(t)
	fake.SetMoveDelay(0)
	log, logs := logcapture.New()
	// Without a monotonic reading, so that the jump shows in the elapsed
	// time as a wall clock jump of a real host does not.
	var slow atomic.Int64
	slow.Store(int64(-10 * time.Minute))
	c := newClient(t, fake, func(o *sesame.Options) {
		o.Logger = log
		o.Now = func() time.Time { return time.Now().Add(time.Duration(slow.Load())).Round(0) }
	})
	if _, err := c.Status(ctxTimeout(t, 5*time.Second), lockUUID); err != nil {
		t.Fatal(err)
	}
	if st := c.ClockState(); !st.Corrected || !near(st.Offset, 10*time.Minute) {
		t.Fatalf("ClockState = %+v, want 10m corrected", st)
	}

	slow.Store(0) // NTP
	if err := c.Command(ctxTimeout(t, 5*time.Second), lockUUID, sesame.NewSecret(lockSecret), sesame.CmdUnlock, ""); err != nil {
		t.Fatal(err)
	}
	p := posts(fake)
	if len(p) != 2 || p[0].SignValid || !p[1].SignValid {
		t.Fatalf("commands at the fake %+v, want a stale one, then a good one", p)
	}
	if st := c.ClockState(); st.Corrected || !near(st.Offset, 0) {
		t.Errorf("ClockState = %+v, want about 0, not corrected", st)
	}
	if n := strings.Count(logs.String(), "agrees with the Sesame cloud's again"); n != 1 {
		t.Errorf("%d lines about the clocks agreeing, want 1:\n%s", n, logs.String())
	}
}
