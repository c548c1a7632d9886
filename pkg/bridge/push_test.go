package bridge

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// pushCloud is the in-memory cloud with a push feed: an accepted command
// sends "moved" at once and the target when the move ends, as the
// shadow's documents do; history records commands and hand turns.
type pushCloud struct {
	*cloud
	b    *Bridge
	feed bool // documents are sent

	hmu     sync.Mutex
	history []sesame.HistoryEntry // oldest first
	hreads  int
	rid     int64
}

func newPushCloud(s sesame.LockState) *pushCloud {
	return &pushCloud{cloud: newCloud(s), feed: true}
}

func (p *pushCloud) Command(ctx context.Context, uuid string, sec sesame.Secret, cmd sesame.Cmd, tag string) error {
	err := p.cloud.Command(ctx, uuid, sec, cmd, tag)
	p.cloud.mu.Lock()
	moving, target, after := !p.arriveAt.IsZero(), p.target, p.moveAfter
	p.cloud.mu.Unlock()
	if err != nil || !moving {
		return err
	}
	typ := sesame.HistoryWebLock
	if target == sesame.StateUnlocked {
		typ = sesame.HistoryWebUnlock
	}
	p.record(typ, tag)
	p.doc(sesame.StateMoved)
	time.AfterFunc(after, func() {
		p.cloud.mu.Lock()
		p.state, p.arriveAt = p.target, time.Time{}
		p.cloud.mu.Unlock()
		p.doc(target)
	})
	return nil
}

func (p *pushCloud) History(_ context.Context, _ string, n int) ([]sesame.HistoryEntry, error) {
	p.hmu.Lock()
	defer p.hmu.Unlock()
	p.hreads++
	var out []sesame.HistoryEntry
	for i := len(p.history) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, p.history[i])
	}
	return out, nil
}

func (p *pushCloud) record(typ int, tag string) {
	p.hmu.Lock()
	defer p.hmu.Unlock()
	p.rid++
	p.history = append(p.history, sesame.HistoryEntry{Type: typ, Tag: tag, At: time.Now(), RecordID: p.rid})
}

func (p *pushCloud) historyReads() int {
	p.hmu.Lock()
	defer p.hmu.Unlock()
	return p.hreads
}

// turn moves the lock by hand (or by the app: typ) and sends its document.
func (p *pushCloud) turn(s sesame.LockState, typ int, tag string) {
	p.cloud.mu.Lock()
	p.state, p.arriveAt = s, time.Time{}
	p.cloud.mu.Unlock()
	p.record(typ, tag)
	p.doc(s)
}

func (p *pushCloud) doc(s sesame.LockState) {
	if !p.feed {
		return
	}
	on := true
	p.b.PushDocument(Document{UUID: strings.ToLower(testLock.UUID), Source: hass.SourcePush, Received: time.Now(),
		Status: sesame.Status{State: s, RawState: "0a", Battery: 90, Voltage: 5.95, Position: 12, HubOnline: &on}})
}

func (p *pushCloud) shadowDoc() {
	on := true
	p.cloud.mu.Lock()
	s := p.state
	p.cloud.mu.Unlock()
	p.b.PushDocument(Document{UUID: testLock.UUID, Source: hass.SourceShadowRead, Received: time.Now(),
		Status: sesame.Status{State: s, RawState: "0a", Battery: 90, Voltage: 5.95, Position: 12, HubOnline: &on}})
}

// startPush runs a bridge with push on; the feed connects and the shadow
// read arrives, as the push client does at start.
func startPush(t *testing.T, pc *pushCloud, bud *fixedBudget, connect bool) *harness {
	h := start(t, pc.cloud, bud, false, func(o *Options) { o.Cloud = pc; o.Push = true })
	pc.b = h.b
	h.run()
	h.b.OnConnect()
	if connect {
		h.b.PushHealth(PushHealth{Connected: true})
		pc.shadowDoc()
	}
	synctest.Wait()
	return h
}

func (h *harness) stateSource(t *testing.T) hass.StateSource {
	t.Helper()
	p := h.pub.payloads(h.topics.StateSource())
	if len(p) == 0 {
		t.Fatal("no state source published")
	}
	var s hass.StateSource
	if err := json.Unmarshal([]byte(p[len(p)-1]), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (h *harness) activities(t *testing.T) []hass.Activity {
	t.Helper()
	var out []hass.Activity
	for _, p := range h.pub.payloads(h.topics.LockActivity("lock1")) {
		var a hass.Activity
		if err := json.Unmarshal([]byte(p), &a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

func lastStatus(t *testing.T, h *harness) hass.Status {
	t.Helper()
	p := h.pub.payloads(h.topics.LockStatus("lock1"))
	if len(p) == 0 {
		t.Fatal("no status")
	}
	var s hass.Status
	if err := json.Unmarshal([]byte(p[len(p)-1]), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// A hand turn reaches the state at once, with zero Web API status reads;
// the history read afterwards names how it happened.
func TestPushHandTurnNoReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pc := newPushCloud(sesame.StateLocked)
		h := startPush(t, pc, nil, true)
		time.Sleep(time.Minute) // past the start-up grace
		synctest.Wait()
		if got := h.pub.payloads(h.topics.LockState("lock1")); !equal(got, []string{"LOCKED"}) {
			t.Fatalf("states %v", got)
		}
		t0 := time.Now()
		pc.turn(sesame.StateUnlocked, sesame.HistoryManualUnlocked, "")
		synctest.Wait()
		st := h.pub.on(h.topics.LockState("lock1"))
		if last := st[len(st)-1]; last.Payload != "UNLOCKED" || !last.At.Equal(t0) {
			t.Fatalf("state %+v, want UNLOCKED at once", last)
		}
		if s := lastStatus(t, h); s.Source != hass.SourcePush || s.SesameStatus != "unlocked" {
			t.Errorf("status %+v", s)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := len(pc.readTimes()); n != 0 {
			t.Errorf("%d Web API status reads, want 0", n)
		}
		if n := pc.historyReads(); n != 1 {
			t.Errorf("%d history reads, want 1", n)
		}
		a := h.activities(t)
		if len(a) != 1 || a[0].EventType != hass.ActivityManualUnlocked || a[0].Method != "manual" || a[0].HistoryType == nil || *a[0].HistoryType != 8 {
			t.Errorf("activity %+v", a)
		}
		if s := h.stateSource(t); s.Source != hass.StateSourcePush {
			t.Errorf("state source %+v", s)
		}
	})
}

// A command confirmed by push costs exactly one Web API request.
func TestPushConfirmsCommandWithOneRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pc := newPushCloud(sesame.StateLocked)
		h := startPush(t, pc, nil, true)
		time.Sleep(time.Minute)
		h.send("set", "UNLOCK")
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if n, r := len(pc.sent()), len(pc.readTimes()); n != 1 || r != 0 {
			t.Errorf("%d commands and %d reads, want 1 and 0", n, r)
		}
		if pc.historyReads() != 0 {
			t.Error("our own command must not cost a history read")
		}
		r := h.results(t)
		if len(r) != 1 || r[0].Result != hass.ResultSuccess || !strings.Contains(r[0].Detail, "confirmed by push after 2s") {
			t.Fatalf("results %+v", r)
		}
		if got := h.pub.payloads(h.topics.LockState("lock1")); !equal(got, []string{"LOCKED", "UNLOCKING", "UNLOCKED"}) {
			t.Errorf("states %v", got)
		}
		a := h.activities(t)
		if len(a) != 1 || a[0].EventType != hass.ActivityWebUnlocked || a[0].By != SourceHA || a[0].Method != "sesame2mqtt" {
			t.Errorf("activity %+v", a)
		}
	})
}

// The JAMMED rule stays under push: no arriving document within 15 s.
func TestPushJammed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pc := newPushCloud(sesame.StateLocked)
		pc.noMove = true
		h := startPush(t, pc, nil, true)
		time.Sleep(time.Minute)
		h.send("set", "UNLOCK")
		time.Sleep(30 * time.Second)
		synctest.Wait()
		r := h.results(t)
		if len(r) != 1 || r[0].Result != hass.ResultJammed {
			t.Fatalf("results %+v", r)
		}
		// Nothing came at all: the feed was caught silent, and the rest
		// was confirmed by Web API reads (the one at 15 s).
		if n := len(pc.readTimes()); n != 1 {
			t.Errorf("%d reads, want 1 (after the silence)", n)
		}
	})
}

// The feed dies: polling within 60 s, said in HA and the log; back to push
// when it returns.
func TestPushFallbackBothWays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pc := newPushCloud(sesame.StateLocked)
		bud := &fixedBudget{interval: 20 * time.Second, ok: true, changed: make(chan struct{}, 1)}
		h := startPush(t, pc, bud, true)
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if n := len(pc.readTimes()); n != 0 {
			t.Fatalf("%d reads while push is healthy, want 0", n)
		}
		t0 := time.Now()
		pc.feed = false
		h.b.PushHealth(PushHealth{Connected: false, Reason: "dial wss://iot: connection refused"})
		time.Sleep(60 * time.Second)
		synctest.Wait()
		s := h.stateSource(t)
		if s.Source != hass.StateSourceFailing || !strings.Contains(s.Reason, "connection refused") {
			t.Errorf("state source %+v", s)
		}
		reads := pc.readTimes()
		if len(reads) == 0 || reads[0].Sub(t0) > 60*time.Second {
			t.Fatalf("reads %v after the feed died at %v: want polling within 60 s", reads, t0)
		}
		if !strings.Contains(h.logs.String(), "back to budgeted Web API polling") {
			t.Error("the log must say so")
		}
		pc.feed = true
		h.b.PushHealth(PushHealth{Connected: true})
		synctest.Wait()
		n := len(pc.readTimes())
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if s := h.stateSource(t); s.Source != hass.StateSourcePush {
			t.Errorf("state source %+v, want push again", s)
		}
		if m := len(pc.readTimes()); m != n {
			t.Errorf("%d reads after push came back, want none", m-n)
		}
		var u hass.Usage
		us := h.pub.payloads(h.topics.Usage())
		_ = json.Unmarshal([]byte(us[len(us)-1]), &u)
		if u.BackgroundReads != "push" {
			t.Errorf("usage %+v", u)
		}
	})
}

// Connected but silent after a command: Web API confirmation, polling, and
// push again with the next document.
func TestPushSilentFeed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pc := newPushCloud(sesame.StateLocked)
		h := startPush(t, pc, nil, true)
		time.Sleep(time.Minute)
		pc.feed = false
		h.send("set", "UNLOCK")
		time.Sleep(60 * time.Second)
		synctest.Wait()
		r := h.results(t)
		if len(r) != 1 || r[0].Result != hass.ResultSuccess {
			t.Fatalf("results %+v", r)
		}
		if n := len(pc.readTimes()); n != 1 {
			t.Errorf("%d reads, want 1 (at 15 s, after 10 s of silence)", n)
		}
		if s := h.stateSource(t); s.Source != hass.StateSourceFailing || !strings.Contains(s.Reason, "no document") {
			t.Errorf("state source %+v", s)
		}
		pc.feed = true
		pc.turn(sesame.StateLocked, sesame.HistoryManualLocked, "")
		synctest.Wait()
		if s := h.stateSource(t); s.Source != hass.StateSourcePush {
			t.Errorf("state source %+v, want push again", s)
		}
	})
}

// The month's reads spent: no history read, the state still live.
func TestPushBudgetSpentNoHistory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pc := newPushCloud(sesame.StateLocked)
		bud := &fixedBudget{interval: time.Hour, ok: true, changed: make(chan struct{}, 1)}
		h := startPush(t, pc, bud, true)
		time.Sleep(time.Minute)
		bud.spend()
		pc.turn(sesame.StateUnlocked, sesame.HistoryManualUnlocked, "")
		synctest.Wait()
		if got := h.pub.payloads(h.topics.LockState("lock1")); got[len(got)-1] != "UNLOCKED" {
			t.Fatalf("states %v", got)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if pc.historyReads() != 0 {
			t.Error("history read with the budget spent")
		}
		a := h.activities(t)
		if len(a) != 1 || a[0].EventType != hass.ActivityUnlocked || a[0].By != "unknown" {
			t.Errorf("activity %+v", a)
		}
		if !strings.Contains(h.logs.String(), "history read skipped") {
			t.Error("the skip must be logged")
		}
	})
}

// A burst of changes costs one history read, which names the last actor.
func TestPushHistoryDebounced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pc := newPushCloud(sesame.StateLocked)
		h := startPush(t, pc, nil, true)
		time.Sleep(time.Minute)
		pc.turn(sesame.StateUnlocked, sesame.HistoryManualUnlocked, "")
		time.Sleep(time.Second)
		pc.turn(sesame.StateLocked, sesame.HistoryManualLocked, "")
		time.Sleep(time.Second)
		pc.turn(sesame.StateUnlocked, sesame.HistoryWM2Unlock, "Chika")
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := pc.historyReads(); n != 1 {
			t.Errorf("%d history reads, want 1", n)
		}
		a := h.activities(t)
		if len(a) != 1 || a[0].By != "Chika" || a[0].EventType != hass.ActivityAppUnlocked {
			t.Errorf("activity %+v", a)
		}
	})
}

// At start, a lock whose shadow read arrives costs no Web API read; without
// it the lock is read once the grace is over.
func TestPushStartReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pc := newPushCloud(sesame.StateLocked)
		startPush(t, pc, nil, true)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if n := len(pc.readTimes()); n != 0 {
			t.Errorf("%d reads with the shadow read in, want 0", n)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		pc := newPushCloud(sesame.StateLocked)
		h := startPush(t, pc, nil, false)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if r := pc.readTimes(); len(r) != 1 {
			t.Errorf("reads %v, want 1 after the grace", r)
		}
		if s := h.stateSource(t); s.Source != hass.StateSourceFailing {
			t.Errorf("state source %+v", s)
		}
	})
	// A feed that fails to connect does not hold the start-up read back.
	synctest.Test(t, func(t *testing.T) {
		pc := newPushCloud(sesame.StateLocked)
		h := startPush(t, pc, nil, false)
		h.b.PushHealth(PushHealth{Reason: "connecting"})
		synctest.Wait()
		if r := pc.readTimes(); len(r) != 0 {
			t.Errorf("reads %v while the client is still connecting", r)
		}
		time.Sleep(time.Second)
		t0 := time.Now()
		h.b.PushHealth(PushHealth{Reason: "dial: connection refused"})
		synctest.Wait()
		if r := pc.readTimes(); len(r) != 1 || !r[0].Equal(t0) {
			t.Errorf("reads %v, want 1 at once", r)
		}
	})
}

// A document for a lock not configured is ignored.
func TestPushUnknownLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pc := newPushCloud(sesame.StateLocked)
		h := startPush(t, pc, nil, true)
		n := len(h.pub.msg)
		h.b.PushDocument(Document{UUID: "99999999-2222-3333-4444-555555555555", Source: hass.SourcePush, Status: sesame.Status{State: sesame.StateUnlocked}})
		synctest.Wait()
		if len(h.pub.msg) != n {
			t.Errorf("published %v", h.pub.msg[n:])
		}
	})
}

// simulateMonth runs one lock used 20 times a day for 30 days, handTurns of
// every 20 uses by hand (the rest from Home Assistant), with the push feed
// healthy, and returns the Web API requests the bridge spent.
func simulateMonth(t *testing.T, handTurns int) (commands, reads, history int) {
	var out [3]int
	run := func(t *testing.T) {
		pc := newPushCloud(sesame.StateLocked)
		h := startPush(t, pc, nil, true)
		locked := true
		for day := 0; day < 30; day++ {
			for i := 0; i < 20; i++ {
				time.Sleep(72 * time.Minute)
				switch {
				case i < handTurns && locked:
					pc.turn(sesame.StateUnlocked, sesame.HistoryManualUnlocked, "")
				case i < handTurns:
					pc.turn(sesame.StateLocked, sesame.HistoryManualLocked, "")
				case locked:
					h.send("set", "UNLOCK")
				default:
					h.send("set", "LOCK")
				}
				locked = !locked
			}
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		for _, r := range h.results(t) {
			if r.Result != hass.ResultSuccess {
				t.Errorf("result %+v", r)
			}
		}
		out = [3]int{len(pc.sent()), len(pc.readTimes()), pc.historyReads()}
	}
	synctest.Test(t, run)
	return out[0], out[1], out[2]
}

// TestRequestsPerMonth: one lock used 20 times a day costs at most 700 Web
// API requests a month with push (today's polling spends the whole 3,000).
func TestRequestsPerMonth(t *testing.T) {
	for _, hand := range []int{0, 6, 20} {
		c, r, hi := simulateMonth(t, hand)
		total := c + r + hi
		t.Logf("%d of 20 uses a day by hand: %d commands + %d status reads + %d history reads = %d requests a month", hand, c, r, hi, total)
		if total > 700 {
			t.Errorf("%d requests a month, want at most 700", total)
		}
		if want := 30 * (20 - hand); c != want {
			t.Errorf("%d commands, want %d", c, want)
		}
		if hi != 30*hand {
			t.Errorf("%d history reads, want one per outside change (%d)", hi, 30*hand)
		}
	}
}
