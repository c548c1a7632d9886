package rcs380sim

import (
	"bytes"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380/port100"
)

// host is a hand-driven host: frames written out with the port100 codec,
// answers checked byte by byte.
type host struct {
	t  *testing.T
	tr rcs380.Transport
}

func (h host) cmd(code byte, params ...byte) []byte {
	h.t.Helper()
	if err := h.tr.Write(port100.Command(code, params), time.Second); err != nil {
		h.t.Fatal(err)
	}
	buf := make([]byte, port100.MaxFrame)
	n, err := h.tr.Read(buf, time.Second)
	if err != nil || !bytes.Equal(buf[:n], port100.ACK) {
		h.t.Fatalf("%s: expected an ACK, got % X %v", port100.CommandName(code), buf[:n], err)
	}
	n, err = h.tr.Read(buf, time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	_, data, err := port100.Decode(buf[:n])
	if err != nil {
		h.t.Fatal(err)
	}
	rsp, err := port100.ParseResponse(code, data)
	if err != nil {
		h.t.Fatal(err)
	}
	return rsp
}

func (h host) rf(tx ...byte) []byte {
	h.t.Helper()
	return h.cmd(port100.InCommRF, port100.InCommRFParams(30, tx)...)
}

func start(t *testing.T, s *Sim) host {
	tr, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	h := host{t, tr}
	if err := tr.Write(port100.ACK, time.Second); err != nil {
		t.Fatal(err)
	}
	h.cmd(port100.SetCommandType, 1)
	return h
}

// TestCascadeByHand: a 10-byte UID through three cascade levels, frame by
// frame, as the chip and the card answer.
func TestCascadeByHand(t *testing.T) {
	s := New(Options{})
	uid := []byte{0x04, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	s.Put(ISO14443A(uid))
	h := start(t, s)
	h.cmd(port100.InSetRF, 2, 3, 15, 3)
	h.cmd(port100.InSetProtocol, port100.ProtocolDefaults...)
	h.cmd(port100.InSetProtocol, 1, 0, 2, 0, 5, 1, 0, 6, 7, 7)
	if got := h.rf(0x26); !bytes.Equal(got, []byte{0, 0, 0, 0, 0, 0x84, 0x00}) {
		t.Fatalf("SENS_RES = % X", got)
	}
	h.cmd(port100.InSetProtocol, 4, 1, 7, 8)
	parts := [][]byte{{0x88, 0x04, 1, 2}, {0x88, 3, 4, 5}, {6, 7, 8, 9}}
	for i, sel := range []byte{0x93, 0x95, 0x97} {
		h.cmd(port100.InSetProtocol, 1, 0, 2, 0)
		sdd := h.rf(sel, 0x20)[5:]
		p := parts[i]
		if !bytes.Equal(sdd, append(append([]byte(nil), p...), p[0]^p[1]^p[2]^p[3])) {
			t.Fatalf("level %d SDD_RES = % X", i+1, sdd)
		}
		h.cmd(port100.InSetProtocol, 1, 1, 2, 1)
		sak := h.rf(append([]byte{sel, 0x70}, sdd...)...)[5:]
		if want := map[bool]byte{true: 0x08, false: 0x04}[i == 2]; len(sak) != 1 || sak[0] != want {
			t.Fatalf("level %d SAK = % X, want %02X", i+1, sak, want)
		}
	}
	if v := s.Violations(); len(v) != 0 {
		t.Errorf("violations: %v", v)
	}
	if s.FoundAt().IsZero() {
		t.Error("FoundAt not set after the final SAK was read")
	}
}

// TestViolations: what a real chip or card would not take is recorded, and
// the card stays silent.
func TestViolations(t *testing.T) {
	s := New(Options{})
	s.Put(ISO14443A([]byte{0x04, 1, 2, 3}))
	tr, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("a second open: %v, want EBUSY", err)
	}
	h := host{t, tr}
	h.cmd(port100.GetFirmwareVersion) // no ACK first
	if err := tr.Write([]byte{0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x01}, time.Second); err != nil {
		t.Fatal(err)
	}
	h.cmd(port100.SwitchRF, 0) // before SetCommandType
	h.cmd(port100.SetCommandType, 1)
	h.rf(0x26) // before InSetRF
	h.cmd(port100.InSetRF, 2, 3, 15, 3)
	h.cmd(port100.InSetProtocol, port100.ProtocolDefaults...)
	if got := h.rf(0x26); !bytes.Equal(got[:4], []byte{0x80, 0, 0, 0}) { // 8 bits, CRC on: the card does not understand
		t.Errorf("SENS_REQ with the wrong framing answered % X", got)
	}
	want := []string{"did not start with an ACK", "malformed frame", "before SetCommandType", "InCommRF before InSetRF", "SENS_REQ with protocol setting"}
	v := strings.Join(s.Violations(), "\n")
	for _, w := range want {
		if !strings.Contains(v, w) {
			t.Errorf("no violation %q in:\n%s", w, v)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(s.Violations(), "\n"), "closed with the field on") {
		t.Error("closing with the field on is not flagged")
	}
}

func TestReadTimesOutAndUnplug(t *testing.T) {
	s := New(Options{})
	tr, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Read(make([]byte, 10), 5*time.Millisecond); !errors.Is(err, syscall.ETIMEDOUT) {
		t.Errorf("empty read: %v, want ETIMEDOUT", err)
	}
	s.Unplug()
	if err := tr.Write(port100.ACK, time.Second); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("write after unplug: %v, want ENODEV", err)
	}
	if _, err := s.Open(); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("open while unplugged: %v", err)
	}
	s.Replug()
	if _, err := tr.Read(make([]byte, 10), time.Millisecond); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("the old session after a replug: %v, want ENODEV", err)
	}
	if _, err := s.Open(); err != nil {
		t.Errorf("open after replug: %v", err)
	}
}
