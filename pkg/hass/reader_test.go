package hass

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestReaderDiscoveryGolden(t *testing.T) {
	golden(t, "reader_device.golden", Marshal(testDiscovery.ReaderConfig(Reader{NFC: true, Feedback: []string{"ok", "ko"}})))
	golden(t, "reader_device_nfc_only.golden", Marshal(testDiscovery.ReaderConfig(Reader{NFC: true})))
	golden(t, "reader_device_leds_only.golden", Marshal(testDiscovery.ReaderConfig(Reader{Feedback: []string{"ok", "ko", "reader_gone"}})))
}

func TestReaderEventGoldens(t *testing.T) {
	golden(t, "event_granted.golden", mustJSON(t, AccessEvent{EventType: EventAccessGranted, Holder: "Alice", CardType: "iso14443a", Action: "toggle", Lock: "Front door"}))
	golden(t, "event_denied.golden", mustJSON(t, AccessEvent{EventType: EventAccessDenied, Holder: UnknownHolder, CardType: "felica", Action: "none", UID: "012E4CD8A1B2C3D4"}))
	golden(t, "event_lockout.golden", mustJSON(t, AccessEvent{EventType: EventLockout, Holder: UnknownHolder, CardType: "iso14443a", Action: "none", Until: "2026-11-22T03:05:05Z"}))
	golden(t, "event_action_failed.golden", mustJSON(t, AccessEvent{EventType: EventActionFailed, Holder: "Alice", Action: "unlock", Lock: "Front door", Result: ResultJammed, Detail: "not unlocked after 15s: the lock reports locked"}))
	golden(t, "reader_state.golden", mustJSON(t, ReaderState{Status: "unplugged", Device: "pn532_uart:/dev/ttyAMA0", Detail: "poll: libnfc: input / output error"}))
}

// TestReaderConfigAsHAReadsIt: HA's tag scanner takes only platform, topic
// and value_template (it is not an entity), the event entity needs its event
// types, and every entity carries the keys HA requires.
func TestReaderConfigAsHAReadsIt(t *testing.T) {
	raw := Marshal(testDiscovery.ReaderConfig(Reader{NFC: true, Feedback: []string{"ok"}}))
	var doc struct {
		Device     map[string]any            `json:"device"`
		Components map[string]map[string]any `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	tag := doc.Components["tag"]
	if len(tag) != 2 || tag["platform"] != "tag" || tag["topic"] != "sesame2mqtt/reader/tag" {
		t.Errorf("tag component = %v, want exactly platform and topic", tag)
	}
	ev := doc.Components["access"]
	if types, _ := ev["event_types"].([]any); len(types) != len(EventTypes) {
		t.Errorf("event_types = %v", ev["event_types"])
	}
	for key, c := range doc.Components {
		if key == "tag" {
			continue
		}
		for _, k := range []string{"platform", "unique_id", "default_entity_id", "name"} {
			if c[k] == nil || c[k] == "" {
				t.Errorf("component %s lacks %s", key, k)
			}
		}
	}
	if b := doc.Components["feedback_ok"]; b["command_topic"] != "sesame2mqtt/reader/feedback" || b["payload_press"] != "ok" {
		t.Errorf("feedback button = %v", b)
	}
	if doc.Device["via_device"] != testDiscovery.BridgeDeviceID() {
		t.Errorf("via_device = %v", doc.Device["via_device"])
	}
	if !OwnedBy(raw, "sesame2mqtt/bridge/availability") {
		t.Error("reader document must be recognisably ours")
	}
}

func TestParseFeedback(t *testing.T) {
	names := []string{"ok", "ko"}
	for _, p := range names {
		if got, err := ParseFeedback([]byte(p), names); err != nil || got != p {
			t.Errorf("ParseFeedback(%q) = %q, %v", p, got, err)
		}
	}
	for _, tt := range []struct{ payload, says string }{
		{"OK", `got "OK"`}, {" ok", `got " ok"`}, {"", "empty payload"}, {"\x00\xff", `got "\x00\xff"`},
	} {
		got, err := ParseFeedback([]byte(tt.payload), names)
		if !errors.Is(err, ErrBadPayload) || got != "" || !strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), "[ok ko]") {
			t.Errorf("ParseFeedback(%q) = %q, %v; want ErrBadPayload saying %s and the names", tt.payload, got, err, tt.says)
		}
	}
}
