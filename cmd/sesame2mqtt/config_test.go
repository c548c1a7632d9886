package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
)

// configLines returns the "configuration: " lines of out.
func configLines(out string) []string {
	var lines []string
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, "configuration: ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestConfigurationErrorsBounded: garbage and limits stop the bridge at
// start with exit status 2 and a screenful of lines at most, naming the
// variable.
func TestConfigurationErrorsBounded(t *testing.T) {
	// 128 KiB in one variable is what Linux lets a child have
	// (MAX_ARG_STRLEN counts "NAME=" too).
	garbage := func(unit string) string {
		n := 128<<10 - len("SESAME_LOCKS=") - 1
		return strings.Repeat(unit, n/len(unit)+1)[:n]
	}
	manyLocks := make([]string, 501)
	for i := range manyLocks {
		manyLocks[i] = fmt.Sprintf("%08X-0000-4000-8000-000000000000:%032x:Lock %d", i, i, i)
	}
	tests := []struct {
		name     string
		env      []string
		maxLines int
		want     []string
	}{
		{"128 KiB of garbage in SESAME_LOCKS", []string{"SESAME_LOCKS=" + garbage("\x1b[2J,x:y;\"")}, 1,
			[]string{"configuration: SESAME_LOCKS: 13107 entries, at most 500 locks per bridge"}},
		{"128 KiB of garbage without commas", []string{"SESAME_LOCKS=" + garbage("\x1b[2Jx:y;\"")}, 2,
			[]string{"configuration: SESAME_LOCKS entry 1: UUID must be", "configuration: SESAME_LOCKS entry 1: secret must be 32 hex characters"}},
		{"many bad entries", []string{"SESAME_LOCKS=" + strings.Repeat("nope:nope,", 300), "LOG_LEVEL=loud"}, 7,
			[]string{"configuration: SESAME_LOCKS: and 595 more problems in later entries", `configuration: LOG_LEVEL: must be debug, info, warn or error, got "loud"`}},
		{"70,000-character base topic", []string{"SESAME_LOCKS=" + lockUUID + ":" + lockSecret, "MQTT_BASE_TOPIC=" + strings.Repeat("b", 70000)}, 1,
			[]string{"configuration: MQTT_BASE_TOPIC (70000 bytes), MQTT_DISCOVERY_PREFIX (13 bytes): the longest topic the bridge uses would be 70041 bytes, and MQTT allows 65535"}},
		{"501 locks", []string{"SESAME_LOCKS=" + strings.Join(manyLocks, ",")}, 1,
			[]string{"configuration: SESAME_LOCKS: 501 entries, at most 500 locks per bridge"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := cleanEnv(t, append([]string{"SESAME_API_KEY=" + apiKey, "MQTT_URL=tcp://127.0.0.1:1", "STATE_DIR=" + t.TempDir()}, tt.env...)...)
			p := startProc(t, env)
			p.waitExit(t, 2, 10*time.Second)
			out := p.stderr.String()
			lines := configLines(out)
			if len(lines) == 0 || len(lines) > tt.maxLines || len(out) > 4096 {
				t.Errorf("%d lines, %d bytes; want 1 to %d lines, at most 4 KiB:\n%.3000s", len(lines), len(out), tt.maxLines, out)
			}
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, w)
				}
				if !found {
					t.Errorf("no line starting %q in:\n%.3000s", w, out)
				}
			}
			if strings.Contains(out, "\x1b") || strings.Contains(out, "goroutine ") || strings.Contains(out, lockSecret) {
				t.Errorf("control bytes, a stack trace or a secret in the output:\n%.3000q", out)
			}
		})
	}
}

// TestAddonOptionErrorsBounded: the add-on's options are checked before the
// environment; 600 bad locks there print 20 lines and a count.
func TestAddonOptionErrorsBounded(t *testing.T) {
	locks := make([]map[string]string, 600)
	for i := range locks {
		locks[i] = map[string]string{"name": fmt.Sprintf("Lock %d", i), "secret": "nothex"}
	}
	options := writeOptions(t, map[string]any{"api_key": apiKey, "locks": locks})
	p := startProc(t, cleanEnv(t, "OPTIONS_FILE="+options, "SUPERVISOR_TOKEN=t", "SUPERVISOR_URL=http://127.0.0.1:1"))
	p.waitExit(t, 2, 10*time.Second)
	out := p.stderr.String()
	lines := configLines(out)
	if len(lines) > 21 || len(out) > 8192 {
		t.Fatalf("%d lines, %d bytes; want at most 21 lines:\n%.3000s", len(lines), len(out), out)
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "configuration: and ") || !strings.HasSuffix(last, " more problems") {
		t.Errorf("last line %q, want the count of the rest", last)
	}
}

// TestConfigurationWarnings: a setting that has no effect as configured is
// logged at start, naming the variable and what is missing; the bridge
// runs.
func TestConfigurationWarnings(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	rec := broker.Subscribe(t, "sesame2mqtt/#")
	p := startProc(t, append(bridgeEnv(t, broker, fake), "NFC_CARDS=04A22B1CD35E80:Alice", "LED_ACTIVE_LOW=true"))
	rec.WaitFor(t, "sesame2mqtt/bridge/availability", is("online"), 10*time.Second)
	p.terminate(t, 5*time.Second)
	out := p.stderr.String()
	for _, want := range []string{
		`level=WARN msg="configuration: NFC_CARDS is set but NFC_DEVICE is not: without a card reader it has no effect`,
		`level=WARN msg="configuration: LED_ACTIVE_LOW is set but neither LED_GREEN_PIN nor LED_RED_PIN is`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no warning %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "04A22B1CD35E80") {
		t.Error("a card UID in the log")
	}
}
