package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
)

func TestScheduleFastThenSteadyThenSlow(t *testing.T) {
	t.Parallel()
	for range 50 { // the jitter is random: check the bounds many times
		var s schedule
		outage := time.Duration(0)
		for i := range fastTries {
			d, slow := s.next(outage, false)
			if slow || d < fastMin || d > fastMax {
				t.Fatalf("try %d: %s (slow %v), want within [%s, %s]", i+1, d, slow, fastMin, fastMax)
			}
			outage += d
		}
		for outage < steadyFor {
			d, slow := s.next(outage, false)
			if slow || d < steadyMin || d > steadyMax {
				t.Fatalf("at %s into the outage: %s (slow %v), want within [%s, %s]", outage, d, slow, steadyMin, steadyMax)
			}
			outage += d
		}
		prevBase := time.Duration(0)
		for i := range 8 {
			d, slow := s.next(outage, false)
			base := min(slowMin<<i, slowMax)
			if !slow || d > base || d < base-base/4 {
				t.Fatalf("slow try %d: %s (slow %v), want within [%s, %s]", i+1, d, slow, base-base/4, base)
			}
			if base < prevBase {
				t.Fatalf("slow backoff shrank")
			}
			prevBase = base
			outage += d
		}
	}
}

func TestSchedulePermanentGoesSlowAtOnce(t *testing.T) {
	t.Parallel()
	var s schedule
	d, slow := s.next(0, true)
	if !slow || d < slowMin-slowMin/4 || d > slowMin {
		t.Errorf("first delay after a refused login: %s (slow %v), want about %s", d, slow, slowMin)
	}
	// The broker is up and refusing: a reset in between does not make the
	// client hammer it again.
	if d, slow := s.next(d, false); !slow || d < 2*slowMin-slowMin/2 {
		t.Errorf("delay after a refusal, then a reset: %s (slow %v), want the slow backoff's next step", d, slow)
	}
}

func TestIsPermanent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("connect: %w", packets.ErrorRefusedBadUsernameOrPassword), true},
		{packets.ErrorRefusedNotAuthorised, true},
		{fmt.Errorf("%w : %w", packets.ErrorNetworkError, x509.UnknownAuthorityError{}), true},
		{fmt.Errorf("tls handshake: %w", &tls.CertificateVerificationError{Err: x509.HostnameError{}}), true},
		{fmt.Errorf("tls handshake: %w", tls.AlertError(116)), true}, // certificate required
		{fmt.Errorf("%w : %w", packets.ErrorNetworkError, &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}), true},
		{fmt.Errorf("%w : %w", packets.ErrorNetworkError, &net.OpError{Op: "write", Err: errors.New("connection reset by peer")}), false},
		{fmt.Errorf("%w : %w", packets.ErrorNetworkError, errors.New("dial tcp: connection refused")), false},
		{errTimeout, false},
		{packets.ErrorRefusedServerUnavailable, false},
	} {
		if got := isPermanent(tc.err); got != tc.want {
			t.Errorf("isPermanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestMatchFilter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		f, topic string
		want     bool
	}{
		{"a/b", "a/b", true},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "x/y", true},
		{"+/+/set", "s/bridge/availability", false},
		{"s/+/set", "s/x/set", true},
		{"#", "$SYS/x", false},
		{"a/b/c", "a/b", false},
	} {
		if got := matchFilter(tc.f, tc.topic); got != tc.want {
			t.Errorf("matchFilter(%q, %q) = %v, want %v", tc.f, tc.topic, got, tc.want)
		}
	}
}

// TestReconnectScheduleOnFakeClock runs the real connection loop against a
// broker that is down for 3 s after a loss (on synctest's clock): the
// attempt that finds it back comes within a second, the first tries are
// fast, and the fast ones are not logged one by one.
func TestReconnectScheduleOnFakeClock(t *testing.T) {
	t.Parallel()
	for _, downFor := range []time.Duration{300 * time.Millisecond, 3 * time.Second, 20 * time.Second, 59 * time.Second} {
		t.Run(downFor.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var logs logcapture.Buffer
				c, err := New(Options{URL: "tcp://127.0.0.1:1", Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
				if err != nil {
					t.Fatal(err)
				}
				var (
					attempts []time.Time
					backAt   time.Time // when the broker accepts again; zero while up
					up       = true
				)
				connected := make(chan struct{}, 4)
				attempt := func(context.Context) error {
					now := time.Now()
					attempts = append(attempts, now)
					if !up && now.Before(backAt) {
						return fmt.Errorf("%w : dial tcp: connection refused", packets.ErrorNetworkError)
					}
					up = true
					connected <- struct{}{}
					return nil
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan struct{})
				go func() { defer close(done); c.connectLoop(ctx, attempt) }()
				<-connected
				if len(attempts) != 1 {
					t.Fatalf("%d attempts for the first connect to a live broker", len(attempts))
				}

				lostAt := time.Now()
				up, backAt = false, lostAt.Add(downFor)
				attempts = nil
				c.lost <- struct{}{}
				<-connected
				synctest.Wait() // the loop has logged and waits for the next loss
				last := attempts[len(attempts)-1]
				late := last.Sub(backAt)
				t.Logf("down %s: %d attempts, connected %s after the broker was back", downFor, len(attempts), late)
				if late < 0 || late > time.Second {
					t.Errorf("connected %s after the broker was back, want within 1s", late)
				}
				if first := attempts[0].Sub(lostAt); first < 0 || first > firstRetryMax {
					t.Errorf("first attempt %s after the loss, want within %s", first, firstRetryMax)
				}
				for i := 1; i < len(attempts) && i <= fastTries; i++ {
					if gap := attempts[i].Sub(attempts[i-1]); gap < fastMin || gap > fastMax {
						t.Errorf("gap before attempt %d = %s, want within [%s, %s]", i+1, gap, fastMin, fastMax)
					}
				}
				out := logs.String()
				if n := strings.Count(out, "level=WARN msg=\"mqtt connect failed\""); n != 1 {
					t.Errorf("%d warnings for %d failed attempts, want 1 (the first)", n, len(attempts)-1)
				}
				if !strings.Contains(out, `msg="mqtt reconnected"`) || !strings.Contains(out, "attempts="+fmt.Sprint(len(attempts))) {
					t.Errorf("no reconnect line with the attempt count:\n%s", out)
				}
				cancel()
				<-done
			})
		})
	}
}

// TestReconnectGoesSlowAfterAMinute: a broker gone for good is tried less
// and less often, at most every 30 s, and each of those tries is logged.
func TestReconnectGoesSlowAfterAMinute(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var logs logcapture.Buffer
		c, err := New(Options{URL: "tcp://127.0.0.1:1", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		var attempts []time.Time
		attempt := func(context.Context) error {
			attempts = append(attempts, time.Now())
			return errors.New("connection refused")
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		start := time.Now()
		go func() { defer close(done); c.connectLoop(ctx, attempt) }()
		time.Sleep(10 * time.Minute)
		cancel()
		<-done
		var inFirstMinute, gapMax time.Duration
		n := 0
		for i, a := range attempts {
			if a.Sub(start) < steadyFor {
				n++
				inFirstMinute = a.Sub(start)
			}
			if i > 0 {
				gapMax = max(gapMax, a.Sub(attempts[i-1]))
			}
		}
		if n < 60 || n > 130 {
			t.Errorf("%d attempts in the first minute (last at %s), want one every 0.5-0.8 s", n, inFirstMinute)
		}
		if gapMax < slowMax-slowMax/4 || gapMax > slowMax {
			t.Errorf("longest gap %s, want about %s", gapMax, slowMax)
		}
		tail := attempts[len(attempts)-1].Sub(attempts[len(attempts)-2])
		if tail < slowMax-slowMax/4 {
			t.Errorf("gap after 10 min = %s, want the 30 s cap", tail)
		}
		if w := strings.Count(logs.String(), "level=WARN"); w > len(attempts)-n+2 {
			t.Errorf("%d warnings for %d attempts: the fast ones must not each warn", w, len(attempts))
		}
	})
}
