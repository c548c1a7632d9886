package bridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
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
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
)

const (
	sharedPrefix = "building-access"
	backUUID     = "5A5A0000-1111-4222-8333-444455556666"
	backID       = "5a5a0000111142228333444455556666"
	backSecret   = "00112233445566778899aabbccddeeff"
)

// door is one bridge with a card reader (taps are injected) and its own
// state directory, sharing its list on the broker.
type door struct {
	br     *bridge.Bridge
	lockID string
	logs   *logcapture.Buffer
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func startDoor(t *testing.T, broker *mosquittotest.Broker, fake *sesametest.Server, base string, lock bridge.Lock) *door {
	t.Helper()
	dir := t.TempDir()
	d := &door{lockID: lock.ID, logs: &logcapture.Buffer{}, done: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(d.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("door", base)
	meter, err := budget.Open(filepath.Join(dir, "api-usage.json"), 100000, time.Now, log)
	if err != nil {
		t.Fatal(err)
	}
	cloud, err := sesame.New(sesame.Options{BaseURL: fake.URL(), APIKey: sesame.NewSecret(apiKey), Counter: meter, RequestTimeout: time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	list, err := access.OpenList(filepath.Join(dir, access.ListFile), nil, access.ListOptions{Node: base, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	alog, err := access.OpenLog(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	tp := hass.Topics{Base: base, Prefix: "homeassistant"}
	var br *bridge.Bridge
	mq, err := mqtt.New(mqtt.Options{
		URL: broker.URL(), WillTopic: tp.Availability(), WillPayload: "offline",
		Subscriptions: append(bridge.Subscriptions(tp), bridge.SharedCardsFilter(sharedPrefix)),
		OnMessage:     func(m mqtt.Message) { br.HandleMessage(m) },
		OnConnect:     func() { br.OnConnect() },
		Timeout:       2 * time.Second,
		Logger:        log,
	})
	if err != nil {
		t.Fatal(err)
	}
	br, err = bridge.New(bridge.Options{
		Locks: []bridge.Lock{lock}, Topics: tp, Version: "test", Cloud: cloud, Publisher: mq, Budget: meter, Logger: log, Timing: fastTiming,
		Reader: &bridge.Reader{
			Policy: access.NewPolicy(list), Log: alog, Action: bridge.CardToggle, LockID: lock.ID,
			Hash: access.NewHasher([]byte("key of " + base)).Hash,
		},
		SharedAccess: sharedPrefix,
	})
	if err != nil {
		t.Fatal(err)
	}
	d.br = br
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); _ = mq.Run(ctx) }()
	go func() { defer wg.Done(); _ = br.Run(ctx) }()
	go func() { defer wg.Done(); meter.Run(ctx) }()
	go func() { wg.Wait(); close(d.done) }()
	t.Cleanup(d.stop)
	return d
}

func (d *door) stop() {
	d.once.Do(func() {
		d.cancel()
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			panic("door did not stop")
		}
	})
}

// card finds a card by name in the door's list.
func (d *door) card(name string) (access.Entry, bool) {
	for _, e := range d.br.Access().Cards() {
		if e.Name == name {
			return e, true
		}
	}
	return access.Entry{}, false
}

// waitCard waits until pred holds for the door's card (or its absence).
func waitCard(t *testing.T, d *door, name string, within time.Duration, pred func(access.Entry, bool) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if pred(d.card(name)) {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	e, ok := d.card(name)
	t.Fatalf("card %s at %s not as wanted within %s: %+v %v", name, d.lockID, within, e, ok)
	return 0
}

func byUID(d *door, uid string) access.Entry {
	for _, e := range d.br.Access().Cards() {
		if e.UID == uid {
			return e
		}
	}
	return access.Entry{}
}

func present(e access.Entry, ok bool) bool { return ok }

func lockCommands(fake *sesametest.Server, uuid string) int {
	n := 0
	for _, r := range commands(fake) {
		if strings.EqualFold(r.UUID, uuid) {
			n++
		}
	}
	return n
}

func waitCommands(t *testing.T, fake *sesametest.Server, uuid string, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if lockCommands(fake, uuid) >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d commands for %s within %s, want %d", lockCommands(fake, uuid), uuid, within, n)
}

func TestSharedListTwoDoors(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := sesametest.NewServer(apiKey,
		sesametest.Lock{UUID: lockUUID, Secret: lockSecret, State: sesame.StateLocked},
		sesametest.Lock{UUID: backUUID, Secret: backSecret, State: sesame.StateLocked})
	fake.SetMoveDelay(100 * time.Millisecond)
	t.Cleanup(fake.Close)
	a := startDoor(t, broker, fake, "door-front", bridge.Lock{ID: lockID, UUID: lockUUID, Name: "Front door", Secret: sesame.NewSecret(lockSecret)})
	b := startDoor(t, broker, fake, "door-back", bridge.Lock{ID: backID, UUID: backUUID, Name: "Back door", Secret: sesame.NewSecret(backSecret)})
	time.Sleep(300 * time.Millisecond) // both connected and subscribed

	// Enroll at the front door; the card works at the back door within 2 s.
	dana := nfc.Card{Kind: nfc.ISO14443A, UID: []byte{0x04, 0xda, 0x0a, 0x01, 0x02, 0x03, 0x04}}
	ch, err := a.br.Access().Enroll("Dana", "Alice (HA user)")
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	a.br.Tap(dana, time.Now())
	if ev := <-ch; ev.Kind != access.EnrollEnrolled || ev.UID != dana.HexUID() {
		t.Fatalf("enroll: %+v", ev)
	}
	took := waitCard(t, b, "Dana", 2*time.Second, present)
	t.Logf("enrolled at the front door, listed at the back door %s later", took.Round(time.Millisecond))
	if e, _ := b.card("Dana"); e.AddedBy != "Alice (HA user)" || e.UID != dana.HexUID() {
		t.Errorf("at the back door: %+v", e)
	}
	b.br.Tap(dana, time.Now())
	waitCommands(t, fake, backUUID, 1, 3*time.Second)

	// "The cleaner opens the back door only".
	cleaner := nfc.Card{Kind: nfc.ISO14443A, UID: []byte{0x04, 0xc1, 0xea, 0x01}}
	if err := a.br.Access().Save(access.Entry{UID: cleaner.HexUID(), Name: "Cleaner", Enabled: true, Doors: []string{backID}}, "page"); err != nil {
		t.Fatal(err)
	}
	waitCard(t, b, "Cleaner", 2*time.Second, present)
	frontBefore := lockCommands(fake, lockUUID)
	a.br.Tap(cleaner, time.Now())
	time.Sleep(4 * time.Second) // past the back door's hold-off of Dana's command
	b.br.Tap(cleaner, time.Now())
	waitCommands(t, fake, backUUID, 2, 3*time.Second)
	if n := lockCommands(fake, lockUUID); n != frontBefore {
		t.Errorf("the cleaner opened the front door")
	}
	if l := a.br.Access().Log(access.LogFilter{Person: "cleaner", Limit: 1}); len(l) != 1 || l[0].Reason != access.ReasonNotThisDoor {
		t.Errorf("front door's log: %+v", l)
	}

	// Broker down: the back door still opens for Dana; an edit at the front
	// door meanwhile reaches the back door after the broker returns.
	broker.Stop()
	time.Sleep(200 * time.Millisecond)
	before := lockCommands(fake, backUUID)
	b.br.Tap(dana, time.Now())
	waitCommands(t, fake, backUUID, before+1, 3*time.Second)
	if err := a.br.Access().SetEnabled(cleaner.HexUID(), false, "page"); err != nil {
		t.Fatal(err)
	}
	eve := nfc.Card{Kind: nfc.ISO14443A, UID: []byte{0x04, 0xee, 0xee, 0x01}}
	if err := a.br.Access().Save(access.Entry{UID: eve.HexUID(), Name: "Eve", Enabled: true}, "page"); err != nil {
		t.Fatal(err)
	}
	broker.Restart()
	waitCard(t, b, "Eve", 5*time.Second, present)
	waitCard(t, b, "Cleaner", 2*time.Second, func(e access.Entry, ok bool) bool { return ok && !e.Enabled })

	// Concurrent edits: different cards, nothing lost; the same card, one
	// winner everywhere.
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := a.br.Access().Save(access.Entry{UID: fmt.Sprintf("04A0A0%02X", i), Name: fmt.Sprintf("A%d", i), Enabled: true}, "front page"); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if err := b.br.Access().Save(access.Entry{UID: fmt.Sprintf("04B0B0%02X", i), Name: fmt.Sprintf("B%d", i), Enabled: true}, "back page"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = a.br.Access().Save(access.Entry{UID: "04ABCDEF", Name: "Same at front", Enabled: true}, "front")
	}()
	go func() {
		defer wg.Done()
		_ = b.br.Access().Save(access.Entry{UID: "04ABCDEF", Name: "Same at back", Enabled: true}, "back")
	}()
	wg.Wait()
	for _, d := range []*door{a, b} {
		for i := range 10 {
			waitCard(t, d, fmt.Sprintf("A%d", i), 3*time.Second, present)
			waitCard(t, d, fmt.Sprintf("B%d", i), 3*time.Second, present)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	var na, nb string
	for time.Now().Before(deadline) {
		ea, eb := byUID(a, "04ABCDEF"), byUID(b, "04ABCDEF")
		na, nb = ea.Name, eb.Name
		if na == nb && na != "" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if na != nb || na == "" {
		t.Errorf("the same card differs: front %q, back %q", na, nb)
	}
	// Equal versions (both edited the card at clock N) go to the higher node name.
	t.Logf("same card, concurrent edits: %q everywhere", na)
	// The topics carry no UID.
	rec := broker.Subscribe(t, sharedPrefix+"/#")
	rec.WaitFor(t, bridge.SharedCardTopic(sharedPrefix, dana.HexUID()), func(p string) bool { return strings.Contains(p, "Dana") }, 2*time.Second)
	for _, m := range rec.Messages() {
		if strings.Contains(strings.ToUpper(m.Topic), dana.HexUID()) {
			t.Errorf("a topic carries a UID: %s", m.Topic)
		}
	}
	// A stale copy on the broker (an old bridge, a restored backup) is
	// answered with the newest one, and changes nothing.
	danaTopic := bridge.SharedCardTopic(sharedPrefix, dana.HexUID())
	since := time.Now()
	broker.Publish(t, danaTopic, `{"uid":"`+dana.HexUID()+`","name":"Stale Dana","action":"none","enabled":false,"version":0,"node":"door-zz-old"}`, true)
	rec.WaitForAfter(t, since, danaTopic, func(p string) bool { return strings.Contains(p, `"name":"Dana"`) }, 3*time.Second)
	// A card under another card's topic is refused.
	broker.Publish(t, bridge.SharedCardTopic(sharedPrefix, "04010203"), `{"uid":"04FFFFFF","name":"Intruder","action":"unlock","enabled":true,"version":999,"node":"x"}`, true)
	time.Sleep(300 * time.Millisecond)
	for _, d := range []*door{a, b} {
		if e, _ := d.card("Dana"); !e.Enabled || e.Name != "Dana" {
			t.Errorf("%s: Dana after a stale copy: %+v", d.lockID, e)
		}
		if _, ok := d.card("Intruder"); ok {
			t.Errorf("%s took a card published under another card's topic", d.lockID)
		}
	}
	fresh := broker.Subscribe(t, danaTopic) // what a bridge joining now gets
	m := fresh.WaitFor(t, danaTopic, nil, 2*time.Second)
	if !m.Retained || !strings.Contains(m.Payload, `"name":"Dana"`) {
		t.Errorf("the broker keeps %+v for Dana", m)
	}
	for _, d := range []*door{a, b} {
		if strings.Contains(strings.ToUpper(d.logs.String()), dana.HexUID()) {
			t.Errorf("%s's log shows a raw UID", d.lockID)
		}
	}
}
