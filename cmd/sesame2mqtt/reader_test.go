package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/libnfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim/pn532simtest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
)

func readerEnv(t testing.TB, broker *mosquittotest.Broker, fake *sesametest.Server, sim *pn532sim.Sim, extra ...string) []string {
	env := append(bridgeEnv(t, broker, fake),
		"NFC_DEVICE="+sim.Connstring(),
		"NFC_CARDS=04A22B1CD35E80:Alice,012E4CD8A1B2C3D4:Chika",
	)
	return append(env, extra...)
}

// tap holds the card on the reader for a moment, as a person would.
func tap(sim *pn532sim.Sim, c pn532sim.Card) {
	sim.Put(c)
	time.Sleep(600 * time.Millisecond)
	sim.Remove()
}

// TestCardTapEndToEnd: a card on the simulated PN532, read through the real
// libnfc, becomes a tag scan and an event on a real Mosquitto and a signed
// command at the Sesame fake with the holder's name in its history tag.
func TestCardTapEndToEnd(t *testing.T) {
	needLibnfc(t)
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	sim := pn532simtest.Start(t, "")
	rec := broker.Subscribe(t, "sesame2mqtt/#")
	p := startProc(t, readerEnv(t, broker, fake, sim))
	rec.WaitFor(t, "sesame2mqtt/reader/status", func(s string) bool { return strings.Contains(s, `"status":"connected"`) }, 10*time.Second)
	rec.WaitFor(t, "sesame2mqtt/"+lockID+"/state", is("LOCKED"), 10*time.Second)

	since := time.Now()
	tap(sim, pn532sim.ISO14443A([]byte{0x04, 0xa2, 0x2b, 0x1c, 0xd3, 0x5e, 0x80}))
	tag := rec.WaitForAfter(t, since, "sesame2mqtt/reader/tag", nil, 5*time.Second)
	if tag.Payload != "04A22B1CD35E80" || tag.Retained {
		t.Errorf("tag scan = %+v, want 04A22B1CD35E80, not retained", tag)
	}
	ev := rec.WaitForAfter(t, since, "sesame2mqtt/reader/event", func(s string) bool { return strings.Contains(s, "access_granted") }, 5*time.Second)
	var granted map[string]any
	if err := json.Unmarshal([]byte(ev.Payload), &granted); err != nil || granted["holder"] != "Alice" || granted["uid"] != nil || ev.Retained {
		t.Errorf("granted event = %s (retained %v), want Alice without a UID", ev.Payload, ev.Retained)
	}
	rec.WaitForAfter(t, since, "sesame2mqtt/"+lockID+"/state", is("UNLOCKED"), 10*time.Second)
	rec.WaitForAfter(t, since, "sesame2mqtt/reader/event", func(s string) bool { return strings.Contains(s, "action_succeeded") }, 10*time.Second)
	var posts []sesametest.Request
	for _, r := range fake.Requests() {
		if r.Method == "POST" {
			posts = append(posts, r)
		}
	}
	if len(posts) != 1 || posts[0].History != "Alice" || !posts[0].SignValid || posts[0].Cmd != int(sesame.CmdUnlock) {
		t.Fatalf("POSTs at the fake = %+v, want one signed unlock with history Alice", posts)
	}

	// A FeliCa card (Chika's Suica) toggles it back.
	since = time.Now()
	tap(sim, pn532sim.FeliCa([]byte{0x01, 0x2e, 0x4c, 0xd8, 0xa1, 0xb2, 0xc3, 0xd4}))
	rec.WaitForAfter(t, since, "sesame2mqtt/"+lockID+"/state", is("LOCKED"), 10*time.Second)

	// An unknown card: an event and a tag scan, never a command.
	since = time.Now()
	tap(sim, pn532sim.ISO14443A([]byte{0x04, 0x11, 0x22, 0x33}))
	rec.WaitForAfter(t, since, "sesame2mqtt/reader/event", func(s string) bool { return strings.Contains(s, "access_denied") }, 5*time.Second)
	time.Sleep(500 * time.Millisecond)
	n := 0
	for _, r := range fake.Requests() {
		if r.Method == "POST" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d POSTs after an unknown card, want still 2", n)
	}
	p.terminate(t, 5*time.Second)
	logs := p.stderr.String()
	for _, uid := range []string{"04A22B1CD35E80", "012E4CD8A1B2C3D4", "04112233"} {
		if strings.Contains(strings.ToUpper(logs), uid) {
			t.Errorf("the log shows the raw UID %s", uid)
		}
	}
	if st := sim.Stats(); st.Aborts == 0 {
		t.Errorf("shutdown did not abort the poll in progress: %+v", st)
	}
}

// TestReaderUnpluggedAndBack: the bridge keeps running while the reader is
// gone, says so, and reads cards again once it is back, without a restart.
func TestReaderUnpluggedAndBack(t *testing.T) {
	needLibnfc(t)
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	sim := pn532simtest.Start(t, "")
	rec := broker.Subscribe(t, "sesame2mqtt/#")
	p := startProc(t, readerEnv(t, broker, fake, sim))
	connected := func(s string) bool { return strings.Contains(s, `"status":"connected"`) }
	rec.WaitFor(t, "sesame2mqtt/reader/status", connected, 10*time.Second)

	since := time.Now()
	sim.Unplug()
	rec.WaitForAfter(t, since, "sesame2mqtt/reader/status", func(s string) bool { return strings.Contains(s, `"status":"unplugged"`) }, 10*time.Second)
	time.Sleep(2 * time.Second) // a few failed re-opens
	if err := sim.Replug(); err != nil {
		t.Fatal(err)
	}
	since = time.Now()
	rec.WaitForAfter(t, since, "sesame2mqtt/reader/status", connected, 40*time.Second)
	// A card held for 3 s is one tap.
	sim.Put(pn532sim.ISO14443A([]byte{0x04, 0xa2, 0x2b, 0x1c, 0xd3, 0x5e, 0x80}))
	rec.WaitForAfter(t, since, "sesame2mqtt/reader/event", func(s string) bool { return strings.Contains(s, "access_granted") }, 5*time.Second)
	time.Sleep(3 * time.Second)
	sim.Remove()
	granted := 0
	var lastAvail string
	for _, m := range rec.Messages() {
		if m.Topic == "sesame2mqtt/reader/event" && strings.Contains(m.Payload, "access_granted") && !m.At.Before(since) {
			granted++
		}
		if m.Topic == avail {
			lastAvail = m.Payload
		}
	}
	if granted != 1 {
		t.Errorf("a card held 3 s gave %d taps, want 1", granted)
	}
	if lastAvail != "online" {
		t.Errorf("availability = %q: the bridge must stay online while the reader is gone", lastAvail)
	}
	p.terminate(t, 5*time.Second)
}

// needLibnfc skips a test that reads cards through libnfc in a build
// without cgo (CGO_ENABLED=0 go test ./... runs in CI; there
// TestReaderNeedsCgo checks what such a build does instead).
func needLibnfc(t testing.TB) {
	t.Helper()
	if !libnfc.Available {
		t.Skip("reads cards through libnfc: needs a build with cgo")
	}
}
