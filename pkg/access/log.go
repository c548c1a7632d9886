package access

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// LogEntry is one line of the access log.
type LogEntry struct {
	Time    time.Time `json:"time"`
	Door    string    `json:"door"`             // lock name
	Holder  string    `json:"holder,omitempty"` // card holder, or "" for an unknown card
	Card    string    `json:"card"`             // the keyed UID hash (never the raw UID of an unknown card)
	Result  string    `json:"result"`           // "granted" | "denied" | "enrolled" | "enroll_failed"
	Reason  string    `json:"reason,omitempty"` // unknown, disabled, not_yet_valid, expired, outside_hours, not_this_door, lockout, ...
	Outcome string    `json:"outcome,omitempty"`
}

// Log results.
const (
	ResultGranted      = "granted"
	ResultDenied       = "denied"
	ResultEnrolled     = "enrolled"
	ResultEnrollFailed = "enroll_failed"
)

// LogFilter selects log entries; zero fields match everything.
type LogFilter struct {
	Person, Door, Result string    // "" = any; Person and Door match case-insensitively, Person as a part of the name
	From, To             time.Time // zero = open; From inclusive, To exclusive
	Limit                int       // 0 = 200
}

// DefaultLogLimit is what a query returns without a Limit.
const DefaultLogLimit = 200

func (f LogFilter) match(e *LogEntry) bool {
	switch {
	case f.Person != "" && !strings.Contains(strings.ToLower(e.Holder), strings.ToLower(f.Person)):
		return false
	case f.Door != "" && !strings.EqualFold(e.Door, f.Door):
		return false
	case f.Result != "" && e.Result != f.Result:
		return false
	case !f.From.IsZero() && e.Time.Before(f.From):
		return false
	case !f.To.IsZero() && !e.Time.Before(f.To):
		return false
	}
	return true
}

// Log file names in the state directory: the current file and the one
// before it. When the current one holds LogFileLines entries it replaces
// the previous one, so the log keeps between LogFileLines and twice that.
const (
	LogFile      = "access-log.jsonl"
	LogFileOld   = "access-log.1.jsonl"
	LogFileLines = 5000
)

// Log is the bounded access log: JSON lines appended to a file in the state
// directory, the last 2×LogFileLines entries also in memory for queries.
// Safe for concurrent use.
type Log struct {
	dir   string // "" keeps the log in memory only
	lines int    // per file
	log   *slog.Logger

	mu      sync.Mutex
	f       *os.File
	inFile  int        // entries in the current file
	ring    []LogEntry // oldest first, at most 2*lines
	start   int        // index of the oldest entry in ring once it is full
	onWrite []func()
}

// OpenLog reads the log files in dir (a torn last line, left by a crash,
// is skipped) and opens the current one for appending. dir "" keeps the
// log in memory.
func OpenLog(dir string, logger *slog.Logger) (*Log, error) {
	return openLog(dir, LogFileLines, logger)
}

func openLog(dir string, lines int, logger *slog.Logger) (*Log, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{dir: dir, lines: lines, log: logger, ring: make([]LogEntry, 0, 2*lines)}
	if dir == "" {
		return l, nil
	}
	if _, err := l.read(filepath.Join(dir, LogFileOld)); err != nil {
		return nil, err
	}
	n, err := l.read(filepath.Join(dir, LogFile))
	if err != nil {
		return nil, err
	}
	l.inFile = n
	f, err := os.OpenFile(filepath.Join(dir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	l.f = f
	if err := l.terminate(); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// terminate ends a torn last line with a newline, so the next entry starts
// on a line of its own.
func (l *Log) terminate() error {
	st, err := l.f.Stat()
	if err != nil || st.Size() == 0 {
		return nil
	}
	r, err := os.Open(l.f.Name())
	if err != nil {
		return fmt.Errorf("access log: %w", err)
	}
	defer r.Close()
	b := make([]byte, 1)
	if _, err := r.ReadAt(b, st.Size()-1); err != nil {
		return fmt.Errorf("access log: %w", err)
	}
	if b[0] != '\n' {
		if _, err := l.f.Write([]byte{'\n'}); err != nil {
			return fmt.Errorf("access log: %w", err)
		}
	}
	return nil
}

func (l *Log) read(path string) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("access log: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 64*1024)
	n, bad := 0, 0
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		n++
		var e LogEntry
		if err := json.Unmarshal(line, &e); err != nil {
			bad++
			continue
		}
		l.push(e)
	}
	if err := sc.Err(); err != nil {
		l.log.Warn("access log: stopped reading at a line that is too long", "file", path, "err", err)
	}
	if bad > 0 {
		l.log.Warn("access log: skipped lines that do not parse (a crash while writing)", "file", path, "lines", bad)
	}
	return n, nil
}

// push adds e to the ring (mu held, or during open).
func (l *Log) push(e LogEntry) {
	if len(l.ring) < cap(l.ring) {
		l.ring = append(l.ring, e)
		return
	}
	l.ring[l.start] = e
	l.start = (l.start + 1) % len(l.ring)
}

// OnWrite registers f, called after every Append. Not safe to call while
// the log is in use.
func (l *Log) OnWrite(f func()) { l.onWrite = append(l.onWrite, f) }

// Append adds an entry: one write of one line (no fsync: a power cut may
// lose the last entries, never the file). A write error is logged, and the
// entry is kept in memory.
func (l *Log) Append(e LogEntry) {
	line, err := json.Marshal(e)
	if err != nil {
		return
	}
	line = append(line, '\n')
	l.mu.Lock()
	l.push(e)
	if l.f != nil {
		if l.inFile >= l.lines {
			l.rotate()
		}
		if l.f != nil {
			if _, err := l.f.Write(line); err != nil {
				l.log.Warn("access log: cannot write", "err", err)
			} else {
				l.inFile++
			}
		}
	}
	l.mu.Unlock()
	for _, f := range l.onWrite {
		f()
	}
}

// rotate makes the current file the previous one (mu held).
func (l *Log) rotate() {
	cur, old := filepath.Join(l.dir, LogFile), filepath.Join(l.dir, LogFileOld)
	_ = l.f.Close()
	l.f = nil
	if err := os.Rename(cur, old); err != nil {
		l.log.Warn("access log: cannot rotate", "err", err)
	}
	f, err := os.OpenFile(cur, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o600)
	if err != nil {
		l.log.Warn("access log: cannot open a new file; entries stay in memory only", "err", err)
		return
	}
	l.f, l.inFile = f, 0
}

// Len is the number of entries in memory.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ring)
}

// Query returns the entries f selects, newest first.
func (l *Log) Query(f LogFilter) []LogEntry {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLogLimit
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []LogEntry
	n := len(l.ring)
	for i := n - 1; i >= 0 && len(out) < limit; i-- {
		e := &l.ring[(l.start+i)%n]
		if f.match(e) {
			out = append(out, *e)
		}
	}
	return out
}

// Close closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// CSVHeader is the first line of WriteCSV.
var CSVHeader = []string{"time", "door", "holder", "card", "result", "reason", "outcome"}

// WriteCSV writes entries as CSV with a header; times in loc (RFC 3339).
// Fields that a spreadsheet would run as a formula are prefixed with '.
func WriteCSV(w io.Writer, entries []LogEntry, loc *time.Location) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("access log csv: %w", err)
	}
	for _, e := range entries {
		rec := []string{e.Time.In(loc).Format(time.RFC3339), e.Door, e.Holder, e.Card, e.Result, e.Reason, e.Outcome}
		for i, s := range rec {
			if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
				rec[i] = "'" + s
			}
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("access log csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("access log csv: %w", err)
	}
	return nil
}
