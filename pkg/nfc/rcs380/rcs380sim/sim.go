// Package rcs380sim is a simulated Sony RC-S380 at the USB transfer
// boundary: it implements the driver's rcs380.Transport, parses every
// Port-100 frame the driver sends (checksums, lengths, command codes, the
// order nfcpy uses), answers like the chip, and holds ISO14443A cards
// (4-, 7- and 10-byte UIDs, anticollision and select through the cascade
// levels) and FeliCa cards (IDm at 212 and/or 424 kbit/s). Everything the
// driver does that a real chip or card would not accept is recorded as a
// violation (Violations), and the simulated card then does not answer, as
// a real one would not.
//
// The tests and the demo (-demo -demo-reader rcs380) use it.
package rcs380sim

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380/port100"
)

// Firmware is the version GetFirmwareVersion reports (minor, major): 1.11,
// as RC-S380s in the field do.
var Firmware = [2]byte{0x11, 0x01}

// maxQueue bounds the frames waiting to be read.
const maxQueue = 8

// maxViolations bounds what Violations keeps.
const maxViolations = 64

// Corruption is a way the next answer from the chip is broken.
type Corruption int

const (
	// Truncated: the frame is cut after 5 bytes.
	Truncated Corruption = iota + 1
	// BadChecksum: the data checksum is wrong.
	BadChecksum
	// WrongCode: the response code is not the command's + 1.
	WrongCode
	// NoAnswer: the chip sends the ACK but never the response.
	NoAnswer
	// Garbage: random-looking bytes instead of the response.
	Garbage
)

// Stats count what the simulated chip saw.
type Stats struct {
	Opens, Closes int
	HostACKs      int // ACK frames from the host (soft resets, cancels)
	Commands      map[string]int
	SensReqs      int // SENS_REQ sent into the field
	SensfReqs     int
	RFOffs        int // SwitchRF off
	Malformed     int // frames from the host that did not parse
}

// Options configure a Sim.
type Options struct {
	Logger *slog.Logger
	// Product is what discovery would call the device.
	Product string
}

// Sim is one simulated RC-S380 on the bus.
type Sim struct {
	log     *slog.Logger
	product string

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced at every change
	cards      []*inField
	unplugged  bool
	session    *session // the open transport, nil when none
	corrupt    []Corruption
	violations []string
	stats      Stats
	foundAt    time.Time // a card's activation first reached the driver since the last Put
	found      bool      // the answer being built completes a card's activation

	// Chip state, reset by the host's ACK at open.
	cmdType  byte
	rfOn     bool
	rate     port100.Rate
	rateSet  bool
	defaults bool // InSetProtocol defaults sent since the last InSetRF
	proto    [port100.NumSettings]byte
}

// New returns a simulated RC-S380 with an empty field.
func New(o Options) *Sim {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Product == "" {
		o.Product = "Sony RC-S380/P (simulated)"
	}
	return &Sim{log: log, product: o.Product, changed: make(chan struct{}), stats: Stats{Commands: map[string]int{}}}
}

// Name is where the driver finds it, for its logs.
func (s *Sim) Name() string { return s.product + " (rcs380:sim)" }

func (s *Sim) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Put places a card in the field (in addition to those there).
func (s *Sim) Put(c Card) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cards = append(s.cards, &inField{Card: c})
	s.foundAt = time.Time{}
	s.broadcast()
}

// Remove takes every card out of the field.
func (s *Sim) Remove() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cards = nil
	s.broadcast()
}

// Unplug makes the device vanish: every transfer of the open session and
// every Open fail with ENODEV until Replug.
func (s *Sim) Unplug() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unplugged = true
	s.broadcast()
}

// Replug brings the device back (the chip powered up afresh).
func (s *Sim) Replug() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unplugged = false
	s.session = nil
	s.resetChip()
	s.broadcast()
}

// Corrupt breaks the next answers of the chip, one corruption each.
func (s *Sim) Corrupt(c ...Corruption) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corrupt = append(s.corrupt, c...)
}

// Violations are the things the driver did that the chip or a card would
// not accept.
func (s *Sim) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// Stats returns a copy of the counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Commands = make(map[string]int, len(s.stats.Commands))
	for k, v := range s.stats.Commands {
		st.Commands[k] = v
	}
	return st
}

// Open is the simulated bus: a new session on the device, as the usbfs
// transport's open and claim would give. ENODEV while unplugged, EBUSY
// while a session is open.
func (s *Sim) Open() (rcs380.Transport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unplugged {
		return nil, fmt.Errorf("rcs380sim: open: %w", syscall.ENODEV)
	}
	if s.session != nil {
		return nil, fmt.Errorf("rcs380sim: open: %w", syscall.EBUSY)
	}
	s.session = &session{sim: s, first: true}
	s.stats.Opens++
	s.broadcast()
	return s.session, nil
}

// FoundAt is when the driver first received the chip's answer with a
// card's last activation step (the final SAK, a SENSF_RES) since the last
// Put; zero before.
func (s *Sim) FoundAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.foundAt
}

// WaitSense waits until the driver sends a SENS_REQ with no card in the
// field, that is until it polls an empty field.
func (s *Sim) WaitSense(ctx context.Context) error {
	s.mu.Lock()
	n := s.stats.SensReqs
	s.mu.Unlock()
	for {
		s.mu.Lock()
		ch, ok := s.changed, s.stats.SensReqs > n && len(s.cards) == 0
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

func (s *Sim) violate(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.log.Warn("rcs380sim: violation", "what", msg)
	if len(s.violations) < maxViolations {
		s.violations = append(s.violations, msg)
	}
}

// resetChip is the chip's state after power-up or the host's soft reset.
func (s *Sim) resetChip() {
	s.cmdType, s.rfOn, s.rateSet, s.defaults = 0, false, false, false
	s.proto = [port100.NumSettings]byte{}
	s.fieldOff()
}

func (s *Sim) fieldOff() {
	s.rfOn = false
	for _, c := range s.cards {
		c.state, c.level = stIdle, 0
	}
}

// queued is a frame waiting to be read, readable from at on.
type queued struct {
	frame []byte
	at    time.Time
	found bool // it completes a card's activation
}

// session is one open transport.
type session struct {
	sim    *Sim
	queue  []queued
	first  bool // nothing written yet: nfcpy starts with an ACK
	closed bool
}

var _ rcs380.Transport = (*session)(nil)

func (t *session) gone() error {
	switch {
	case t.closed:
		return fmt.Errorf("rcs380sim: %w", syscall.EBADF)
	case t.sim.unplugged || t.sim.session != t:
		return fmt.Errorf("rcs380sim: %w", syscall.ENODEV)
	}
	return nil
}

// Write takes one frame from the host.
func (t *session) Write(p []byte, timeout time.Duration) error {
	s := t.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := t.gone(); err != nil {
		return err
	}
	if timeout <= 0 {
		s.violate("a bulk OUT transfer without a timeout")
	}
	defer s.broadcast()
	first := t.first
	t.first = false
	ack, data, err := port100.Decode(p)
	switch {
	case err != nil:
		s.stats.Malformed++
		s.violate("malformed frame from the host: %v", err)
		return nil // the chip ignores it
	case ack:
		s.stats.HostACKs++
		t.queue = t.queue[:0] // cancels whatever was to come
		if first {
			s.resetChip()
		}
		return nil
	}
	if first {
		s.violate("the session did not start with an ACK (nfcpy's soft reset)")
	}
	code, params, err := port100.ParseCommand(data)
	if err != nil {
		s.stats.Malformed++
		s.violate("%v", err)
		return nil
	}
	if len(t.queue) > 0 {
		s.violate("%s sent while the answer to the previous command was not read", port100.CommandName(code))
		t.queue = t.queue[:0]
	}
	s.stats.Commands[port100.CommandName(code)]++
	s.found = false
	rsp, delay := s.execute(code, params)
	now := time.Now()
	t.push(queued{frame: port100.ACK, at: now})
	if rsp == nil {
		return nil
	}
	frame := port100.Response(code, rsp)
	if len(s.corrupt) > 0 {
		c := s.corrupt[0]
		s.corrupt = s.corrupt[1:]
		switch c {
		case Truncated:
			frame = frame[:5]
		case BadChecksum:
			frame[len(frame)-2]++
		case WrongCode:
			frame = port100.Encode(append([]byte{port100.ChipToHost, code + 3}, rsp...))
		case NoAnswer:
			return nil
		case Garbage:
			frame = []byte{0x13, 0x37, 0x00, 0xFF, 0x42}
		}
	}
	t.push(queued{frame: frame, at: now.Add(delay), found: s.found})
	return nil
}

func (t *session) push(q queued) {
	if len(t.queue) < maxQueue {
		t.queue = append(t.queue, q)
	}
}

// Read returns the next frame once it is due, or ETIMEDOUT.
func (t *session) Read(p []byte, timeout time.Duration) (int, error) {
	s := t.sim
	if timeout <= 0 {
		s.mu.Lock()
		s.violate("a bulk IN transfer without a timeout")
		s.mu.Unlock()
		timeout = time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		if err := t.gone(); err != nil {
			s.mu.Unlock()
			return 0, err
		}
		now := time.Now()
		wait := deadline.Sub(now)
		if len(t.queue) > 0 {
			q := t.queue[0]
			if !q.at.After(now) {
				t.queue = t.queue[1:]
				if q.found && s.foundAt.IsZero() {
					s.foundAt = now
				}
				s.mu.Unlock()
				if len(q.frame) > len(p) {
					return 0, fmt.Errorf("rcs380sim: %d-byte frame into a %d-byte buffer: %w", len(q.frame), len(p), syscall.EOVERFLOW)
				}
				return copy(p, q.frame), nil
			}
			wait = min(wait, q.at.Sub(now))
		}
		ch := s.changed
		s.mu.Unlock()
		if deadline.Sub(now) <= 0 {
			return 0, fmt.Errorf("rcs380sim: read: %w", syscall.ETIMEDOUT)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ch:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// Close ends the session (nfcpy's close: the field off, an ACK).
func (t *session) Close() error {
	s := t.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	if s.session == t {
		s.session = nil
		s.stats.Closes++
		if s.rfOn && !s.unplugged {
			s.violate("the session closed with the field on")
		}
		s.fieldOff()
	}
	s.broadcast()
	return nil
}

// execute runs one command: the answer's parameters (nil: no answer) and
// how long the chip takes.
func (s *Sim) execute(code byte, p []byte) ([]byte, time.Duration) {
	ok := []byte{0x00}
	if s.cmdType != 1 && code != port100.SetCommandType && code != port100.GetFirmwareVersion {
		s.violate("%s before SetCommandType 1", port100.CommandName(code))
	}
	switch code {
	case port100.SetCommandType:
		if len(p) != 1 || p[0] != 1 {
			s.violate("SetCommandType % X, nfcpy sends 01", p)
			return []byte{0x01}, 0
		}
		s.cmdType = 1
		return ok, 0
	case port100.GetFirmwareVersion:
		if len(p) != 0 {
			s.violate("GetFirmwareVersion with parameters % X", p)
		}
		return Firmware[:], 0
	case port100.GetPDDataVersion:
		return []byte{0x00, 0x01}, 0
	case port100.SwitchRF:
		if len(p) != 1 || p[0] > 1 {
			s.violate("SwitchRF % X", p)
			return []byte{0x01}, 0
		}
		if p[0] == 0 {
			s.stats.RFOffs++
			s.fieldOff()
		} else {
			s.rfOn = true
		}
		return ok, 0
	case port100.InSetRF:
		r, known := port100.RateOf(p)
		if !known {
			s.violate("InSetRF % X: not a rate nfcpy uses for 106A, 212F or 424F", p)
			return []byte{0x01}, 0
		}
		if s.rateSet && r != s.rate {
			// A new technology: the cards start afresh.
			for _, c := range s.cards {
				if c.state != stHalt {
					c.state, c.level = stIdle, 0
				}
			}
		}
		s.rate, s.rateSet, s.defaults = r, true, false
		return ok, 0
	case port100.InSetProtocol:
		if len(p)%2 != 0 || len(p) == 0 {
			s.violate("InSetProtocol with %d bytes: want key/value pairs", len(p))
			return []byte{0x01}, 0
		}
		for i := 0; i < len(p); i += 2 {
			if p[i] >= port100.NumSettings || p[i] == 13 {
				s.violate("InSetProtocol key %d", p[i])
				return []byte{0x01}, 0
			}
			s.proto[p[i]] = p[i+1]
		}
		if bytes.Equal(p, port100.ProtocolDefaults) {
			s.defaults = true
		}
		return ok, 0
	case port100.InCommRF:
		return s.inCommRF(p)
	}
	s.violate("%s: not a command a door reader needs", port100.CommandName(code))
	return []byte{0x01}, 0
}

// answerDelay is how long the chip takes for an exchange a card answered.
const answerDelay = 500 * time.Microsecond

func (s *Sim) inCommRF(p []byte) ([]byte, time.Duration) {
	if len(p) < 3 {
		s.violate("InCommRF with %d bytes: want a timeout and data", len(p))
		return commStatus(port100.StatusProtocol, nil), 0
	}
	if !s.rateSet {
		s.violate("InCommRF before InSetRF")
		return commStatus(port100.StatusProtocol, nil), 0
	}
	if !s.defaults {
		s.violate("InCommRF without the InSetProtocol defaults after InSetRF (nfcpy's order)")
	}
	units := binary.LittleEndian.Uint16(p[:2])
	if units == 0 {
		s.violate("InCommRF without a timeout")
	}
	timeout := time.Duration(units) * 100 * time.Microsecond
	s.rfOn = true
	rx := s.exchange(p[2:])
	if rx == nil {
		return commStatus(port100.StatusReceiveTimeout, nil), timeout
	}
	return commStatus(0, rx), answerDelay
}

func commStatus(st uint32, rx []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, st)
	b = append(b, 0x00)
	return append(b, rx...)
}

// exchange is what the cards in the field answer to tx; nil for silence.
func (s *Sim) exchange(tx []byte) []byte {
	switch s.rate {
	case port100.Rate106A:
		return s.exchangeA(tx)
	default:
		return s.exchangeF(tx)
	}
}

func (s *Sim) wantProto(what string, kv ...byte) bool {
	good := true
	for i := 0; i < len(kv); i += 2 {
		if s.proto[kv[i]] != kv[i+1] {
			s.violate("%s with protocol setting %d = %d, want %d", what, kv[i], s.proto[kv[i]], kv[i+1])
			good = false
		}
	}
	return good
}

func (s *Sim) cardsA() []*inField {
	var out []*inField
	for _, c := range s.cards {
		if !c.felica {
			out = append(out, c)
		}
	}
	return out
}

func (s *Sim) exchangeA(tx []byte) []byte {
	switch {
	case len(tx) == 1 && (tx[0] == 0x26 || tx[0] == 0x52):
		s.stats.SensReqs++
		if !s.wantProto("SENS_REQ", port100.LastByteBitCount, 7, port100.AddCRC, 0, port100.CheckCRC, 0, port100.CheckParity, 1) {
			return nil
		}
		var atqa []byte
		for _, c := range s.cardsA() {
			if c.state == stIdle || (tx[0] == 0x52 && c.state == stHalt) {
				c.state, c.level = stReady, 0
				atqa = c.atqa[:]
			} else {
				c.state, c.level = stIdle, 0 // not expected in its state: back to idle, silent
			}
		}
		return bytes.Clone(atqa)
	case len(tx) == 2 && tx[1] == 0x20 && level(tx[0]) >= 0:
		if !s.wantProto("SDD_REQ", port100.LastByteBitCount, 8, port100.AddCRC, 0, port100.CheckCRC, 0, port100.AddParity, 1) {
			return nil
		}
		var ans []byte
		n := 0
		for _, c := range s.cardsA() {
			if c.state == stReady && c.level == level(tx[0]) {
				part := c.parts()[c.level]
				ans = append(bytes.Clone(part), part[0]^part[1]^part[2]^part[3])
				n++
			}
		}
		if n > 1 {
			return nil // a collision: the driver sees a CRC/collision error as silence here
		}
		return ans
	case len(tx) == 7 && tx[1] == 0x70 && level(tx[0]) >= 0:
		if !s.wantProto("SEL_REQ", port100.LastByteBitCount, 8, port100.AddCRC, 1, port100.CheckCRC, 1, port100.AddParity, 1) {
			return nil
		}
		if tx[2]^tx[3]^tx[4]^tx[5] != tx[6] {
			s.violate("SEL_REQ with a wrong BCC")
			return nil
		}
		var ans []byte
		for _, c := range s.cardsA() {
			if c.state != stReady || c.level != level(tx[0]) {
				continue
			}
			parts := c.parts()
			if !bytes.Equal(parts[c.level], tx[2:6]) {
				c.state, c.level = stIdle, 0
				continue
			}
			if c.level == len(parts)-1 {
				c.state = stActive
				ans = []byte{c.sak}
				s.markFound()
			} else {
				c.level++
				ans = []byte{0x04}
			}
		}
		return ans
	}
	s.violate("106A frame % X: not SENS_REQ, SDD_REQ or SEL_REQ", tx)
	return nil
}

// found notes that the answer being built completes an activation.
func (s *Sim) markFound() { s.found = true }

func level(sel byte) int {
	switch sel {
	case 0x93:
		return 0
	case 0x95:
		return 1
	case 0x97:
		return 2
	}
	return -1
}

func (s *Sim) exchangeF(tx []byte) []byte {
	if len(tx) != 6 || tx[0] != 6 || tx[1] != 0x00 {
		s.violate("%s frame % X: not SENSF_REQ", s.rate, tx)
		return nil
	}
	s.stats.SensfReqs++
	if !s.wantProto("SENSF_REQ", port100.InitialGuardTime, 24, port100.AddCRC, 1, port100.CheckCRC, 1) {
		return nil
	}
	if tx[2] != 0xFF || tx[3] != 0xFF {
		return nil // a system code our cards do not have
	}
	for _, c := range s.cards {
		if !c.felica || !c.answersAt(s.rate) {
			continue
		}
		f := []byte{0, 0x01}
		f = append(f, c.uid...)
		f = append(f, 0x03, 0x32, 0x42, 0x82, 0x82, 0x47, 0xAA, 0xFF) // PMm
		if tx[4] == 0x01 {
			f = append(f, 0x00, 0x03) // system code 0003 (a transit card)
		}
		f[0] = byte(len(f))
		s.markFound()
		return f
	}
	return nil
}
