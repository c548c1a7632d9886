package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/libnfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/push/pushtest"
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
//
// reader is the simulated card reader: demoPN532 (through libnfc, so only in
// a build with cgo) or demoRCS380 (through the pure-Go RC-S380 driver).
func startDemo(listen, reader string, out io.Writer) (func(), error) {
	if reader != demoPN532 && reader != demoRCS380 {
		return nil, fmt.Errorf("-demo-reader %q: want %s or %s", reader, demoPN532, demoRCS380)
	}
	key, secret := randomHex(20), randomHex(16)
	fake := sesametest.NewServer(key, sesametest.Lock{UUID: demoUUID, Secret: secret, State: sesame.StateLocked})
	stops := []func(){fake.Close}
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	// The simulated push feed: a fake Cognito and AWS IoT endpoint. Every
	// move of the simulated lock becomes a shadow document, as the real
	// cloud sends them.
	feed, err := pushtest.NewServer(pushtest.Options{})
	if err != nil {
		stop()
		return nil, fmt.Errorf("simulated push feed: %w", err)
	}
	stops = append(stops, feed.Close)
	fake.OnChange(func(uuid string, st sesame.LockState) {
		feed.PublishMechst(uuid, pushtest.Mechst(st, 6.0, demoPosition(st)), map[string]bool{"00005E005300": true})
	})
	stops = append(stops, func() { fake.OnChange(nil) })
	feed.PublishMechst(demoUUID, pushtest.Mechst(sesame.StateLocked, 6.0, demoPosition(sesame.StateLocked)), map[string]bool{"00005E005300": true})

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

		"SESAME_PUSH":             "on",
		"SESAME_PUSH_POOL_ID":     feed.PoolID(),
		"SESAME_PUSH_ENDPOINT":    feed.Endpoint(),
		"SESAME_PUSH_COGNITO_URL": feed.CognitoURL(),
		"SESAME_PUSH_SHADOW_URL":  feed.ShadowURL(),
	}
	var brokerURL string
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
			return nil, fmt.Errorf("embedded broker on %s: %w (is another broker running there? set MQTT_URL to use it, or -demo-listen to move it)", listen, err)
		}
		// Serve starts the listener's accept loop in its own goroutine and
		// returns; Close (in stop) ends it.
		if err := broker.Serve(); err != nil {
			stop()
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
		stops = append(stops, func() { _ = broker.Close() })
		brokerURL = "tcp://" + listen
		set["MQTT_URL"] = brokerURL
	} else {
		brokerURL = os.Getenv("MQTT_URL")
	}
	base := os.Getenv("MQTT_BASE_TOPIC")
	if base == "" {
		base = "sesame2mqtt"
	}
	id := strings.ToLower(strings.ReplaceAll(demoUUID, "-", ""))

	// The simulated PN532 goes through the real libnfc driver: only in a
	// build with cgo. Without it the demo says so, also when a tap is typed.
	// The simulated RC-S380 needs no cgo.
	var dr *demoReader
	withCgo := libnfc.Available || reader == demoRCS380
	noCgo := os.Getenv("NFC_DEVICE") == "" && !withCgo
	if os.Getenv("NFC_DEVICE") == "" && withCgo {
		var err error
		if dr, err = startDemoReader(reader, out); err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, dr.stop)
		set["NFC_DEVICE"] = dr.connstring
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

	// The console prints what happens (state, results, reader events) and
	// takes taps from the terminal and the demo's tap topic.
	con, err := startConsole(consoleOptions{
		out:      out,
		url:      brokerURL,
		username: os.Getenv("MQTT_USERNAME"),
		password: os.Getenv("MQTT_PASSWORD"),
		base:     base,
		lockID:   id,
		lockName: "Demo door",
		reader:   dr,
		noCgo:    noCgo,
		turn: func() string {
			to := sesame.StateLocked
			if fake.State(demoUUID) == sesame.StateLocked {
				to = sesame.StateUnlocked
			}
			fake.Turn(demoUUID, to)
			return string(to)
		},
	})
	if err != nil {
		stop()
		return nil, err
	}
	stops = append(stops, con.stop)

	readerKind := ""
	if dr != nil {
		readerKind = dr.kind
	}
	fmt.Fprint(out, demoBanner(brokerURL, os.Getenv("MQTT_USERNAME"), base, id, readerKind, noCgo))
	return stop, nil
}

// demoBanner says where the broker is and how to watch and command the
// simulated lock, with the host and port the demo really uses.
// reader is the simulated reader's kind, "" for none.
func demoBanner(brokerURL, username, base, id string, reader string, noCgo bool) string {
	host, port := "127.0.0.1", "1883"
	if u, err := url.Parse(brokerURL); err == nil && u.Hostname() != "" {
		host, port = u.Hostname(), u.Port()
		if port == "" {
			port = "1883"
			if u.Scheme == "ssl" || u.Scheme == "tls" || u.Scheme == "mqtts" {
				port = "8883"
			}
		}
	}
	login := ""
	if username != "" {
		login = " -u " + username + " -P '<password>'"
	}
	conn := "-h " + host + " -p " + port + login
	var b strings.Builder
	fmt.Fprintf(&b, `sesame2mqtt demo: a simulated Sesame lock "Demo door" (UUID %s).
The MQTT broker is %s:%s. In another terminal:

  watch:   mosquitto_sub %[4]s -v -t '%[5]s/#' -t 'homeassistant/device/#'
  unlock:  mosquitto_pub %[4]s -t '%[5]s/%[6]s/set' -m UNLOCK
  lock:    mosquitto_pub %[4]s -t '%[5]s/%[6]s/set' -m LOCK
  toggle:  mosquitto_pub %[4]s -t '%[5]s/%[6]s/toggle' -m PRESS

A simulated push feed carries every move at once (State source: push).
  by hand: type turn here and press Enter,
           or: mosquitto_pub %[4]s -t '%[5]s/demo/turn' -m turn
  who:     mosquitto_sub %[4]s -v -t '%[5]s/%[6]s/event'
`, demoUUID, host, port, conn, base, id)
	switch {
	case reader != "":
		what := "A simulated PN532 card reader is attached (through the real libnfc driver)."
		if reader == demoRCS380 {
			what = "A simulated Sony RC-S380 is attached (through the pure-Go RC-S380 driver; simulated at USB)."
		}
		fmt.Fprintf(&b, "\n%s", what)
		fmt.Fprintf(&b, `
Alice and Chika (a FeliCa card) are on the allowlist; a tap toggles the lock.
  tap:     type alice, chika, stranger or phone here and press Enter,
           or: mosquitto_pub %[1]s -t '%[2]s/demo/tap' -m alice
  events:  mosquitto_sub %[1]s -v -t '%[2]s/reader/#'
`, conn, base)
	case noCgo:
		fmt.Fprintf(&b, "\nNo simulated card reader: %s.\n(-demo -demo-reader rcs380 simulates a Sony RC-S380, which needs no cgo.)\n", libnfc.Install)
	}
	b.WriteString("\nWhat happens is printed below. Press Ctrl-C to stop.\n\n")
	return b.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux (Go 1.24+ panics rather than return an error)
	return hex.EncodeToString(b)
}

// demoPosition is where the simulated lock's thumb turn stands.
func demoPosition(st sesame.LockState) int {
	switch st {
	case sesame.StateLocked:
		return 29
	case sesame.StateUnlocked:
		return 280
	}
	return 150
}
