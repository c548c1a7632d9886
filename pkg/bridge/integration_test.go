package bridge_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/bridge"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/budget"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
)

const (
	apiKey     = "0123456789abcdef0123456789abcdef01234567"
	lockUUID   = "488E1234-ABCD-4EF0-A1B2-C3D4E5F60718"
	lockID     = "488e1234abcd4ef0a1b2c3d4e5f60718"
	lockSecret = "a13d4b890111676ba8fb36ece7e94f7d"
)

var topics = hass.Topics{Base: "sesame2mqtt", Prefix: "homeassistant"}

// fastTiming keeps the confirmation schedule's shape at a tenth of its length.
var fastTiming = bridge.Timing{
	Freshness:     5 * time.Second,
	ConfirmAt:     []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, 900 * time.Millisecond, 1500 * time.Millisecond},
	StatusTimeout: 2 * time.Second,
}

// stack is a running bridge: the real MQTT client, the real Sesame client,
// the real request meter.
type stack struct {
	br      *bridge.Bridge
	logs    *logcapture.Buffer
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool
}

func newFake(t testing.TB) *sesametest.Server {
	fake := sesametest.NewServer(apiKey, sesametest.Lock{UUID: lockUUID, Secret: lockSecret, State: sesame.StateLocked})
	fake.SetMoveDelay(150 * time.Millisecond)
	t.Cleanup(fake.Close)
	return fake
}

func startStack(t testing.TB, broker *mosquittotest.Broker, fake *sesametest.Server, stateDir string) *stack {
	t.Helper()
	return startStackWith(t, broker, fake, stateDir, stackOptions{})
}

// stackOptions change startStack's defaults.
type stackOptions struct {
	locks  []bridge.Lock // default: the one lock of newFake
	quiet  bool          // log at info level; default: debug
	budget int           // default: 100,000 a month
	timing *bridge.Timing
	// requestTimeout bounds one HTTP attempt; default 1 s.
	requestTimeout time.Duration
	outbox         int // the MQTT client's outbox; default its own
	// push: the bridge takes documents from a simulated push feed: the
	// fake's OnChange, and a shadow read of every lock at start.
	push bool
}

func startStackWith(t testing.TB, broker *mosquittotest.Broker, fake *sesametest.Server, stateDir string, so stackOptions) *stack {
	t.Helper()
	return startStackURL(t, broker.URL(), fake, stateDir, so)
}

func startStackURL(t testing.TB, brokerURL string, fake *sesametest.Server, stateDir string, so stackOptions) *stack {
	t.Helper()
	if so.locks == nil {
		so.locks = []bridge.Lock{{ID: lockID, UUID: lockUUID, Name: "Front door", Secret: sesame.NewSecret(lockSecret)}}
	}
	level := slog.LevelDebug
	if so.quiet {
		level = slog.LevelInfo
	}
	if so.budget == 0 {
		so.budget = 100000
	}
	if so.requestTimeout == 0 {
		so.requestTimeout = time.Second
	}
	timing := fastTiming
	if so.timing != nil {
		timing = *so.timing
	}
	s := &stack{logs: &logcapture.Buffer{}, done: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: level}))
	meter, err := budget.Open(filepath.Join(stateDir, "api-usage.json"), so.budget, time.Now, log)
	if err != nil {
		t.Fatal(err)
	}
	cloud, err := sesame.New(sesame.Options{
		BaseURL: fake.URL(), APIKey: sesame.NewSecret(apiKey), Counter: meter,
		RequestTimeout: so.requestTimeout,
		Backoff:        sesame.Backoff{Base: 100 * time.Millisecond, Max: 500 * time.Millisecond},
		Logger:         log,
	})
	if err != nil {
		t.Fatal(err)
	}
	var br *bridge.Bridge
	mq, err := mqtt.New(mqtt.Options{
		URL: brokerURL, WillTopic: topics.Availability(), WillPayload: "offline",
		Subscriptions: bridge.Subscriptions(topics),
		OnMessage:     func(m mqtt.Message) { br.HandleMessage(m) },
		OnConnect:     func() { br.OnConnect() },
		Timeout:       2 * time.Second,
		OutboxSize:    so.outbox,
		Logger:        log,
	})
	if err != nil {
		t.Fatal(err)
	}
	br, err = bridge.New(bridge.Options{
		Locks:  so.locks,
		Topics: topics, Version: "test", Cloud: cloud, Publisher: mq, Budget: meter, Logger: log, Timing: timing,
		StateFile: filepath.Join(stateDir, "locks.json"),
		Push:      so.push,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.br = br
	if so.push {
		fake.OnChange(func(uuid string, st sesame.LockState) { br.PushDocument(fakeDoc(uuid, st, hass.SourcePush)) })
		t.Cleanup(func() { fake.OnChange(nil) })
		br.PushHealth(bridge.PushHealth{Connected: true})
		for _, l := range so.locks {
			br.PushDocument(fakeDoc(l.UUID, fake.State(l.UUID), hass.SourceShadowRead))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); _ = mq.Run(ctx) }()
	go func() { defer wg.Done(); _ = br.Run(ctx) }()
	go func() { defer wg.Done(); meter.Run(ctx) }()
	go func() { wg.Wait(); close(s.done) }()
	t.Cleanup(s.stop)
	return s
}

// fakeDoc is the document a push feed would carry for the fake's state.
func fakeDoc(uuid string, st sesame.LockState, source string) bridge.Document {
	on := true
	return bridge.Document{UUID: uuid, Source: source, Received: time.Now(),
		Status: sesame.Status{State: st, RawState: "640300801d00000a", Battery: 100, Voltage: 6.1, Position: 29, HubOnline: &on}}
}

func (s *stack) stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		panic("bridge did not stop within 10 s")
	}
}

func is(want string) func(string) bool { return func(p string) bool { return p == want } }

// waitRequest returns the first request at the fake matching pred.
func waitRequest(t testing.TB, fake *sesametest.Server, pred func(sesametest.Request) bool, timeout time.Duration) sesametest.Request {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, r := range fake.Requests() {
			if pred(r) {
				return r
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no matching request at the fake within %s; saw %+v", timeout, fake.Requests())
	return sesametest.Request{}
}

func commands(fake *sesametest.Server) []sesametest.Request {
	var out []sesametest.Request
	for _, r := range fake.Requests() {
		if r.Method == "POST" {
			out = append(out, r)
		}
	}
	return out
}

// TestDiscoveryAndUnlockAsHASeesIt reads the discovery document from the
// broker the way HA does, and drives the lock through the topics it names.
func TestDiscoveryAndUnlockAsHASeesIt(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	ha := broker.Subscribe(t, "#")
	st := startStack(t, broker, fake, t.TempDir())

	cfgMsg := ha.WaitFor(t, topics.DeviceConfig("sesame_"+lockID), nil, 10*time.Second)
	if !cfgMsg.Retained {
		// The first copy arrives live; HA after a restart gets it retained.
		late := broker.Subscribe(t, topics.DeviceConfig("sesame_"+lockID))
		cfgMsg = late.WaitFor(t, topics.DeviceConfig("sesame_"+lockID), nil, 5*time.Second)
		if !cfgMsg.Retained {
			t.Fatal("discovery must be retained")
		}
	}
	var doc hass.DeviceConfig
	if err := json.Unmarshal([]byte(cfgMsg.Payload), &doc); err != nil {
		t.Fatalf("discovery is not JSON: %v", err)
	}
	lock, ok := doc.Components["lock"]
	if !ok || lock.Platform != "lock" || lock.Name != nil || lock.DefaultEntityID != "lock.sesame_front_door" {
		t.Fatalf("lock component %+v", lock)
	}
	if len(doc.Availability) != 1 {
		t.Fatalf("availability %+v", doc.Availability)
	}
	ha.WaitFor(t, doc.Availability[0].Topic, is("online"), 5*time.Second)
	ha.WaitFor(t, topics.DeviceConfig("sesame2mqtt_bridge"), nil, 5*time.Second)
	ha.WaitFor(t, lock.StateTopic, is("LOCKED"), 5*time.Second)
	ha.WaitFor(t, doc.Components["battery"].StateTopic, func(p string) bool { return strings.Contains(p, `"battery":100`) }, 5*time.Second)

	since := time.Now()
	broker.Publish(t, lock.CommandTopic, "UNLOCK", false)
	req := waitRequest(t, fake, func(r sesametest.Request) bool { return r.Method == "POST" }, 5*time.Second)
	if req.Cmd != 83 || !req.SignValid || !req.KeyValid || req.History != bridge.SourceHA {
		t.Fatalf("request at the fake: %+v", req)
	}
	ha.WaitForAfter(t, since, lock.StateTopic, is("UNLOCKING"), 5*time.Second)
	ha.WaitForAfter(t, since, lock.StateTopic, is("UNLOCKED"), 5*time.Second)
	res := ha.WaitForAfter(t, since, topics.LockResult(lockID), nil, 5*time.Second)
	if res.Retained || !strings.Contains(res.Payload, `"result":"success"`) || !strings.Contains(res.Payload, `"command":"unlock"`) {
		t.Errorf("result %+v", res)
	}
	if fake.State(lockUUID) != sesame.StateUnlocked {
		t.Errorf("fake lock is %s", fake.State(lockUUID))
	}

	// The toggle button, through its own discovered topic.
	since = time.Now()
	broker.Publish(t, doc.Components["toggle"].CommandTopic, "PRESS", false)
	ha.WaitForAfter(t, since, lock.StateTopic, is("LOCKED"), 5*time.Second)
	for _, r := range fake.Requests() {
		if r.Cmd == 88 {
			t.Fatal("toggle (88) was sent")
		}
	}
	if cmds := commands(fake); len(cmds) != 2 || cmds[1].Cmd != 82 {
		t.Errorf("commands %+v", cmds)
	}

	// Neither the API key nor the device secret went anywhere.
	checkNoSecrets(t, st.logs.String(), ha)
}

func checkNoSecrets(t *testing.T, logs string, rec *mosquittotest.Recorder) {
	t.Helper()
	for _, secret := range []string{apiKey, lockSecret, strings.ToUpper(lockSecret)} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret appears in the logs")
		}
		for _, m := range rec.Messages() {
			if strings.Contains(m.Payload, secret) || strings.Contains(m.Topic, secret) {
				t.Errorf("a secret appears on MQTT topic %s", m.Topic)
			}
		}
	}
	if !strings.Contains(logs, "level=INFO") {
		t.Error("no logs captured: the secret check would be empty")
	}
}

func TestRetainedCommandIsNeverObeyed(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	stateDir := t.TempDir()
	ha := broker.Subscribe(t, topics.Base+"/#")
	first := startStack(t, broker, fake, stateDir)
	ha.WaitFor(t, topics.LockState(lockID), is("LOCKED"), 10*time.Second)
	first.stop()
	ha.WaitFor(t, topics.Availability(), is("offline"), 5*time.Second)

	// Left on the broker by a misconfigured automation while the bridge was down.
	broker.Publish(t, topics.LockCommand(lockID), "UNLOCK", true)
	since := time.Now()
	second := startStack(t, broker, fake, stateDir)
	ha.WaitForAfter(t, since, topics.Availability(), is("online"), 10*time.Second)
	ha.WaitForAfter(t, since, topics.LockState(lockID), is("LOCKED"), 10*time.Second)
	// Give a wrongly obeyed command every chance to show up.
	time.Sleep(time.Second)
	if cmds := commands(fake); len(cmds) != 0 {
		t.Fatalf("a retained command was obeyed: %+v", cmds)
	}
	if fake.State(lockUUID) != sesame.StateLocked {
		t.Fatal("the lock moved")
	}
	if !strings.Contains(second.logs.String(), "ignoring retained command") {
		t.Error("no log line for the retained command")
	}
	// And it was cleared: a new subscriber gets nothing retained there.
	late := broker.Subscribe(t, topics.LockCommand(lockID))
	time.Sleep(300 * time.Millisecond)
	for _, m := range late.Messages() {
		if m.Retained && m.Payload != "" {
			t.Errorf("retained command still on the broker: %+v", m)
		}
	}
}

func TestBrokerRestartThenCommandWorks(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	startStack(t, broker, fake, t.TempDir())
	ha := broker.Subscribe(t, topics.Base+"/#")
	ha.WaitFor(t, topics.Availability(), is("online"), 10*time.Second)

	broker.Kill()
	time.Sleep(300 * time.Millisecond)
	broker.Restart()

	// The bridge comes back by itself: subscriptions renewed in the on-connect
	// handler. It reconnects within about 100 ms of the restart, often before
	// this test's client does, so its own "online" may only be seen retained.
	// Proof that it is subscribed again: Home Assistant's birth (live) makes
	// it publish discovery, which a subscribed client receives live.
	ha2 := broker.Subscribe(t, "#")
	since := time.Now()
	rediscovered := func() bool {
		for _, m := range ha2.Messages() {
			if strings.HasPrefix(m.Topic, topics.Prefix+"/device/") && !m.Retained {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(40 * time.Second); !rediscovered(); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the bridge did not answer Home Assistant's birth after the broker came back")
		}
		broker.Publish(t, topics.HAStatus(), "online", false)
	}
	broker.Publish(t, topics.LockCommand(lockID), "UNLOCK", false)
	ha2.WaitForAfter(t, since, topics.LockState(lockID), is("UNLOCKED"), 10*time.Second)
	if cmds := commands(fake); len(cmds) != 1 || !cmds[0].SignValid {
		t.Errorf("commands %+v", cmds)
	}
}

func TestHABirthRepublishesDiscovery(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	startStack(t, broker, fake, t.TempDir())
	rec := broker.Subscribe(t, topics.Prefix+"/device/#")
	rec.WaitFor(t, topics.DeviceConfig("sesame_"+lockID), nil, 10*time.Second)
	since := time.Now()
	broker.Publish(t, topics.HAStatus(), "online", false)
	m := rec.WaitForAfter(t, since, topics.DeviceConfig("sesame_"+lockID), nil, 5*time.Second)
	if m.Payload == "" {
		t.Error("empty discovery after HA birth")
	}
}

func TestRemovedLockDiscoveryCleared(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	gone := hass.Discovery{Topics: topics}.LockConfig(hass.Lock{ID: "0badc0de", UUID: "0BADC0DE", Name: "Old door"})
	broker.Publish(t, topics.DeviceConfig("sesame_0badc0de"), string(hass.Marshal(gone)), true)
	broker.Publish(t, topics.LockState("0badc0de"), "LOCKED", true)
	foreign := hass.Discovery{Topics: hass.Topics{Base: "other", Prefix: topics.Prefix}}.LockConfig(hass.Lock{ID: "f00d", Name: "Theirs"})
	broker.Publish(t, topics.DeviceConfig("sesame_f00d"), string(hass.Marshal(foreign)), true)

	startStack(t, broker, fake, t.TempDir())
	ha := broker.Subscribe(t, topics.Base+"/#")
	ha.WaitFor(t, topics.LockState(lockID), is("LOCKED"), 10*time.Second)
	time.Sleep(500 * time.Millisecond)

	late := broker.Subscribe(t, topics.Prefix+"/device/#")
	late.WaitFor(t, topics.DeviceConfig("sesame_"+lockID), nil, 5*time.Second)
	late.WaitFor(t, topics.DeviceConfig("sesame_f00d"), nil, 5*time.Second)
	for _, m := range late.Messages() {
		if m.Topic == topics.DeviceConfig("sesame_0badc0de") && m.Payload != "" {
			t.Errorf("discovery of the removed lock is still retained")
		}
	}
}

func TestAPIFaultsAreRetried(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	ha := broker.Subscribe(t, topics.Base+"/#")
	startStack(t, broker, fake, t.TempDir())
	ha.WaitFor(t, topics.LockState(lockID), is("LOCKED"), 10*time.Second)

	cases := []struct {
		name  string
		setup func()
		want  string
	}{
		{"500 twice", func() { fake.FailNext(2, 500, `{"message":"Internal server error"}`, "") }, "UNLOCKED"},
		{"429 with Retry-After", func() { fake.FailNext(1, 429, `{"message":"Too Many Requests"}`, "1") }, "LOCKED"},
		{"timeouts", func() {
			fake.SetLatency(1500 * time.Millisecond) // longer than the 1 s per-attempt timeout
			time.AfterFunc(1200*time.Millisecond, func() { fake.SetLatency(0) })
		}, "UNLOCKED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(commands(fake))
			tc.setup()
			since := time.Now()
			cmd := "UNLOCK"
			if tc.want == "LOCKED" {
				cmd = "LOCK"
			}
			broker.Publish(t, topics.LockCommand(lockID), cmd, false)
			ha.WaitForAfter(t, since, topics.LockState(lockID), is(tc.want), 10*time.Second)
			res := ha.WaitForAfter(t, since, topics.LockResult(lockID), nil, 5*time.Second)
			if !strings.Contains(res.Payload, `"success"`) {
				t.Errorf("result %s", res.Payload)
			}
			if n := len(commands(fake)) - before; n < 2 {
				t.Errorf("%d attempts: the fault was not retried", n)
			}
		})
	}
}

func TestLockThatNeverMovesIsJammed(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	fake.SetNoMove(lockUUID, true)
	ha := broker.Subscribe(t, topics.Base+"/#")
	st := startStack(t, broker, fake, t.TempDir())
	ha.WaitFor(t, topics.LockState(lockID), is("LOCKED"), 10*time.Second)
	since := time.Now()
	broker.Publish(t, topics.LockCommand(lockID), "UNLOCK", false)
	ha.WaitForAfter(t, since, topics.LockState(lockID), is("JAMMED"), 10*time.Second)
	res := ha.WaitForAfter(t, since, topics.LockResult(lockID), nil, 5*time.Second)
	if !strings.Contains(res.Payload, `"result":"jammed"`) {
		t.Errorf("result %s", res.Payload)
	}
	if !strings.Contains(st.logs.String(), "reporting jammed") {
		t.Error("the log does not say why")
	}
}
