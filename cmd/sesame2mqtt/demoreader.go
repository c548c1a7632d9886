package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim"
)

// demoCards are the simulated reader's cards. Alice and Chika are on the
// demo allowlist; the stranger is not; the phone has a random UID.
var demoCards = map[string]pn532sim.Card{
	"alice":    pn532sim.ISO14443A([]byte{0x04, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6}),
	"chika":    pn532sim.FeliCa([]byte{0x01, 0x2e, 0x4c, 0xd8, 0xa1, 0xb2, 0xc3, 0xd4}),
	"stranger": pn532sim.ISO14443A([]byte{0x04, 0x11, 0x22, 0x33}),
	"phone":    pn532sim.ISO14443A([]byte{0x08, 0x9a, 0x01, 0x7f}),
}

const demoAllowlist = "04A1B2C3D4E5F6:Alice,012E4CD8A1B2C3D4:Chika"

// demoTapTime is how long a demo tap keeps the card on the reader.
const demoTapTime = 800 * time.Millisecond

// demoReader is a simulated PN532 that the real libnfc driver opens, with
// taps asked for on the terminal (one card name per line) or on MQTT.
type demoReader struct {
	sim    *pn532sim.Sim
	taps   chan string // bounded: taps asked for faster than played are dropped
	cancel context.CancelFunc
	wg     sync.WaitGroup
	out    io.Writer
}

// startDemoReader starts the simulator and the goroutines that feed it; the
// MQTT listener connects with the same settings the bridge will use.
func startDemoReader(out io.Writer, mqttURL, tapTopic string) (*demoReader, error) {
	sim, err := pn532sim.Start(pn532sim.Options{})
	if err != nil {
		return nil, fmt.Errorf("simulated reader: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &demoReader{sim: sim, taps: make(chan string, 8), cancel: cancel, out: out}
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.play(ctx) }()

	client, err := mqtt.New(mqtt.Options{
		URL:           mqttURL,
		Username:      os.Getenv("MQTT_USERNAME"),
		Password:      os.Getenv("MQTT_PASSWORD"),
		Subscriptions: []string{tapTopic},
		OnMessage: func(m mqtt.Message) {
			if !m.Retained {
				d.ask(string(m.Payload))
			}
		},
		Timeout: 3 * time.Second,
		// Only problems, so the demo's terminal says why taps over MQTT
		// would not arrive.
		Logger: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn})).With("component", "demo-tap-listener"),
	})
	if err != nil {
		d.stop()
		return nil, fmt.Errorf("demo tap listener: %w", err)
	}
	d.wg.Add(1)
	go func() { defer d.wg.Done(); _ = client.Run(ctx) }()

	if stdin, ok := pollableStdin(); ok {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); d.readLines(ctx, stdin) }()
	}
	return d, nil
}

// ask queues one tap; it never blocks.
func (d *demoReader) ask(name string) {
	select {
	case d.taps <- strings.ToLower(strings.TrimSpace(name)):
	default:
	}
}

// play puts each asked card on the reader for demoTapTime.
func (d *demoReader) play(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case name := <-d.taps:
			card, ok := demoCards[name]
			if !ok {
				uid, err := hex.DecodeString(strings.NewReplacer(":", "", " ", "").Replace(name))
				if err != nil || (len(uid) != 4 && len(uid) != 7 && len(uid) != 10) {
					if name != "" {
						fmt.Fprintf(d.out, "demo reader: %q is not a card: type alice, chika, stranger, phone or a 4/7/10-byte hex UID\n", name)
					}
					continue
				}
				card = pn532sim.ISO14443A(uid)
			}
			d.sim.Put(card)
			t := time.NewTimer(demoTapTime)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			d.sim.Remove()
		}
	}
}

// readLines reads card names from the terminal. Stdin is pollable, so the
// read deadline set by stop ends it.
func (d *demoReader) readLines(ctx context.Context, f *os.File) {
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Now()) })
	defer func() {
		stop()
		f.Fd() // puts the shared terminal back in blocking mode for the shell
		_ = f.Close()
	}()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		d.ask(sc.Text())
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		fmt.Fprintf(d.out, "demo reader: reading the terminal: %v\n", err)
	}
}

func (d *demoReader) stop() {
	d.cancel()
	d.wg.Wait()
	_ = d.sim.Close()
}

// pollableStdin returns stdin as a file the runtime poller can interrupt
// (a terminal or a pipe), or false for a regular file, which the poller
// cannot wait on.
func pollableStdin() (*os.File, bool) {
	fi, err := os.Stdin.Stat()
	if err != nil || fi.Mode().IsRegular() {
		return nil, false
	}
	fd, err := syscall.Dup(int(os.Stdin.Fd()))
	if err != nil {
		return nil, false
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = syscall.Close(fd)
		return nil, false
	}
	return os.NewFile(uintptr(fd), "stdin"), true
}
