package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/config"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/libnfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim/pn532simtest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380/rcs380sim"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
)

// The cards of the end-to-end scenario: Alice (7-byte UID), Chika
// (FeliCa), Dana (10-byte UID) are allowed; a 4-byte stranger is not.
var (
	e2eAlice    = demoCard{uid: []byte{0x04, 0xa2, 0x2b, 0x1c, 0xd3, 0x5e, 0x80}}
	e2eChika    = demoCard{felica: true, uid: []byte{0x01, 0x2e, 0x4c, 0xd8, 0xa1, 0xb2, 0xc3, 0xd4}}
	e2eDana     = demoCard{uid: []byte{0x04, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09}}
	e2eStranger = demoCard{uid: []byte{0x04, 0x11, 0x22, 0x33}}
	e2eCards    = "04A22B1CD35E80:Alice,012E4CD8A1B2C3D4:Chika,04010203040506070809:Dana"
)

// useRCS380Sim makes the bridge's RC-S380 dialer reach sim instead of the
// machine's USB, for this test.
func useRCS380Sim(t testing.TB, sim *rcs380sim.Sim) {
	old := rcs380Dialer
	rcs380Dialer = func(*slog.Logger) rcs380.Dialer {
		return func(string) (rcs380.Transport, string, error) {
			tr, err := sim.Open()
			return tr, sim.Name(), err
		}
	}
	t.Cleanup(func() { rcs380Dialer = old })
}

// serveInProcess runs the bridge's own wiring (config.Load and serve, as
// main does) in this process, so that it reaches the simulated RC-S380. It
// returns a function that stops it and reports serve's error.
func serveInProcess(t testing.TB, env []string) (stop func() error, logs *logcapture.Buffer) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		for _, p := range []string{"SESAME_", "MQTT_", "NFC_", "LED_", "BUZZER_", "STATE_DIR", "LOG_LEVEL", "OPTIONS_FILE", "SUPERVISOR_TOKEN"} {
			if strings.HasPrefix(k, p) {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
		}
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if k != "PATH" && k != "HOME" {
			t.Setenv(k, v)
		}
	}
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	log, buf := logcapture.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, log) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return fmt.Errorf("serve still running 10 s after the cancel")
		}
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("bridge log:\n%s", buf.String())
		}
	})
	return stop, buf
}

// readerTraffic is what Home Assistant and the cloud saw of the taps: the
// tag scans and reader events in order, and the commands.
func readerTraffic(rec *mosquittotest.Recorder, fake *sesametest.Server, since time.Time) []string {
	// Each topic in its order (the order between the two topics is not
	// part of the contract).
	var out []string
	for _, topic := range []string{"sesame2mqtt/reader/tag", "sesame2mqtt/reader/event"} {
		for _, m := range rec.Messages() {
			if !m.At.Before(since) && m.Topic == topic {
				out = append(out, fmt.Sprintf("%s retained=%v %s", m.Topic, m.Retained, m.Payload))
			}
		}
	}
	for _, r := range fake.Requests() {
		if r.Method == "POST" {
			out = append(out, fmt.Sprintf("POST cmd=%d history=%s signed=%v", r.Cmd, r.History, r.SignValid))
		}
	}
	return out
}

// tapScenario taps each kind of card on a reader and returns the traffic.
func tapScenario(t *testing.T, f field, env func(*mosquittotest.Broker, *sesametest.Server) []string) []string {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	rec := broker.Subscribe(t, "sesame2mqtt/#")
	stop, logs := serveInProcess(t, env(broker, fake))
	rec.WaitFor(t, "sesame2mqtt/reader/status", func(s string) bool { return strings.Contains(s, `"status":"connected"`) }, 10*time.Second)
	rec.WaitFor(t, "sesame2mqtt/"+lockID+"/state", is("LOCKED"), 10*time.Second)
	since := time.Now()
	tapAndWait := func(c demoCard, event, state string) {
		t.Helper()
		at := time.Now()
		f.put(c)
		time.Sleep(600 * time.Millisecond)
		f.remove()
		rec.WaitForAfter(t, at, "sesame2mqtt/reader/event", func(s string) bool { return strings.Contains(s, event) }, 10*time.Second)
		if state != "" {
			rec.WaitForAfter(t, at, "sesame2mqtt/"+lockID+"/state", is(state), 10*time.Second)
			rec.WaitForAfter(t, at, "sesame2mqtt/reader/event", func(s string) bool { return strings.Contains(s, "action_succeeded") }, 10*time.Second)
		}
		time.Sleep(300 * time.Millisecond)
	}
	tapAndWait(e2eAlice, "access_granted", "UNLOCKED")
	tapAndWait(e2eChika, "access_granted", "LOCKED")
	tapAndWait(e2eDana, "access_granted", "UNLOCKED")
	tapAndWait(e2eStranger, "access_denied", "")
	// Held for 3 s: one tap.
	at := time.Now()
	f.put(e2eAlice)
	time.Sleep(3 * time.Second)
	f.remove()
	rec.WaitForAfter(t, at, "sesame2mqtt/"+lockID+"/state", is("LOCKED"), 10*time.Second)
	rec.WaitForAfter(t, at, "sesame2mqtt/reader/event", func(s string) bool { return strings.Contains(s, "action_succeeded") }, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	traffic := readerTraffic(rec, fake, since)
	if err := stop(); err != nil {
		t.Fatalf("serve at shutdown: %v", err)
	}
	for _, uid := range []string{"04A22B1CD35E80", "012E4CD8A1B2C3D4", "04010203040506070809", "04112233"} {
		if strings.Contains(strings.ToUpper(logs.String()), uid) {
			t.Errorf("the log shows the raw UID %s", uid)
		}
	}
	return traffic
}

// TestRCS380TapsEndToEnd: taps on the simulated RC-S380 go through the
// pure-Go driver, the reader loop and the bridge to a real Mosquitto and
// the Sesame fake; with cgo the same scenario on the simulated PN532
// (through libnfc) must give exactly the same tag scans, events and
// commands.
func TestRCS380TapsEndToEnd(t *testing.T) {
	log, _ := logcapture.New()
	sim := rcs380sim.New(rcs380sim.Options{Logger: log})
	useRCS380Sim(t, sim)
	got := tapScenario(t, rcs380Field{sim}, func(b *mosquittotest.Broker, f *sesametest.Server) []string {
		return append(bridgeEnv(t, b, f), "NFC_DEVICE=rcs380", "NFC_CARDS="+e2eCards)
	})
	if v := sim.Violations(); len(v) > 0 {
		t.Errorf("the driver did what a chip would not accept:\n%s", strings.Join(v, "\n"))
	}
	if st := sim.Stats(); st.Closes != st.Opens-1 && st.Closes != st.Opens {
		t.Errorf("opens %d, closes %d", st.Opens, st.Closes)
	}
	want := []string{
		`sesame2mqtt/reader/tag retained=false 04A22B1CD35E80`,
		`sesame2mqtt/reader/tag retained=false 012E4CD8A1B2C3D4`,
		`sesame2mqtt/reader/tag retained=false 04010203040506070809`,
		`sesame2mqtt/reader/tag retained=false 04112233`,
		`sesame2mqtt/reader/tag retained=false 04A22B1CD35E80`,
		`sesame2mqtt/reader/event retained=false {"event_type":"access_granted","holder":"Alice","card_type":"iso14443a","action":"toggle","lock":"Front door"}`,
		`sesame2mqtt/reader/event retained=false {"event_type":"action_succeeded","holder":"Alice","action":"unlock","lock":"Front door","result":"success","detail":"unlock: unlocked (confirmed after 2.5s)"}`,
		`sesame2mqtt/reader/event retained=false {"event_type":"access_granted","holder":"Chika","card_type":"felica","action":"toggle","lock":"Front door"}`,
		`sesame2mqtt/reader/event retained=false {"event_type":"action_succeeded","holder":"Chika","action":"lock","lock":"Front door","result":"success","detail":"lock: locked (confirmed after 2.5s)"}`,
		`sesame2mqtt/reader/event retained=false {"event_type":"access_granted","holder":"Dana","card_type":"iso14443a","action":"toggle","lock":"Front door"}`,
		`sesame2mqtt/reader/event retained=false {"event_type":"action_succeeded","holder":"Dana","action":"unlock","lock":"Front door","result":"success","detail":"unlock: unlocked (confirmed after 2.5s)"}`,
		`sesame2mqtt/reader/event retained=false {"event_type":"access_denied","holder":"unknown","card_type":"iso14443a","action":"none","lock":"Front door","reason":"unknown","message":"This card is not on the access list.","uid":"04112233"}`,
		`sesame2mqtt/reader/event retained=false {"event_type":"access_granted","holder":"Alice","card_type":"iso14443a","action":"toggle","lock":"Front door"}`,
		`sesame2mqtt/reader/event retained=false {"event_type":"action_succeeded","holder":"Alice","action":"lock","lock":"Front door","result":"success","detail":"lock: locked (confirmed after 2.5s)"}`,
		fmt.Sprintf("POST cmd=%d history=Alice signed=true", sesame.CmdUnlock),
		fmt.Sprintf("POST cmd=%d history=Chika signed=true", sesame.CmdLock),
		fmt.Sprintf("POST cmd=%d history=Dana signed=true", sesame.CmdUnlock),
		fmt.Sprintf("POST cmd=%d history=Alice signed=true", sesame.CmdLock),
	}
	if !slices.Equal(got, want) {
		t.Errorf("RC-S380 traffic:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !libnfc.Available {
		t.Log("no cgo: the same scenario on the PN532 is not compared")
		return
	}
	t.Run("same on the PN532", func(t *testing.T) {
		psim := pn532simtest.Start(t, "")
		pn := tapScenario(t, pn532Field{psim}, func(b *mosquittotest.Broker, f *sesametest.Server) []string {
			return append(bridgeEnv(t, b, f), "NFC_DEVICE="+psim.Connstring(), "NFC_CARDS="+e2eCards)
		})
		if !slices.Equal(pn, got) {
			t.Errorf("the PN532 gave:\n%s\nthe RC-S380:\n%s", strings.Join(pn, "\n"), strings.Join(got, "\n"))
		}
	})
}

// TestRCS380UnpluggedEndToEnd: the RC-S380 vanishing mid-poll shows as
// unplugged in Home Assistant, the bridge stays online, and the reader is
// opened again when it is back.
func TestRCS380UnpluggedEndToEnd(t *testing.T) {
	log, _ := logcapture.New()
	sim := rcs380sim.New(rcs380sim.Options{Logger: log})
	useRCS380Sim(t, sim)
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	rec := broker.Subscribe(t, "sesame2mqtt/#")
	stop, logs := serveInProcess(t, append(bridgeEnv(t, broker, fake), "NFC_DEVICE=rcs380", "NFC_CARDS="+e2eCards))
	connected := func(s string) bool {
		return strings.Contains(s, `"status":"connected"`) && strings.Contains(s, "RC-S380") && strings.Contains(s, "NFC Port-100 v1.11")
	}
	rec.WaitFor(t, "sesame2mqtt/reader/status", connected, 10*time.Second)
	rec.WaitFor(t, "sesame2mqtt/"+lockID+"/state", is("LOCKED"), 10*time.Second)
	since := time.Now()
	sim.Unplug()
	st := rec.WaitForAfter(t, since, "sesame2mqtt/reader/status", func(s string) bool { return strings.Contains(s, `"status":"unplugged"`) }, 10*time.Second)
	if !strings.Contains(st.Payload, "no such device") {
		t.Errorf("unplugged status = %+v, want the ENODEV in the detail", st)
	}
	time.Sleep(2 * time.Second) // a few failed re-opens
	sim.Replug()
	since = time.Now()
	rec.WaitForAfter(t, since, "sesame2mqtt/reader/status", connected, 40*time.Second)
	sim.Put(rcs380sim.ISO14443A(e2eAlice.uid))
	rec.WaitForAfter(t, since, "sesame2mqtt/reader/event", func(s string) bool { return strings.Contains(s, "access_granted") }, 10*time.Second)
	sim.Remove()
	rec.WaitForAfter(t, since, "sesame2mqtt/"+lockID+"/state", is("UNLOCKED"), 10*time.Second)
	var lastAvail string
	for _, m := range rec.Messages() {
		if m.Topic == avail {
			lastAvail = m.Payload
		}
	}
	if lastAvail != "online" {
		t.Errorf("availability = %q: the bridge must stay online while the reader is gone", lastAvail)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if v := sim.Violations(); len(v) > 0 {
		t.Errorf("violations:\n%s", strings.Join(v, "\n"))
	}
	if !strings.Contains(logs.String(), "card reader unavailable; retrying") {
		t.Errorf("the log does not say the reader went away:\n%s", logs.String())
	}
}

// TestRCS380Demo: -demo -demo-reader rcs380 taps through the simulated
// RC-S380, also in a build without cgo.
func TestRCS380Demo(t *testing.T) {
	addr := freePort(t)
	p := startProcStdin(t, cleanEnv(t), "-demo", "-demo-listen", addr, "-demo-reader", "rcs380")
	waitStdout := func(want string) { t.Helper(); p.waitStdout(t, want, 15*time.Second) }
	waitStdout("A simulated Sony RC-S380 is attached")
	waitStdout("Demo door: LOCKED")
	if _, err := p.stdin.Write([]byte("chika\n")); err != nil {
		t.Fatal(err)
	}
	waitStdout("reader: access_granted, Chika (toggle)")
	waitStdout("Demo door: toggle success: unlock")
	p.terminate(t, 5*time.Second)

	p = startProc(t, cleanEnv(t), "-demo", "-demo-listen", freePort(t), "-demo-reader", "acr122")
	p.waitExit(t, 1, 10*time.Second)
	if !strings.Contains(p.stderr.String(), `-demo-reader "acr122": want pn532 or rcs380`) {
		t.Errorf("a wrong -demo-reader: stderr %q", p.stderr.String())
	}
}

// TestRCS380NotPluggedIn: the binary with NFC_DEVICE naming an RC-S380
// that is not there runs, says not_found in Home Assistant and keeps
// serving the lock; a malformed one is a configuration error.
func TestRCS380NotPluggedIn(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	rec := broker.Subscribe(t, "sesame2mqtt/#")
	p := startProc(t, append(bridgeEnv(t, broker, fake), "NFC_DEVICE=rcs380:009:099", "NFC_CARDS="+e2eCards))
	st := rec.WaitFor(t, "sesame2mqtt/reader/status", func(s string) bool { return strings.Contains(s, `"status":"not_found"`) }, 10*time.Second)
	if !strings.Contains(st.Payload, "rcs380") {
		t.Errorf("not_found status %s does not say what was looked for", st.Payload)
	}
	rec.WaitFor(t, "sesame2mqtt/"+lockID+"/state", is("LOCKED"), 10*time.Second)
	p.terminate(t, 5*time.Second)

	p = startProc(t, append(bridgeEnv(t, broker, fake), "NFC_DEVICE=rcs380:1"))
	p.waitExit(t, 2, 10*time.Second)
	if !strings.Contains(p.stderr.String(), `configuration: NFC_DEVICE: "rcs380:1": want rcs380`) {
		t.Errorf("stderr = %q", p.stderr.String())
	}
}
