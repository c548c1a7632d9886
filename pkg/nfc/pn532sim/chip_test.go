package pn532sim

import (
	"bytes"
	"log/slog"
	"testing"
	"time"
)

// harness drives a chip with a fake clock and records what it writes.
type harness struct {
	t       *testing.T
	c       *chip
	card    Card
	gen     uint64
	has     bool
	out     parser
	written []frame // frames the chip wrote, not yet taken by answers
	stats   Stats
	polling bool
	now     time.Time
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	h.c = newChip(slog.New(slog.DiscardHandler),
		func() (Card, uint64, bool) { return h.card, h.gen, h.has },
		func(b []byte) {
			for _, f := range h.out.feed(b) {
				h.written = append(h.written, f)
			}
		},
		func(f func(*Stats)) { f(&h.stats) },
		func(on bool) { h.polling = on })
	return h
}

func (h *harness) put(c Card) { h.card, h.has = c.clone(), true; h.gen++; h.c.fieldChanged() }
func (h *harness) remove()    { h.card, h.has = Card{}, false; h.gen++; h.c.fieldChanged() }

// send feeds one command frame (command code and parameters).
func (h *harness) send(cmd ...byte) {
	h.t.Helper()
	h.c.feed(h.now, encodeFrame(tfiHost, cmd))
}

// advance moves the clock and runs the due slots.
func (h *harness) advance(d time.Duration) {
	h.now = h.now.Add(d)
	h.c.tick(h.now)
}

// answers returns the frames written since the last call.
func (h *harness) answers() []frame {
	a := h.written
	h.written = nil
	return a
}

// call sends a command and returns its answer's data (the code+1 byte
// first), failing unless the chip sent exactly an ACK and one answer.
func (h *harness) call(cmd ...byte) []byte {
	h.t.Helper()
	h.send(cmd...)
	a := h.answers()
	if len(a) != 2 || a[0].kind != frameAck || a[1].kind != frameData || a[1].tfi != tfiChip {
		h.t.Fatalf("command % X: answers %v, want ACK and one answer", cmd, a)
	}
	if a[1].data[0] != cmd[0]+1 {
		h.t.Fatalf("command % X: answer code %02X", cmd, a[1].data[0])
	}
	return a[1].data
}

// quiet fails if the chip wrote anything.
func (h *harness) quiet(why string) {
	h.t.Helper()
	if a := h.answers(); len(a) != 0 {
		h.t.Fatalf("%s: chip wrote %v", why, a)
	}
}

func wantData(t *testing.T, what string, got []byte, want ...byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: % X, want % X", what, got, want)
	}
}

var (
	classicUID = []byte{0x01, 0x02, 0x03, 0x04}
	ulUID      = []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}
	desfireUID = []byte{0x04, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09}
	idm        = []byte{0x01, 0x2E, 0x4C, 0x11, 0x22, 0x33, 0x44, 0x55}
)

func TestOpenSequence(t *testing.T) {
	h := newHarness(t)
	// Wake-up preamble, then SAMConfiguration, as libnfc opens a PN532.
	h.c.feed(h.now, append([]byte{0x55, 0x55, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, encodeFrame(tfiHost, []byte{0x14, 0x01})...))
	if a := h.answers(); len(a) != 2 || a[0].kind != frameAck || !bytes.Equal(a[1].data, []byte{0x15}) {
		t.Fatalf("SAMConfiguration after wake-up: %v", a)
	}
	wantData(t, "Diagnose echo", h.call(0x00, 0x00, 'l', 'i', 'b', 'n', 'f', 'c'), 0x01, 0x00, 'l', 'i', 'b', 'n', 'f', 'c')
	wantData(t, "GetFirmwareVersion", h.call(0x02), 0x03, 0x32, 0x01, 0x06, 0x07)
	wantData(t, "SetParameters", h.call(0x12, 0x14), 0x13)
	wantData(t, "ReadRegister defaults", h.call(0x06, 0x63, 0x04, 0x63, 0x3C), 0x07, 0x80, 0x10)
	wantData(t, "WriteRegister", h.call(0x08, 0x63, 0x02, 0x80, 0x63, 0x03, 0x80), 0x09)
	wantData(t, "ReadRegister written", h.call(0x06, 0x63, 0x02, 0x63, 0x03), 0x07, 0x80, 0x80)
	wantData(t, "RFConfiguration", h.call(0x32, 0x01, 0x01), 0x33)
	wantData(t, "GetGeneralStatus", h.call(0x04), 0x05, 0x00, 0x01, 0x00, 0x00)
	wantData(t, "InRelease", h.call(0x52, 0x00), 0x53, 0x00)
	wantData(t, "PowerDown", h.call(0x16, 0xF0), 0x17, 0x00)
	if h.stats.Frames != 11 || h.stats.CommTests != 1 || h.stats.Unknown != 0 {
		t.Fatalf("stats %+v", h.stats)
	}
}

func TestErrorsAndRetransmission(t *testing.T) {
	h := newHarness(t)
	h.send(0x8C, 0x00) // TgInitAsTarget: not simulated
	if a := h.answers(); len(a) != 2 || a[0].kind != frameAck || a[1].kind != frameData || a[1].tfi != 0x7F {
		t.Fatalf("unknown command: %v, want ACK and the error frame", a)
	}
	if h.stats.Unknown != 1 {
		t.Fatalf("Unknown = %d", h.stats.Unknown)
	}
	wantData(t, "GetFirmwareVersion", h.call(0x02), 0x03, 0x32, 0x01, 0x06, 0x07)
	h.c.feed(h.now, nackFrame)
	if a := h.answers(); len(a) != 1 || !bytes.Equal(a[0].data, []byte{0x03, 0x32, 0x01, 0x06, 0x07}) {
		t.Fatalf("after NACK: %v, want the last answer again", a)
	}
	h.c.feed(h.now, []byte{0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD4, 0x02, 0x00, 0x00}) // bad DCS
	if a := h.answers(); len(a) != 1 || a[0].kind != frameNack {
		t.Fatalf("bad checksum: %v, want NACK", a)
	}
	// An extended frame both ways: a 300-byte communication test.
	long := append([]byte{0x00, 0x00}, bytes.Repeat([]byte{0x5A}, 258)...)
	wantData(t, "extended echo", h.call(long...), append([]byte{0x01}, long[1:]...)...)
	if n := len(encodeFrame(tfiChip, append([]byte{0x01}, long[1:]...))); n <= 255+8 {
		t.Fatalf("the echo fits a normal frame (%d bytes): test does not cover extended frames", n)
	}
}

func TestAutoPollTiming(t *testing.T) {
	// libnfc's poll: PollNr 2, Period 1, types ISO14443-4A, MIFARE, FeliCa 212, 424.
	autoPoll := []byte{0x60, 0x02, 0x01, 0x20, 0x10, 0x11, 0x12}
	felica := FeliCa(idm)
	felicaData := append([]byte{0x01}, felica.polRes(true)...)
	tests := []struct {
		name    string
		before  *Card         // in the field when the poll starts
		putAt   time.Duration // when set: Put after this much time
		put     Card
		foundAt time.Duration // answer's time; 0 with want nil: empty cycle
		want    []byte        // InAutoPoll answer after 61
	}{
		{name: "empty cycle", foundAt: 8 * SlotTime, want: []byte{0x00}},
		{name: "classic present: MIFARE slot", before: ptr(ISO14443A(classicUID)), foundAt: SlotTime,
			want: []byte{0x01, 0x10, 0x09, 0x01, 0x00, 0x04, 0x08, 0x04, 0x01, 0x02, 0x03, 0x04}},
		{name: "ISO14443-4 present: 4A slot with ATS", before: ptr(ISO14443A(desfireUID)), foundAt: 0,
			want: append([]byte{0x01, 0x20, 21, 0x01, 0x00, 0x84, 0x20, 0x0A}, append(desfireUID, defaultATS...)...)},
		{name: "felica present: 212 slot", before: ptr(felica), foundAt: 2 * SlotTime,
			want: append([]byte{0x01, 0x11, byte(len(felicaData))}, felicaData...)},
		{name: "classic put in the second poll's 4A slot", putAt: 4*SlotTime + 10*time.Millisecond, put: ISO14443A(classicUID), foundAt: 5 * SlotTime,
			want: []byte{0x01, 0x10, 0x09, 0x01, 0x00, 0x04, 0x08, 0x04, 0x01, 0x02, 0x03, 0x04}},
		{name: "felica put in its own slot waits for the 424 slot", putAt: 2*SlotTime + time.Millisecond, put: felica, foundAt: 3 * SlotTime,
			want: append([]byte{0x01, 0x12, byte(len(felicaData))}, felicaData...)},
		{name: "put in the last slot: cycle ends empty", putAt: 7*SlotTime + time.Millisecond, put: ISO14443A(classicUID), foundAt: 8 * SlotTime, want: []byte{0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.call(0x12, 0x14) // SetParameters as libnfc: automatic RATS
			if tt.before != nil {
				h.put(*tt.before)
			}
			start := h.now
			h.send(autoPoll...)
			if a := h.answers(); len(a) == 0 || a[0].kind != frameAck {
				t.Fatalf("InAutoPoll: %v, want ACK first", a)
			} else if len(a) > 1 {
				if tt.foundAt != 0 {
					t.Fatalf("answered at once: %v", a[1:])
				}
				wantData(t, "answer", a[1].data, append([]byte{0x61}, tt.want...)...)
				return
			}
			if !h.polling {
				t.Fatal("not polling after InAutoPoll")
			}
			step := 5 * time.Millisecond
			for h.now.Sub(start)+step < tt.foundAt {
				if tt.putAt > 0 && h.now.Sub(start) < tt.putAt && h.now.Sub(start)+step >= tt.putAt {
					h.advance(tt.putAt - h.now.Sub(start))
					h.put(tt.put)
					h.quiet("put")
					continue
				}
				h.advance(step)
				h.quiet("before the slot")
			}
			if next, ok := h.c.next(); !ok || next.Sub(start) != tt.foundAt {
				t.Fatalf("next slot at %v, want %v", next.Sub(start), tt.foundAt)
			}
			h.advance(tt.foundAt - h.now.Sub(start))
			a := h.answers()
			if len(a) != 1 {
				t.Fatalf("at %v: %v, want one answer", tt.foundAt, a)
			}
			wantData(t, "answer", a[0].data, append([]byte{0x61}, tt.want...)...)
			if h.polling || h.c.busy() {
				t.Fatal("still polling after the answer")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestAutoPollEndlessAndAbort(t *testing.T) {
	h := newHarness(t)
	h.send(0x60, 0xFF, 0x01, 0x10)
	h.answers()
	for range 100 {
		h.advance(SlotTime)
	}
	h.quiet("endless poll without a card")
	h.c.feed(h.now, ackFrame) // libnfc's abort
	h.quiet("after the abort")
	if h.polling || h.c.busy() || h.stats.Aborts != 1 {
		t.Fatalf("after the abort: polling %v, stats %+v", h.polling, h.stats)
	}
	h.put(ISO14443A(classicUID))
	h.advance(time.Hour)
	h.quiet("an aborted poll never answers")
	h.c.feed(h.now, ackFrame) // a stray ACK: ignored
	if h.stats.Aborts != 1 || h.stats.Acks != 2 {
		t.Fatalf("stray ACK counted as an abort: %+v", h.stats)
	}
	wantData(t, "next command", h.call(0x02), 0x03, 0x32, 0x01, 0x06, 0x07)
	// A new poll while the card is there answers at once (endless, one type).
	h.send(0x60, 0xFF, 0x01, 0x10)
	if a := h.answers(); len(a) != 2 || a[1].data[1] != 0x01 {
		t.Fatalf("poll with a card: %v", a)
	}
}

func TestNewCommandCancelsPoll(t *testing.T) {
	h := newHarness(t)
	h.send(0x60, 0x01, 0x01, 0x10)
	h.answers()
	wantData(t, "GetFirmwareVersion", h.call(0x02), 0x03, 0x32, 0x01, 0x06, 0x07)
	if h.polling {
		t.Fatal("still polling")
	}
	h.advance(time.Second)
	h.quiet("cancelled poll")
}

func TestListPassiveTarget(t *testing.T) {
	h := newHarness(t)
	h.call(0x12, 0x14)
	h.call(0x32, 0x05, 0x00, 0x01, 0x02) // infinite select off: one try
	wantData(t, "no card", h.call(0x4A, 0x01, 0x00), 0x4B, 0x00)

	h.put(ISO14443A(ulUID))
	wantData(t, "ultralight", h.call(0x4A, 0x01, 0x00),
		append([]byte{0x4B, 0x01, 0x01, 0x00, 0x44, 0x00, 0x07}, ulUID...)...)
	cascaded := append([]byte{0x88}, ulUID...)
	wantData(t, "by cascaded UID", h.call(0x4A, 0x01, 0x00, cascaded[0], cascaded[1], cascaded[2], cascaded[3], cascaded[4], cascaded[5], cascaded[6], cascaded[7])[:2], 0x4B, 0x01)
	wantData(t, "other UID", h.call(0x4A, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04), 0x4B, 0x00)

	h.put(FeliCa(idm))
	got := h.call(0x4A, 0x01, 0x01, 0x00, 0xFF, 0xFF, 0x01, 0x00)
	wantData(t, "felica with system code", got, append([]byte{0x4B, 0x01, 0x01}, FeliCa(idm).polRes(true)...)...)
	wantData(t, "felica other system code", h.call(0x4A, 0x01, 0x02, 0x00, 0x12, 0xFC, 0x00, 0x00), 0x4B, 0x00)
	wantData(t, "felica wildcard byte", h.call(0x4A, 0x01, 0x02, 0x00, 0xFF, 0x03, 0x00, 0x00)[:2], 0x4B, 0x01)
	wantData(t, "type B", h.call(0x4A, 0x01, 0x03, 0x00), 0x4B, 0x00)

	// Infinite retries: the command waits for a card; an ACK aborts it.
	h.remove()
	h.call(0x32, 0x05, 0xFF, 0xFF, 0xFF)
	h.send(0x4A, 0x01, 0x00)
	h.answers()
	h.advance(time.Second)
	h.quiet("waiting for a card")
	h.put(ISO14443A(classicUID))
	if a := h.answers(); len(a) != 1 || !bytes.Equal(a[0].data[:2], []byte{0x4B, 0x01}) {
		t.Fatalf("card arrived: %v", a)
	}
	h.remove()
	h.send(0x4A, 0x01, 0x00)
	h.answers()
	h.c.feed(h.now, ackFrame)
	h.put(ISO14443A(classicUID))
	h.quiet("aborted list")
}

func TestPresenceChecks(t *testing.T) {
	tests := []struct {
		name string
		card Card
		ping []byte // the command libnfc pings the card with
		ok   []byte // its answer while the card is there
		gone []byte // after Remove
	}{
		{"ISO14443-4: R(NAK) through InCommunicateThru", ISO14443A(desfireUID),
			[]byte{0x42, 0xB2}, []byte{0x43, 0x00, 0xA2}, []byte{0x43, 0x01}},
		{"ISO14443-4: APDU through InDataExchange", ISO14443A(desfireUID),
			[]byte{0x40, 0x01, 0x00, 0xA4, 0x04, 0x00}, []byte{0x41, 0x00, 0x6A, 0x82}, []byte{0x41, 0x01}},
		{"Ultralight: READ page 0", ISO14443A(ulUID),
			[]byte{0x40, 0x01, 0x30, 0x00}, append([]byte{0x41, 0x00}, ISO14443A(ulUID).memory(0)...), []byte{0x41, 0x01}},
		{"Classic: re-select by UID", ISO14443A(classicUID),
			[]byte{0x4A, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04}, []byte{0x4B, 0x01, 0x01, 0x00, 0x04, 0x08, 0x04, 0x01, 0x02, 0x03, 0x04}, []byte{0x4B, 0x00}},
		{"Classic: AUTH", ISO14443A(classicUID),
			[]byte{0x40, 0x01, 0x60, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x02, 0x03, 0x04}, []byte{0x41, 0x00}, []byte{0x41, 0x01}},
		{"Diagnose 06", ISO14443A(classicUID),
			[]byte{0x00, 0x06}, []byte{0x01, 0x00}, []byte{0x01, 0x01}},
		{"FeliCa: Request Response", FeliCa(idm),
			append([]byte{0x40, 0x01, 0x0A, 0x04}, idm...), append(append([]byte{0x41, 0x00, 0x0B, 0x05}, idm...), 0x00), []byte{0x41, 0x01}},
		{"FeliCa: Polling", FeliCa(idm),
			[]byte{0x40, 0x01, 0x06, 0x00, 0xFF, 0xFF, 0x00, 0x00}, append([]byte{0x41, 0x00}, FeliCa(idm).polRes(false)...), []byte{0x41, 0x01}},
		{"FeliCa: Request System Code", FeliCa(idm),
			append([]byte{0x42, 0x0A, 0x0C}, idm...), append(append([]byte{0x43, 0x00, 0x0D, 0x0D}, idm...), 0x01, 0x00, 0x03), []byte{0x43, 0x01}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.call(0x12, 0x14)
			h.call(0x32, 0x05, 0x00, 0x01, 0x02)
			h.put(tt.card)
			h.send(0x60, 0x01, 0x01, 0x20, 0x10, 0x11, 0x12)
			h.advance(4 * SlotTime)
			if a := h.answers(); len(a) != 2 || a[1].data[1] != 0x01 {
				t.Fatalf("poll: %v", a)
			}
			wantData(t, "held", h.call(tt.ping...), tt.ok...)
			wantData(t, "held again", h.call(tt.ping...), tt.ok...)
			h.remove()
			wantData(t, "gone", h.call(tt.ping...), tt.gone...)
			if tt.ping[0] != 0x4A { // a card put back must be selected again
				h.put(tt.card)
				wantData(t, "put back, not selected", h.call(tt.ping...), tt.gone...)
			}
			if h.stats.PresenceChecks < 3 {
				t.Fatalf("PresenceChecks = %d", h.stats.PresenceChecks)
			}
		})
	}
}

func TestFieldOffReleasesTarget(t *testing.T) {
	h := newHarness(t)
	h.put(ISO14443A(ulUID))
	h.call(0x4A, 0x01, 0x00)
	wantData(t, "selected", h.call(0x40, 0x01, 0x30, 0x00)[:2], 0x41, 0x00)
	h.call(0x32, 0x01, 0x00) // RF field off
	wantData(t, "after field off", h.call(0x40, 0x01, 0x30, 0x00), 0x41, statusContext)
	h.call(0x4A, 0x01, 0x00)
	h.call(0x44, 0x00) // InDeselect
	wantData(t, "deselected", h.call(0x40, 0x01, 0x30, 0x00), 0x41, statusContext)
	wantData(t, "InSelect", h.call(0x54, 0x01), 0x55, 0x00)
	wantData(t, "selected again", h.call(0x40, 0x01, 0x30, 0x00)[:2], 0x41, 0x00)
}

func TestCardValidation(t *testing.T) {
	tests := []struct {
		name string
		card Card
		ok   bool
	}{
		{"4-byte UID", ISO14443A(classicUID), true},
		{"7-byte UID", ISO14443A(ulUID), true},
		{"10-byte UID", ISO14443A(desfireUID), true},
		{"5-byte UID", ISO14443A([]byte{1, 2, 3, 4, 5}), false},
		{"cascade tag", ISO14443A([]byte{0x88, 1, 2, 3}), false},
		{"ATS length", Card{Kind: KindISO14443A, UID: classicUID, SAK: 0x20, ATS: []byte{0x05, 0x75}}, false},
		{"FeliCa", FeliCa(idm), true},
		{"no kind", Card{}, false},
	}
	for _, tt := range tests {
		if err := tt.card.validate(); (err == nil) != tt.ok {
			t.Errorf("%s: validate() = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
	c := ISO14443A(classicUID)
	if c.ATQA != [2]byte{0x00, 0x04} || c.SAK != 0x08 {
		t.Errorf("4-byte default: ATQA % X SAK %02X, want MIFARE Classic 1K", c.ATQA, c.SAK)
	}
	c = ISO14443A(ulUID)
	if c.ATQA != [2]byte{0x00, 0x44} || c.SAK != 0x00 {
		t.Errorf("7-byte default: ATQA % X SAK %02X, want Ultralight", c.ATQA, c.SAK)
	}
	if got := uncascade([]byte{0x88, 1, 2, 3, 0x88, 4, 5, 6, 7, 8, 9, 10}); !bytes.Equal(got, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
		t.Errorf("uncascade triple = % X", got)
	}
}
