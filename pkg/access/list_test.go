package access

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func openTestList(t *testing.T, path string, logs *bytes.Buffer) *List {
	t.Helper()
	var log *slog.Logger
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, nil))
	}
	l, err := OpenList(path, []Entry{{UID: "04a22b1cd35e80", Name: "Alice"}}, ListOptions{Location: time.UTC, Logger: log, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestListPersistsEveryEdit(t *testing.T) {
	path := filepath.Join(t.TempDir(), ListFile)
	l := openTestList(t, path, nil)
	if _, err := l.Put(Entry{UID: "04112233", Name: "Bob", Action: ActionUnlock, Enabled: true}, "Home Assistant", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Put(Entry{UID: "0411223344556677", Name: "Chika", Action: ActionToggle, Enabled: true, Doors: []string{"back"}}, "Alice (HA user)", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := l.SetEnabled("04112233", false, "page", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Remove("0411223344556677", "page", t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Remove("04A22B1CD35E80", "page", t0); !errors.Is(err, ErrManaged) {
		t.Errorf("removing an options' card: %v, want ErrManaged", err)
	}
	if _, err := l.Put(Entry{UID: "04A22B1CD35E80", Name: "Mallory", Action: ActionUnlock, Enabled: true}, "page", t0); !errors.Is(err, ErrManaged) {
		t.Errorf("overwriting an options' card: %v, want ErrManaged", err)
	}
	if _, err := l.Remove("04999999", "page", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing a card that is not there: %v", err)
	}

	again := openTestList(t, path, nil)
	es := again.Entries()
	if len(es) != 2 || es[0].Name != "Alice" || !es[0].Managed || es[1].Name != "Bob" || es[1].Enabled || es[1].AddedBy != "Home Assistant" || es[1].UpdatedBy != "page" || !es[1].AddedAt.Equal(t0) {
		t.Errorf("after reopening: %+v", es)
	}
	if _, ok := again.Lookup("0411223344556677"); ok {
		t.Error("a removed card is back")
	}
	if _, err := os.Stat(path + ".bak"); err != nil {
		t.Errorf("no .bak of the previous version: %v", err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
}

func TestCorruptListKeptAsideAndLastGoodUsed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ListFile)
	l := openTestList(t, path, nil)
	for i, name := range []string{"Bob", "Chika"} {
		if _, err := l.Put(Entry{UID: fmt.Sprintf("0411223%d", i), Name: name, Action: ActionUnlock, Enabled: true}, "HA", t0); err != nil {
			t.Fatal(err)
		}
	}
	// Not torn by our writes (they are atomic), but by a disk or a hand.
	if err := os.WriteFile(path, []byte(`{"format":1,"cards":[{"uid":`), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	again := openTestList(t, path, &logs)
	es := again.Entries()
	// The .bak is the version before the last write: Alice and Bob.
	if len(es) != 2 || es[1].Name != "Bob" {
		t.Errorf("from the last good copy: %+v", es)
	}
	aside, _ := filepath.Glob(path + ".corrupt-*")
	if len(aside) != 1 || !strings.HasSuffix(aside[0], ".corrupt-20260302T090000Z") {
		t.Errorf("kept aside: %v", aside)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "does not parse") {
		t.Errorf("not reported: %s", logs.String())
	}
	if data, err := os.ReadFile(path); err != nil || !bytes.Contains(data, []byte("Bob")) {
		t.Errorf("the list was not restored to its file: %v %s", err, data)
	}
	// Both broken: the options' cards only, reported.
	os.WriteFile(path, []byte("garbage"), 0o600)
	os.WriteFile(path+".bak", []byte("garbage"), 0o600)
	logs.Reset()
	worst := openTestList(t, path, &logs)
	if n := len(worst.Entries()); n != 1 || !strings.Contains(logs.String(), "does not parse either") {
		t.Errorf("%d cards; log %s", n, logs.String())
	}
}

func TestMergeLastWriterWinsPerCard(t *testing.T) {
	l, err := OpenList("", nil, ListOptions{Node: "door-a"})
	if err != nil {
		t.Fatal(err)
	}
	mine, err := l.Put(Entry{UID: "04112233", Name: "Bob", Action: ActionUnlock, Enabled: true}, "A", t0)
	if err != nil {
		t.Fatal(err)
	}
	if p := l.Pending(); len(p) != 1 || p[0].Version != mine.Version {
		t.Fatalf("pending = %+v", p)
	}
	l.Published(mine.UID, mine.Version)
	if p := l.Pending(); len(p) != 0 {
		t.Fatalf("pending after publishing = %+v", p)
	}
	// Newer from door B: taken.
	theirs := Record{Entry: Entry{UID: "04112233", Name: "Bob B", Action: ActionLock, Enabled: true, UpdatedBy: "B"}, Version: mine.Version + 1, Node: "door-b"}
	if changed, err := l.Merge(theirs); err != nil || !changed {
		t.Fatalf("merge newer: %v %v", changed, err)
	}
	if e, _ := l.Lookup("04112233"); e.Name != "Bob B" {
		t.Errorf("after newer: %+v", e)
	}
	// Older: ignored, and our newer copy is to be published again.
	old := theirs
	old.Version, old.Name = 1, "stale"
	if changed, _ := l.Merge(old); changed {
		t.Error("an older copy changed the list")
	}
	if p := l.Pending(); len(p) != 1 || p[0].Name != "Bob B" {
		t.Errorf("our newer copy is not pending: %+v", p)
	}
	// Same version, tie broken by node name.
	tie := theirs
	tie.Node, tie.Name = "door-c", "Bob C"
	if changed, _ := l.Merge(tie); !changed {
		t.Error("the tie did not go to the higher node")
	}
	// A tombstone wins over older copies and hides the card.
	tomb := Record{Entry: Entry{UID: "04112233"}, Version: theirs.Version + 5, Node: "door-b", Deleted: true}
	if changed, _ := l.Merge(tomb); !changed {
		t.Error("tombstone not taken")
	}
	if _, ok := l.Lookup("04112233"); ok {
		t.Error("removed card still found")
	}
	// The next local edit is newer than everything seen.
	r, err := l.Put(Entry{UID: "04112233", Name: "Bob again", Action: ActionUnlock, Enabled: true}, "A", t0)
	if err != nil || r.Version <= tomb.Version {
		t.Errorf("local edit version %d after %d: %v", r.Version, tomb.Version, err)
	}
	if _, err := l.Merge(Record{Entry: Entry{UID: "04112233", Name: ""}, Version: 999}); err == nil {
		t.Error("an invalid remote card was taken")
	}
}

func TestLookupOfThousandCards(t *testing.T) {
	l := NewList(nil)
	for i := range 1000 {
		if _, err := l.Put(Entry{UID: fmt.Sprintf("04%012X", i), Name: fmt.Sprintf("Person %d", i), Action: ActionUnlock, Enabled: true}, "t", t0); err != nil {
			t.Fatal(err)
		}
	}
	if e, ok := l.Lookup(fmt.Sprintf("04%012X", 777)); !ok || e.Name != "Person 777" {
		t.Errorf("lookup = %+v %v", e, ok)
	}
	if n := l.Len(); n != 1000 {
		t.Errorf("%d cards", n)
	}
}

func BenchmarkLookup1000(b *testing.B) {
	l := NewList(nil)
	for i := range 1000 {
		l.Put(Entry{UID: fmt.Sprintf("04%012X", i), Name: "p", Action: ActionUnlock, Enabled: true}, "t", t0)
	}
	uid := fmt.Sprintf("04%012X", 500)
	for b.Loop() {
		l.Lookup(uid)
	}
}

func TestTurningSharingOnSharesTheCardsMadeBefore(t *testing.T) {
	path := filepath.Join(t.TempDir(), ListFile)
	own := openTestList(t, path, nil)
	if _, err := own.Put(Entry{UID: "04112233", Name: "Bob", Action: ActionUnlock, Enabled: true}, "HA", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := own.Put(Entry{UID: "04112244", Name: "Gone", Action: ActionUnlock, Enabled: true}, "HA", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := own.Remove("04112244", "HA", t0); err != nil {
		t.Fatal(err)
	}
	if p := own.Pending(); len(p) != 0 {
		t.Errorf("a list of its own has pending changes: %+v", p)
	}
	data, _ := os.ReadFile(path)
	if bytes.Contains(data, []byte("04112244")) {
		t.Error("a list of its own keeps a tombstone")
	}
	shared, err := OpenList(path, nil, ListOptions{Node: "door-a"})
	if err != nil {
		t.Fatal(err)
	}
	if p := shared.Pending(); len(p) != 1 || p[0].Name != "Bob" || p[0].Node != "door-a" {
		t.Errorf("pending after turning sharing on = %+v", p)
	}
}
