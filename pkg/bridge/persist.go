package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/statefile"
)

// The state file: per lock, the last status read (with its read_at) and the
// state the lock entity showed. It lets a restart show the last known state
// at once and skip reading locks that were read recently.
const stateFileVersion = 1

type stateFile struct {
	Version int                  `json:"version"`
	Locks   map[string]savedLock `json:"locks"` // by lock id
}

type savedLock struct {
	State  hass.LockState `json:"state"`
	Status hass.Status    `json:"status"`
}

// maxStateFile bounds what is read: 500 locks take about 150 KB.
const maxStateFile = 8 << 20

// stateWriteEvery is the least time between two writes of the state file.
const stateWriteEvery = time.Second

// readAtSlack: a newer read time alone is written only once it has moved
// this far. At start the read time only decides whether a lock is older
// than one poll round (minutes); every push document or read rewriting the
// file (with two fsyncs, on a Pi's SD card) would buy nothing.
const readAtSlack = 10 * time.Minute

// loadState restores what the state file says. A missing file is normal; a
// bad one (or a bad entry) is logged and ignored: the locks are read anew.
func (b *Bridge) loadState() {
	if b.stateFile == "" {
		return
	}
	sf, err := readStateFile(b.stateFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		b.log.Info("no lock state file yet; every lock is read at start", "path", b.stateFile)
		return
	case err != nil:
		b.log.Warn("lock state file unreadable, ignoring it; every lock is read at start", "path", b.stateFile, "err", err)
		return
	}
	restored := 0
	for id, s := range sf.Locks {
		w := b.byID[id]
		if w == nil {
			continue // no longer configured; dropped at the next write
		}
		if err := w.restore(s); err != nil {
			w.log.Warn("lock state file: bad entry, ignoring it", "path", b.stateFile, "err", err)
			continue
		}
		if s.State == hass.Jammed {
			b.setJammed(id, true) // the door's LEDs show it too, until the lock is read
		}
		restored++
	}
	b.log.Info("lock states restored from the state file", "path", b.stateFile, "locks", restored)
}

func readStateFile(path string) (stateFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return stateFile{}, err
	}
	defer f.Close()
	var sf stateFile
	dec := json.NewDecoder(io.LimitReader(f, maxStateFile)) // a larger file ends mid-document: an error
	if err := dec.Decode(&sf); err != nil {
		return stateFile{}, fmt.Errorf("decode: %w", err)
	}
	if sf.Version != stateFileVersion {
		return stateFile{}, fmt.Errorf("version %d, want %d", sf.Version, stateFileVersion)
	}
	return sf, nil
}

// stateChanged marks the state file for a write; it never blocks.
func (b *Bridge) stateChanged() {
	if b.stateFile == "" {
		return
	}
	select {
	case b.stateDirty <- struct{}{}:
	default:
	}
}

// persist writes the state file after changes, at most once per
// stateWriteEvery, until ctx is done (Run writes the last one).
func (b *Bridge) persist(ctx context.Context) {
	if b.stateFile == "" {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.stateDirty:
		}
		b.saveState()
		t := time.NewTimer(stateWriteEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// saveState writes every lock's entry; failures are logged, and the next
// change tries again.
func (b *Bridge) saveState() {
	if b.stateFile == "" {
		return
	}
	sf := stateFile{Version: stateFileVersion, Locks: make(map[string]savedLock, len(b.workers))}
	for _, w := range b.workers {
		if s, ok := w.saved(); ok {
			sf.Locks[w.lock.ID] = s
		}
	}
	if sameAsSaved(b.lastSaved, sf.Locks) {
		return
	}
	data, err := json.Marshal(sf)
	if err != nil {
		b.log.Error("cannot encode the lock state file", "err", err)
		return
	}
	if err := statefile.Write(b.stateFile, append(data, '\n')); err != nil {
		b.log.Warn("saving the lock state file failed", "path", b.stateFile, "err", err)
		return
	}
	b.lastSaved = sf.Locks
}

// sameAsSaved reports whether the file already says what matters of now:
// the same locks in the same states, read no more than readAtSlack apart.
func sameAsSaved(saved, now map[string]savedLock) bool {
	if saved == nil || len(saved) != len(now) {
		return false
	}
	for id, n := range now {
		s, ok := saved[id]
		if !ok || s.State != n.State || s.Status.Restored != n.Status.Restored {
			return false
		}
		st, err1 := time.Parse(time.RFC3339, s.Status.ReadAt)
		nt, err2 := time.Parse(time.RFC3339, n.Status.ReadAt)
		if err1 != nil || err2 != nil || nt.Sub(st).Abs() >= readAtSlack {
			return false
		}
	}
	return true
}
