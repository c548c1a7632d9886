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
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380/rcs380sim"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// BenchmarkCardToSignedPOSTRCS380 measures a card entering the field of
// the simulated RC-S380 to the signed POST at the Sesame fake: the pure-Go
// driver's poll, our reader loop, the allowlist, the lock's worker, signing
// and the HTTP client, with the bridge publishing to a real Mosquitto
// meanwhile. It reports the whole (bounded by where in the poll period the
// card arrives), ours-from-chip (from the simulated chip's answer that
// completes the card's activation to the POST: everything the bridge does,
// the driver included) and ours (from the tap handed to the bridge to the
// POST, as the PN532's benchmark reports).
func BenchmarkCardToSignedPOSTRCS380(b *testing.B) {
	broker := mosquittotest.Start(b)
	fake := newFake(b)
	fake.SetMoveDelay(0)
	log, _ := logcapture.New()
	sim := rcs380sim.New(rcs380sim.Options{})
	useRCS380Sim(b, sim)
	topics := hass.Topics{Base: "sesame2mqtt", Prefix: "homeassistant"}
	ha := broker.Subscribe(b, topics.LockState(lockID))

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
		Connstring: rcs380.Prefix, Open: openReader(log),
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
		err := sim.WaitSense(wctx)
		wcancel()
		if err != nil {
			b.Fatalf("tap %d: the reader is not polling: %v", i, err)
		}
		// Land anywhere in the poll period, as a hand does.
		time.Sleep(time.Duration(i%8) * rcs380.PollPeriod / 8)
		for len(arrivals) > 0 {
			<-arrivals
		}
		b.StartTimer()
		start := time.Now()
		sim.Put(rcs380sim.ISO14443A(card))
		req := waitPOST(b, arrivals, i)
		b.StopTimer()
		if !req.SignValid || req.History != "Alice" {
			b.Fatalf("tap %d: POST signature valid %v, history %q", i, req.SignValid, req.History)
		}
		mu.Lock()
		ours = append(ours, req.Time.Sub(tappedAt))
		mu.Unlock()
		fromChip = append(fromChip, req.Time.Sub(sim.FoundAt()))
		total = append(total, req.Time.Sub(start))
		sim.Remove()
		if state == "LOCKED" {
			state = "UNLOCKED"
		} else {
			state = "LOCKED"
		}
		ha.WaitForAfter(b, start, topics.LockState(lockID), is(state), 5*time.Second)
		b.StartTimer()
	}
	b.StopTimer()
	for _, d := range [][]time.Duration{total, ours, fromChip} {
		slices.Sort(d)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(total[len(total)/2]), "median-ms")
	b.ReportMetric(ms(total[len(total)-1]), "max-ms")
	b.ReportMetric(ms(fromChip[len(fromChip)/2]), "ours-from-chip-median-ms")
	b.ReportMetric(ms(fromChip[len(fromChip)*9/10]), "ours-from-chip-p90-ms")
	b.ReportMetric(ms(fromChip[len(fromChip)-1]), "ours-from-chip-max-ms")
	b.ReportMetric(ms(ours[len(ours)/2]), "ours-median-ms")
	b.ReportMetric(ms(ours[len(ours)-1]), "ours-max-ms")
	b.ReportMetric(float64(rcs380.PollPeriod/time.Millisecond), "poll-period-ms")
	b.ReportMetric(0, "ns/op")
}
