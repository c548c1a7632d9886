package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
)

// demoUUID is the simulated lock's UUID: fixed, so the topics in the README
// work as printed.
const demoUUID = "DE300000-5E5A-4E00-8000-000000000001"

// startDemo starts the simulated Sesame cloud (the fake the tests use) and,
// when MQTT_URL is not set, an embedded broker, and points the configuration
// at them through the environment, so that the demo runs the same
// configuration path as a real installation. The API key and the lock's
// secret are random and never printed.
func startDemo(listen string, out io.Writer) (func(), error) {
	key, secret := randomHex(20), randomHex(16)
	fake := sesametest.NewServer(key, sesametest.Lock{UUID: demoUUID, Secret: secret, State: sesame.StateLocked})
	stops := []func(){fake.Close}
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	stateDir, err := os.MkdirTemp("", "sesame2mqtt-demo-")
	if err != nil {
		stop()
		return nil, fmt.Errorf("state folder: %w", err)
	}
	stops = append(stops, func() { _ = os.RemoveAll(stateDir) })

	set := map[string]string{
		"SESAME_API_KEY": key,
		"SESAME_API_URL": fake.URL(),
		"SESAME_LOCKS":   demoUUID + ":" + secret + ":Demo door",
		"STATE_DIR":      stateDir,
	}
	host, port := "127.0.0.1", "1883"
	if os.Getenv("MQTT_URL") == "" {
		broker := mochi.New(&mochi.Options{
			InlineClient: false,
			Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err := broker.AddHook(new(auth.AllowHook), nil); err != nil {
			stop()
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
		if err := broker.AddListener(listeners.NewTCP(listeners.Config{ID: "demo", Address: listen})); err != nil {
			stop()
			return nil, fmt.Errorf("embedded broker on %s: %w (is another broker running there? set MQTT_URL to use it)", listen, err)
		}
		// Serve starts the listener's accept loop in its own goroutine and
		// returns; Close (in stop) ends it.
		if err := broker.Serve(); err != nil {
			stop()
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
		stops = append(stops, func() { _ = broker.Close() })
		set["MQTT_URL"] = "tcp://" + listen
		if h, p, ok := strings.Cut(listen, ":"); ok {
			host, port = h, p
		}
	} else {
		host, port = "<your broker>", "1883"
	}
	base := os.Getenv("MQTT_BASE_TOPIC")
	if base == "" {
		base = "sesame2mqtt"
	}
	reader := os.Getenv("NFC_DEVICE") == ""
	if reader {
		mqttURL := set["MQTT_URL"]
		if mqttURL == "" {
			mqttURL = os.Getenv("MQTT_URL")
		}
		dr, err := startDemoReader(out, mqttURL, base+"/demo/tap")
		if err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, dr.stop)
		set["NFC_DEVICE"] = dr.sim.Connstring()
		if os.Getenv("NFC_CARDS") == "" {
			set["NFC_CARDS"] = demoAllowlist
		}
	}
	for k, v := range set {
		if err := os.Setenv(k, v); err != nil {
			stop()
			return nil, fmt.Errorf("set %s: %w", k, err)
		}
	}

	id := strings.ToLower(strings.ReplaceAll(demoUUID, "-", ""))
	fmt.Fprintf(out, `sesame2mqtt demo: a simulated Sesame lock "Demo door" (UUID %s).
The MQTT broker is %s:%s. In another terminal:

  watch:   mosquitto_sub -h %[2]s -p %[3]s -v -t '%[4]s/#' -t 'homeassistant/device/#'
  unlock:  mosquitto_pub -h %[2]s -p %[3]s -t '%[4]s/%[5]s/set' -m UNLOCK
  lock:    mosquitto_pub -h %[2]s -p %[3]s -t '%[4]s/%[5]s/set' -m LOCK
  toggle:  mosquitto_pub -h %[2]s -p %[3]s -t '%[4]s/%[5]s/toggle' -m PRESS
`, demoUUID, host, port, base, id)
	if reader {
		fmt.Fprintf(out, `
A simulated PN532 card reader is attached (through the real libnfc driver).
Alice and Chika (a FeliCa card) are on the allowlist; a tap toggles the lock.
  tap:     type alice, chika, stranger or phone here and press Enter,
           or: mosquitto_pub -h %[1]s -p %[2]s -t '%[3]s/demo/tap' -m alice
  events:  mosquitto_sub -h %[1]s -p %[2]s -v -t '%[3]s/reader/#'
`, host, port, base)
	}
	fmt.Fprintf(out, "\nPress Ctrl-C to stop.\n\n")
	return stop, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux (Go 1.24+ panics rather than return an error)
	return hex.EncodeToString(b)
}
