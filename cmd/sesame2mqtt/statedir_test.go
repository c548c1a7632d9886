package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
)

func statusReads(fake *sesametest.Server) int {
	n := 0
	for _, r := range fake.Requests() {
		if r.Method == "GET" {
			n++
		}
	}
	return n
}

// TestRestartShowsLastStateFromStateDir: the binary keeps each lock's last
// status and state in STATE_DIR/locks.json; a restart shows them at once,
// marked restored, without reading the lock again.
func TestRestartShowsLastStateFromStateDir(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	dir := t.TempDir()
	env := append(bridgeEnv(t, broker, fake), "STATE_DIR="+dir) // the last STATE_DIR wins
	rec := broker.Subscribe(t, "sesame2mqtt/#")
	status := "sesame2mqtt/" + lockID + "/status"

	p := startProc(t, env)
	first := rec.WaitFor(t, status, nil, 10*time.Second)
	p.terminate(t, 5*time.Second)
	raw, err := os.ReadFile(filepath.Join(dir, "locks.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sf struct {
		Version int `json:"version"`
		Locks   map[string]struct {
			State string `json:"state"`
		} `json:"locks"`
	}
	if err := json.Unmarshal(raw, &sf); err != nil || sf.Locks[lockID].State != "LOCKED" {
		t.Fatalf("locks.json %s (%v)", raw, err)
	}

	before := statusReads(fake)
	since := time.Now()
	startProc(t, env)
	m := rec.WaitForAfter(t, since, status, func(p string) bool { return strings.Contains(p, `"restored":true`) }, 10*time.Second)
	var a, b struct {
		ReadAt string `json:"read_at"`
	}
	_ = json.Unmarshal([]byte(first.Payload), &a)
	_ = json.Unmarshal([]byte(m.Payload), &b)
	if a.ReadAt == "" || a.ReadAt != b.ReadAt {
		t.Errorf("restored read_at %q, want the first run's %q", b.ReadAt, a.ReadAt)
	}
	rec.WaitForAfter(t, since, "sesame2mqtt/"+lockID+"/state", is("LOCKED"), 5*time.Second)
	time.Sleep(500 * time.Millisecond)
	if n := statusReads(fake) - before; n != 0 {
		t.Errorf("%d status reads at a restart right after the last one, want 0", n)
	}
}
