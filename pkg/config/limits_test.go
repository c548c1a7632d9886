package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"open", `"open"`},
		{"UNLOCK\n", `"UNLOCK\n"`},
		{"\x1b[2J", `"\x1b[2J"`},
		{strings.Repeat("a", 64), `"` + strings.Repeat("a", 64) + `"`},
		{strings.Repeat("a", 70000), `"` + strings.Repeat("a", 64) + `"…(70000 bytes)`},
		{strings.Repeat("玄", 30), `"` + strings.Repeat("玄", 21) + `"…(90 bytes)`},
	}
	for _, tt := range tests {
		if got := quote(tt.in); got != tt.want {
			t.Errorf("quote(%.20q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// locksSpec is n valid, distinct lock entries.
func locksSpec(n int) string {
	entries := make([]string, n)
	for i := range entries {
		entries[i] = fmt.Sprintf("%08X-0000-4000-8000-000000000000:%032x:Lock %d", i, i, i)
	}
	return strings.Join(entries, ",")
}

// TestLoadLimits: every limit is checked by Load, with one line that says
// which variable and which limit.
func TestLoadLimits(t *testing.T) {
	// With a base topic of n letters the longest topic is
	// <base>/<32-hex lock id>/refresh: n+41 bytes.
	const fits = 65535 - 41
	levels := func(n int) string { return strings.TrimSuffix(strings.Repeat("a/", n), "/") }
	tests := []struct {
		name string
		env  map[string]string
		want string // "" for no error
	}{
		{"500 locks", map[string]string{"SESAME_LOCKS": locksSpec(MaxLocks)}, ""},
		{"501 locks", map[string]string{"SESAME_LOCKS": locksSpec(MaxLocks + 1)}, "SESAME_LOCKS: 501 entries, at most 500 locks per bridge"},
		{"longest topic fits", map[string]string{"MQTT_BASE_TOPIC": strings.Repeat("a", fits)}, ""},
		{"longest topic one byte over", map[string]string{"MQTT_BASE_TOPIC": strings.Repeat("a", fits+1)},
			"MQTT_BASE_TOPIC (65495 bytes), MQTT_DISCOVERY_PREFIX (13 bytes): the longest topic the bridge uses would be 65536 bytes, and MQTT allows 65535"},
		{"70,000-character base topic", map[string]string{"MQTT_BASE_TOPIC": strings.Repeat("b", 70000)}, "MQTT_BASE_TOPIC (70000 bytes)"},
		{"long prefix", map[string]string{"MQTT_DISCOVERY_PREFIX": strings.Repeat("h", 65500)}, "MQTT_BASE_TOPIC (11 bytes), MQTT_DISCOVERY_PREFIX (65500 bytes)"},
		{"198 levels", map[string]string{"MQTT_BASE_TOPIC": levels(199)}, ""},
		{"too many levels", map[string]string{"MQTT_BASE_TOPIC": levels(200)}, "MQTT_BASE_TOPIC (200 levels), MQTT_DISCOVERY_PREFIX (1 levels): too many levels"},
		{"too many prefix levels", map[string]string{"MQTT_DISCOVERY_PREFIX": levels(199)}, "MQTT_BASE_TOPIC (1 levels), MQTT_DISCOVERY_PREFIX (199 levels): too many levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			setEnv(t, with(minimal(), flatten(tt.env)...))
			c, err := Load()
			lines := errLines(err)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Load: %.300v", err)
				}
				if c.BaseTopic == "" || len(c.Locks) == 0 {
					t.Fatalf("config %+v", c.Redacted())
				}
				return
			}
			if len(lines) != 1 || !strings.HasPrefix(lines[0], tt.want) {
				t.Fatalf("Load error = %.300q, want one line starting %q", lines, tt.want)
			}
			if len(lines[0]) > 300 {
				t.Errorf("error line of %d bytes", len(lines[0]))
			}
		})
	}
}

func flatten(m map[string]string) []string {
	var kv []string
	for k, v := range m {
		kv = append(kv, k, v)
	}
	return kv
}

// TestLoadErrorsBounded: garbage makes a few lines, not megabytes, and
// does not hide the problems of the other variables.
func TestLoadErrorsBounded(t *testing.T) {
	garbage := func(sep string) string {
		var b strings.Builder
		for b.Len() < 128<<10 {
			b.WriteString("x\x1by\"z" + sep)
		}
		return b.String()
	}
	badEntries := strings.Repeat("nope:nope,", 400) // under the lock limit: 400 bad entries
	everything := map[string]string{
		"SESAME_API_KEY": "", "SESAME_API_URL": "ftp://x", "SESAME_LOCKS": badEntries, "API_MONTHLY_BUDGET": "lots",
		"MQTT_URL": "gopher://x", "MQTT_DISCOVERY_PREFIX": "#", "MQTT_BASE_TOPIC": "+", "LOG_LEVEL": "loud",
		"NFC_DEVICE": "auto", "NFC_CARDS": strings.Repeat("zz:,", 50), "NFC_ACTION": "open", "NFC_TAG_SCANNER": "some",
		"NFC_HOLD_OFF": "x", "NFC_LOCK": "nowhere", "LED_GREEN_PIN": "a b", "LED_RED_PIN": "c d", "BUZZER_PIN": "e f",
		"LED_ACTIVE_LOW": "maybe",
	}
	tests := []struct {
		name     string
		env      map[string]string
		maxLines int
		want     []string // lines that must be there
	}{
		{"128 KiB without commas", map[string]string{"SESAME_LOCKS": garbage("")}, 2,
			[]string{"SESAME_LOCKS entry 1: UUID must be", "SESAME_LOCKS entry 1: missing secret"}},
		{"128 KiB with commas", map[string]string{"SESAME_LOCKS": garbage(",")}, 1,
			[]string{"SESAME_LOCKS: 21846 entries, at most 500 locks"}},
		{"400 bad entries and a bad level", map[string]string{"SESAME_LOCKS": badEntries, "LOG_LEVEL": "loud"}, 7,
			[]string{"SESAME_LOCKS entry 3: UUID must be", "SESAME_LOCKS: and 795 more problems in later entries", `LOG_LEVEL: must be debug, info, warn or error, got "loud"`}},
		{"everything wrong", everything, MaxErrors + 1,
			[]string{"SESAME_API_KEY: required, not set", "SESAME_LOCKS: and 795 more problems in later entries", "and 6 more problems"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			setEnv(t, with(minimal(), flatten(tt.env)...))
			_, err := Load()
			if err == nil {
				t.Fatal("Load accepted garbage")
			}
			lines := errLines(err)
			if len(lines) > tt.maxLines || len(err.Error()) > 4096 {
				t.Errorf("%d lines, %d bytes; want at most %d lines, 4 KiB:\n%.2000s", len(lines), len(err.Error()), tt.maxLines, err)
			}
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, w)
				}
				if !found {
					t.Errorf("no line starting %q in:\n%s", w, err)
				}
			}
			if strings.ContainsAny(err.Error(), "\x1b") {
				t.Error("the error carries a control byte")
			}
		})
	}
}

// TestLoadWarnings: settings that have no effect as configured are named,
// with what is missing; defaults say nothing.
func TestLoadWarnings(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // one warning per entry, starting so
	}{
		{"defaults", nil, nil},
		{"defaults spelled out", map[string]string{"NFC_ACTION": "toggle", "NFC_TAG_SCANNER": "ALL", "NFC_HOLD_OFF": "3s", "LED_ACTIVE_LOW": "false"}, nil},
		{"cards without a reader", map[string]string{"NFC_CARDS": "04A22B1CD35E80:Alice"},
			[]string{"NFC_CARDS is set but NFC_DEVICE is not: without a card reader it has no effect"}},
		{"reader settings without a reader", map[string]string{"NFC_ACTION": "unlock", "NFC_LOCK": "Sesame 0A1B", "NFC_TAG_SCANNER": "known", "NFC_HOLD_OFF": "1s"},
			[]string{"NFC_ACTION is set but NFC_DEVICE is not", "NFC_LOCK is set but NFC_DEVICE is not", "NFC_TAG_SCANNER is set but NFC_DEVICE is not", "NFC_HOLD_OFF is set but NFC_DEVICE is not"}},
		{"a reader", map[string]string{"NFC_DEVICE": "auto", "NFC_CARDS": "04A22B1CD35E80:Alice", "NFC_ACTION": "unlock", "LED_GREEN_PIN": "GPIO23"}, nil},
		{"LEDs without a reader", map[string]string{"LED_GREEN_PIN": "GPIO23", "BUZZER_PIN": "GPIO25"},
			[]string{"LED_GREEN_PIN, BUZZER_PIN are set but NFC_DEVICE is not: without a card reader the outputs show only"}},
		{"one LED without a reader", map[string]string{"LED_RED_PIN": "GPIO24"},
			[]string{"LED_RED_PIN is set but NFC_DEVICE is not"}},
		{"active low without LEDs", map[string]string{"NFC_DEVICE": "auto", "BUZZER_PIN": "GPIO25", "LED_ACTIVE_LOW": "true"},
			[]string{"LED_ACTIVE_LOW is set but neither LED_GREEN_PIN nor LED_RED_PIN is"}},
		{"active low with an LED", map[string]string{"NFC_DEVICE": "auto", "LED_RED_PIN": "GPIO24", "LED_ACTIVE_LOW": "yes"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			setEnv(t, with(minimal(), flatten(tt.env)...))
			c, err := Load()
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Warnings) != len(tt.want) {
				t.Fatalf("warnings %q, want %d starting %q", c.Warnings, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(c.Warnings[i], w) {
					t.Errorf("warning %d = %q, want it to start %q", i, c.Warnings[i], w)
				}
			}
			for _, w := range c.Warnings {
				if strings.Contains(w, "04A22B1CD35E80") {
					t.Errorf("a warning repeats a UID: %q", w)
				}
			}
		})
	}
}
