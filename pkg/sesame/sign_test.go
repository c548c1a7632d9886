package sesame

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex in test table: %v", err)
	}
	return b
}

// The four AES-128 examples of RFC 4493 section 4, through the same CMAC
// call Sign makes.
func TestCMACRFC4493(t *testing.T) {
	const key = "2b7e1516 28aed2a6 abf71588 09cf4f3c"
	const msg64 = "6bc1bee2 2e409f96 e93d7e11 7393172a" +
		"ae2d8a57 1e03ac9c 9eb76fac 45af8e51" +
		"30c81c46 a35ce411 e5fbc119 1a0a52ef" +
		"f69f2445 df4f9b17 ad2b417b e66c3710"
	msg := mustHex(t, msg64)
	tests := []struct {
		name string
		len  int
		want string
	}{
		{"Example 1 (empty)", 0, "bb1d6929 e9593728 7fa37d12 9b756746"},
		{"Example 2 (16 bytes)", 16, "070a16b4 6b4d4144 f79bdd9d d04a287c"},
		{"Example 3 (40 bytes)", 40, "dfa66747 de9ae630 30ca3261 1497c827"},
		{"Example 4 (64 bytes)", 64, "51f0bebf 7e3b9d92 fc497417 79363cfe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cmacAES(mustHex(t, key), msg[:tt.len])
			if err != nil {
				t.Fatal(err)
			}
			if want := mustHex(t, tt.want); hex.EncodeToString(got) != hex.EncodeToString(want) {
				t.Errorf("CMAC = %x, want %x", got, want)
			}
		})
	}
}

func TestSignSesameVector(t *testing.T) {
	key, err := DecodeDeviceSecret(NewSecret("a13d4b890111676ba8fb36ece7e94f7d"))
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1621854456, 0)

	// The message is bytes 1..3 of the little-endian time.
	mac, err := cmacAES(key, mustHex(t, "88ab60"))
	if err != nil {
		t.Fatal(err)
	}
	const want = "e50d10ff6f3e21752be4c46f9cbb2b73"
	if got := hex.EncodeToString(mac); got != want {
		t.Fatalf("CMAC(88ab60) = %s, want %s", got, want)
	}

	got, err := Sign(key, ts)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	// Byte 0 is dropped: the whole 256-s slot signs the same.
	slotStart := time.Unix(1621854456&^0xff, 0)
	for _, tm := range []time.Time{slotStart, slotStart.Add(255 * time.Second), ts.In(time.FixedZone("JST", 9*3600))} {
		if s, err := Sign(key, tm); err != nil || s != want {
			t.Errorf("Sign(%v) = %s, %v; want %s", tm, s, err, want)
		}
	}
	for _, tm := range []time.Time{slotStart.Add(-time.Second), slotStart.Add(256 * time.Second)} {
		if s, err := Sign(key, tm); err != nil || s == want {
			t.Errorf("Sign(%v) = %s, %v; want a different signature outside the slot", tm, s, err)
		}
	}
}

func TestSignErrors(t *testing.T) {
	key := make([]byte, 16)
	if _, err := Sign(key[:15], time.Unix(1e9, 0)); err == nil {
		t.Error("Sign with a 15-byte key: want error")
	}
	if _, err := Sign(make([]byte, 32), time.Unix(1e9, 0)); err == nil {
		t.Error("Sign with a 32-byte (AES-256) key: want error")
	}
	if _, err := Sign(key, time.Unix(-1, 0)); err == nil {
		t.Error("Sign before 1970: want error")
	}
	if _, err := Sign(key, time.Unix(1<<32, 0)); err == nil {
		t.Error("Sign after 2106: want error")
	}
}

func TestDecodeDeviceSecret(t *testing.T) {
	tests := []struct {
		secret string
		ok     bool
	}{
		{"a13d4b890111676ba8fb36ece7e94f7d", true},
		{"A13D4B890111676BA8FB36ECE7E94F7D", true},
		{"", false},
		{"a13d4b890111676ba8fb36ece7e94f7", false},   // 31
		{"a13d4b890111676ba8fb36ece7e94f7d0", false}, // 33
		{"a13d4b890111676ba8fb36ece7e94f7da13d4b890111676ba8fb36ece7e94f7d", false},
		{"g13d4b890111676ba8fb36ece7e94f7d", false},
		{"a13d4b890111676ba8fb36ece7e94f 7", false},
	}
	for _, tt := range tests {
		key, err := DecodeDeviceSecret(NewSecret(tt.secret))
		if tt.ok {
			if err != nil || len(key) != 16 || !strings.EqualFold(hex.EncodeToString(key), tt.secret) {
				t.Errorf("DecodeDeviceSecret(%q) = %x, %v", tt.secret, key, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("DecodeDeviceSecret(%q): want error", tt.secret)
			continue
		}
		if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
			t.Errorf("error %q quotes the secret", err)
		}
	}
}

func TestHistoryTag(t *testing.T) {
	jp := "鍵" // 3 bytes in UTF-8
	tests := []struct {
		name, tag, want string
	}{
		{"empty", "", ""},
		{"ascii", "Alice", "Alice"},
		{"ascii 21 bytes", strings.Repeat("x", 21), strings.Repeat("x", 21)},
		{"ascii 22 bytes", strings.Repeat("y", 22), strings.Repeat("y", 21)},
		{"ascii long", "sesame2mqtt card reader at the front door", "sesame2mqtt card read"},
		{"japanese 21 bytes", strings.Repeat(jp, 7), strings.Repeat(jp, 7)},
		{"japanese 24 bytes", strings.Repeat(jp, 8), strings.Repeat(jp, 7)},
		{"japanese cut mid-rune", "a" + strings.Repeat(jp, 7), "a" + strings.Repeat(jp, 6)},
		{"mixed", "玄関のAliceさんのカード", "玄関のAliceさん"},
		{"4-byte runes", strings.Repeat("😀", 6), strings.Repeat("😀", 5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := HistoryTag(tt.tag)
			raw, err := base64.StdEncoding.DecodeString(enc)
			if err != nil {
				t.Fatalf("HistoryTag(%q) = %q, not std base64: %v", tt.tag, enc, err)
			}
			if string(raw) != tt.want {
				t.Errorf("HistoryTag(%q) decodes to %q, want %q", tt.tag, raw, tt.want)
			}
			if len(raw) > 21 || !utf8.Valid(raw) {
				t.Errorf("HistoryTag(%q) = %d bytes, valid UTF-8 %v", tt.tag, len(raw), utf8.Valid(raw))
			}
		})
	}
	// Standard encoding with padding, as the service expects.
	if got := HistoryTag("Alice"); got != "QWxpY2U=" {
		t.Errorf(`HistoryTag("Alice") = %q, want "QWxpY2U="`, got)
	}
}
