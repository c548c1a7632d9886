package budget

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func utc(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

func mustOpen(t *testing.T, path string, budget int, now func() time.Time, log *slog.Logger) *Meter {
	t.Helper()
	m, err := Open(path, budget, now, log)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return m
}

func countN(m *Meter, n int) {
	for range n {
		m.Count()
	}
}

func writeState(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readState(t *testing.T, path string) state {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read state: %v", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("state file %q: %v", b, err)
	}
	return st
}

func drained(ch <-chan struct{}) int {
	n := 0
	for {
		select {
		case <-ch:
			n++
		default:
			return n
		}
	}
}

func TestMonthRollover(t *testing.T) {
	clk := newClock(utc(2026, time.November, 30, 23, 59, 0))
	m := mustOpen(t, filepath.Join(t.TempDir(), "count.json"), 3000, clk.Now, nil)
	countN(m, 3)
	if u := m.Usage(); u.Month != "2026-11" || u.Used != 3 {
		t.Fatalf("before rollover: %+v", u)
	}
	drained(m.Changed())

	// 08:30 on Dec 1 in Tokyo is still November in UTC.
	clk.Set(time.Date(2026, time.December, 1, 8, 30, 0, 0, time.FixedZone("JST", 9*3600)))
	if u := m.Usage(); u.Month != "2026-11" || u.Used != 3 {
		t.Fatalf("local December, UTC November: %+v", u)
	}

	clk.Set(utc(2026, time.December, 1, 0, 0, 30))
	u := m.Usage()
	if u.Month != "2026-12" || u.Used != 0 || u.Remaining != 3000 || u.Spent {
		t.Fatalf("after rollover: %+v", u)
	}
	if drained(m.Changed()) != 1 {
		t.Errorf("rollover did not signal Changed")
	}
	m.Count()
	if u := m.Usage(); u.Used != 1 {
		t.Errorf("count after rollover = %d, want 1", u.Used)
	}

	// The rollover also happens in Count alone, and a clock that steps back
	// into the previous month does not reset or move the count.
	clk.Set(utc(2027, time.January, 1, 0, 0, 0))
	m.Count()
	clk.Set(utc(2026, time.December, 31, 23, 59, 59))
	m.Count()
	if u := m.Usage(); u.Month != "2027-01" || u.Used != 2 {
		t.Errorf("Count across new year, then clock back: %+v", u)
	}
}

func TestUsageFigures(t *testing.T) {
	tests := []struct {
		budget, used       int
		reserve, remaining int
		spent              bool
	}{
		{budget: 3000, used: 0, reserve: 600, remaining: 3000},
		{budget: 3000, used: 2399, reserve: 600, remaining: 601},
		{budget: 3000, used: 2400, reserve: 600, remaining: 600, spent: true},
		{budget: 3000, used: 3100, reserve: 600, remaining: 0, spent: true},
		{budget: 7, used: 0, reserve: 2, remaining: 7},
		{budget: 1, used: 0, reserve: 1, remaining: 1, spent: true},
	}
	for _, tt := range tests {
		clk := newClock(utc(2026, time.November, 10, 0, 0, 0))
		m := mustOpen(t, filepath.Join(t.TempDir(), "count.json"), tt.budget, clk.Now, nil)
		countN(m, tt.used)
		got := m.Usage()
		want := Usage{Month: "2026-11", Used: tt.used, Budget: tt.budget, Reserve: tt.reserve, Remaining: tt.remaining, Spent: tt.spent}
		if got != want {
			t.Errorf("budget %d used %d: Usage = %+v, want %+v", tt.budget, tt.used, got, want)
		}
	}
}

func TestPollInterval(t *testing.T) {
	tests := []struct {
		name   string
		now    time.Time
		budget int
		used   int
		want   time.Duration
		ok     bool
	}{
		// 30 days = 43,200 min over 2,400 background reads.
		{"default budget, start of a 30-day month", utc(2026, time.November, 1, 0, 0, 0), 3000, 0, 18 * time.Minute, true},
		// 31 days = 44,640 min / 2,400.
		{"default budget, start of a 31-day month", utc(2026, time.December, 1, 0, 0, 0), 3000, 0, 18*time.Minute + 36*time.Second, true},
		// 15 days left = 21,600 min over 2,400 - 1,500 = 900.
		{"mid-month, half used", utc(2026, time.November, 16, 0, 0, 0), 3000, 1500, 24 * time.Minute, true},
		// 12 h left over 10 reads.
		{"nearly spent", utc(2026, time.November, 30, 12, 0, 0), 3000, 2390, 72 * time.Minute, true},
		{"last read left", utc(2026, time.November, 16, 0, 0, 0), 3000, 2399, 15 * 24 * time.Hour, true},
		{"spent", utc(2026, time.November, 16, 0, 0, 0), 3000, 2400, 0, false},
		{"over budget by commands", utc(2026, time.November, 16, 0, 0, 0), 3000, 3050, 0, false},
		{"tiny budget, all reserve", utc(2026, time.November, 1, 0, 0, 0), 1, 0, 0, false},
		// 5 - 1 reserve = 4 reads over 30 days.
		{"tiny budget", utc(2026, time.November, 1, 0, 0, 0), 5, 0, 180 * time.Hour, true},
		{"huge budget, floor", utc(2026, time.November, 1, 0, 0, 0), 10_000_000, 0, time.Minute, true},
		{"last seconds of the month, floor", utc(2026, time.November, 30, 23, 59, 30), 3000, 0, time.Minute, true},
		// Local time is irrelevant: 23:00 UTC Nov 30 is 1 h before the end.
		{"non-UTC clock", time.Date(2026, time.December, 1, 8, 0, 0, 0, time.FixedZone("JST", 9*3600)), 3000, 2394, 10 * time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock(tt.now)
			m := mustOpen(t, filepath.Join(t.TempDir(), "count.json"), tt.budget, clk.Now, nil)
			countN(m, tt.used)
			got, ok := m.PollInterval()
			if got != tt.want || ok != tt.ok {
				t.Errorf("PollInterval() = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
			if u := m.Usage(); u.Spent == ok {
				t.Errorf("Usage.Spent = %v disagrees with PollInterval ok = %v", u.Spent, ok)
			}
		})
	}
}

// The allowance returns at the start of a new month.
func TestPollIntervalResumesNextMonth(t *testing.T) {
	clk := newClock(utc(2026, time.November, 20, 0, 0, 0))
	m := mustOpen(t, filepath.Join(t.TempDir(), "count.json"), 10, clk.Now, nil)
	countN(m, 8)
	if _, ok := m.PollInterval(); ok {
		t.Fatal("allowance not spent after 8 of 10 (reserve 2)")
	}
	clk.Set(utc(2026, time.December, 1, 0, 0, 0))
	d, ok := m.PollInterval()
	if !ok || d != 31*24*time.Hour/8 {
		t.Errorf("December: PollInterval() = %v, %v; want %v, true", d, ok, 31*24*time.Hour/8)
	}
}

func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "count.json")
	clk := newClock(utc(2026, time.November, 5, 12, 0, 0))

	m := mustOpen(t, path, 3000, clk.Now, nil)
	countN(m, 42)
	if err := m.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if st := readState(t, path); st != (state{Month: "2026-11", Used: 42}) {
		t.Errorf("file = %+v", st)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %v, want 0600", perm)
	}

	clk.Set(utc(2026, time.November, 28, 0, 0, 0))
	m2 := mustOpen(t, path, 3000, clk.Now, nil)
	if u := m2.Usage(); u.Used != 42 || u.Month != "2026-11" {
		t.Errorf("reopened: %+v, want 42 in 2026-11", u)
	}
	m2.Count()
	if err := m2.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := readState(t, path); st.Used != 43 {
		t.Errorf("second flush: file = %+v", st)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only count.json (no temp files left)", names)
	}
}

func TestOpenFiles(t *testing.T) {
	tests := []struct {
		name      string
		body      string // "" = no file
		wantUsed  int
		wantMonth string
		wantWarn  bool
	}{
		{name: "missing", wantUsed: 0, wantMonth: "2026-11"},
		{name: "same month", body: `{"month":"2026-11","used":77}`, wantUsed: 77, wantMonth: "2026-11"},
		{name: "extra fields ignored", body: `{"month":"2026-11","used":5,"budget":3000}`, wantUsed: 5, wantMonth: "2026-11"},
		{name: "earlier month", body: `{"month":"2026-10","used":2999}`, wantUsed: 0, wantMonth: "2026-11"},
		{name: "earlier year", body: `{"month":"2025-11","used":10}`, wantUsed: 0, wantMonth: "2026-11"},
		{name: "later month keeps count", body: `{"month":"2026-12","used":9}`, wantUsed: 9, wantMonth: "2026-12", wantWarn: true},
		{name: "not json", body: `garbage{`, wantMonth: "2026-11", wantWarn: true},
		{name: "empty", body: " ", wantMonth: "2026-11", wantWarn: true},
		{name: "truncated", body: `{"month":"2026-11","us`, wantMonth: "2026-11", wantWarn: true},
		{name: "bad month", body: `{"month":"November","used":3}`, wantMonth: "2026-11", wantWarn: true},
		{name: "negative count", body: `{"month":"2026-11","used":-4}`, wantMonth: "2026-11", wantWarn: true},
		{name: "wrong type", body: `{"month":"2026-11","used":"12"}`, wantMonth: "2026-11", wantWarn: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "count.json")
			if tt.body != "" {
				writeState(t, path, tt.body)
			}
			logger, logs := logcapture.New()
			clk := newClock(utc(2026, time.November, 15, 0, 0, 0))
			m, err := Open(path, 3000, clk.Now, logger)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if u := m.Usage(); u.Used != tt.wantUsed || u.Month != tt.wantMonth {
				t.Errorf("Usage = %+v, want used %d month %s", u, tt.wantUsed, tt.wantMonth)
			}
			if warned := strings.Contains(logs.String(), "level=WARN"); warned != tt.wantWarn {
				t.Errorf("warned = %v, want %v; log:\n%s", warned, tt.wantWarn, logs.String())
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "c.json"), 0, nil, nil); err == nil {
		t.Error("budget 0: no error")
	}
	if _, err := Open("", 3000, nil, nil); err == nil {
		t.Error("empty path: no error")
	}
	// A directory where the file should be cannot be read: a real error,
	// not a reason to start at zero.
	if _, err := Open(dir, 3000, nil, nil); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("directory as file: err = %v, want one naming the path", err)
	}
	// Defaults for now and logger.
	m, err := Open(filepath.Join(dir, "c.json"), 3000, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u := m.Usage(); u.Month != time.Now().UTC().Format("2006-01") {
		t.Errorf("default clock: month %s", u.Month)
	}
}

func TestFlushError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing-dir", "count.json")
	m := mustOpen(t, path, 3000, nil, nil)
	m.Count()
	err := m.Flush()
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Flush into a missing directory: err = %v, want one naming the path", err)
	}
	if u := m.Usage(); u.Used != 1 {
		t.Errorf("failed flush changed the count: %+v", u)
	}
}

func TestChangedCoalesces(t *testing.T) {
	m := mustOpen(t, filepath.Join(t.TempDir(), "count.json"), 3000, nil, nil)
	if n := drained(m.Changed()); n != 0 {
		t.Fatalf("%d signals before any change", n)
	}
	countN(m, 5)
	if n := drained(m.Changed()); n != 1 {
		t.Errorf("5 counts gave %d signals, want 1 (coalesced)", n)
	}
	m.Usage()
	_, _ = m.PollInterval()
	if n := drained(m.Changed()); n != 0 {
		t.Errorf("reads without a change gave %d signals", n)
	}
	m.Count()
	if n := drained(m.Changed()); n != 1 {
		t.Errorf("one count gave %d signals, want 1", n)
	}
}

func TestCountConcurrent(t *testing.T) {
	const goroutines, perG = 32, 250
	m := mustOpen(t, filepath.Join(t.TempDir(), "count.json"), 3000, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()

	stopListen := make(chan struct{})
	listened := make(chan struct{})
	go func() {
		defer close(listened)
		for {
			select {
			case <-m.Changed():
				m.Usage()
			case <-stopListen:
				return
			}
		}
	}()

	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() {
			for j := range perG {
				m.Count()
				switch (i + j) % 50 {
				case 0:
					_, _ = m.PollInterval()
				case 1:
					if err := m.Flush(); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	close(stopListen)
	<-listened
	cancel()
	<-done

	if u := m.Usage(); u.Used != goroutines*perG {
		t.Errorf("Used = %d, want %d", u.Used, goroutines*perG)
	}
	if st := readState(t, m.path); st.Used != goroutines*perG {
		t.Errorf("final write holds %d, want %d", st.Used, goroutines*perG)
	}
}

func TestRunCoalescesWrites(t *testing.T) {
	dir := t.TempDir() // outside the bubble
	path := filepath.Join(dir, "count.json")
	synctest.Test(t, func(t *testing.T) {
		m := mustOpen(t, path, 3000, time.Now, nil)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); m.Run(ctx) }()

		synctest.Wait()
		if _, err := os.Stat(path); err == nil {
			t.Fatal("Run wrote before any change")
		}

		// A first change is written at once.
		m.Count()
		synctest.Wait()
		if st := readState(t, path); st.Used != 1 || m.writes.Load() != 1 {
			t.Fatalf("after first count: file %+v, writes %d", st, m.writes.Load())
		}

		// Changes within the next second wait for it, then go in one write.
		time.Sleep(100 * time.Millisecond)
		countN(m, 2)
		synctest.Wait()
		if st := readState(t, path); st.Used != 1 || m.writes.Load() != 1 {
			t.Fatalf("inside the second: file %+v, writes %d (want the write held back)", st, m.writes.Load())
		}
		time.Sleep(900 * time.Millisecond)
		synctest.Wait()
		if st := readState(t, path); st.Used != 3 || m.writes.Load() != 2 {
			t.Fatalf("after the second: file %+v, writes %d", st, m.writes.Load())
		}

		// Quiet: no writes.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := m.writes.Load(); n != 2 {
			t.Fatalf("idle Run wrote: writes %d, want 2", n)
		}

		// A steady stream, one count every 10 ms for 10 s, is written at
		// most once a second.
		start := m.writes.Load()
		for range 1000 {
			m.Count()
			time.Sleep(10 * time.Millisecond)
		}
		synctest.Wait()
		if n := m.writes.Load() - start; n < 9 || n > 11 {
			t.Errorf("10 s of counting gave %d writes, want about 10", n)
		}

		// Cancel: one last write, then Run returns.
		before := m.writes.Load()
		m.Count()
		cancel()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("Run did not return after cancel")
		}
		if st := readState(t, path); st.Used != 1004 {
			t.Errorf("final file %+v, want used 1004", st)
		}
		if m.writes.Load() <= before {
			t.Errorf("no final write on cancel")
		}
	})
}

func TestRunLogsWriteErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing-dir", "count.json")
	synctest.Test(t, func(t *testing.T) {
		logger, logs := logcapture.New()
		m := mustOpen(t, path, 3000, time.Now, logger)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); m.Run(ctx) }()

		m.Count()
		synctest.Wait()
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "missing-dir") {
			t.Errorf("write failure not logged as a warning:\n%s", logs.String())
		}
		// Run keeps going: the next change is tried again.
		time.Sleep(2 * time.Second)
		m.Count()
		synctest.Wait()
		if n := strings.Count(logs.String(), "saving request count failed"); n != 2 {
			t.Errorf("%d failed saves logged, want 2:\n%s", n, logs.String())
		}
		cancel()
		<-done
	})
}

func TestCountLogsThresholds(t *testing.T) {
	logger, logs := logcapture.New()
	m := mustOpen(t, filepath.Join(t.TempDir(), "count.json"), 10, nil, logger)
	countN(m, 7)
	if strings.Contains(logs.String(), "allowance spent") {
		t.Errorf("allowance reported spent too early:\n%s", logs.String())
	}
	m.Count() // 8 = 10 - reserve 2
	if !strings.Contains(logs.String(), "allowance spent") {
		t.Errorf("allowance spent not logged:\n%s", logs.String())
	}
	countN(m, 2) // 10
	if !strings.Contains(logs.String(), "level=WARN msg=\"monthly request budget used up") {
		t.Errorf("budget used up not logged as a warning:\n%s", logs.String())
	}
}
