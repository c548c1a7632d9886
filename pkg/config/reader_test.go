package config

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestLoadReaderDefaults(t *testing.T) {
	cleanEnv(t)
	setEnv(t, minimal())
	c, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.NFC.Enabled() || c.LED.Enabled() {
		t.Errorf("reader or LEDs enabled without configuration: %+v %+v", c.NFC, c.LED)
	}
	if c.NFC.Action != ActionToggle || c.NFC.TagScanner != TagScannerAll || c.NFC.HoldOff != 3*time.Second {
		t.Errorf("NFC defaults = %+v", c.NFC)
	}
	if c.NFC.LockID != c.Locks[0].ID() {
		t.Errorf("NFC lock = %q, want the first lock %q", c.NFC.LockID, c.Locks[0].ID())
	}
}

func TestParseCards(t *testing.T) {
	tests := []struct {
		in   string
		uids []string // hex, in order
		name []string
	}{
		{"04A22B1CD35E80:Alice", []string{"04A22B1CD35E80"}, []string{"Alice"}},
		{"04a22b1c:alice smith", []string{"04A22B1C"}, []string{"alice smith"}},
		{"04-A2-2B-1C:Bob", []string{"04A22B1C"}, []string{"Bob"}},
		{"04 A2 2B 1C:Bob", []string{"04A22B1C"}, []string{"Bob"}},
		{"04:A2:2B:1C:Bob", []string{"04A22B1C"}, []string{"Bob"}},
		{"04:A2:2B:1C:Bob: night shift", []string{"04A22B1C"}, []string{"Bob: night shift"}},
		{"012E4CD8A1B2C3D4:Suica, ,04A22B1C:Dee,", []string{"012E4CD8A1B2C3D4", "04A22B1C"}, []string{"Suica", "Dee"}},
		{"0102030405060708090A:Ten", []string{"0102030405060708090A"}, []string{"Ten"}},
	}
	for _, tt := range tests {
		cards, errs := parseCards(tt.in)
		if len(errs) > 0 {
			t.Errorf("parseCards(%q): %v", tt.in, errs)
			continue
		}
		if len(cards) != len(tt.uids) {
			t.Errorf("parseCards(%q) = %d cards, want %d", tt.in, len(cards), len(tt.uids))
			continue
		}
		for i, c := range cards {
			if got := strings.ToUpper(hexOf(c.UID)); got != tt.uids[i] || c.Name != tt.name[i] {
				t.Errorf("parseCards(%q)[%d] = %s:%q, want %s:%q", tt.in, i, got, c.Name, tt.uids[i], tt.name[i])
			}
		}
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789ABCDEF"
	var buf bytes.Buffer
	for _, c := range b {
		buf.WriteByte(digits[c>>4])
		buf.WriteByte(digits[c&15])
	}
	return buf.String()
}

// TestLoadRCS380Devices: the RC-S380's connstrings are accepted as they are.
func TestLoadRCS380Devices(t *testing.T) {
	for _, dev := range []string{"rcs380", "RCS380", "rcs380:001:004", "rcs380:3:12", "rcs380:255:127"} {
		cleanEnv(t)
		env := minimal()
		env["NFC_DEVICE"] = dev
		for k, v := range env {
			t.Setenv(k, v)
		}
		c, err := Load()
		if err != nil {
			t.Errorf("NFC_DEVICE=%s: %v", dev, err)
			continue
		}
		if c.NFC.Device != dev {
			t.Errorf("NFC_DEVICE=%s became %q", dev, c.NFC.Device)
		}
	}
}

func TestLoadReaderInvalid(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"ambiguous colon UID", map[string]string{"NFC_CARDS": "04:A2:2B:1C:AB"}, "NFC_CARDS entry 1: want UID:NAME"},
		{"no name", map[string]string{"NFC_CARDS": "04A22B1C"}, "NFC_CARDS entry 1: want UID:NAME"},
		{"empty name", map[string]string{"NFC_CARDS": "04A22B1C: "}, "NFC_CARDS entry 1: missing card holder name"},
		{"not hex", map[string]string{"NFC_CARDS": "04A22B1G:Eve"}, "NFC_CARDS entry 1 (Eve): UID must be hex"},
		{"odd digits", map[string]string{"NFC_CARDS": "04A22B1:Eve"}, "NFC_CARDS entry 1 (Eve): UID must be hex"},
		{"bad length", map[string]string{"NFC_CARDS": "04A22B1C11:Eve"}, "NFC_CARDS entry 1 (Eve): UID has 5 bytes"},
		{"random UID", map[string]string{"NFC_CARDS": "08A22B1C:Phone"}, "NFC_CARDS entry 1 (Phone): a 4-byte UID starting 08 is a random UID"},
		{"duplicate", map[string]string{"NFC_CARDS": "04A22B1C:A,04:a2:2b:1c:B"}, "NFC_CARDS entry 2 (B): same UID as entry 1"},
		{"action", map[string]string{"NFC_ACTION": "open"}, `NFC_ACTION: must be toggle, unlock, lock or none, got "open"`},
		{"scanner", map[string]string{"NFC_TAG_SCANNER": "some"}, `NFC_TAG_SCANNER: must be all or known, got "some"`},
		{"hold off", map[string]string{"NFC_HOLD_OFF": "3"}, `NFC_HOLD_OFF: must be a duration like 3s`},
		{"hold off range", map[string]string{"NFC_HOLD_OFF": "2m"}, `NFC_HOLD_OFF: must be between 0s and 1m`},
		{"lock", map[string]string{"NFC_LOCK": "Back door"}, `NFC_LOCK: "Back door" is neither the UUID nor the name`},
		{"pin shape", map[string]string{"LED_RED_PIN": "GPIO 22"}, `LED_RED_PIN: "GPIO 22" is not a pin name`},
		{"pin twice", map[string]string{"LED_GREEN_PIN": "GPIO22", "BUZZER_PIN": "gpio22"}, `BUZZER_PIN: pin "gpio22" is already used by LED_GREEN_PIN`},
		{"active low", map[string]string{"LED_ACTIVE_LOW": "maybe"}, `LED_ACTIVE_LOW: must be true or false, got "maybe"`},
		{"rcs380 shape", map[string]string{"NFC_DEVICE": "rcs380:1"}, `NFC_DEVICE: "rcs380:1": want rcs380 (the first Sony RC-S380 found) or rcs380:BBB:DDD`},
		{"rcs380 not decimal", map[string]string{"NFC_DEVICE": "rcs380:00a:004"}, `NFC_DEVICE: "rcs380:00a:004": want rcs380`},
		{"rcs380 bus 0", map[string]string{"NFC_DEVICE": "rcs380:000:004"}, `NFC_DEVICE: "rcs380:000:004": want rcs380`},
		{"rcs380 device 128", map[string]string{"NFC_DEVICE": "rcs380:001:128"}, `NFC_DEVICE: "rcs380:001:128": want rcs380`},
		{"rcs380 suffix", map[string]string{"NFC_DEVICE": "rcs380s"}, `NFC_DEVICE: "rcs380s": want rcs380`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			env := minimal()
			for k, v := range tt.env {
				env[k] = v
			}
			setEnv(t, env)
			_, err := Load()
			lines := errLines(err)
			if len(lines) != 1 || !strings.HasPrefix(lines[0], tt.want) {
				t.Fatalf("Load error = %q, want one line starting %q", lines, tt.want)
			}
			// UIDs are not secrets, but they stay out of logs like secrets.
			for _, uid := range []string{"04A22B1C", "04a22b1c", "08A22B1C"} {
				if strings.Contains(err.Error(), uid) {
					t.Errorf("error repeats a UID: %v", err)
				}
			}
		})
	}
}

func TestRedactedHidesCards(t *testing.T) {
	cleanEnv(t)
	setEnv(t, with(minimal(), "NFC_DEVICE", "auto", "NFC_CARDS", "04A22B1CD35E80:Alice"))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToUpper(string(b)), "04A22B1CD35E80") || strings.Contains(string(b), "Alice") {
		t.Errorf("redacted config shows a card: %s", b)
	}
	if !strings.Contains(string(b), `"cards":1`) {
		t.Errorf("redacted config does not count the cards: %s", b)
	}
}
