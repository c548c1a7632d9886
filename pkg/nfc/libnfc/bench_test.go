//go:build cgo

package libnfc_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/libnfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim/pn532simtest"
)

// BenchmarkCardToPoll measures the time from a card entering the field to
// Poll returning it, with real libnfc against the simulated PN532 (whose
// InAutoPoll keeps the chip's slot timing). ns/op is that latency.
//
//   - cycle-start: the card comes right as a poll starts (WaitPolling): the
//     time to the first slot of its type.
//   - random-phase: the card comes at a random moment of the cycle, as a
//     person's tap does: the mean latency a user sees.
//
// Metrics: cycle-ms is PollCycle; measured-cycle-ms is how long a Poll of
// an empty field took.
func BenchmarkCardToPoll(b *testing.B) {
	cards := []struct {
		name string
		card pn532sim.Card
	}{
		{"classic", pn532sim.ISO14443A([]byte{0x01, 0x02, 0x03, 0x04})},
		{"iso14443-4", pn532sim.ISO14443A([]byte{0x04, 1, 2, 3, 4, 5, 6, 7, 8, 9})},
		{"felica", pn532sim.FeliCa([]byte{0x01, 0x2E, 0x4C, 0x11, 0x22, 0x33, 0x44, 0x55})},
	}
	for _, phase := range []string{"cycle-start", "random-phase"} {
		for _, c := range cards {
			b.Run(c.name+"/"+phase, func(b *testing.B) {
				benchCardToPoll(b, c.card, phase == "random-phase")
			})
		}
	}
}

func benchCardToPoll(b *testing.B, card pn532sim.Card, randomPhase bool) {
	s := pn532simtest.Start(b, "")
	d := open(b, s.Connstring())

	start := time.Now()
	if _, err := d.Poll(); !errors.Is(err, nfc.ErrNoCard) {
		b.Fatalf("empty Poll: %v", err)
	}
	emptyCycle := time.Since(start)

	// The device's owner: polls on request until it finds a card.
	next := make(chan struct{})
	found := make(chan error, 1) // buffered: the poller never blocks on a benchmark that failed
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for range next {
			for {
				_, err := d.Poll()
				if errors.Is(err, nfc.ErrNoCard) {
					continue
				}
				found <- err
				break
			}
		}
	}()
	defer func() {
		close(next)
		<-stopped
	}()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ResetTimer()
	b.StopTimer()
	for range b.N {
		s.Remove()
		next <- struct{}{}
		if err := s.WaitPolling(ctx); err != nil {
			b.Fatal(err)
		}
		if randomPhase {
			time.Sleep(rand.N(libnfc.PollCycle))
		}
		b.StartTimer()
		s.Put(card)
		err := <-found
		b.StopTimer()
		if err != nil {
			b.Fatalf("Poll: %v", err)
		}
	}
	b.ReportMetric(float64(libnfc.PollCycle.Milliseconds()), "cycle-ms")
	b.ReportMetric(float64(emptyCycle.Microseconds())/1000, "measured-cycle-ms")
}
