// Package budget counts Web API requests against the monthly quota and
// paces the background status polls so that the quota lasts the month.
//
// The free Sesame tier allows a fixed number of requests per calendar
// month (3,000 today), and every call counts: status reads, commands,
// confirmation reads and retries. A Meter keeps that count, resets it when
// a new month begins in UTC, and persists it to a small JSON file so that
// a restart does not forget what was already spent.
//
// Background reads get what is left after a reserve, spread evenly over
// the rest of the month (see PollInterval); reads asked for from Home
// Assistant (the Refresh button) come out of the same allowance and are
// refused by the bridge once PollInterval reports it spent. Commands are
// never refused here, they are only counted.
package budget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/statefile"
)

const (
	// ReservePercent of the budget, rounded up, is kept back from
	// background reads for commands and their confirmation reads (and
	// their retries). At the default 3,000 this keeps 600 and leaves 2,400
	// background reads: about one every 18 minutes over a 30-day month,
	// while still allowing some 200 commands at about three requests each
	// (command, confirmation read, an occasional retry). Commands are not
	// capped by the reserve; when they spend more, background reads slow
	// down to match, since PollInterval is recomputed before each read.
	ReservePercent = 20

	// MinPollInterval is the floor between two background reads, however
	// large the budget.
	MinPollInterval = time.Minute

	// flushCoalesce is the least time between two writes of the file.
	flushCoalesce = time.Second

	monthLayout = "2006-01"
)

// Usage is a snapshot of the month's count.
type Usage struct {
	Month     string // the counted month in UTC, like "2026-11"
	Used      int    // requests counted this month
	Budget    int    // requests allowed this month
	Reserve   int    // part of Budget kept for commands
	Remaining int    // Budget - Used, never below 0
	Spent     bool   // background reads have no allowance left
}

// Meter counts requests for the current month. It is safe for concurrent
// use. Run, if used, must have a single caller.
type Meter struct {
	path    string
	budget  int
	reserve int
	now     func() time.Time
	log     *slog.Logger

	mu    sync.Mutex
	month string // "2006-01" in UTC
	used  int

	changed chan struct{} // for listeners (Changed)
	dirty   chan struct{} // for Run

	writeMu sync.Mutex   // serialises Flush, so a later write never carries older data
	writes  atomic.Int64 // successful writes, for tests
}

// state is the file format.
type state struct {
	Month string `json:"month"`
	Used  int    `json:"used"`
}

var errCorrupt = errors.New("corrupt")

// Open returns a Meter for a monthly budget (>= 1), persisted at path.
// A missing file starts at zero; so does a file from an earlier month, and
// a corrupt one (with a warning logged). A file from a later month than
// the clock shows is kept as is: the clock is more likely wrong (a device
// booted before its clock was set) than the count, and forgetting the
// count could overspend. now defaults to time.Now and logger to a
// discarding one.
func Open(path string, budget int, now func() time.Time, logger *slog.Logger) (*Meter, error) {
	if budget < 1 {
		return nil, fmt.Errorf("budget: monthly budget must be >= 1, got %d", budget)
	}
	if path == "" {
		return nil, errors.New("budget: empty file path")
	}
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Meter{
		path:    path,
		budget:  budget,
		reserve: reserveFor(budget),
		now:     now,
		log:     logger,
		month:   monthOf(now()),
		changed: make(chan struct{}, 1),
		dirty:   make(chan struct{}, 1),
	}

	st, err := load(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		m.log.Info("no request count file, starting at zero", "path", path, "month", m.month)
	case errors.Is(err, errCorrupt):
		m.log.Warn("request count file unreadable, starting at zero", "path", path, "month", m.month, "err", err)
	case err != nil:
		return nil, fmt.Errorf("budget: open %s: %w", path, err)
	case st.Month == m.month:
		m.used = st.Used
	case st.Month > m.month:
		m.log.Warn("request count file is from a later month than the clock shows; keeping its count",
			"path", path, "file_month", st.Month, "clock_month", m.month, "used", st.Used)
		m.month, m.used = st.Month, st.Used
	default:
		m.log.Info("request count file is from an earlier month, starting at zero",
			"path", path, "file_month", st.Month, "month", m.month)
	}
	return m, nil
}

// reserveFor is ReservePercent of budget, rounded up.
func reserveFor(budget int) int {
	return (budget*ReservePercent + 99) / 100
}

func monthOf(t time.Time) string { return t.UTC().Format(monthLayout) }

// load reads the file; errCorrupt wraps anything that is not a valid state.
func load(path string) (state, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return state{}, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return state{}, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if _, err := time.Parse(monthLayout, st.Month); err != nil {
		return state{}, fmt.Errorf("%w: month %q", errCorrupt, st.Month)
	}
	if st.Used < 0 {
		return state{}, fmt.Errorf("%w: negative count %d", errCorrupt, st.Used)
	}
	return st, nil
}

// Count records one request about to be sent. It touches memory only (no
// file I/O: it is on the command path), starts a new count when a new
// UTC month has begun, and signals Run and Changed.
func (m *Meter) Count() {
	now := m.now()
	m.mu.Lock()
	prev, rolled := m.rollLocked(now)
	m.used++
	used, month := m.used, m.month
	m.mu.Unlock()

	if rolled {
		m.logRollover(prev, month)
	}
	switch used {
	case m.budget - m.reserve:
		m.log.Info("background read allowance spent; background status reads pause until the month ends",
			"month", month, "used", used, "budget", m.budget)
	case m.budget:
		m.log.Warn("monthly request budget used up; the service may refuse further requests",
			"month", month, "used", used, "budget", m.budget)
	}
	m.signal()
}

// rollLocked moves to now's month if it is later than the counted one and
// reports the month left behind. A clock showing an earlier month changes
// nothing (see Open).
func (m *Meter) rollLocked(now time.Time) (prev state, rolled bool) {
	month := monthOf(now)
	if month <= m.month {
		return state{}, false
	}
	prev = state{Month: m.month, Used: m.used}
	m.month, m.used = month, 0
	return prev, true
}

func (m *Meter) logRollover(prev state, month string) {
	m.log.Info("new month, request count reset", "month", month,
		"previous_month", prev.Month, "previous_used", prev.Used)
}

// signal tells Run and Changed's listener that the count changed. Both
// channels hold one value, so signals coalesce and never block.
func (m *Meter) signal() {
	for _, ch := range []chan struct{}{m.changed, m.dirty} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Usage returns the current month's figures.
func (m *Meter) Usage() Usage {
	now := m.now()
	m.mu.Lock()
	prev, rolled := m.rollLocked(now)
	u := Usage{
		Month:     m.month,
		Used:      m.used,
		Budget:    m.budget,
		Reserve:   m.reserve,
		Remaining: max(0, m.budget-m.used),
		Spent:     m.budget-m.reserve-m.used <= 0,
	}
	m.mu.Unlock()
	if rolled {
		m.logRollover(prev, u.Month)
		m.signal()
	}
	return u
}

// PollInterval returns how long to wait before the next background read,
// and false when the month's background allowance is spent (background
// reads stop; commands go on and are still counted).
//
// The allowance is Budget - Reserve - Used; the interval spreads it evenly
// over the time left in the UTC month: timeLeft / allowance, but never
// less than MinPollInterval. One background read reads one lock, so with
// several locks the caller reads them in turn, one per interval: the
// number of locks does not change the total rate, only how often each
// lock is seen. Call it again before every read, since commands spend
// from the same count.
func (m *Meter) PollInterval() (time.Duration, bool) {
	now := m.now()
	m.mu.Lock()
	prev, rolled := m.rollLocked(now)
	allowance := m.budget - m.reserve - m.used
	month := m.month
	m.mu.Unlock()
	if rolled {
		m.logRollover(prev, month)
		m.signal()
	}

	if allowance <= 0 {
		return 0, false
	}
	u := now.UTC()
	end := time.Date(u.Year(), u.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	d := end.Sub(u) / time.Duration(allowance)
	return max(d, MinPollInterval), true
}

// Changed returns a channel that receives a value whenever the count
// changes (a request counted or a new month begun). Signals coalesce: the
// channel holds at most one, so a slow reader sees the latest state by
// calling Usage. It is the same channel on every call; meant for one
// listener (the usage sensor publisher).
func (m *Meter) Changed() <-chan struct{} { return m.changed }

// Run persists the count whenever it changed, at most about once a second
// (a change is written at once, further changes within the next second
// are written together when it has passed), until ctx is done; then it
// writes once more and returns. Write errors are logged as warnings: the
// in-memory count stays right, and the next change tries again.
func (m *Meter) Run(ctx context.Context) {
	defer m.flushLogged()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.dirty:
		}
		m.flushLogged()

		t := time.NewTimer(flushCoalesce)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (m *Meter) flushLogged() {
	if err := m.Flush(); err != nil {
		m.log.Warn("saving request count failed", "err", err)
	}
}

// Flush writes the count to the file now: to a temporary file in the same
// directory (mode 0600), synced, then renamed over the old one, so a crash
// leaves either the old or the new count, never a torn file.
func (m *Meter) Flush() error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()

	m.mu.Lock()
	st := state{Month: m.month, Used: m.used}
	m.mu.Unlock()

	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("budget: encode count: %w", err)
	}
	if err := statefile.Write(m.path, append(b, '\n')); err != nil {
		return fmt.Errorf("budget: save %s: %w", m.path, err)
	}
	m.writes.Add(1)
	return nil
}
