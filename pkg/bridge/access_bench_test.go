package bridge

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/access"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

type nopPublisher struct{}

func (nopPublisher) Publish(string, byte, bool, []byte) {}
func (nopPublisher) Deliver(_ context.Context, _ string, _ byte, _ bool, _ []byte, done func(bool)) {
	if done != nil {
		done(true)
	}
}

// BenchmarkTapDecision is the bridge's part of a tap with 1,000 cards on
// the list and 10,000 entries in the access log (on disk): the lookup, the
// rules, the event, the log line and the access log's append. Action none:
// no command, so that the worker's part (measured by the card-to-POST
// benchmark in cmd) is not counted twice.
func BenchmarkTapDecision(b *testing.B) {
	dir := b.TempDir()
	list, err := access.OpenList("", nil, access.ListOptions{Location: time.UTC})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for i := range 1000 {
		e := access.Entry{UID: fmt.Sprintf("04%012X", i), Name: fmt.Sprintf("Person %d", i), Action: access.ActionNone, Enabled: true,
			Weekdays: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday}, From: "00:00", To: "23:59"}
		if i%2 == 1 {
			e.Enabled = false
		}
		if _, err := list.Put(e, "bench", now); err != nil {
			b.Fatal(err)
		}
	}
	alog, err := access.OpenLog(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer alog.Close()
	for i := range 10000 {
		alog.Append(access.LogEntry{Time: now, Door: "Front door", Holder: "Person", Card: fmt.Sprint(i), Result: access.ResultGranted})
	}
	br, err := New(Options{
		Locks: []Lock{testLock}, Topics: hass.Topics{Base: "s2m", Prefix: "homeassistant"}, Version: "bench",
		Cloud: newCloud(sesame.StateLocked), Publisher: nopPublisher{}, Budget: &fixedBudget{interval: time.Hour, ok: true, changed: make(chan struct{}, 1)},
		Reader: &Reader{Policy: access.NewPolicy(list), Log: alog, Action: CardNone, LockID: testLock.ID, Hash: access.NewHasher([]byte("k")).Hash},
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		idx  int
	}{{"granted", 500}, {"denied_disabled", 501}} {
		card := nfc.Card{Kind: nfc.ISO14443A, UID: []byte{0x04, 0, 0, 0, 0, byte(bc.idx >> 8), byte(bc.idx)}}
		if _, ok := list.Lookup(card.HexUID()); !ok {
			b.Fatalf("%s not listed", card.HexUID())
		}
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				br.Tap(card, time.Now())
			}
		})
	}
}
