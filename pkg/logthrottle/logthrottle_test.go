package logthrottle

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
)

func newLimiter() (*Limiter, *logcapture.Buffer) {
	buf := &logcapture.Buffer{}
	return New(slog.New(slog.NewTextHandler(buf, nil)), 3, time.Minute), buf
}

func lines(buf *logcapture.Buffer) []string {
	s := strings.TrimSpace(buf.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestBurstThenOneSummaryAMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, buf := newLimiter()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); l.Run(ctx) }()

		// A flood of 10 lines a second for 3 minutes and a bit.
		for i := range 1850 {
			l.Warn("bad payload", "ignoring command", "n", i)
			l.Warn("unknown lock", "ignoring command for a lock that is not configured")
			time.Sleep(100 * time.Millisecond)
		}
		synctest.Wait()
		got := lines(buf)
		var flood, summaries []string
		for _, ln := range got {
			if strings.Contains(ln, "suppressed=") {
				summaries = append(summaries, ln)
			} else {
				flood = append(flood, ln)
			}
		}
		// 3 of each kind, then one summary per kind per minute: 3 minutes.
		if len(flood) != 6 {
			t.Errorf("%d lines written before the summaries, want 3 per kind:\n%s", len(flood), strings.Join(flood, "\n"))
		}
		if len(summaries) != 6 {
			t.Errorf("%d summaries after 3 minutes of 2 kinds, want 6:\n%s", len(summaries), strings.Join(summaries, "\n"))
		}
		if !strings.Contains(got[0], "n=0") || strings.Contains(buf.String(), "n=3 ") {
			t.Errorf("the first lines must be written as they are, the rest not:\n%s", buf.String())
		}
		if !strings.Contains(summaries[0], `msg="ignoring command" kind="bad payload" suppressed=597 in=1m0s`) &&
			!strings.Contains(summaries[1], `msg="ignoring command" kind="bad payload" suppressed=597 in=1m0s`) {
			t.Errorf("first summaries %q: want the count of the first minute (600 - 3)", summaries[:2])
		}

		// The rest is summed up at shutdown; nothing is lost from the count.
		cancel()
		<-done
		total := 0
		for _, ln := range lines(buf) {
			if i := strings.Index(ln, "suppressed="); i >= 0 && strings.Contains(ln, `kind="bad payload"`) {
				var n int
				if _, err := fmtSscan(ln[i+len("suppressed="):], &n); err != nil {
					t.Fatal(err)
				}
				total += n
			}
		}
		if total != 1850-3 {
			t.Errorf("summaries count %d bad payloads, want %d", total, 1850-3)
		}
	})
}

func TestQuietWindowStartsAfresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, buf := newLimiter()
		for range 2 {
			l.Info("k", "hello")
		}
		time.Sleep(2 * time.Minute)
		l.Flush()
		for range 3 {
			l.Info("k", "hello")
		}
		if n := len(lines(buf)); n != 5 {
			t.Errorf("%d lines, want 5: fewer than the burst never suppresses, and a quiet minute resets:\n%s", n, buf.String())
		}
	})
}

func TestDisabledLevelCostsNothing(t *testing.T) {
	buf := &logcapture.Buffer{}
	l := New(slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelWarn})), 1, time.Minute)
	for range 100 {
		l.Info("k", "debugging")
	}
	l.Flush()
	l.flushAll()
	if buf.String() != "" || len(l.kinds) != 0 {
		t.Errorf("lines below the level were counted: %q, %d kinds", buf.String(), len(l.kinds))
	}
}

func fmtSscan(s string, n *int) (int, error) { return fmt.Sscan(strings.Fields(s)[0], n) }
