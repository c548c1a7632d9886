package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380/rcs380sim"
)

// demoCard is a card of the demo: ISO14443A or FeliCa, with its UID.
type demoCard struct {
	felica bool
	uid    []byte
}

// demoCards are the simulated reader's cards. Alice and Chika are on the
// demo allowlist; the stranger is not; the phone has a random UID.
var demoCards = map[string]demoCard{
	"alice":    {uid: []byte{0x04, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6}},
	"chika":    {felica: true, uid: []byte{0x01, 0x2e, 0x4c, 0xd8, 0xa1, 0xb2, 0xc3, 0xd4}},
	"stranger": {uid: []byte{0x04, 0x11, 0x22, 0x33}},
	"phone":    {uid: []byte{0x08, 0x9a, 0x01, 0x7f}},
}

const demoAllowlist = "04A1B2C3D4E5F6:Alice,012E4CD8A1B2C3D4:Chika"

// demoTapTime is how long a demo tap keeps the card on the reader.
const demoTapTime = 800 * time.Millisecond

// The simulated readers of -demo-reader.
const (
	demoPN532  = "pn532"  // a PN532 on a pty, through the real libnfc (needs cgo)
	demoRCS380 = "rcs380" // an RC-S380 at the USB transfer boundary, through the pure-Go driver
)

// field is a simulated reader's field: where the demo puts cards.
type field interface {
	put(demoCard)
	remove()
	close() error
}

type pn532Field struct{ sim *pn532sim.Sim }

func (f pn532Field) put(c demoCard) {
	if c.felica {
		f.sim.Put(pn532sim.FeliCa(c.uid))
	} else {
		f.sim.Put(pn532sim.ISO14443A(c.uid))
	}
}
func (f pn532Field) remove()      { f.sim.Remove() }
func (f pn532Field) close() error { return f.sim.Close() }

type rcs380Field struct{ sim *rcs380sim.Sim }

func (f rcs380Field) put(c demoCard) {
	if c.felica {
		f.sim.Put(rcs380sim.FeliCa(c.uid))
	} else {
		f.sim.Put(rcs380sim.ISO14443A(c.uid))
	}
}
func (f rcs380Field) remove()      { f.sim.Remove() }
func (f rcs380Field) close() error { return nil }

// demoReader is a simulated reader that the real driver opens; the console
// asks it for taps by card name.
type demoReader struct {
	kind       string // demoPN532 or demoRCS380
	connstring string // NFC_DEVICE for it
	field      field
	taps       chan string // bounded: taps asked for faster than played are dropped
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	out        io.Writer
}

// startDemoReader starts the simulator and the goroutine that plays taps.
// The RC-S380's simulator replaces the USB the driver's dialer reaches.
func startDemoReader(kind string, out io.Writer) (*demoReader, error) {
	d := &demoReader{kind: kind, taps: make(chan string, 8), out: out}
	switch kind {
	case demoPN532:
		sim, err := pn532sim.Start(pn532sim.Options{})
		if err != nil {
			return nil, fmt.Errorf("simulated reader: %w", err)
		}
		d.field, d.connstring = pn532Field{sim}, sim.Connstring()
	case demoRCS380:
		sim := rcs380sim.New(rcs380sim.Options{})
		dial := func(string) (rcs380.Transport, string, error) {
			t, err := sim.Open()
			return t, sim.Name(), err
		}
		rcs380Dialer = func(*slog.Logger) rcs380.Dialer { return dial }
		d.field, d.connstring = rcs380Field{sim}, rcs380.Prefix
	default:
		return nil, fmt.Errorf("-demo-reader %q: want %s or %s", kind, demoPN532, demoRCS380)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
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
				card = demoCard{uid: uid}
			}
			d.field.put(card)
			t := time.NewTimer(demoTapTime)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			d.field.remove()
		}
	}
}

func (d *demoReader) stop() {
	d.cancel()
	d.wg.Wait()
	_ = d.field.close()
}
