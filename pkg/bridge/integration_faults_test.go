package bridge_test

// Fault tests of issue I against a real Mosquitto and the Sesame fake. The
// figures they log (t.Logf) are the ones reported in the closing
// note: go test ./pkg/bridge -run 'Fault' -v

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/bridge"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
)

// client is one long-lived MQTT connection for floods (mosquittotest's
// Publish connects once per message).
func client(t testing.TB, broker *mosquittotest.Broker) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL()).
		SetClientID(fmt.Sprintf("flood-%d", time.Now().UnixNano())).SetProtocolVersion(4).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetWriteTimeout(5 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publish(t testing.TB, c paho.Client, topic string, qos byte, retained bool, payload string) {
	t.Helper()
	if tok := c.Publish(topic, qos, retained, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func reads(fake *sesametest.Server) int {
	n := 0
	for _, r := range fake.Requests() {
		if r.Method == "GET" {
			n++
		}
	}
	return n
}

// gate forwards TCP connections to the broker while open and refuses them
// while shut, so that a test decides when the bridge may reconnect.
type gate struct {
	ln     net.Listener
	target string
	open   atomic.Bool
	wg     sync.WaitGroup
}

func newGate(t testing.TB, target string) *gate {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln, target: target}
	g.open.Store(true)
	g.wg.Go(g.serve)
	t.Cleanup(func() { ln.Close(); g.wg.Wait() })
	return g
}

func (g *gate) url() string { return "tcp://" + g.ln.Addr().String() }

func (g *gate) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		if !g.open.Load() {
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", g.target, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		g.wg.Go(func() { _, _ = io.Copy(up, c); up.Close() })
		g.wg.Go(func() { _, _ = io.Copy(c, up); c.Close() })
	}
}

// brokerVia is a mosquittotest broker seen through a gate.
type brokerVia struct {
	*mosquittotest.Broker
	g *gate
}

func (b brokerVia) URL() string { return b.g.url() }

// TestFaultResultAfterBrokerOutage (issue I.3): a command confirmed while
// the broker is dead gets its result once the bridge is back, marked
// delayed; exactly once.
func TestFaultResultAfterBrokerOutage(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	fake.SetMoveDelay(time.Second) // confirmed by the read-back at 1.5 s
	g := newGate(t, broker.Addr())
	ha := broker.Subscribe(t, topics.Base+"/#")
	st := startStackURL(t, g.url(), fake, t.TempDir(), stackOptions{})
	ha.WaitFor(t, topics.LockState(lockID), is("LOCKED"), 10*time.Second)

	broker.Publish(t, topics.LockCommand(lockID), "UNLOCK", false)
	waitRequest(t, fake, func(r sesametest.Request) bool { return r.Method == "POST" }, 5*time.Second)
	g.open.Store(false)
	broker.Kill()
	// The lock arrives and is read back while the broker is dead.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(st.logs.String(), "command confirmed") {
		if time.Now().After(deadline) {
			t.Fatal("the command was not confirmed during the outage")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // longer than the client's Timeout: any PUBACK wait is over
	broker.Restart()
	watch := broker.Subscribe(t, topics.LockResult(lockID)) // before the bridge can reconnect
	since := time.Now()
	g.open.Store(true)
	res := watch.WaitForAfter(t, since, topics.LockResult(lockID), nil, 40*time.Second)
	var r hass.Result
	if err := json.Unmarshal([]byte(res.Payload), &r); err != nil {
		t.Fatalf("result %q: %v", res.Payload, err)
	}
	if r.Command != "unlock" || r.Result != hass.ResultSuccess || !r.Delayed || r.EndedAt == "" || res.Retained {
		t.Errorf("result after the outage %s, want the unlock's success, delayed, not retained", res.Payload)
	}
	t.Logf("delayed result arrived %s after the gate opened: %s", time.Since(since).Round(time.Millisecond), res.Payload)
	time.Sleep(time.Second)
	if n := len(watch.Messages()); n != 1 {
		t.Errorf("%d results after the outage, want exactly 1", n)
	}
}

// TestFaultRefreshPresses (issue I.2): 300 presses of Refresh in 3 s.
func TestFaultRefreshPresses(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	ha := broker.Subscribe(t, topics.Base+"/#")
	st := startStack(t, broker, fake, t.TempDir())
	ha.WaitFor(t, topics.LockState(lockID), is("LOCKED"), 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	before := reads(fake)
	c := client(t, broker)
	start := time.Now()
	var toks []paho.Token
	for i := range 300 {
		toks = append(toks, c.Publish(topics.LockRefresh(lockID), 1, false, "PRESS"))
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * 10 * time.Millisecond)))
	}
	pressed := time.Since(start)
	for _, tok := range toks {
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("press: %v", tok.Error())
		}
	}
	time.Sleep(2 * time.Second)
	n := reads(fake) - before
	t.Logf("300 Refresh presses in %s: %d status reads at the fake", pressed.Round(time.Millisecond), n)
	if n != 1 {
		t.Errorf("%d reads for 300 presses within a minute, want 1", n)
	}
	if l := strings.Count(st.logs.String(), "refresh coalesced"); l == 0 || l > 6 {
		t.Errorf("%d log lines for the coalesced presses, want a few", l)
	}
}

// TestFaultGarbageFlood (issue I.5): retained junk under command topics of
// locks that do not exist is cleared at start; a flood of garbage leaves a
// short log; every valid command in between goes through.
func TestFaultGarbageFlood(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	c := client(t, broker)
	// Mosquitto hands a new subscriber at most max_queued_messages (1,000)
	// + max_inflight (20) retained QoS 1 messages; QoS 0 ones all come.
	const junk = 3000
	for i := range junk {
		qos := byte(0)
		publish(t, c, fmt.Sprintf("%s/junk%04d/set", topics.Base, i), qos, true, "UNLOCK")
	}
	// A QoS 0 publish is done once written; this acknowledged one is
	// processed after all of them, so they are retained before the bridge
	// subscribes (else they reach it live, without the retain flag).
	publish(t, c, "elsewhere/flush", 1, false, "")
	ha := broker.Subscribe(t, topics.Base+"/#")
	st := startStackWith(t, broker, fake, t.TempDir(), stackOptions{quiet: true})
	ha.WaitFor(t, topics.LockState(lockID), is("LOCKED"), 10*time.Second)
	time.Sleep(2 * time.Second) // the clearing goes on after the first state
	late := broker.Subscribe(t, topics.Base+"/+/set")
	time.Sleep(time.Second)
	for _, m := range late.Messages() {
		if m.Retained && m.Payload != "" {
			t.Fatalf("retained junk still on the broker: %s\n%s", m.Topic, grep(st.logs.String(), "WARN"))
		}
	}
	startLog := len(st.logs.String())
	t.Logf("%d retained junk commands cleared at start; log %d bytes", junk, startLog)

	// The flood: 20,000 unwanted messages from another client, while five
	// valid commands are given and awaited one after the other.
	stop := make(chan struct{}) // closed when the test ends early
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	})
	var flooded atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		kinds := []struct{ topic, payload string }{
			{topics.LockCommand(lockID), "unlock"},
			{topics.LockCommand(lockID), "UNLOCK\n"},
			{topics.LockToggle(lockID), strings.Repeat("\xff", 300)},
			{topics.Base + "/nosuchlock/set", "UNLOCK"},
			{topics.LockRefresh(lockID), "press"},
		}
		for i := 0; i < 20000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := kinds[i%len(kinds)]
			c.Publish(k.topic, 0, false, k.payload)
			flooded.Add(1)
			if i%50 == 49 {
				time.Sleep(10 * time.Millisecond) // at most 5,000 messages a second
			}
		}
	})
	floodStart := time.Now()
	want := []string{"UNLOCKED", "LOCKED", "UNLOCKED", "LOCKED", "UNLOCKED"}
	for i, state := range want {
		cmd := "UNLOCK"
		if state == "LOCKED" {
			cmd = "LOCK"
		}
		time.Sleep(500 * time.Millisecond) // spread over the flood
		since := time.Now()
		broker.Publish(t, topics.LockCommand(lockID), cmd, false)
		ha.WaitForAfter(t, since, topics.LockState(lockID), is(state), 15*time.Second)
		res := ha.WaitForAfter(t, since, topics.LockResult(lockID), nil, 5*time.Second)
		if !strings.Contains(res.Payload, `"result":"success"`) {
			t.Errorf("command %d: result %s", i, res.Payload)
		}
	}
	wg.Wait() // the whole flood
	close(stop)
	elapsed := time.Since(floodStart)
	time.Sleep(500 * time.Millisecond)
	if n := len(commands(fake)); n != len(want) {
		t.Errorf("%d commands at the fake, want %d", n, len(want))
	}
	logBytes := len(st.logs.String()) - startLog
	t.Logf("the flood's log lines by message:\n%s", byMessage(st.logs.String()[startLog:]))
	t.Logf("flood: %d garbage messages in %s with 5 valid commands; log grew by %d bytes", flooded.Load(), elapsed.Round(time.Millisecond), logBytes)
	if logBytes > 20000 {
		t.Errorf("the flood wrote %d bytes of log", logBytes)
	}
	// What the MQTT client's queue dropped (a busy machine cannot always
	// keep up with the flood) is summed up at shutdown.
	st.stop()
	dropped := 0
	for _, l := range strings.Split(st.logs.String(), "\n") {
		if !strings.Contains(l, "handler queue full") {
			continue
		}
		dropped++
		if i := strings.Index(l, "suppressed="); i >= 0 {
			var n int
			_, _ = fmt.Sscan(strings.Fields(l[i+len("suppressed="):])[0], &n)
			dropped += n - 1
		}
	}
	t.Logf("messages the MQTT client's queue dropped during the flood: %d", dropped)
}

// TestFaultManyLocks (issue I.6): with 500 locks, every lock's discovery,
// state and status reach the broker at start-up, through an outbox of 64
// (about 1,500 retained messages: flow control, not a bigger number).
func TestFaultManyLocks(t *testing.T) {
	const n = 500
	var locks []bridge.Lock
	var fakeLocks []sesametest.Lock
	for i := range n {
		uuid := fmt.Sprintf("488E1234-ABCD-4EF0-A1B2-%012X", i)
		secret := fmt.Sprintf("%032x", i+1)
		id := strings.ToLower(strings.ReplaceAll(uuid, "-", ""))
		locks = append(locks, bridge.Lock{ID: id, UUID: uuid, Name: fmt.Sprintf("Door %d", i), Secret: sesame.NewSecret(secret)})
		fakeLocks = append(fakeLocks, sesametest.Lock{UUID: uuid, Secret: secret, State: sesame.StateLocked})
	}
	fake := sesametest.NewServer(apiKey, fakeLocks...)
	t.Cleanup(fake.Close)
	broker := mosquittotest.Start(t)
	states := broker.Subscribe(t, topics.Base+"/+/state")
	configs := broker.Subscribe(t, topics.Prefix+"/device/+/config")
	timing := fastTiming
	timing.StatusTimeout = 20 * time.Second
	dir := t.TempDir()
	start := time.Now()
	st := startStackWith(t, broker, fake, dir, stackOptions{locks: locks, quiet: true, timing: &timing, requestTimeout: 15 * time.Second, outbox: 64})
	locked := func(rec *mosquittotest.Recorder) int {
		seen := map[string]bool{}
		for _, m := range rec.Messages() {
			if m.Payload == "LOCKED" {
				seen[m.Topic] = true
			}
		}
		return len(seen)
	}
	discovered := func() int {
		seen := map[string]bool{}
		for _, m := range configs.Messages() {
			if m.Payload != "" {
				seen[m.Topic] = true
			}
		}
		return len(seen)
	}
	deadline := time.Now().Add(60 * time.Second)
	for locked(states) < n || discovered() < n+1 {
		if time.Now().After(deadline) {
			t.Fatalf("within 60 s: %d of %d locks showed a state, %d of %d discovery documents arrived", locked(states), n, discovered(), n+1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	t.Logf("start-up with %d locks: every discovery document and state on the broker after %s (%d status reads)", n, elapsed.Round(time.Millisecond), reads(fake))
	time.Sleep(time.Second) // statuses and republished states may still be on their way

	// What HA finds retained: all of it (late subscribers, 500 at a time:
	// Mosquitto queues at most 1,000 messages per subscriber).
	for _, filter := range []string{topics.Prefix + "/device/+/config", topics.Base + "/+/state", topics.Base + "/+/status"} {
		late := broker.Subscribe(t, filter)
		want := n
		if strings.HasSuffix(filter, "config") {
			want = n + 1 // and the bridge device
		}
		deadline := time.Now().Add(10 * time.Second)
		for retainedTopics(late) < want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := retainedTopics(late); got != want {
			t.Errorf("%s: %d topics with a retained message, want %d", filter, got, want)
			t.Logf("%s", byMessage(st.logs.String()))
		}
	}
	if strings.Contains(st.logs.String(), "outbox full") {
		t.Errorf("publishes were dropped at start-up:\n%s", grep(st.logs.String(), "outbox full"))
	}

	// A restart reads none of them again and shows them at once.
	st.stop()
	before := reads(fake)
	states2 := broker.Subscribe(t, topics.Base+"/+/state")
	start = time.Now()
	startStackWith(t, broker, fake, dir, stackOptions{locks: locks, timing: &timing, requestTimeout: 15 * time.Second, outbox: 64})
	deadline = time.Now().Add(60 * time.Second)
	for locked(states2) < 2*n { // the retained copy at subscribe, then the restored one
		if n2 := countAfter(states2, start); n2 >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart %d of %d states were published", countAfter(states2, start), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("restart with %d locks and a state file: every state published after %s", n, time.Since(start).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	if got := reads(fake) - before; got != 0 {
		t.Errorf("the restart read %d locks that were read a minute ago", got)
	}
}

// byMessage counts log lines by their msg.
func byMessage(logs string) string {
	count := map[string]int{}
	var order []string
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		msg := l
		if i := strings.Index(l, "msg="); i >= 0 {
			msg = l[i:]
			if j := strings.Index(msg, `" `); j >= 0 {
				msg = msg[:j+1]
			}
		}
		if count[msg] == 0 {
			order = append(order, msg)
		}
		count[msg]++
	}
	var b strings.Builder
	for _, m := range order {
		fmt.Fprintf(&b, "%6d %s\n", count[m], m)
	}
	return b.String()
}

func retainedTopics(rec *mosquittotest.Recorder) int {
	seen := map[string]bool{}
	for _, m := range rec.Messages() {
		if m.Retained && m.Payload != "" {
			seen[m.Topic] = true
		}
	}
	return len(seen)
}

func countAfter(rec *mosquittotest.Recorder, since time.Time) int {
	seen := map[string]bool{}
	for _, m := range rec.Messages() {
		if m.At.After(since) && !m.Retained && m.Payload == "LOCKED" {
			seen[m.Topic] = true
		}
	}
	return len(seen)
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("… and %d more", len(out)-10))
	}
	return strings.Join(out, "\n")
}

// TestFaultRestartShowsTheLastKnownState (issue I.6): the state file in
// STATE_DIR brings the lock's state back at once, marked restored, without
// a read.
func TestFaultRestartShowsTheLastKnownState(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	dir := t.TempDir()
	ha := broker.Subscribe(t, topics.Base+"/#")
	first := startStack(t, broker, fake, dir)
	status := ha.WaitFor(t, topics.LockStatus(lockID), nil, 10*time.Second)
	first.stop()
	if _, err := os.Stat(filepath.Join(dir, "locks.json")); err != nil {
		t.Fatalf("no state file: %v", err)
	}
	// Someone turned the lock while the bridge was down: the restored
	// state is the last one read, marked as such, until the next read.
	before := reads(fake)
	since := time.Now()
	startStack(t, broker, fake, dir)
	restored := ha.WaitForAfter(t, since, topics.LockStatus(lockID), func(p string) bool { return strings.Contains(p, `"restored":true`) }, 10*time.Second)
	var old, got hass.Status
	_ = json.Unmarshal([]byte(status.Payload), &old)
	if err := json.Unmarshal([]byte(restored.Payload), &got); err != nil || got.ReadAt != old.ReadAt {
		t.Errorf("restored status %s, want read_at %s", restored.Payload, old.ReadAt)
	}
	ha.WaitForAfter(t, since, topics.LockState(lockID), is("LOCKED"), 5*time.Second)
	time.Sleep(500 * time.Millisecond)
	if n := reads(fake) - before; n != 0 {
		t.Errorf("%d reads at a restart right after a read, want 0", n)
	}
}
