package rcs380_test

import (
	"bytes"
	"errors"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380/port100"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380/rcs380sim"
)

var (
	uid4  = []byte{0x04, 0x11, 0x22, 0x33}
	uid7  = []byte{0x04, 0xa2, 0x2b, 0x1c, 0xd3, 0x5e, 0x80}
	uid10 = []byte{0x04, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09}
	idm   = []byte{0x01, 0x2e, 0x4c, 0xd8, 0xa1, 0xb2, 0xc3, 0xd4}
)

// open opens the driver on a new simulated chip; the test fails if the
// driver did anything the chip would not accept.
func open(t *testing.T) (*rcs380sim.Sim, *rcs380.Device, *logcapture.Buffer) {
	t.Helper()
	log, buf := logcapture.New()
	sim := rcs380sim.New(rcs380sim.Options{Logger: log})
	tr, err := sim.Open()
	if err != nil {
		t.Fatal(err)
	}
	d, err := rcs380.New(tr, rcs380.Options{Name: sim.Name(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = d.Close()
		if v := sim.Violations(); len(v) > 0 {
			t.Errorf("the driver did what a chip would not accept:\n%s", strings.Join(v, "\n"))
		}
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return sim, d, buf
}

func TestOpenFollowsNfcpy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim, d, _ := open(t)
		if !strings.Contains(d.Name(), "NFC Port-100 v1.11") {
			t.Errorf("name %q lacks the firmware version", d.Name())
		}
		st := sim.Stats()
		for _, c := range []string{"SetCommandType", "GetFirmwareVersion", "GetPDDataVersion", "SwitchRF"} {
			if st.Commands[c] != 1 {
				t.Errorf("%s sent %d times at open, want 1 (%v)", c, st.Commands[c], st.Commands)
			}
		}
		if st.HostACKs != 1 {
			t.Errorf("%d ACKs at open, want 1 (the soft reset)", st.HostACKs)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if st := sim.Stats(); st.Closes != 1 || st.RFOffs != 2 {
			t.Errorf("after Close: %+v, want one close and the field switched off again", st)
		}
	})
}

func TestPollEveryKind(t *testing.T) {
	for _, tc := range []struct {
		name string
		card rcs380sim.Card
		kind nfc.Kind
	}{
		{"4-byte UID", rcs380sim.ISO14443A(uid4), nfc.ISO14443A},
		{"7-byte UID", rcs380sim.ISO14443A(uid7), nfc.ISO14443A},
		{"10-byte UID", rcs380sim.ISO14443A(uid10), nfc.ISO14443A},
		{"FeliCa 212 and 424", rcs380sim.FeliCa(idm), nfc.FeliCa},
		{"FeliCa 212 only", rcs380sim.FeliCaAt(idm, port100.Rate212F), nfc.FeliCa},
		{"FeliCa 424 only", rcs380sim.FeliCaAt(idm, port100.Rate424F), nfc.FeliCa},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sim, d, _ := open(t)
				if _, err := d.Poll(); !errors.Is(err, nfc.ErrNoCard) {
					t.Fatalf("empty field: %v, want ErrNoCard", err)
				}
				sim.Put(tc.card)
				c, err := d.Poll()
				if err != nil {
					t.Fatal(err)
				}
				if c.Kind != tc.kind || !bytes.Equal(c.UID, tc.card.UID()) {
					t.Fatalf("Poll = %v %X, want %v %X", c.Kind, c.UID, tc.kind, tc.card.UID())
				}
				for i := range 3 {
					if ok, err := d.Present(); !ok || err != nil {
						t.Fatalf("presence check %d with the card held: %v %v", i, ok, err)
					}
				}
				sim.Remove()
				if ok, err := d.Present(); ok || err != nil {
					t.Fatalf("presence check after removal: %v %v", ok, err)
				}
				if ok, err := d.Present(); ok || err != nil {
					t.Fatalf("presence check without a card: %v %v", ok, err)
				}
				if _, err := d.Poll(); !errors.Is(err, nfc.ErrNoCard) {
					t.Fatalf("after removal: %v, want ErrNoCard", err)
				}
			})
		})
	}
}

// TestPollPeriod: an empty cycle lasts PollPeriod and senses both
// technologies, and the field is off between cycles.
func TestPollPeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim, d, _ := open(t)
		before := sim.Stats()
		start := time.Now()
		for range 4 {
			if _, err := d.Poll(); !errors.Is(err, nfc.ErrNoCard) {
				t.Fatal(err)
			}
		}
		if got := time.Since(start); got != 4*rcs380.PollPeriod {
			t.Errorf("4 empty cycles took %v (fake time), want %v", got, 4*rcs380.PollPeriod)
		}
		if rcs380.PollPeriod > 300*time.Millisecond {
			t.Errorf("PollPeriod %v exceeds 300 ms", rcs380.PollPeriod)
		}
		st := sim.Stats()
		if st.SensReqs-before.SensReqs != 4 || st.SensfReqs-before.SensfReqs != 8 || st.RFOffs-before.RFOffs != 4 {
			t.Errorf("4 cycles: %d SENS_REQ, %d SENSF_REQ, %d field offs; want 4, 8, 4",
				st.SensReqs-before.SensReqs, st.SensfReqs-before.SensfReqs, st.RFOffs-before.RFOffs)
		}
	})
}

// TestTwoCardsOneAtATime: with an ISO14443A card on the reader a second
// card placed later is not the one found until the first leaves.
func TestOtherCardReplacesHeldOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim, d, _ := open(t)
		sim.Put(rcs380sim.ISO14443A(uid7))
		if c, err := d.Poll(); err != nil || !bytes.Equal(c.UID, uid7) {
			t.Fatalf("Poll = %X %v", c.UID, err)
		}
		sim.Remove()
		sim.Put(rcs380sim.ISO14443A(uid4))
		if ok, err := d.Present(); ok || err != nil {
			t.Fatalf("another card is not the held one: present %v %v", ok, err)
		}
		if c, err := d.Poll(); err != nil || !bytes.Equal(c.UID, uid4) {
			t.Fatalf("Poll = %X %v, want the new card", c.UID, err)
		}
	})
}

func TestUnpluggedMidPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim, d, _ := open(t)
		done := make(chan error, 1)
		go func() {
			_, err := d.Poll()
			done <- err
		}()
		time.Sleep(20 * time.Millisecond) // within the cycle
		sim.Unplug()
		var err error
		for err == nil || errors.Is(err, nfc.ErrNoCard) {
			err = <-done
			if err == nil || errors.Is(err, nfc.ErrNoCard) {
				go func() { _, err := d.Poll(); done <- err }()
			}
		}
		if !errors.Is(err, syscall.ENODEV) {
			t.Fatalf("Poll after unplug: %v, want ENODEV", err)
		}
		if err := d.Close(); err != nil {
			t.Errorf("Close of an unplugged reader: %v", err)
		}
		if _, err := sim.Open(); !errors.Is(err, syscall.ENODEV) {
			t.Fatalf("open while unplugged: %v", err)
		}
		sim.Replug()
		if _, err := sim.Open(); err != nil {
			t.Fatalf("open after replug: %v", err)
		}
	})
}

// TestMalformedAnswers: every kind of broken answer is logged and
// re-synchronised; the next cycle finds the card; nothing panics.
func TestMalformedAnswers(t *testing.T) {
	for _, c := range []rcs380sim.Corruption{rcs380sim.Truncated, rcs380sim.BadChecksum, rcs380sim.WrongCode, rcs380sim.NoAnswer, rcs380sim.Garbage} {
		t.Run(map[rcs380sim.Corruption]string{1: "truncated", 2: "checksum", 3: "code", 4: "none", 5: "garbage"}[c], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sim, d, log := open(t)
				sim.Put(rcs380sim.ISO14443A(uid7))
				sim.Corrupt(c)
				if _, err := d.Poll(); !errors.Is(err, nfc.ErrNoCard) {
					t.Fatalf("Poll with a broken answer: %v, want ErrNoCard after a re-sync", err)
				}
				if !strings.Contains(log.String(), "re-synchronising") {
					t.Errorf("no log line about the broken answer:\n%s", log.String())
				}
				card, err := d.Poll()
				if err != nil || !bytes.Equal(card.UID, uid7) {
					t.Fatalf("next Poll = %X %v, want the card", card.UID, err)
				}
			})
		})
	}
}

// TestMalformedForever: a reader that only answers garbage counts as failed.
func TestMalformedForever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim, d, _ := open(t)
		for range 20 {
			sim.Corrupt(rcs380sim.BadChecksum)
		}
		var err error
		for range 5 {
			if _, err = d.Poll(); err != nil && !errors.Is(err, nfc.ErrNoCard) {
				break
			}
		}
		if err == nil || errors.Is(err, nfc.ErrNoCard) {
			t.Fatalf("a reader answering only garbage: %v, want a failure", err)
		}
	})
}

func TestAbort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, d, _ := open(t)
		// Before a call: the next one returns ErrAborted at once.
		_ = d.Abort()
		if _, err := d.Poll(); !errors.Is(err, nfc.ErrAborted) {
			t.Fatalf("Poll after Abort: %v", err)
		}
		// During the wait between cycles.
		done := make(chan error, 1)
		go func() { _, err := d.Poll(); done <- err }()
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		_ = d.Abort()
		if err := <-done; !errors.Is(err, nfc.ErrAborted) {
			t.Fatalf("Poll aborted: %v", err)
		}
		if time.Since(start) > 0 {
			t.Errorf("an abort during the wait took %v of fake time", time.Since(start))
		}
		// Consumed: the next poll runs normally.
		if _, err := d.Poll(); !errors.Is(err, nfc.ErrNoCard) {
			t.Fatalf("Poll after an aborted one: %v", err)
		}
	})
}
