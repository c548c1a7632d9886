package port100

import (
	"bytes"
	"errors"
	"testing"
)

// The frames of nfcpy's format, written out by hand.
func TestEncode(t *testing.T) {
	// SetCommandType 1: D6 2A 01, length 3.
	want := []byte{0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x03, 0x00, 0xFD, 0xD6, 0x2A, 0x01, 0xFF, 0x00}
	if got := Command(SetCommandType, []byte{1}); !bytes.Equal(got, want) {
		t.Errorf("SetCommandType 1 = % X, want % X", got, want)
	}
	// GetFirmwareVersion's answer: D7 21 11 01.
	want = []byte{0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x04, 0x00, 0xFC, 0xD7, 0x21, 0x11, 0x01, 0xF6, 0x00}
	if got := Response(GetFirmwareVersion, []byte{0x11, 0x01}); !bytes.Equal(got, want) {
		t.Errorf("firmware answer = % X, want % X", got, want)
	}
	// A 300-byte frame's length bytes: 2C 01, checksum D3.
	long := Encode(make([]byte, 0x12C))
	if long[5] != 0x2C || long[6] != 0x01 || long[7] != 0xD3 {
		t.Errorf("long frame header % X", long[:8])
	}
}

func TestDecode(t *testing.T) {
	ack, data, err := Decode(ACK)
	if !ack || data != nil || err != nil {
		t.Fatalf("ACK: %v %v %v", ack, data, err)
	}
	f := Command(InCommRF, InCommRFParams(30, []byte{0x26}))
	ack, data, err = Decode(f)
	if ack || err != nil || !bytes.Equal(data, []byte{0xD6, 0x04, 0x36, 0x01, 0x26}) {
		t.Fatalf("InCommRF frame: %v % X %v", ack, data, err)
	}
	code, params, err := ParseCommand(data)
	if code != InCommRF || !bytes.Equal(params, []byte{0x36, 0x01, 0x26}) || err != nil {
		t.Errorf("ParseCommand = %X % X %v", code, params, err)
	}
	bad := map[string][]byte{
		"empty":       nil,
		"short":       {0x00, 0x00},
		"no start":    {0x01, 0x00, 0xFF, 0xFF, 0xFF, 0x01, 0x00, 0xFF, 0xD7, 0x29, 0x00},
		"normal":      {0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD7, 0x29, 0x00, 0x00},
		"len sum":     {0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x02, 0x00, 0xFF, 0xD7, 0x21, 0x08, 0x00},
		"truncated":   f[:len(f)-2],
		"data sum":    append(append([]byte(nil), f[:len(f)-2]...), f[len(f)-2]+1, 0x00),
		"postamble":   append(append([]byte(nil), f[:len(f)-1]...), 0x01),
		"trailing":    append(append([]byte(nil), f...), 0x00),
		"zero length": {0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x00},
		"too long":    Encode(make([]byte, MaxData+1)),
	}
	for name, b := range bad {
		if _, _, err := Decode(b); !errors.Is(err, ErrFrame) {
			t.Errorf("%s: %v, want ErrFrame", name, err)
		}
	}
}

func TestParseResponse(t *testing.T) {
	if p, err := ParseResponse(SwitchRF, []byte{0xD7, 0x07, 0x00}); err != nil || !bytes.Equal(p, []byte{0}) {
		t.Errorf("SwitchRF answer: % X %v", p, err)
	}
	for _, d := range [][]byte{{0xD7}, {0xD6, 0x07}, {0xD7, 0x05, 0x00}} {
		if _, err := ParseResponse(SwitchRF, d); !errors.Is(err, ErrFrame) {
			t.Errorf("% X: %v, want ErrFrame", d, err)
		}
	}
}

func TestInCommRF(t *testing.T) {
	if got := CommTimeout(30); got != 310 {
		t.Errorf("CommTimeout(30) = %d, want 310 (nfcpy: (30+1)*10)", got)
	}
	if got := CommTimeout(100000); got != 0xFFFF {
		t.Errorf("CommTimeout caps at 0xFFFF, got %d", got)
	}
	rx, err := ParseInCommRF([]byte{0, 0, 0, 0, 0, 0x04, 0x00})
	if err != nil || !bytes.Equal(rx, []byte{0x04, 0x00}) {
		t.Errorf("answer: % X %v", rx, err)
	}
	_, err = ParseInCommRF([]byte{0x80, 0, 0, 0, 0})
	var ce CommError
	if !errors.As(err, &ce) || !ce.Timeout() || ce.Error() != "port100: InCommRF RECEIVE_TIMEOUT_ERROR" {
		t.Errorf("timeout: %v", err)
	}
	if _, err := ParseInCommRF([]byte{0, 0}); !errors.Is(err, ErrFrame) {
		t.Errorf("short answer: %v", err)
	}
}

func TestRates(t *testing.T) {
	for _, r := range []Rate{Rate106A, Rate212F, Rate424F} {
		if got, ok := RateOf(InSetRFParams(r)); !ok || got != r {
			t.Errorf("RateOf(InSetRFParams(%s)) = %s %v", r, got, ok)
		}
	}
	if !bytes.Equal(InSetRFParams(Rate106A), []byte{2, 3, 15, 3}) {
		t.Errorf("106A = % X", InSetRFParams(Rate106A))
	}
}

// FuzzDecode: any transfer decodes without a panic, and what decodes
// re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add(ACK)
	f.Add(Command(InCommRF, InCommRFParams(30, []byte{0x26})))
	f.Add(Response(InCommRF, []byte{0x80, 0, 0, 0, 0}))
	f.Add([]byte{0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x00, 0x01, 0xFF})
	f.Add([]byte{0x00, 0x00, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		ack, data, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrFrame) {
				t.Fatalf("error %v is not ErrFrame", err)
			}
			return
		}
		if ack {
			if !bytes.Equal(b, ACK) {
				t.Fatalf("ACK from % X", b)
			}
			return
		}
		if !bytes.Equal(Encode(data), b) {
			t.Fatalf("% X decoded to % X, which encodes differently", b, data)
		}
		_, _ = ParseResponse(data[min(len(data)-1, 1)], data)
		_, _, _ = ParseCommand(data)
		if len(data) > 2 {
			_, _ = ParseInCommRF(data[2:])
		}
	})
}
