package mqtt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
)

// Environment of the child process TestWillOnAbruptDeath starts from this
// test binary.
const (
	helperEnv      = "SESAME2MQTT_MQTT_TEST_HELPER"
	helperURLEnv   = "SESAME2MQTT_MQTT_TEST_URL"
	helperTopicEnv = "SESAME2MQTT_MQTT_TEST_WILL_TOPIC"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

// helperMain is a minimal bridge: it publishes "online" retained on every
// connect and has "offline" as its will. The test kills it with SIGKILL.
func helperMain() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	topic := os.Getenv(helperTopicEnv)
	var c *mqtt.Client
	c, err := mqtt.New(mqtt.Options{
		URL:         os.Getenv(helperURLEnv),
		WillTopic:   topic,
		WillPayload: "offline",
		Logger:      log,
		OnConnect:   func() { c.Publish(topic, 1, true, []byte("online")) },
	})
	if err != nil {
		log.Error("helper", "err", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := c.Run(ctx); err != nil {
		log.Error("helper", "err", err)
		return 1
	}
	return 0
}

// newLogger returns a debug logger into a buffer, printed if the test fails.
func newLogger(t *testing.T) (*slog.Logger, *logcapture.Buffer) {
	t.Helper()
	lb := &logcapture.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("client log:\n%s", lb.String())
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// run starts c.Run and registers a cleanup that cancels it and checks that
// it returns nil within 5 s. Call it after mosquittotest.Start so that the
// client stops before the broker.
func run(t *testing.T, c *mqtt.Client) (cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- c.Run(ctx) }()
	var once sync.Once
	var result error
	wait := func() error {
		once.Do(func() {
			select {
			case result = <-ch:
			case <-time.After(10 * time.Second):
				result = errors.New("Run did not return within 10s of cancel")
			}
		})
		return result
	}
	t.Cleanup(func() {
		cancel()
		if err := wait(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return cancel, ch
}

// signalChan returns a callback that signals on a channel without blocking.
func signalChan() (func(), chan struct{}) {
	ch := make(chan struct{}, 64)
	return func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}, ch
}

func waitSignal(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}

func waitMessage(t *testing.T, ch <-chan mqtt.Message, d time.Duration, match func(mqtt.Message) bool) mqtt.Message {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	var seen []string
	for {
		select {
		case m := <-ch:
			if match(m) {
				return m
			}
			seen = append(seen, fmt.Sprintf("%s=%q", m.Topic, m.Payload))
		case <-timer.C:
			t.Fatalf("no matching message within %s; saw %v", d, seen)
			return mqtt.Message{}
		}
	}
}

func payloadIs(s string) func(string) bool { return func(p string) bool { return p == s } }

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	b := mosquittotest.Start(t)
	rec := b.Subscribe(t, "rt/out/#")
	log, _ := newLogger(t)

	msgs := make(chan mqtt.Message, 16)
	onConnect, connected := signalChan()
	c, err := mqtt.New(mqtt.Options{
		URL:           b.URL(),
		Subscriptions: []string{"rt/in/#", "rt/in/exact"}, // overlapping on purpose
		OnMessage:     func(m mqtt.Message) { msgs <- m },
		OnConnect:     onConnect,
		Logger:        log,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Connected() {
		t.Error("Connected() before Run")
	}
	run(t, c)
	waitSignal(t, connected, 5*time.Second, "OnConnect")
	if !c.Connected() {
		t.Error("Connected() = false after OnConnect")
	}

	b.Publish(t, "rt/in/exact", "hello", false)
	m := waitMessage(t, msgs, 5*time.Second, func(m mqtt.Message) bool { return true })
	if m.Topic != "rt/in/exact" || string(m.Payload) != "hello" || m.QoS != 1 || m.Retained || m.Duplicate {
		t.Errorf("message = %+v, want rt/in/exact hello QoS 1, not retained", m)
	}
	// Overlapping filters must not deliver the message twice to OnMessage.
	b.Publish(t, "rt/in/marker", "marker", false)
	m = waitMessage(t, msgs, 5*time.Second, func(m mqtt.Message) bool { return true })
	if m.Topic != "rt/in/marker" {
		t.Errorf("after one publish on rt/in/exact, next message = %s %q, want the marker (duplicate delivery?)", m.Topic, m.Payload)
	}

	c.Publish("rt/out/state", 1, true, []byte("LOCKED"))
	c.Publish("rt/out/event", 0, false, []byte(`{"event_type":"tap"}`))
	got := rec.WaitFor(t, "rt/out/state", nil, 5*time.Second)
	if got.Payload != "LOCKED" {
		t.Errorf("state = %q", got.Payload)
	}
	rec.WaitFor(t, "rt/out/event", payloadIs(`{"event_type":"tap"}`), 5*time.Second)

	// The state was published retained: a late subscriber gets it as such.
	late := b.Subscribe(t, "rt/out/state").WaitFor(t, "rt/out/state", nil, 5*time.Second)
	if !late.Retained || late.Payload != "LOCKED" {
		t.Errorf("late subscriber got %+v, want retained LOCKED", late)
	}

	if err := c.PublishWait(context.Background(), "rt/out/wait", 1, false, []byte("w")); err != nil {
		t.Fatalf("PublishWait: %v", err)
	}
	rec.WaitFor(t, "rt/out/wait", payloadIs("w"), 5*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The PUBACK may already be in when ctx is looked at, so nil is fine
	// too; anything else is not.
	if err := c.PublishWait(ctx, "rt/out/cancelled", 1, false, nil); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("PublishWait with cancelled ctx: %v, want nil or context.Canceled", err)
	}
	if err := c.PublishWait(context.Background(), "rt/out/+", 1, false, nil); err == nil {
		t.Error("PublishWait on a wildcard topic succeeded")
	}
}

func TestRetainedFlag(t *testing.T) {
	t.Parallel()
	b := mosquittotest.Start(t)
	b.Publish(t, "rf/cmd/a", "retained-before", true)

	msgs := make(chan mqtt.Message, 16)
	onConnect, connected := signalChan()
	c, err := mqtt.New(mqtt.Options{
		URL:           b.URL(),
		Subscriptions: []string{"rf/cmd/+"},
		OnMessage:     func(m mqtt.Message) { msgs <- m },
		OnConnect:     onConnect,
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, c)
	m := waitMessage(t, msgs, 5*time.Second, func(m mqtt.Message) bool { return string(m.Payload) == "retained-before" })
	if !m.Retained {
		t.Errorf("retained message arrived with Retained=false: %+v", m)
	}
	waitSignal(t, connected, 5*time.Second, "OnConnect")

	b.Publish(t, "rf/cmd/a", "live", false)
	m = waitMessage(t, msgs, 5*time.Second, func(m mqtt.Message) bool { return string(m.Payload) == "live" })
	if m.Retained {
		t.Errorf("live message arrived with Retained=true: %+v", m)
	}
}

func TestResubscribeAfterBrokerRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		down func(*mosquittotest.Broker)
	}{
		{"stop", (*mosquittotest.Broker).Stop},
		{"kill", (*mosquittotest.Broker).Kill},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := mosquittotest.Start(t)
			log, logs := newLogger(t)
			msgs := make(chan mqtt.Message, 16)
			onConnect, connected := signalChan()
			onLost, lost := signalChan()
			var connects atomic.Int32
			c, err := mqtt.New(mqtt.Options{
				URL:              b.URL(),
				Subscriptions:    []string{"rs/cmd/#"},
				OnMessage:        func(m mqtt.Message) { msgs <- m },
				OnConnect:        func() { connects.Add(1); onConnect() },
				OnConnectionLost: func(error) { onLost() },
				Logger:           log,
			})
			if err != nil {
				t.Fatal(err)
			}
			run(t, c)
			waitSignal(t, connected, 5*time.Second, "first OnConnect")
			b.Publish(t, "rs/cmd/x", "before", false)
			waitMessage(t, msgs, 5*time.Second, func(m mqtt.Message) bool { return string(m.Payload) == "before" })

			tc.down(b)
			waitSignal(t, lost, 5*time.Second, "OnConnectionLost")
			if c.Connected() {
				t.Error("Connected() = true while the broker is down")
			}
			start := time.Now()
			c.Publish("rs/state", 1, true, []byte("while-down"))
			if time.Since(start) > 100*time.Millisecond {
				t.Errorf("Publish while down took %s", time.Since(start))
			}
			if !strings.Contains(logs.String(), "mqtt publish dropped: not connected") {
				t.Error("Publish while down was not logged as dropped")
			}

			b.Restart()
			waitSignal(t, connected, 15*time.Second, "OnConnect after restart")
			if n := connects.Load(); n != 2 {
				t.Errorf("OnConnect ran %d times, want 2", n)
			}
			if !c.Connected() {
				t.Error("Connected() = false after reconnect")
			}
			// OnConnect runs after the SUBACK: the subscription is live.
			b.Publish(t, "rs/cmd/x", "after", false)
			waitMessage(t, msgs, 5*time.Second, func(m mqtt.Message) bool { return string(m.Payload) == "after" })
		})
	}
}

func TestWillOnAbruptDeath(t *testing.T) {
	t.Parallel()
	b := mosquittotest.Start(t)
	const topic = "will/bridge/status"
	rec := b.Subscribe(t, topic)

	var stderr bytes.Buffer
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperURLEnv+"="+b.URL(), helperTopicEnv+"="+topic)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("helper stderr:\n%s", stderr.String())
		}
	})

	rec.WaitFor(t, topic, payloadIs("online"), 10*time.Second)
	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill helper: %v", err)
	}
	select {
	case <-exited:
		exited <- nil // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("helper did not die")
	}

	// The broker publishes the will as soon as it sees the socket close.
	rec.WaitForAfter(t, killed, topic, payloadIs("offline"), 5*time.Second)
	late := b.Subscribe(t, topic).WaitFor(t, topic, nil, 5*time.Second)
	if late.Payload != "offline" || !late.Retained {
		t.Errorf("retained status after kill = %+v, want retained offline", late)
	}
}

func TestRunCancelPublishesWillAndDrains(t *testing.T) {
	t.Parallel()
	b := mosquittotest.Start(t)
	const status = "cw/bridge/status"
	rec := b.Subscribe(t, "cw/#")
	log, _ := newLogger(t)

	onConnect, connected := signalChan()
	var c *mqtt.Client
	const clientID = "cw-bridge"
	c, err := mqtt.New(mqtt.Options{
		URL:         b.URL(),
		ClientID:    clientID,
		WillTopic:   status,
		WillPayload: "offline",
		OnConnect: func() {
			c.Publish(status, 1, true, []byte("online"))
			onConnect()
		},
		Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitSignal(t, connected, 5*time.Second, "OnConnect")
	rec.WaitFor(t, status, payloadIs("online"), 5*time.Second)

	// Queue a burst and cancel at once: shutdown hands all of it to the
	// broker, in order, before the will.
	const n = 200
	for i := range n {
		c.Publish("cw/seq", 1, false, []byte(strconv.Itoa(i)))
	}
	cancelled := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancel")
	}
	t.Logf("Run returned %s after cancel", time.Since(cancelled).Round(time.Millisecond))

	off := rec.WaitForAfter(t, cancelled, status, payloadIs("offline"), 5*time.Second)
	var seq []string
	for _, m := range rec.Messages() {
		if m.Topic == "cw/seq" {
			seq = append(seq, m.Payload)
			if m.At.After(off.At) {
				t.Errorf("cw/seq %s arrived after the will", m.Payload)
			}
		}
	}
	if len(seq) != n {
		t.Fatalf("got %d of %d queued messages", len(seq), n)
	}
	for i, p := range seq {
		if p != strconv.Itoa(i) {
			t.Fatalf("message %d = %s: order not preserved", i, p)
		}
	}
	late := b.Subscribe(t, status).WaitFor(t, status, nil, 5*time.Second)
	if late.Payload != "offline" || !late.Retained {
		t.Errorf("retained status after shutdown = %+v, want retained offline", late)
	}
	// The broker discards the will of a client that sends DISCONNECT, so
	// "offline" can only have come from the explicit publish if the
	// disconnect was clean. Mosquitto 2 logs a clean one as "disconnected."
	// and an abrupt one as "closed its connection." (or another reason).
	if logs := b.Logs(); !strings.Contains(logs, "Client "+clientID+" disconnected.\n") {
		t.Errorf("broker did not log a clean DISCONNECT from %s:\n%s", clientID, logs)
	}
	if c.Connected() {
		t.Error("Connected() = true after Run returned")
	}
	if err := c.Run(context.Background()); err == nil {
		t.Error("second Run returned nil")
	}
}

func TestPublishNeverBlocksWhenDisconnected(t *testing.T) {
	t.Parallel()
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	log, logs := newLogger(t)
	c, err := mqtt.New(mqtt.Options{URL: "tcp://" + addr, Logger: log, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const topic = "nb/sesame/state"
	const payload = "SECRET-PAYLOAD"

	c.Publish(topic, 1, true, []byte(payload)) // before Run
	run(t, c)
	const n = 10000
	var slowest time.Duration
	start := time.Now()
	for range n {
		s := time.Now()
		c.Publish(topic, 1, true, []byte(payload))
		slowest = max(slowest, time.Since(s))
	}
	elapsed := time.Since(start)
	// Each call costs one log line; the bounds leave room for -race and a
	// busy machine while catching any call that waits on the network.
	if elapsed > 5*time.Second || slowest > 500*time.Millisecond {
		t.Errorf("%d publishes while disconnected took %s (slowest %s)", n, elapsed, slowest)
	}
	t.Logf("%d dropped publishes took %s (slowest call %s)", n, elapsed, slowest)

	err = c.PublishWait(context.Background(), topic, 1, false, []byte(payload))
	if !errors.Is(err, mqtt.ErrNotConnected) {
		t.Errorf("PublishWait while disconnected: %v, want ErrNotConnected", err)
	}
	if c.Connected() {
		t.Error("Connected() = true with no broker")
	}

	out := logs.String()
	if got := strings.Count(out, `msg="mqtt publish dropped: not connected" topic=`+topic); got != n+1 {
		t.Errorf("%d drop lines naming the topic, want %d", got, n+1)
	}
	if strings.Contains(out, payload) {
		t.Error("a payload appeared in the log")
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	const user, pass, wrong = "bridge", "correct-horse-42", "wrong-battery-17"
	b := mosquittotest.Start(t, mosquittotest.WithLogin(user, pass))

	t.Run("right", func(t *testing.T) {
		t.Parallel()
		rec := b.Subscribe(t, "login/#")
		log, logs := newLogger(t)
		onConnect, connected := signalChan()
		c, err := mqtt.New(mqtt.Options{URL: b.URL(), Username: user, Password: pass, OnConnect: onConnect, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		run(t, c)
		waitSignal(t, connected, 5*time.Second, "OnConnect with the right login")
		c.Publish("login/state", 1, false, []byte("in"))
		rec.WaitFor(t, "login/state", payloadIs("in"), 5*time.Second)
		if strings.Contains(logs.String(), pass) {
			t.Error("the password appeared in the log")
		}
	})

	for _, tc := range []struct{ name, user, pass string }{
		{"wrong password", user, wrong},
		{"anonymous", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log, logs := newLogger(t)
			onConnect, connected := signalChan()
			c, err := mqtt.New(mqtt.Options{
				URL:       b.URL(),
				Username:  tc.user,
				Password:  tc.pass,
				OnConnect: onConnect,
				Logger:    log,
			})
			if err != nil {
				t.Fatal(err)
			}
			run(t, c)
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(logs.String(), "mqtt connect failed") {
				if time.Now().After(deadline) {
					t.Fatal("no connect failure logged within 5s")
				}
				time.Sleep(20 * time.Millisecond)
			}
			out := logs.String()
			if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "not Authorized") && !strings.Contains(out, "bad user name or password") {
				t.Errorf("refusal not logged as an authorisation error:\n%s", out)
			}
			select {
			case <-connected:
				t.Error("OnConnect ran although the broker refused the login")
			default:
			}
			if c.Connected() {
				t.Error("Connected() = true with a refused login")
			}
			if strings.Contains(out, wrong) || strings.Contains(out, pass) {
				t.Error("a password appeared in the log")
			}
		})
	}
}

func TestPasswordInURLNotLogged(t *testing.T) {
	t.Parallel()
	const secret = "url-secret-99"
	b := mosquittotest.Start(t, mosquittotest.WithLogin("u", secret))
	log, logs := newLogger(t)
	onConnect, connected := signalChan()
	url := strings.Replace(b.URL(), "tcp://", "tcp://u:"+secret+"@", 1)
	c, err := mqtt.New(mqtt.Options{URL: url, OnConnect: onConnect, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	run(t, c)
	waitSignal(t, connected, 5*time.Second, "OnConnect with credentials in the URL")
	out := logs.String()
	if strings.Contains(out, secret) {
		t.Errorf("the password from the URL appeared in the log:\n%s", out)
	}
	if !strings.Contains(out, "xxxxx") {
		t.Errorf("log does not show the redacted broker URL:\n%s", out)
	}
}
