// Package logthrottle keeps repeated log lines from flooding the log: of
// each kind of line, the first few in a window are written, the rest only
// counted, and one summary line per window says how many were left out.
//
// A kind is a fixed string chosen by the caller ("unknown lock", "bad
// payload"), never data from outside, so the number of kinds stays small.
package logthrottle

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults: five lines of a kind, then one summary a minute.
const (
	DefaultBurst  = 5
	DefaultWindow = time.Minute
)

// Limiter rate-limits log lines per kind. It is safe for concurrent use.
type Limiter struct {
	log    *slog.Logger
	burst  int
	window time.Duration

	mu    sync.Mutex
	kinds map[string]*kindState
}

type kindState struct {
	level      slog.Level
	msg        string
	start      time.Time // of the current window
	logged     int       // lines written in the current window
	suppressed int       // lines counted, not written, in the current window
}

// New returns a Limiter writing to log. burst < 1 and window <= 0 take the
// defaults.
func New(log *slog.Logger, burst int, window time.Duration) *Limiter {
	if burst < 1 {
		burst = DefaultBurst
	}
	if window <= 0 {
		window = DefaultWindow
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Limiter{log: log, burst: burst, window: window, kinds: map[string]*kindState{}}
}

// Warn is Log at warning level.
func (l *Limiter) Warn(kind, msg string, args ...any) { l.Log(slog.LevelWarn, kind, msg, args...) }

// Info is Log at info level.
func (l *Limiter) Info(kind, msg string, args ...any) { l.Log(slog.LevelInfo, kind, msg, args...) }

// Log writes the line unless burst lines of this kind were written in the
// current window already; then it only counts it. A window starts with the
// first line of its kind; while lines keep coming, the windows follow each
// other without a new burst (the summaries say what happens); a window
// without a suppressed line ends the flood, and the next line starts afresh.
func (l *Limiter) Log(level slog.Level, kind, msg string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	now := time.Now()
	l.mu.Lock()
	k := l.kinds[kind]
	if k != nil && now.Sub(k.start) >= l.window {
		l.endLocked(kind, k, now)
		k = l.kinds[kind]
	}
	if k == nil {
		k = &kindState{level: level, msg: msg, start: now}
		l.kinds[kind] = k
	}
	write := k.logged < l.burst
	if write {
		k.logged++
	} else {
		k.suppressed++
	}
	l.mu.Unlock()
	if write {
		l.log.Log(context.Background(), level, msg, args...)
	}
}

// endLocked ends k's window: with suppressed lines it writes the summary and
// starts the next window already spent; without, it forgets the kind.
func (l *Limiter) endLocked(kind string, k *kindState, now time.Time) {
	if k.suppressed == 0 {
		delete(l.kinds, kind)
		return
	}
	l.log.Log(context.Background(), k.level, k.msg, "kind", kind, "suppressed", k.suppressed, "in", l.window,
		"note", "similar lines left out")
	k.start, k.logged, k.suppressed = now, l.burst, 0
}

// Flush ends every window that is over, writing its summary.
func (l *Limiter) Flush() {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for kind, k := range l.kinds {
		if now.Sub(k.start) >= l.window {
			l.endLocked(kind, k, now)
		}
	}
}

// Run flushes ended windows several times per window, so that summaries
// come on time also when no further line arrives, until ctx is done; then
// it writes what is still counted and returns.
func (l *Limiter) Run(ctx context.Context) {
	t := time.NewTicker(max(l.window/6, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.flushAll()
			return
		case <-t.C:
			l.Flush()
		}
	}
}

// flushAll writes the summary of every kind with suppressed lines.
func (l *Limiter) flushAll() {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for kind, k := range l.kinds {
		if k.suppressed > 0 {
			l.log.Log(context.Background(), k.level, k.msg, "kind", kind, "suppressed", k.suppressed, "in", now.Sub(k.start).Round(time.Second),
				"note", "similar lines left out")
		}
		delete(l.kinds, kind)
	}
}
