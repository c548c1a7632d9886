package main

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/access"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/bridge"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/budget"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/libnfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim/pn532simtest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
)

// BenchmarkCardToSignedPOST measures a card entering the field of the
// simulated PN532 to the signed POST arriving at the Sesame fake: libnfc's
// poll, our reader loop, the allowlist, the lock's worker, signing and the
// HTTP client, with the bridge publishing to a real Mosquitto meanwhile.
// It reports the whole (bounded by where in the reader's poll period the
// card arrives) and our own share: from the tap handed to the bridge to the
// POST.
func BenchmarkCardToSignedPOST(b *testing.B) {
	needLibnfc(b)
	sim := pn532simtest.Start(b, "")
	cardToSignedPOST(b, benchReader{
		connstring:  sim.Connstring(),
		waitPolling: sim.WaitPolling,
		put:         func(uid []byte) { sim.Put(pn532sim.ISO14443A(uid)) },
		remove:      sim.Remove,
		pollPeriod:  libnfc.PollPeriod * libnfc.PollTypes,
		landStep:    75 * time.Millisecond,
	})
}

// benchReader is what cardToSignedPOST needs of a simulated reader.
type benchReader struct {
	connstring  string
	waitPolling func(context.Context) error // returns once the driver polls
	put         func(uid []byte)            // a card enters the field
	remove      func()
	foundAt     func() time.Time // when the chip completed the card's activation; nil: not known
	pollPeriod  time.Duration
	landStep    time.Duration // taps land at i%8 of these into the poll period
}

// cardToSignedPOST runs the card-to-POST benchmark over a simulated reader:
// the driver's poll, our reader loop, the allowlist, the lock's worker,
// signing and the HTTP client, with the bridge publishing to a real
// Mosquitto meanwhile.
func cardToSignedPOST(b *testing.B, rd benchReader) {
	broker := mosquittotest.Start(b)
	fake := newFake(b)
	fake.SetMoveDelay(0)
	topics := hass.Topics{Base: "sesame2mqtt", Prefix: "homeassistant"}
	ha := broker.Subscribe(b, topics.LockState(lockID))
	log, _ := logcapture.New()

	meter, err := budget.Open(b.TempDir()+"/api-usage.json", 1_000_000, time.Now, log)
	if err != nil {
		b.Fatal(err)
	}
	cloud, err := sesame.New(sesame.Options{BaseURL: fake.URL(), APIKey: sesame.NewSecret(apiKey), Counter: meter, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	card := []byte{0x04, 0xa2, 0x2b, 0x1c, 0xd3, 0x5e, 0x80}
	var br *bridge.Bridge
	mq, err := mqtt.New(mqtt.Options{
		URL: broker.URL(), WillTopic: topics.Availability(), WillPayload: "offline",
		Subscriptions: bridge.Subscriptions(topics),
		OnMessage:     func(m mqtt.Message) { br.HandleMessage(m) },
		OnConnect:     func() { br.OnConnect() },
		Timeout:       2 * time.Second, Logger: log,
	})
	if err != nil {
		b.Fatal(err)
	}
	br, err = bridge.New(bridge.Options{
		Locks:  []bridge.Lock{{ID: lockID, UUID: lockUUID, Name: "Front door", Secret: sesame.NewSecret(lockSecret)}},
		Topics: topics, Version: "bench", Cloud: cloud, Publisher: mq, Budget: meter, Logger: log,
		Timing: bridge.Timing{ConfirmAt: []time.Duration{20 * time.Millisecond, 100 * time.Millisecond}},
		Reader: &bridge.Reader{
			Policy: access.New([]access.Card{{UID: card, Name: "Alice"}}),
			Action: bridge.CardToggle, LockID: lockID, AllTags: true,
			Hash: access.NewHasher([]byte("bench")).Hash,
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var tappedAt time.Time
	reader, err := nfc.NewReader(nfc.Options{
		Connstring: rd.connstring, Open: openReader(log),
		OnTap: func(c nfc.Card, at time.Time) {
			mu.Lock()
			tappedAt = time.Now()
			mu.Unlock()
			br.Tap(c, at)
		},
		OnStatus: br.ReaderStatus, Logger: log,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{mq.Run, br.Run, reader.Run} {
		wg.Go(func() { _ = run(ctx) })
	}
	b.Cleanup(func() { cancel(); wg.Wait() })
	state := "LOCKED"
	ha.WaitFor(b, topics.LockState(lockID), is(state), 10*time.Second)
	arrivals := fake.Notify()

	total := make([]time.Duration, 0, b.N)
	ours := make([]time.Duration, 0, b.N)
	fromChip := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		err := rd.waitPolling(wctx)
		wcancel()
		if err != nil {
			b.Fatalf("tap %d: the reader is not polling: %v", i, err)
		}
		// Land anywhere in the poll period, as a hand does.
		time.Sleep(time.Duration(i%8) * rd.landStep)
		for len(arrivals) > 0 {
			<-arrivals
		}
		b.StartTimer()
		start := time.Now()
		rd.put(card)
		req := waitPOST(b, arrivals, i)
		b.StopTimer()
		if !req.SignValid || req.History != "Alice" {
			b.Fatalf("tap %d: POST signature valid %v, history %q", i, req.SignValid, req.History)
		}
		mu.Lock()
		ours = append(ours, req.Time.Sub(tappedAt))
		mu.Unlock()
		if rd.foundAt != nil {
			fromChip = append(fromChip, req.Time.Sub(rd.foundAt()))
		}
		total = append(total, req.Time.Sub(start))
		rd.remove()
		if state == "LOCKED" {
			state = "UNLOCKED"
		} else {
			state = "LOCKED"
		}
		ha.WaitForAfter(b, start, topics.LockState(lockID), is(state), 5*time.Second)
		b.StartTimer()
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	report := func(d []time.Duration, name string) {
		slices.Sort(d)
		b.ReportMetric(ms(d[len(d)/2]), name+"median-ms")
		b.ReportMetric(ms(d[len(d)*9/10]), name+"p90-ms")
		b.ReportMetric(ms(d[len(d)-1]), name+"max-ms")
	}
	report(total, "")
	report(ours, "ours-")
	if len(fromChip) > 0 {
		report(fromChip, "ours-from-chip-")
	}
	b.ReportMetric(float64(rd.pollPeriod/time.Millisecond), "poll-period-ms")
	b.ReportMetric(0, "ns/op")
}

// waitPOST returns the next POST at the fake.
func waitPOST(b *testing.B, arrivals <-chan sesametest.Request, i int) sesametest.Request {
	deadline := time.After(5 * time.Second)
	for {
		select {
		case r := <-arrivals:
			if r.Method == "POST" {
				return r
			}
		case <-deadline:
			b.Fatalf("tap %d: no POST within 5 s", i)
		}
	}
}
