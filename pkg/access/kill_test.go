package access

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const killChildEnv = "S2M_ACCESS_KILL_CHILD"

// TestKillChild is the writer TestKillNineKeepsAcknowledgedChanges runs in
// a process of its own: it adds card after card (and a log entry for each)
// and prints "ack N" once both returned. It does nothing in a normal run.
func TestKillChild(t *testing.T) {
	dir := os.Getenv(killChildEnv)
	if dir == "" {
		t.Skip("only as the child of TestKillNineKeepsAcknowledgedChanges")
	}
	l, err := OpenList(filepath.Join(dir, ListFile), nil, ListOptions{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	lg, err := OpenLog(dir, nil)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	for i := l.Len(); ; i++ {
		uid := fmt.Sprintf("04%012X", i)
		if _, err := l.Put(Entry{UID: uid, Name: fmt.Sprintf("Card %d", i), Action: ActionUnlock, Enabled: true}, "kill test", time.Now()); err != nil {
			fmt.Println("error", err)
			os.Exit(3)
		}
		if i%3 == 0 {
			if _, err := l.SetEnabled(uid, false, "kill test", time.Now()); err != nil {
				fmt.Println("error", err)
				os.Exit(3)
			}
		}
		lg.Append(LogEntry{Time: time.Now(), Door: "Front", Card: uid, Result: ResultEnrolled, Holder: fmt.Sprintf("Card %d", i)})
		fmt.Printf("ack %d\n", i) // os.Stdout is unbuffered
	}
}

// TestKillNineKeepsAcknowledgedChanges kills the writer with SIGKILL at
// random moments; after each kill every acknowledged change is in the list
// and the log, and both files parse.
func TestKillNineKeepsAcknowledgedChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	acked := -1
	ackedSet := map[int]bool{}
	for round := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stopped := false
		defer func() {
			if !stopped {
				cmd.Process.Kill()
				cmd.Wait()
			}
		}()
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Kill after a random number of acknowledged changes (and a random
		// part of the next one).
		want := 3 + rng.IntN(15)
		got := 0
		timeout := time.After(30 * time.Second)
	read:
		for got < want {
			select {
			case line, ok := <-lines:
				if !ok {
					break read
				}
				if rest, ok := strings.CutPrefix(line, "ack "); ok {
					// A change made but not acknowledged before the last
					// kill may be there: the next process goes on after it.
					n, _ := strconv.Atoi(rest)
					if n <= acked {
						t.Fatalf("round %d: ack %d after %d", round, n, acked)
					}
					acked = n
					ackedSet[n] = true
					got++
				} else if strings.HasPrefix(line, "error") {
					t.Fatalf("round %d: child: %s", round, line)
				}
			case <-timeout:
				cmd.Process.Kill()
				t.Fatalf("round %d: child too slow", round)
			}
		}
		time.Sleep(time.Duration(rng.IntN(20_000)) * time.Microsecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for line := range lines { // acks written before the kill landed
			if rest, ok := strings.CutPrefix(line, "ack "); ok {
				acked, _ = strconv.Atoi(rest)
				ackedSet[acked] = true
			}
		}
		_ = cmd.Wait()
		stopped = true

		// The files parse; nothing acknowledged is missing.
		data, err := os.ReadFile(filepath.Join(dir, ListFile))
		if err != nil {
			t.Fatal(err)
		}
		var f listFile
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("round %d: the list does not parse after kill -9: %v", round, err)
		}
		l, err := OpenList(filepath.Join(dir, ListFile), nil, ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range ackedSet {
			e, ok := l.Lookup(fmt.Sprintf("04%012X", i))
			if !ok || e.Name != fmt.Sprintf("Card %d", i) || e.Enabled == (i%3 == 0) {
				t.Fatalf("round %d: acknowledged card %d is missing or stale: %+v %v", round, i, e, ok)
			}
		}
		if aside, _ := filepath.Glob(filepath.Join(dir, "*.corrupt-*")); len(aside) > 0 {
			t.Fatalf("round %d: a file was corrupt: %v", round, aside)
		}
		logged := map[string]bool{}
		raw, _ := os.ReadFile(filepath.Join(dir, LogFile))
		for n, line := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
			var e LogEntry
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("round %d: log line %d does not parse: %q", round, n+1, line)
			}
			logged[e.Card] = true
		}
		for i := range ackedSet {
			if !logged[fmt.Sprintf("04%012X", i)] {
				t.Fatalf("round %d: acknowledged log entry %d is missing", round, i)
			}
		}
		if tmp, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(tmp) > 1 {
			t.Errorf("round %d: temporary files pile up: %v", round, tmp)
		}
		t.Logf("round %d: killed after %d acknowledged changes; all there", round, len(ackedSet))
	}
}
