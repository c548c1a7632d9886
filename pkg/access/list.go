package access

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/statefile"
)

// ListFile is the access list's name in the state directory.
const ListFile = "access-list.json"

// Errors of the list's edits.
var (
	ErrManaged  = errors.New("this card comes from the add-on options (NFC_CARDS): change it there")
	ErrNotFound = errors.New("no such card")
)

// Record is one card as the list keeps it and as a shared list carries it:
// the entry with its version. Version is a Lamport clock; of two records of
// one card the higher (Version, Node) wins. A removed card stays as a
// tombstone (Deleted) so that the removal wins over older copies.
type Record struct {
	Entry
	Version uint64 `json:"version"`
	Node    string `json:"node"`
	Deleted bool   `json:"deleted,omitempty"`
}

// newer reports whether r wins over o.
func (r Record) newer(o Record) bool {
	if r.Version != o.Version {
		return r.Version > o.Version
	}
	return r.Node > o.Node
}

type stored struct {
	Record
	// Pending: a local change the shared topic has not confirmed yet; it is
	// published again after every connect, also after a restart.
	Pending bool `json:"pending,omitempty"`
}

type listFile struct {
	Format int      `json:"format"`
	Clock  uint64   `json:"clock"`
	Cards  []stored `json:"cards"`
}

// ListOptions configure OpenList.
type ListOptions struct {
	Location *time.Location // the zone of dates and hours; nil: time.Local
	Node     string         // this bridge's name in versions (shared lists)
	Logger   *slog.Logger
	Now      func() time.Time // for the name of a corrupt file; nil: time.Now
}

// List is the access list: the cards of the options (managed, read-only)
// and the cards added by tapping, from Home Assistant or the page, kept in
// a file. Lookups are map reads under a read lock; every edit is on disk
// (written atomically, the previous version kept as .bak) before it
// returns. Safe for concurrent use.
type List struct {
	path string // "" keeps the list in memory
	loc  *time.Location
	node string
	log  *slog.Logger

	wmu sync.Mutex // orders the file writes; taken before mu

	mu       sync.RWMutex
	managed  map[string]Entry
	recs     map[string]*stored // by UID, tombstones included
	clock    uint64
	lastGood []byte // the file's content as last written or read
	dirty    bool   // merged changes not written yet
	onChange []func()
}

// NewList is a list in memory with the given managed cards (tests, a bridge
// without a state directory).
func NewList(managed []Entry) *List {
	l, _ := OpenList("", managed, ListOptions{})
	return l
}

// OpenList reads the list at path (or starts an empty one). A file that
// does not parse is renamed to <path>.corrupt-<time>, reported in the
// error-level log, and the last good copy (<path>.bak) used instead.
func OpenList(path string, managed []Entry, o ListOptions) (*List, error) {
	l := &List{
		path: path, loc: o.Location, node: o.Node, log: o.Logger,
		managed: make(map[string]Entry, len(managed)), recs: map[string]*stored{},
	}
	if l.loc == nil {
		l.loc = time.Local
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	for _, e := range managed {
		e = e.clone()
		// Action "" stays: the bridge's default action (NFC_ACTION).
		e.Managed, e.Enabled = true, true
		if e.AddedBy == "" {
			e.AddedBy = "options"
		}
		uid, ok := CanonicalUID(e.UID)
		if !ok {
			return nil, fmt.Errorf("access list: managed card %s: bad UID", e.Name)
		}
		e.UID = uid
		l.managed[uid] = e
	}
	if path == "" {
		return l, nil
	}
	// What a crash in the middle of a write left (statefile's temporary files).
	if tmp, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"*.tmp")); len(tmp) > 0 {
		for _, f := range tmp {
			_ = os.Remove(f)
		}
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if perr := l.load(data); perr == nil {
			l.lastGood = data
			l.adopt()
			return l, nil
		} else {
			aside := path + ".corrupt-" + now().UTC().Format("20060102T150405Z")
			if rerr := os.Rename(path, aside); rerr != nil {
				return nil, fmt.Errorf("access list %s does not parse (%v) and cannot be moved aside: %w", path, perr, rerr)
			}
			l.log.Error("the access list does not parse: kept aside, using the last good copy", "file", path, "kept_as", aside, "err", perr)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("access list: %w", err)
	}
	bak, err := os.ReadFile(path + ".bak")
	switch {
	case err == nil:
		l.recs, l.clock = map[string]*stored{}, 0
		if perr := l.load(bak); perr != nil {
			l.recs, l.clock = map[string]*stored{}, 0
			l.log.Error("the last good copy of the access list does not parse either: starting with the options' cards only", "file", path+".bak", "err", perr)
			return l, nil
		}
		l.log.Warn("access list restored from its last good copy", "file", path+".bak", "cards", len(l.recs))
		if werr := statefile.Write(path, bak); werr != nil {
			return nil, fmt.Errorf("access list: restore %s: %w", path, werr)
		}
		l.lastGood = bak
		l.adopt()
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("access list: %w", err)
	}
	return l, nil
}

// load parses a file's content into l.recs; invalid cards are skipped
// with a log line (a file with them is not corrupt).
func (l *List) load(data []byte) error {
	var f listFile
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	if f.Format != 1 {
		return fmt.Errorf("format %d, want 1", f.Format)
	}
	l.clock = f.Clock
	for _, s := range f.Cards {
		if !s.Deleted {
			if err := s.Entry.Normalize(); err != nil {
				l.log.Warn("skipping an invalid card of the access list", "name", s.Name, "err", err)
				continue
			}
		} else if uid, ok := CanonicalUID(s.UID); ok {
			s.UID = uid
		} else {
			continue
		}
		s.Managed = false
		l.clock = max(l.clock, s.Version)
		l.recs[s.UID] = &s
	}
	return nil
}

// adopt marks the cards made before the list was shared as this bridge's
// changes not yet published, so that turning ACCESS_SHARED on shares them.
// Written with the next change.
func (l *List) adopt() {
	if l.node == "" {
		return
	}
	for _, s := range l.recs {
		if s.Node == "" {
			s.Node, s.Pending = l.node, true
			l.dirty = true
		}
	}
}

// Location is the zone of the list's dates and hours.
func (l *List) Location() *time.Location { return l.loc }

// OnChange registers f, called (outside the list's locks) after every
// change of the list. Not safe to call while the list is in use.
func (l *List) OnChange(f func()) { l.onChange = append(l.onChange, f) }

func (l *List) changed() {
	for _, f := range l.onChange {
		f()
	}
}

// Lookup finds a card by canonical UID: the options' cards first.
func (l *List) Lookup(uid string) (Entry, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if e, ok := l.managed[uid]; ok {
		return e, true
	}
	if s, ok := l.recs[uid]; ok && !s.Deleted {
		return s.Entry, true
	}
	return Entry{}, false
}

// Entries are the cards (not the removed ones), sorted by name, then UID.
func (l *List) Entries() []Entry {
	l.mu.RLock()
	out := make([]Entry, 0, len(l.managed)+len(l.recs))
	for _, e := range l.managed {
		out = append(out, e.clone())
	}
	for uid, s := range l.recs {
		if _, m := l.managed[uid]; m || s.Deleted {
			continue
		}
		out = append(out, s.Entry.clone())
	}
	l.mu.RUnlock()
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.UID, b.UID))
	})
	return out
}

// Len is the number of cards.
func (l *List) Len() int { return len(l.Entries()) }

// Put creates or updates the card e.UID on behalf of editor; the returned
// record is what a shared list publishes. Fields are checked
// (errors.Join of FieldErrors); an options' card cannot be changed.
func (l *List) Put(e Entry, editor string, now time.Time) (Record, error) {
	if err := e.Normalize(); err != nil {
		return Record{}, err
	}
	return l.edit(e.UID, func(old *stored) (Record, error) {
		e.Managed = false
		e.UpdatedBy, e.UpdatedAt = editor, now
		if old != nil && !old.Deleted {
			e.AddedBy, e.AddedAt = old.AddedBy, old.AddedAt
		} else {
			e.AddedBy, e.AddedAt = editor, now
		}
		return Record{Entry: e}, nil
	})
}

// Remove deletes a card (a tombstone stays for shared lists).
func (l *List) Remove(uid, editor string, now time.Time) (Record, error) {
	return l.edit(uid, func(old *stored) (Record, error) {
		if old == nil || old.Deleted {
			return Record{}, ErrNotFound
		}
		r := Record{Entry: old.Entry.clone(), Deleted: true}
		r.UpdatedBy, r.UpdatedAt = editor, now
		return r, nil
	})
}

// SetEnabled enables or disables a card.
func (l *List) SetEnabled(uid string, on bool, editor string, now time.Time) (Record, error) {
	return l.edit(uid, func(old *stored) (Record, error) {
		if old == nil || old.Deleted {
			return Record{}, ErrNotFound
		}
		r := Record{Entry: old.Entry.clone()}
		r.Enabled = on
		r.UpdatedBy, r.UpdatedAt = editor, now
		return r, nil
	})
}

// edit applies one local change, versions it and writes the file; on a
// failed write the change is undone.
func (l *List) edit(uid string, f func(old *stored) (Record, error)) (Record, error) {
	if u, ok := CanonicalUID(uid); ok {
		uid = u
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	if _, m := l.managed[uid]; m {
		l.mu.Unlock()
		return Record{}, ErrManaged
	}
	old := l.recs[uid]
	r, err := f(old)
	if err != nil {
		l.mu.Unlock()
		return Record{}, err
	}
	clock := l.clock
	l.clock++
	r.Version, r.Node = l.clock, l.node
	if r.Deleted && l.node == "" {
		delete(l.recs, uid) // a list of its own needs no tombstone
	} else {
		l.recs[uid] = &stored{Record: r, Pending: l.node != ""}
	}
	dirty := l.dirty
	data, err := l.encodeLocked()
	l.dirty = false
	l.mu.Unlock()
	if err == nil {
		err = l.write(data)
	}
	if err != nil {
		l.mu.Lock()
		if old == nil {
			delete(l.recs, uid)
		} else {
			l.recs[uid] = old
		}
		l.clock = clock
		l.dirty = dirty
		l.mu.Unlock()
		return Record{}, fmt.Errorf("access list: not saved: %w", err)
	}
	l.changed()
	return r, nil
}

// Merge takes a record from the shared topic, in memory: Flush writes
// the file (the caller batches, since a reconnect brings every card at
// once). It reports whether the list changed. When this list holds a newer
// version of the card, that version is marked pending again, to be
// published so that the broker keeps the newest.
func (l *List) Merge(r Record) (changed bool, err error) {
	if !r.Deleted {
		if err := r.Entry.Normalize(); err != nil {
			return false, err
		}
	} else if uid, ok := CanonicalUID(r.UID); ok {
		r.UID = uid
	} else {
		return false, FieldError{"UID", "not a card UID"}
	}
	r.Managed = false
	l.mu.Lock()
	old := l.recs[r.UID]
	if old != nil && !r.newer(old.Record) {
		if old.Record.newer(r) && !old.Pending && l.node != "" {
			old.Pending = true
			l.dirty = true
		}
		l.mu.Unlock()
		return false, nil // older, or the same version: our own echo, or a copy
	}
	l.clock = max(l.clock, r.Version)
	l.recs[r.UID] = &stored{Record: r}
	l.dirty = true
	l.mu.Unlock()
	l.changed()
	return true, nil
}

// Flush writes what Merge changed.
func (l *List) Flush() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	if !l.dirty {
		l.mu.Unlock()
		return nil
	}
	data, err := l.encodeLocked()
	l.dirty = false
	l.mu.Unlock()
	if err == nil {
		err = l.write(data)
	}
	if err != nil {
		l.mu.Lock()
		l.dirty = true
		l.mu.Unlock()
		return fmt.Errorf("access list: not saved: %w", err)
	}
	return nil
}

// Pending are the local changes the shared topic has not confirmed.
func (l *List) Pending() []Record {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []Record
	for _, s := range l.recs {
		if s.Pending {
			r := s.Record
			r.Entry = r.Entry.clone()
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Record) int { return cmp.Compare(a.Version, b.Version) })
	return out
}

// Published marks version of uid as taken by the broker, in memory: the
// next Flush writes it (losing it in a crash only publishes it once more,
// which receivers ignore).
func (l *List) Published(uid string, version uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.recs[uid]
	if s == nil || !s.Pending || s.Version != version {
		return
	}
	s.Pending = false
	l.dirty = true
}

func (l *List) encodeLocked() ([]byte, error) {
	if l.path == "" {
		return nil, nil // in memory: nothing to write
	}
	f := listFile{Format: 1, Clock: l.clock, Cards: make([]stored, 0, len(l.recs))}
	for _, s := range l.recs {
		f.Cards = append(f.Cards, *s)
	}
	slices.SortFunc(f.Cards, func(a, b stored) int { return cmp.Compare(a.UID, b.UID) })
	return json.MarshalIndent(f, "", "  ")
}

// write keeps the previous good file as .bak, then replaces the file.
// Called with wmu held.
func (l *List) write(data []byte) error {
	if l.path == "" {
		return nil
	}
	if l.lastGood != nil {
		if err := statefile.Write(l.path+".bak", l.lastGood); err != nil {
			return err
		}
	}
	if err := statefile.Write(l.path, data); err != nil {
		return err
	}
	l.lastGood = data
	return nil
}
