package mqtt

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
)

func TestNewValidatesOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		o       Options
		wantErr string // "" = valid
		wantURL string // normalised broker, for valid cases
	}{
		{name: "tcp", o: Options{URL: "tcp://broker:1883"}, wantURL: "tcp://broker:1883"},
		{name: "tcp default port", o: Options{URL: "tcp://broker"}, wantURL: "tcp://broker:1883"},
		{name: "mqtt", o: Options{URL: "mqtt://core-mosquitto"}, wantURL: "mqtt://core-mosquitto:1883"},
		{name: "ssl", o: Options{URL: "ssl://h"}, wantURL: "ssl://h:8883"},
		{name: "tls", o: Options{URL: "tls://h:8884"}, wantURL: "tls://h:8884"},
		{name: "mqtts upper case", o: Options{URL: "MQTTS://h"}, wantURL: "mqtts://h:8883"},
		{name: "ws keeps port", o: Options{URL: "ws://h/mqtt"}, wantURL: "ws://h/mqtt"},
		{name: "wss", o: Options{URL: "wss://h:443/mqtt"}, wantURL: "wss://h:443/mqtt"},
		{name: "ipv6", o: Options{URL: "tcp://[::1]"}, wantURL: "tcp://[::1]:1883"},
		{name: "password redacted", o: Options{URL: "tcp://u:secret@h"}, wantURL: "tcp://u:xxxxx@h:1883"},
		{name: "empty", o: Options{}, wantErr: "empty"},
		{name: "no scheme", o: Options{URL: "broker:1883"}, wantErr: "scheme"},
		{name: "http", o: Options{URL: "http://h"}, wantErr: "unsupported scheme"},
		{name: "no host", o: Options{URL: "tcp://"}, wantErr: "no host"},
		{name: "bad url", o: Options{URL: "tcp://u:secret@h:port"}, wantErr: "invalid port"},
		{name: "negative timeout", o: Options{URL: "tcp://h", Timeout: -1}, wantErr: "timeout"},
		{name: "negative outbox", o: Options{URL: "tcp://h", OutboxSize: -1}, wantErr: "outbox"},
		{name: "will wildcard", o: Options{URL: "tcp://h", WillTopic: "a/#"}, wantErr: "will topic"},
		{name: "bad filter hash", o: Options{URL: "tcp://h", Subscriptions: []string{"a/#/b"}}, wantErr: "'#'"},
		{name: "bad filter plus", o: Options{URL: "tcp://h", Subscriptions: []string{"a/b+"}}, wantErr: "'+'"},
		{name: "empty filter", o: Options{URL: "tcp://h", Subscriptions: []string{""}}, wantErr: "empty topic filter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tc.o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New(%+v) error = %v, want one containing %q", tc.o, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if c.broker != tc.wantURL {
				t.Errorf("broker = %q, want %q", c.broker, tc.wantURL)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	t.Parallel()
	c, err := New(Options{URL: "tcp://h"})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^sesame2mqtt-[0-9a-f]{8}$`).MatchString(c.opts.ClientID) {
		t.Errorf("ClientID = %q, want sesame2mqtt- and 8 hex digits", c.opts.ClientID)
	}
	if c.opts.Timeout != 5*time.Second || c.opts.OutboxSize != 512 || cap(c.outbox) != 512 {
		t.Errorf("Timeout %s, OutboxSize %d, outbox cap %d; want 5s, 512, 512", c.opts.Timeout, c.opts.OutboxSize, cap(c.outbox))
	}
	other, err := New(Options{URL: "tcp://h"})
	if err != nil {
		t.Fatal(err)
	}
	if other.opts.ClientID == c.opts.ClientID {
		t.Errorf("two clients got the same ClientID %q", c.opts.ClientID)
	}
	fixed, err := New(Options{URL: "tcp://h", ClientID: "mine", Timeout: time.Second, OutboxSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if fixed.opts.ClientID != "mine" || fixed.opts.Timeout != time.Second || cap(fixed.outbox) != 3 {
		t.Errorf("explicit options not kept: %+v", fixed.opts)
	}
	if fixed.log == nil {
		t.Error("nil Logger not replaced")
	}
}

func TestValidateTopicName(t *testing.T) {
	t.Parallel()
	for topic, ok := range map[string]bool{
		"sesame/lock1/state":       true,
		"homeassistant/status":     true,
		"/leading/slash":           true,
		"":                         false,
		"a/+/b":                    false,
		"a/#":                      false,
		"nul\x00":                  false,
		"bad\xffutf8":              false,
		strings.Repeat("a", 65536): false,
	} {
		if err := validateTopicName(topic); (err == nil) != ok {
			t.Errorf("validateTopicName(%.20q) = %v, want ok=%t", topic, err, ok)
		}
	}
}

func TestValidateTopicFilter(t *testing.T) {
	t.Parallel()
	for filter, ok := range map[string]bool{
		"#":                    true,
		"sesame/+/set":         true,
		"sesame/#":             true,
		"+/+/+":                true,
		"homeassistant/status": true,
		"":                     false,
		"a/#/b":                false,
		"a#":                   false,
		"a/b+":                 false,
		"a/+b/c":               false,
	} {
		if err := validateTopicFilter(filter); (err == nil) != ok {
			t.Errorf("validateTopicFilter(%q) = %v, want ok=%t", filter, err, ok)
		}
	}
}

func TestBackoffIsCappedAndGrows(t *testing.T) {
	t.Parallel()
	b := backoff{min: time.Second, max: 30 * time.Second}
	wantBase := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i, base := range wantBase {
		base *= time.Second
		d := b.delay()
		if d > base || d < base-base/4 {
			t.Errorf("delay %d = %s, want within [%s, %s]", i, d, base-base/4, base)
		}
	}
}

func TestSleepStopsWithContext(t *testing.T) {
	t.Parallel()
	if !sleep(context.Background(), time.Millisecond) {
		t.Error("sleep with a live context reported cancellation")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if sleep(ctx, time.Hour) {
		t.Error("sleep with a cancelled context reported a full sleep")
	}
	if time.Since(start) > time.Second {
		t.Error("sleep did not return promptly on cancel")
	}
}

// TestPublishOutboxFull pretends a connection is open while nothing serves
// the outbox (Run not started), so the queue fills up.
func TestPublishOutboxFull(t *testing.T) {
	t.Parallel()
	var logs logcapture.Buffer
	c, err := New(Options{
		URL:        "tcp://127.0.0.1:1",
		OutboxSize: 2,
		Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	c.isOpen = func() bool { return true }

	payload := []byte("p0")
	start := time.Now()
	for i := range 5 {
		payload[1] = byte('0' + i)
		c.Publish("s/state", 1, true, payload)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("Publish with a full outbox took %s", el)
	}
	if got := strings.Count(logs.String(), `msg="mqtt publish dropped: outbox full" topic=s/state`); got != 3 {
		t.Errorf("%d outbox-full drops logged, want 3\n%s", got, logs.String())
	}
	// The two queued messages are the first two, in order, and own their
	// payload (the caller reused its slice).
	for _, want := range []string{"p0", "p1"} {
		m := <-c.outbox
		if string(m.payload) != want || m.topic != "s/state" || m.qos != 1 || !m.retained {
			t.Errorf("queued %+v, want payload %s", m, want)
		}
	}

	c.Publish("s/+", 1, false, nil)
	c.Publish("s/ok", 3, false, nil)
	if got := strings.Count(logs.String(), `msg="mqtt publish dropped: invalid"`); got != 2 {
		t.Errorf("%d invalid publishes logged, want 2", got)
	}
	if len(c.outbox) != 0 {
		t.Error("an invalid publish was queued")
	}
}
