package mqtt_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
)

// receipts counts Deliver's receipts and checks each comes exactly once.
type receipts struct {
	mu        sync.Mutex
	yes, no   int
	seen      map[int]int
	allIn     chan struct{}
	want      int
	closeOnce sync.Once
}

func newReceipts(want int) *receipts {
	return &receipts{seen: map[int]int{}, allIn: make(chan struct{}), want: want}
}

func (r *receipts) done(i int) func(bool) {
	return func(ok bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.seen[i]++
		if ok {
			r.yes++
		} else {
			r.no++
		}
		if r.yes+r.no == r.want {
			r.closeOnce.Do(func() { close(r.allIn) })
		}
	}
}

func (r *receipts) wait(t *testing.T, d time.Duration) (yes, no int) {
	t.Helper()
	select {
	case <-r.allIn:
	case <-time.After(d):
		t.Fatalf("not every receipt came within %s", d)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, n := range r.seen {
		if n != 1 {
			t.Errorf("message %d: %d receipts, want exactly 1", i, n)
		}
	}
	return r.yes, r.no
}

// TestDeliverWaitsForRoomAndReports: with an outbox of 4, 1,500 retained
// messages published as fast as possible all reach the broker (Publish would
// drop most of them), and every one is reported delivered exactly once.
func TestDeliverWaitsForRoomAndReports(t *testing.T) {
	t.Parallel()
	broker := mosquittotest.Start(t)
	log, logs := newLogger(t)
	onConnect, connected := signalChan()
	c, err := mqtt.New(mqtt.Options{URL: broker.URL(), Logger: log, OutboxSize: 4, OnConnect: onConnect})
	if err != nil {
		t.Fatal(err)
	}
	run(t, c)
	waitSignal(t, connected, 10*time.Second, "connect")

	const n = 1500
	r := newReceipts(n)
	for i := range n {
		c.Deliver(context.Background(), fmt.Sprintf("deliver/%d/%d", i/500, i), 1, true, []byte("x"), r.done(i))
	}
	yes, no := r.wait(t, 30*time.Second)
	if yes != n || no != 0 {
		t.Fatalf("%d delivered, %d not, want all %d delivered", yes, no, n)
	}
	if strings.Contains(logs.String(), "outbox full") {
		t.Error("Deliver dropped on a full outbox instead of waiting")
	}
	// The broker holds all of them (retained): late subscribers see them,
	// 500 at a time (Mosquitto queues at most 1,000 per subscriber).
	got := 0
	for g := range n / 500 {
		late := broker.Subscribe(t, fmt.Sprintf("deliver/%d/#", g))
		deadline := time.Now().Add(10 * time.Second)
		for len(late.Messages()) < 500 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		got += len(late.Messages())
	}
	if got != n {
		t.Errorf("%d retained messages on the broker, want %d", got, n)
	}
}

// TestDeliverReportsUndelivered: while the broker is down, and after a
// message was handed over but the connection died before its PUBACK, the
// receipt is false (once).
func TestDeliverReportsUndelivered(t *testing.T) {
	t.Parallel()
	broker := mosquittotest.Start(t)
	log, _ := newLogger(t)
	onConnect, connected := signalChan()
	onLost, lost := signalChan()
	c, err := mqtt.New(mqtt.Options{URL: broker.URL(), Logger: log, Timeout: time.Second, OnConnect: onConnect,
		OnConnectionLost: func(error) { onLost() }})
	if err != nil {
		t.Fatal(err)
	}
	var before atomic.Int32
	c.Deliver(context.Background(), "undelivered/before-run", 1, false, nil, func(ok bool) {
		if !ok {
			before.Add(1)
		}
	})
	if before.Load() != 1 {
		t.Error("a message published before Run was not reported undelivered at once")
	}
	run(t, c)
	waitSignal(t, connected, 10*time.Second, "connect")

	r := newReceipts(1)
	c.Deliver(context.Background(), "undelivered/ok", 1, false, []byte("x"), r.done(0))
	if yes, _ := r.wait(t, 5*time.Second); yes != 1 {
		t.Fatal("a message to a running broker was not reported delivered")
	}

	broker.Kill()
	waitSignal(t, lost, 10*time.Second, "connection lost")
	r = newReceipts(3)
	for i := range 3 {
		c.Deliver(context.Background(), "undelivered/down", 1, false, []byte("x"), r.done(i))
	}
	if _, no := r.wait(t, 5*time.Second); no != 3 {
		t.Errorf("%d of 3 messages to a dead broker reported undelivered", no)
	}
	// An invalid topic is reported at once too.
	r = newReceipts(1)
	c.Deliver(context.Background(), "bad/#", 1, false, nil, r.done(0))
	if _, no := r.wait(t, time.Second); no != 1 {
		t.Error("an invalid publish was not reported undelivered")
	}
	broker.Restart()
}
