package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/budget"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// published is one message handed to the publisher.
type published struct {
	Topic    string
	Retained bool
	Payload  string
	At       time.Time
}

// recorder is the MQTT client: while down, nothing is published and
// Deliver reports it.
type recorder struct {
	mu   sync.Mutex
	msg  []published
	down bool
}

func (r *recorder) Publish(topic string, _ byte, retained bool, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.down {
		r.msg = append(r.msg, published{topic, retained, string(payload), time.Now()})
	}
}

func (r *recorder) Deliver(_ context.Context, topic string, _ byte, retained bool, payload []byte, done func(bool)) {
	r.mu.Lock()
	ok := !r.down
	if ok {
		r.msg = append(r.msg, published{topic, retained, string(payload), time.Now()})
	}
	r.mu.Unlock()
	if done != nil {
		done(ok)
	}
}

func (r *recorder) setDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

func (r *recorder) on(topic string) []published {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []published
	for _, m := range r.msg {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

func (r *recorder) payloads(topic string) []string {
	var out []string
	for _, m := range r.on(topic) {
		out = append(out, m.Payload)
	}
	return out
}

// cloud is an in-memory Sesame cloud driven by the bubble's clock.
type cloud struct {
	mu        sync.Mutex
	state     sesame.LockState
	target    sesame.LockState
	arriveAt  time.Time
	moveAfter time.Duration
	noMove    bool
	cmdErr    error
	block     bool // Command waits for ctx
	statusErr error
	cmds      []sentCmd
	reads     []time.Time
}

type sentCmd struct {
	Cmd sesame.Cmd
	Tag string
	At  time.Time
}

func newCloud(s sesame.LockState) *cloud {
	return &cloud{state: s, moveAfter: 2 * time.Second}
}

func (c *cloud) Status(ctx context.Context, _ string) (sesame.Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads = append(c.reads, time.Now())
	if c.statusErr != nil {
		return sesame.Status{}, c.statusErr
	}
	st := c.state
	if !c.arriveAt.IsZero() {
		if time.Now().Before(c.arriveAt) {
			st = sesame.StateMoved
		} else {
			c.state, c.arriveAt = c.target, time.Time{}
			st = c.state
		}
	}
	on := true
	return sesame.Status{State: st, RawState: string(st), Battery: 80, Voltage: 5.9, Position: 10, HubOnline: &on}, nil
}

func (c *cloud) Command(ctx context.Context, _ string, _ sesame.Secret, cmd sesame.Cmd, tag string) error {
	c.mu.Lock()
	c.cmds = append(c.cmds, sentCmd{cmd, tag, time.Now()})
	block, err := c.block, c.cmdErr
	if !block && err == nil && !c.noMove {
		c.target = sesame.StateLocked
		if cmd == sesame.CmdUnlock {
			c.target = sesame.StateUnlocked
		}
		c.arriveAt = time.Now().Add(c.moveAfter)
	}
	c.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

func (c *cloud) sent() []sentCmd {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sentCmd(nil), c.cmds...)
}

func (c *cloud) readTimes() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.reads...)
}

type fixedBudget struct {
	mu       sync.Mutex
	interval time.Duration
	ok       bool
	changed  chan struct{}
}

func (f *fixedBudget) PollInterval() (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.interval, f.ok
}

func (f *fixedBudget) spend() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ok = false
}
func (f *fixedBudget) Usage() budget.Usage {
	return budget.Usage{Month: "2026-11", Used: 1, Budget: 3000, Reserve: 600, Remaining: 2999}
}
func (f *fixedBudget) Changed() <-chan struct{} { return f.changed }

type harness struct {
	b      *Bridge
	cloud  *cloud
	pub    *recorder
	logs   *logcapture.Buffer
	topics hass.Topics
	lock   Lock
	cancel context.CancelFunc
	done   chan struct{}
}

var testLock = Lock{ID: "lock1", UUID: "11111111-2222-3333-4444-555555555555", Name: "Front door", Secret: sesame.NewSecret("00112233445566778899aabbccddeeff")}

// start builds a bridge on the in-memory cloud; call inside a synctest bubble.
func start(t *testing.T, c *cloud, bud *fixedBudget, run bool, opts ...func(*Options)) *harness {
	t.Helper()
	logs := &logcapture.Buffer{}
	h := &harness{
		cloud: c, pub: &recorder{}, logs: logs, lock: testLock,
		topics: hass.Topics{Base: "s2m", Prefix: "homeassistant"},
		done:   make(chan struct{}),
	}
	if bud == nil {
		bud = &fixedBudget{interval: time.Hour, ok: true, changed: make(chan struct{}, 1)}
	}
	o := Options{
		Locks: []Lock{testLock}, Topics: h.topics, Version: "test", Cloud: c, Publisher: h.pub, Budget: bud,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range opts {
		f(&o)
	}
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.b = b
	if run {
		h.run()
	}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { defer close(h.done); _ = h.b.Run(ctx) }()
}

func (h *harness) stop() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
		h.cancel = nil
	}
}

func (h *harness) send(kind, payload string) {
	h.b.HandleMessage(mqtt.Message{Topic: "s2m/lock1/" + kind, Payload: []byte(payload)})
}

func (h *harness) results(t *testing.T) []hass.Result {
	t.Helper()
	var out []hass.Result
	for _, p := range h.pub.payloads(h.topics.LockResult("lock1")) {
		var r hass.Result
		if err := json.Unmarshal([]byte(p), &r); err != nil {
			t.Fatalf("result %q: %v", p, err)
		}
		out = append(out, r)
	}
	return out
}

// clearQueued does the janitor's work for a bridge whose Run is not running.
func clearQueued(b *Bridge) {
	for _, t := range b.janitor.take() {
		b.send(t, true, nil)
	}
}

func equal(a, b []string) bool { return strings.Join(a, "|") == strings.Join(b, "|") }

func TestUnlockConfirmed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, newCloud(sesame.StateLocked), nil, true)
		synctest.Wait() // initial read done
		t0 := time.Now()
		h.send("set", "UNLOCK")
		time.Sleep(20 * time.Second)
		synctest.Wait()

		sent := h.cloud.sent()
		if len(sent) != 1 || sent[0].Cmd != sesame.CmdUnlock || sent[0].Tag != SourceHA || !sent[0].At.Equal(t0) {
			t.Fatalf("sent %+v, want one unlock tagged %q at once", sent, SourceHA)
		}
		states := h.pub.payloads(h.topics.LockState("lock1"))
		if !equal(states, []string{"LOCKED", "UNLOCKING", "UNLOCKED"}) {
			t.Errorf("states %v", states)
		}
		// The cloud needs 2 s to move: the first read-back (2.5 s) sees it.
		if got := h.pub.on(h.topics.LockState("lock1")); got[2].At.Sub(t0) != 2500*time.Millisecond {
			t.Errorf("UNLOCKED published after %s, want 2.5s", got[2].At.Sub(t0))
		}
		if r := h.results(t); len(r) != 1 || r[0].Result != hass.ResultSuccess || r[0].Command != "unlock" {
			t.Errorf("results %+v", r)
		}
		for _, m := range h.pub.on(h.topics.LockResult("lock1")) {
			if m.Retained {
				t.Error("result messages must not be retained")
			}
		}
	})
}

func TestJammedWhenTheLockDoesNotMove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(sesame.StateUnlocked)
		c.noMove = true
		h := start(t, c, nil, true)
		synctest.Wait()
		t0 := time.Now()
		h.send("set", "LOCK")
		time.Sleep(30 * time.Second)
		synctest.Wait()

		states := h.pub.payloads(h.topics.LockState("lock1"))
		if !equal(states, []string{"UNLOCKED", "LOCKING", "JAMMED"}) {
			t.Errorf("states %v", states)
		}
		var offsets []time.Duration
		for _, r := range c.readTimes()[1:] {
			offsets = append(offsets, r.Sub(t0))
		}
		if len(offsets) != len(DefaultTiming.ConfirmAt) {
			t.Fatalf("read-backs at %v, want %v", offsets, DefaultTiming.ConfirmAt)
		}
		for i, o := range offsets {
			if o != DefaultTiming.ConfirmAt[i] {
				t.Errorf("read-back %d at %s, want %s", i, o, DefaultTiming.ConfirmAt[i])
			}
		}
		r := h.results(t)
		if len(r) != 1 || r[0].Result != hass.ResultJammed || !strings.Contains(r[0].Detail, "unlocked") {
			t.Errorf("results %+v", r)
		}
		if !strings.Contains(h.logs.String(), "reporting jammed") {
			t.Error("the log must say why the lock is reported jammed")
		}
	})
}

func TestToggleResolvesFromConfirmedState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, newCloud(sesame.StateUnlocked), nil, true)
		synctest.Wait()
		reads := len(h.cloud.readTimes())
		h.send("toggle", "PRESS")
		synctest.Wait()
		if len(h.cloud.readTimes()) != reads {
			t.Error("toggle with a confirmed state must not read first")
		}
		time.Sleep(20 * time.Second)
		h.send("toggle", "PRESS")
		time.Sleep(20 * time.Second)
		synctest.Wait()
		sent := h.cloud.sent()
		if len(sent) != 2 || sent[0].Cmd != sesame.CmdLock || sent[1].Cmd != sesame.CmdUnlock {
			t.Fatalf("sent %+v, want lock then unlock", sent)
		}
		r := h.results(t)
		if len(r) != 2 || r[0].Command != "toggle" || !strings.HasPrefix(r[0].Detail, "lock:") || r[1].Result != hass.ResultSuccess {
			t.Errorf("results %+v", r)
		}
	})
}

func TestToggleReadsWhenStateUnknown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(sesame.StateLocked)
		h := start(t, c, &fixedBudget{ok: false, changed: make(chan struct{})}, true) // budget spent: no initial read
		synctest.Wait()
		if n := len(c.readTimes()); n != 0 {
			t.Fatalf("%d reads with the budget spent", n)
		}
		h.send("toggle", "PRESS")
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(c.readTimes()); n != 1 {
			t.Fatalf("toggle without a known state must read once first, read %d times", n)
		}
		if sent := c.sent(); len(sent) != 1 || sent[0].Cmd != sesame.CmdUnlock {
			t.Fatalf("sent %+v", sent)
		}

	})
}

func TestToggleWithoutStateSendsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(sesame.StateLocked)
		c.statusErr = errors.New("network down")
		h := start(t, c, &fixedBudget{ok: false, changed: make(chan struct{})}, true)
		h.send("toggle", "PRESS")
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if sent := c.sent(); len(sent) != 0 {
			t.Fatalf("toggle sent %+v without knowing the state", sent)
		}
		r := h.results(t)
		if len(r) != 1 || r[0].Result != hass.ResultFailed || !strings.Contains(r[0].Detail, "current state") {
			t.Errorf("results %+v", r)
		}
	})
}

func TestIgnoredMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, newCloud(sesame.StateLocked), nil, true)
		synctest.Wait()
		h.b.HandleMessage(mqtt.Message{Topic: "s2m/lock1/set", Payload: []byte("UNLOCK"), Retained: true})
		h.b.HandleMessage(mqtt.Message{Topic: "s2m/lock1/set", Payload: []byte("UNLOCK"), Duplicate: true})
		h.send("set", "unlock")
		h.send("set", "OPEN")
		h.send("toggle", "UNLOCK")
		h.b.HandleMessage(mqtt.Message{Topic: "s2m/other/set", Payload: []byte("UNLOCK")})
		time.Sleep(time.Minute)
		synctest.Wait()
		if sent := h.cloud.sent(); len(sent) != 0 {
			t.Fatalf("sent %+v", sent)
		}
		logs := h.logs.String()
		for _, want := range []string{"ignoring retained command", "DUP flag", `got \"unlock\"`, `got \"OPEN\"`, "not configured"} {
			if !strings.Contains(logs, want) {
				t.Errorf("log lacks %q", want)
			}
		}
		// The retained command was cleared from the broker.
		clr := h.pub.on("s2m/lock1/set")
		if len(clr) != 1 || !clr[0].Retained || clr[0].Payload != "" {
			t.Errorf("retained command not cleared: %+v", clr)
		}
	})
}

func TestCoalescing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, newCloud(sesame.StateLocked), nil, true)
		synctest.Wait()
		h.send("set", "UNLOCK")
		h.send("set", "UNLOCK")
		synctest.Wait()
		h.send("set", "UNLOCK") // while confirming
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if sent := h.cloud.sent(); len(sent) != 1 {
			t.Fatalf("sent %d commands for three identical requests", len(sent))
		}
		if r := h.results(t); len(r) != 1 || r[0].Result != hass.ResultSuccess {
			t.Errorf("results %+v", r)
		}
	})
}

func TestNewerCommandSupersedes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, newCloud(sesame.StateLocked), nil, true)
		synctest.Wait()
		h.send("set", "UNLOCK")
		time.Sleep(time.Second)
		h.send("set", "LOCK")
		time.Sleep(30 * time.Second)
		synctest.Wait()
		sent := h.cloud.sent()
		if len(sent) != 2 || sent[1].Cmd != sesame.CmdLock {
			t.Fatalf("sent %+v", sent)
		}
		r := h.results(t)
		if len(r) != 2 || r[0].Command != "unlock" || r[0].Result != hass.ResultFailed || !strings.Contains(r[0].Detail, "superseded") ||
			r[1].Command != "lock" || r[1].Result != hass.ResultSuccess {
			t.Errorf("results %+v", r)
		}
		states := h.pub.payloads(h.topics.LockState("lock1"))
		if states[len(states)-1] != "LOCKED" {
			t.Errorf("states %v", states)
		}
	})
}

func TestStaleCommandDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, newCloud(sesame.StateLocked), nil, false)
		h.send("set", "UNLOCK") // arrives while nothing runs the worker
		time.Sleep(11 * time.Second)
		h.run()
		time.Sleep(time.Second)
		synctest.Wait()
		if sent := h.cloud.sent(); len(sent) != 0 {
			t.Fatalf("a command 11 s old was sent: %+v", sent)
		}
		r := h.results(t)
		if len(r) != 1 || r[0].Result != hass.ResultFailed || !strings.Contains(r[0].Detail, "waited") {
			t.Errorf("results %+v", r)
		}
		if !strings.Contains(h.logs.String(), "dropping stale command") {
			t.Error("no log line for the stale command")
		}
	})
}

func TestCommandTimesOutWithinFreshness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(sesame.StateLocked)
		h := start(t, c, nil, true)
		synctest.Wait()
		c.mu.Lock()
		c.block = true
		c.mu.Unlock()
		t0 := time.Now()
		h.send("set", "UNLOCK")
		synctest.Wait()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		// The cloud never answered: it may have moved the lock. Neither
		// "failed" nor the old state would be the truth; the lock is read.
		r := h.results(t)
		if len(r) != 1 || r[0].Result != hass.ResultUnknown || !strings.Contains(r[0].Detail, "did not answer") {
			t.Fatalf("results %+v, want one unknown saying the cloud did not answer", r)
		}
		if at := h.pub.on(h.topics.LockResult("lock1"))[0].At.Sub(t0); at != DefaultTiming.Freshness {
			t.Errorf("gave up after %s, want %s", at, DefaultTiming.Freshness)
		}
		states := h.pub.payloads(h.topics.LockState("lock1"))
		if !equal(states, []string{"LOCKED", "UNLOCKING", "None", "LOCKED"}) {
			t.Errorf("states %v, want unknown (None) until the read that follows says LOCKED", states)
		}
		if reads := len(c.reads); reads != 2 {
			t.Errorf("%d status reads, want 2 (at start and after the unknown outcome)", reads)
		}
	})
}

func TestForbiddenReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(sesame.StateLocked)
		c.cmdErr = &sesame.APIError{Op: "command", UUID: testLock.UUID, StatusCode: 403, Message: "Forbidden"}
		h := start(t, c, nil, true)
		synctest.Wait()
		h.send("set", "UNLOCK")
		time.Sleep(time.Second)
		synctest.Wait()
		r := h.results(t)
		if len(r) != 1 || r[0].Result != hass.ResultFailed || !strings.Contains(r[0].Detail, "API key") {
			t.Errorf("results %+v", r)
		}
	})
}

func TestBackgroundPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(sesame.StateLocked)
		bud := &fixedBudget{interval: 18 * time.Minute, ok: true, changed: make(chan struct{}, 1)}
		h := start(t, c, bud, true)
		time.Sleep(time.Hour)
		synctest.Wait()
		// One read at start, then one every 18 minutes: 0, 18, 36, 54.
		if n := len(c.readTimes()); n != 4 {
			t.Errorf("%d reads in an hour at an 18-minute interval, want 4", n)
		}
		c.mu.Lock()
		c.state = sesame.StateMoved
		c.mu.Unlock()
		time.Sleep(18 * time.Minute)
		synctest.Wait()
		states := h.pub.payloads(h.topics.LockState("lock1"))
		if states[len(states)-1] != string(hass.Reset) {
			t.Errorf("moved must show as unknown, got %v", states)
		}
		bud.spend()
		n := len(c.readTimes())
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		if len(c.readTimes()) != n {
			t.Error("background reads went on with the budget spent")
		}
		// Commands still work.
		h.send("set", "UNLOCK")
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if len(c.sent()) != 1 {
			t.Error("commands must still work with the budget spent")
		}
	})
}

func TestAnnounceAndStaleDiscovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, newCloud(sesame.StateLocked), nil, true)
		synctest.Wait()
		h.b.OnConnect()
		cfg := h.topics.DeviceConfig("sesame_lock1")
		if n := len(h.pub.on(cfg)); n != 1 {
			t.Fatalf("%d discovery messages after connect", n)
		}
		if avail := h.pub.payloads(h.topics.Availability()); !equal(avail, []string{"online"}) {
			t.Errorf("availability %v", avail)
		}
		// The known state is published again on connect.
		if states := h.pub.payloads(h.topics.LockState("lock1")); !equal(states, []string{"LOCKED", "LOCKED"}) {
			t.Errorf("states %v", states)
		}
		// HA's birth (not retained) publishes discovery again; a retained copy does not.
		h.b.HandleMessage(mqtt.Message{Topic: "homeassistant/status", Payload: []byte("online"), Retained: true})
		h.b.HandleMessage(mqtt.Message{Topic: "homeassistant/status", Payload: []byte("online")})
		synctest.Wait() // announced by the bridge's own goroutine
		if n := len(h.pub.on(cfg)); n != 2 {
			t.Errorf("%d discovery messages after HA birth, want 2", n)
		}

		// A lock we published once, no longer configured: cleared.
		old := hass.Discovery{Topics: h.topics}.LockConfig(hass.Lock{ID: "gone", Name: "Old"})
		h.b.HandleMessage(mqtt.Message{Topic: h.topics.DeviceConfig("sesame_gone"), Payload: hass.Marshal(old), Retained: true})
		// Someone else's device, or ours still configured: untouched.
		other := hass.Discovery{Topics: hass.Topics{Base: "elsewhere", Prefix: "homeassistant"}}.LockConfig(hass.Lock{ID: "x", Name: "x"})
		h.b.HandleMessage(mqtt.Message{Topic: h.topics.DeviceConfig("sesame_x"), Payload: hass.Marshal(other), Retained: true})
		h.b.HandleMessage(mqtt.Message{Topic: cfg, Payload: []byte(`{}`), Retained: true})
		synctest.Wait() // cleared by the bridge's own goroutine
		if got := h.pub.on(h.topics.DeviceConfig("sesame_gone")); len(got) != 1 || got[0].Payload != "" || !got[0].Retained {
			t.Errorf("stale lock not cleared: %+v", got)
		}
		if got := h.pub.on(h.topics.LockState("gone")); len(got) != 1 || got[0].Payload != "" {
			t.Errorf("stale state not cleared: %+v", got)
		}
		if n := len(h.pub.on(h.topics.DeviceConfig("sesame_x"))); n != 0 {
			t.Error("another bridge's device was cleared")
		}
		if n := len(h.pub.on(cfg)); n != 2 {
			t.Error("a configured lock's discovery was touched")
		}
	})
}

func TestCommandPreemptsSlowRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(sesame.StateLocked)
		h := start(t, c, nil, false)
		slow := &slowCloud{cloud: c, delay: 7 * time.Second}
		h.b.cloud = slow
		h.run()
		time.Sleep(time.Second) // the initial read is under way
		t0 := time.Now()
		h.send("set", "UNLOCK")
		synctest.Wait()
		sent := c.sent()
		if len(sent) != 1 || !sent[0].At.Equal(t0) {
			t.Fatalf("the command waited behind a background read: %+v", sent)
		}
	})
}

// slowCloud answers status reads after a delay (or when ctx ends).
type slowCloud struct {
	*cloud
	delay time.Duration
}

func (s *slowCloud) Status(ctx context.Context, uuid string) (sesame.Status, error) {
	select {
	case <-ctx.Done():
		return sesame.Status{}, ctx.Err()
	case <-time.After(s.delay):
	}
	return s.cloud.Status(ctx, uuid)
}
