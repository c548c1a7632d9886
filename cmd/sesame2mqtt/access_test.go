package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/access"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim/pn532simtest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
)

// TestEnrollFromHomeAssistantSurvivesRestart: the real binary, a real
// Mosquitto and libnfc against the simulated PN532. Home Assistant's text
// and button enroll the next card tapped; it opens the door on the next
// tap, also after a restart (the list is in STATE_DIR); Disable from HA
// refuses it with its reason; the access log in STATE_DIR has every tap.
func TestEnrollFromHomeAssistantSurvivesRestart(t *testing.T) {
	needLibnfc(t)
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	sim := pn532simtest.Start(t, "")
	env := readerEnv(t, broker, fake, sim, "NFC_HOLD_OFF=0s")
	var stateDir string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "STATE_DIR="); ok {
			stateDir = v
		}
	}
	rec := broker.Subscribe(t, "sesame2mqtt/#")
	disc := broker.Subscribe(t, "homeassistant/device/#")
	ha := broker.Connect(t)
	p := startProc(t, env)
	rec.WaitFor(t, "sesame2mqtt/reader/status", func(s string) bool { return strings.Contains(s, `"status":"connected"`) }, 10*time.Second)
	rec.WaitFor(t, "sesame2mqtt/"+lockID+"/state", is("LOCKED"), 10*time.Second)

	dana := pn532sim.ISO14443A([]byte{0x04, 0xda, 0x0a, 0x11, 0x22, 0x33, 0x44})
	since := time.Now()
	ha.Publish(t, "sesame2mqtt/reader/enroll_name/set", "Dana", false)
	rec.WaitForAfter(t, since, "sesame2mqtt/reader/enroll_name", is("Dana"), 5*time.Second)
	ha.Publish(t, "sesame2mqtt/reader/enroll", "PRESS", false)
	time.Sleep(300 * time.Millisecond)
	tap(sim, dana)
	rec.WaitForAfter(t, since, "sesame2mqtt/reader/event", func(s string) bool {
		return strings.Contains(s, `"card_enrolled"`) && strings.Contains(s, `"Dana"`)
	}, 5*time.Second)
	if n := len(commandPOSTs(fake)); n != 0 {
		t.Fatalf("the enrolling tap sent %d commands", n)
	}
	disc.WaitForAfter(t, since, "homeassistant/device/sesame2mqtt_reader/config", func(s string) bool { return strings.Contains(s, `"Dana"`) }, 5*time.Second)

	since = time.Now()
	tap(sim, dana)
	rec.WaitForAfter(t, since, "sesame2mqtt/"+lockID+"/state", is("UNLOCKED"), 10*time.Second)
	p.terminate(t, 5*time.Second)

	// Restarted: Dana is still listed.
	p = startProc(t, env)
	rec.WaitForAfter(t, time.Now(), "sesame2mqtt/reader/status", func(s string) bool { return strings.Contains(s, `"status":"connected"`) }, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	since = time.Now()
	tap(sim, dana)
	rec.WaitForAfter(t, since, "sesame2mqtt/reader/event", func(s string) bool {
		return strings.Contains(s, `"access_granted"`) && strings.Contains(s, `"Dana"`)
	}, 5*time.Second)
	rec.WaitForAfter(t, since, "sesame2mqtt/"+lockID+"/state", is("LOCKED"), 10*time.Second)

	// Disabled from Home Assistant: refused, and why.
	since = time.Now()
	ha.Publish(t, "sesame2mqtt/reader/card/set", "Dana", false)
	ha.Publish(t, "sesame2mqtt/reader/card_action", "DISABLE", false)
	rec.WaitForAfter(t, since, "sesame2mqtt/reader/event", func(s string) bool { return strings.Contains(s, `"card_changed"`) }, 5*time.Second)
	tap(sim, dana)
	rec.WaitForAfter(t, since, "sesame2mqtt/reader/event", func(s string) bool {
		return strings.Contains(s, `"access_denied"`) && strings.Contains(s, `"reason":"disabled"`)
	}, 5*time.Second)
	// An unknown card: in the access log by its hash only.
	stranger := []byte{0x04, 0x51, 0x52, 0x53}
	tap(sim, pn532sim.ISO14443A(stranger))
	rec.WaitForAfter(t, since, "sesame2mqtt/reader/event", func(s string) bool { return strings.Contains(s, `"reason":"unknown"`) }, 5*time.Second)
	p.terminate(t, 5*time.Second)

	list, err := os.ReadFile(filepath.Join(stateDir, access.ListFile))
	if err != nil || !strings.Contains(string(list), `"Dana"`) {
		t.Fatalf("access list in STATE_DIR: %v\n%s", err, list)
	}
	logData, err := os.ReadFile(filepath.Join(stateDir, access.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(logData)), "\n")
	var results []string
	for _, l := range lines {
		for _, r := range []string{"enrolled", "granted", "denied"} {
			if strings.Contains(l, `"result":"`+r+`"`) {
				results = append(results, r)
			}
		}
	}
	if strings.Join(results, " ") != "enrolled granted granted denied denied" {
		t.Errorf("access log results %v:\n%s", results, logData)
	}
	if strings.Contains(strings.ToUpper(string(logData)), "04515253") {
		t.Error("the access log has an unknown card's UID")
	}
}

func commandPOSTs(fake *sesametest.Server) []sesametest.Request {
	var out []sesametest.Request
	for _, r := range fake.Requests() {
		if r.Method == "POST" {
			out = append(out, r)
		}
	}
	return out
}
