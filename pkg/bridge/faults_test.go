package bridge

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// Issue I.1: a shutdown after the command may have reached the cloud leaves
// its outcome unknown, and that is what is published.
func TestShutdownMidCommandPublishesUnknown(t *testing.T) {
	for _, tc := range []struct {
		name   string
		block  bool          // the POST never returns
		stopAt time.Duration // after the command arrived
		detail string
	}{
		{"accepted, not read back", false, time.Second, "after the cloud accepted it"},
		{"while the POST is under way", true, time.Second, "while it was being sent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCloud(sesame.StateLocked)
				h := start(t, c, nil, true)
				synctest.Wait()
				c.mu.Lock()
				c.block = tc.block
				c.mu.Unlock()
				h.send("set", "UNLOCK")
				time.Sleep(tc.stopAt)
				h.stop()
				states := h.pub.payloads(h.topics.LockState("lock1"))
				if !equal(states, []string{"LOCKED", "UNLOCKING", string(hass.Reset)}) {
					t.Errorf("states %v, want the outcome unknown (None) at the end, not the old LOCKED", states)
				}
				r := h.results(t)
				if len(r) != 1 || r[0].Result != hass.ResultUnknown || !strings.Contains(r[0].Detail, tc.detail) {
					t.Errorf("results %+v, want one unknown saying %q", r, tc.detail)
				}
				if len(c.sent()) != 1 {
					t.Errorf("sent %+v", c.sent())
				}
			})
		})
	}
}

// A command the cloud refused stays failed, and the old state comes back;
// one interrupted before anything was sent is failed too.
func TestShutdownAfterRefusalOrBeforeSendIsFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(sesame.StateLocked)
		c.cmdErr = &sesame.APIError{Op: "command", UUID: testLock.UUID, StatusCode: 403, Message: "Forbidden"}
		h := start(t, c, nil, true)
		synctest.Wait()
		h.send("set", "UNLOCK")
		synctest.Wait()
		h.stop()
		if r := h.results(t); len(r) != 1 || r[0].Result != hass.ResultFailed {
			t.Errorf("refused: results %+v", r)
		}
		if states := h.pub.payloads(h.topics.LockState("lock1")); states[len(states)-1] != "LOCKED" {
			t.Errorf("refused: states %v", states)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(sesame.StateLocked)
		h := start(t, c, nil, false)
		h.b.cloud = &slowCloud{cloud: c, delay: time.Hour} // toggle must read first; the read hangs
		h.run()
		h.send("toggle", "PRESS")
		time.Sleep(time.Second)
		h.stop()
		if len(c.sent()) != 0 {
			t.Fatal("sent a command")
		}
		r := h.results(t)
		if len(r) != 1 || r[0].Result != hass.ResultFailed || !strings.Contains(r[0].Detail, "before it was sent") {
			t.Errorf("before sending: results %+v", r)
		}
		if states := h.pub.payloads(h.topics.LockState("lock1")); len(states) != 0 {
			t.Errorf("before sending: states %v, want none", states)
		}
	})
}

// Issue I.2: Refresh reads at most once a minute per lock, and never from
// the commands' reserve.
func TestRefreshCoalescedAndWithinTheAllowance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(sesame.StateLocked)
		bud := &fixedBudget{interval: time.Hour, ok: true}
		h := start(t, c, bud, true)
		synctest.Wait()
		before := len(c.readTimes()) // the read at start
		// 300 presses in 3 s.
		for range 300 {
			h.send("refresh", "PRESS")
			time.Sleep(10 * time.Millisecond)
		}
		synctest.Wait()
		if n := len(c.readTimes()) - before; n != 1 {
			t.Errorf("300 presses in 3 s made %d reads, want 1", n)
		}
		logs := h.logs.String()
		if n := strings.Count(logs, "refresh coalesced"); n < 1 || n > 6 {
			t.Errorf("%d log lines about coalesced presses, want a few (rate-limited)", n)
		}
		time.Sleep(DefaultTiming.RefreshEvery)
		h.send("refresh", "PRESS")
		synctest.Wait()
		if n := len(c.readTimes()) - before; n != 2 {
			t.Errorf("a press a minute later: %d reads in all, want 2", n)
		}
		if r := h.results(t); len(r) != 0 {
			t.Errorf("results %+v for reads that were made", r)
		}

		// The allowance for reads is spent: refused, with a log line and a result.
		bud.spend()
		time.Sleep(DefaultTiming.RefreshEvery)
		n := len(c.readTimes())
		h.send("refresh", "PRESS")
		h.send("refresh", "PRESS")
		synctest.Wait()
		if len(c.readTimes()) != n {
			t.Error("Refresh read from the commands' reserve")
		}
		r := h.results(t)
		if len(r) != 1 || r[0].Command != "refresh" || r[0].Result != hass.ResultFailed || !strings.Contains(r[0].Detail, "allowance") {
			t.Errorf("results %+v, want one refusal", r)
		}
		if !strings.Contains(h.logs.String(), "refresh refused") {
			t.Error("no log line for the refused refresh")
		}
	})
}

// Issue I.3: the last result that could not be published is published once
// after the reconnect, marked delayed, if it is younger than 5 minutes.
func TestResultSurvivesOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, newCloud(sesame.StateLocked), nil, true)
		synctest.Wait()
		h.b.OnConnect()
		h.send("set", "UNLOCK")
		time.Sleep(time.Second)
		h.pub.setDown(true) // the broker goes away while the lock moves
		time.Sleep(20 * time.Second)
		synctest.Wait()
		ended := time.Now().Add(-20*time.Second + 1500*time.Millisecond) // confirmed 2.5 s after the command
		if r := h.results(t); len(r) != 0 {
			t.Fatalf("results %+v published while down", r)
		}
		time.Sleep(time.Minute)
		h.pub.setDown(false)
		h.b.OnConnect()
		r := h.results(t)
		if len(r) != 1 || r[0].Result != hass.ResultSuccess || !r[0].Delayed || r[0].EndedAt != ended.UTC().Format(time.RFC3339) {
			t.Fatalf("results %+v, want the success, delayed, ended at %s", r, ended.UTC().Format(time.RFC3339))
		}
		// Published once.
		h.b.OnConnect()
		if r := h.results(t); len(r) != 1 {
			t.Errorf("%d results after a second connect, want 1", len(r))
		}
	})
}

func TestOldOrSupersededUndeliveredResultsAreDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, newCloud(sesame.StateLocked), nil, true)
		synctest.Wait()
		h.pub.setDown(true)
		h.send("set", "UNLOCK")
		time.Sleep(20 * time.Second)
		h.send("set", "LOCK")
		time.Sleep(20 * time.Second)
		synctest.Wait()
		h.pub.setDown(false)
		h.b.OnConnect()
		r := h.results(t)
		if len(r) != 1 || r[0].Command != "lock" || !r[0].Delayed {
			t.Fatalf("results %+v, want only the last one (lock), delayed", r)
		}

		h.pub.setDown(true)
		h.send("set", "UNLOCK")
		time.Sleep(5*time.Minute + 20*time.Second)
		synctest.Wait()
		h.pub.setDown(false)
		h.b.OnConnect()
		if r := h.results(t); len(r) != 1 {
			t.Errorf("a result older than 5 minutes was published: %+v", r[1:])
		}
		if !strings.Contains(h.logs.String(), "too old") {
			t.Error("no log line for the dropped result")
		}
	})
}

// Issue I.5: retained junk under our command topics is cleared, also for
// locks that are not configured; warnings are rate-limited per kind.
func TestGarbageIsQuietAndRetainedJunkCleared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, newCloud(sesame.StateLocked), nil, true)
		synctest.Wait()
		for i := range 1000 {
			h.b.HandleMessage(mqtt.Message{Topic: "s2m/nolock" + string(rune('a'+i%26)) + "/set", Payload: []byte("UNLOCK"), Retained: i%2 == 0})
			h.b.HandleMessage(mqtt.Message{Topic: "s2m/lock1/set", Payload: []byte("unlock now")})
			h.b.HandleMessage(mqtt.Message{Topic: "s2m/lock1/toggle", Payload: []byte(strings.Repeat("x", 5000))})
		}
		synctest.Wait()
		if sent := h.cloud.sent(); len(sent) != 0 {
			t.Fatalf("garbage sent %+v", sent)
		}
		cleared := h.pub.on("s2m/nolocka/set")
		if len(cleared) == 0 || !cleared[0].Retained || cleared[0].Payload != "" {
			t.Errorf("retained junk of an unknown lock not cleared: %+v", cleared)
		}
		logs := h.logs.String()
		for kind, want := range map[string]int{"retained command": 5, "not configured": 5, `msg="ignoring command" lock`: 5} {
			if n := strings.Count(logs, kind); n != want {
				t.Errorf("%d lines with %q, want %d (the burst)", n, kind, want)
			}
		}
		if len(logs) > 20000 {
			t.Errorf("3,000 unwanted messages wrote %d bytes of log", len(logs))
		}
		// A valid command still goes through.
		h.send("set", "UNLOCK")
		time.Sleep(20 * time.Second)
		if sent := h.cloud.sent(); len(sent) != 1 {
			t.Errorf("sent %+v", sent)
		}
		time.Sleep(time.Minute)
		if !strings.Contains(h.logs.String(), "suppressed=") {
			t.Error("no summary of the suppressed lines")
		}
	})
}

// Issue I.6: the state file brings the last known state back at once,
// marked restored, and the scheduler does not read a lock read recently.
func TestStateFileRestoresAndSkipsRecentReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "locks.json")
		withFile := func(o *Options) { o.StateFile = path }
		bud := &fixedBudget{interval: 18 * time.Minute, ok: true}

		c := newCloud(sesame.StateUnlocked)
		h := start(t, c, bud, true, withFile)
		synctest.Wait()
		readAt := time.Now().UTC().Format(time.RFC3339)
		time.Sleep(5 * time.Second) // the file is written within a second
		h.stop()
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var sf stateFile
		if err := json.Unmarshal(raw, &sf); err != nil || sf.Locks["lock1"].State != hass.Unlocked || sf.Locks["lock1"].Status.ReadAt != readAt {
			t.Fatalf("state file %s (%v)", raw, err)
		}

		// A restart 10 minutes later: shown at once, not read.
		time.Sleep(10 * time.Minute)
		c2 := newCloud(sesame.StateUnlocked)
		h2 := start(t, c2, bud, true, withFile)
		h2.b.OnConnect()
		synctest.Wait()
		if n := len(c2.readTimes()); n != 0 {
			t.Errorf("a lock read 10 minutes ago was read again at start (%d reads)", n)
		}
		if st := h2.pub.payloads(h2.topics.LockState("lock1")); !equal(st, []string{"UNLOCKED"}) {
			t.Errorf("states after restart %v, want the restored UNLOCKED", st)
		}
		status := h2.pub.payloads(h2.topics.LockStatus("lock1"))
		if len(status) != 1 || !strings.Contains(status[0], `"read_at":"`+readAt+`"`) || !strings.Contains(status[0], `"restored":true`) {
			t.Errorf("status after restart %v, want the old read_at and restored", status)
		}
		// The schedule goes on: the next read within one interval, and it is fresh.
		time.Sleep(18 * time.Minute)
		synctest.Wait()
		if n := len(c2.readTimes()); n != 1 {
			t.Errorf("%d reads in the first interval after the restart, want 1", n)
		}
		status = h2.pub.payloads(h2.topics.LockStatus("lock1"))
		if strings.Contains(status[len(status)-1], "restored") {
			t.Errorf("a fresh read is still marked restored: %s", status[len(status)-1])
		}
		// A command cut short by the shutdown is saved as unknown.
		h2.send("set", "LOCK")
		time.Sleep(time.Second)
		h2.stop()
		raw, _ = os.ReadFile(path)
		if err := json.Unmarshal(raw, &sf); err != nil || sf.Locks["lock1"].State != hass.Reset {
			t.Errorf("after an interrupted command the file says %s (%v), want None", raw, err)
		}

		// Unknown is not a state to show until its turn: read at start.
		c3 := newCloud(sesame.StateLocked)
		h3 := start(t, c3, bud, true, withFile)
		synctest.Wait()
		if n := len(c3.readTimes()); n != 1 {
			t.Errorf("a lock saved as unknown: %d reads at start, want 1", n)
		}
		time.Sleep(2 * time.Second)
		h3.stop()

		// Read at start when the file's read is older than one round.
		time.Sleep(time.Hour)
		c4 := newCloud(sesame.StateLocked)
		start(t, c4, bud, true, withFile)
		synctest.Wait()
		if n := len(c4.readTimes()); n != 1 {
			t.Errorf("a lock last read an hour ago: %d reads at start, want 1", n)
		}
	})
}

func TestBadStateFileIsIgnored(t *testing.T) {
	for name, content := range map[string]string{
		"not json":      "{{{",
		"wrong version": `{"version":7,"locks":{}}`,
		"bad entry":     `{"version":1,"locks":{"lock1":{"state":"OPEN","status":{"read_at":"yesterday"}}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "locks.json")
				if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
				c := newCloud(sesame.StateLocked)
				h := start(t, c, nil, true, func(o *Options) { o.StateFile = path })
				synctest.Wait()
				if n := len(c.readTimes()); n != 1 {
					t.Errorf("%d reads at start, want 1", n)
				}
				if !strings.Contains(h.logs.String(), "ignoring") {
					t.Errorf("no log line for the bad file:\n%s", h.logs.String())
				}
				time.Sleep(2 * time.Second)
				h.stop()
				raw, _ := os.ReadFile(path)
				var sf stateFile
				if err := json.Unmarshal(raw, &sf); err != nil || sf.Locks["lock1"].State != hass.Locked {
					t.Errorf("the bad file was not replaced by a good one: %s", raw)
				}
			})
		})
	}
}
