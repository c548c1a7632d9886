package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

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

// demoReader is a simulated PN532 that the real libnfc driver opens; the
// console asks it for taps by card name.
type demoReader struct {
	sim    *pn532sim.Sim
	taps   chan string // bounded: taps asked for faster than played are dropped
	cancel context.CancelFunc
	wg     sync.WaitGroup
	out    io.Writer
}

// startDemoReader starts the simulator and the goroutine that plays taps.
func startDemoReader(out io.Writer) (*demoReader, error) {
	sim, err := pn532sim.Start(pn532sim.Options{})
	if err != nil {
		return nil, fmt.Errorf("simulated reader: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &demoReader{sim: sim, taps: make(chan string, 8), cancel: cancel, out: out}
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.play(ctx) }()
	return d, nil
}

// ask queues one tap; it never blocks.
func (d *demoReader) ask(name string) {
	select {
	case d.taps <- strings.ToLower(strings.TrimSpace(name)):
	default:
		fmt.Fprintf(d.out, "demo reader: busy, tap %q dropped\n", name)
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

func (d *demoReader) stop() {
	d.cancel()
	d.wg.Wait()
	_ = d.sim.Close()
}
