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
	golden(t, "reader_device_cards.golden", Marshal(testDiscovery.ReaderConfig(Reader{NFC: true, Cards: []string{"Alice", "Bob"}})))
	golden(t, "reader_device_leds_only.golden", Marshal(testDiscovery.ReaderConfig(Reader{Feedback: []string{"ok", "ko", "reader_gone"}})))
}

func TestReaderEventGoldens(t *testing.T) {
	golden(t, "event_granted.golden", mustJSON(t, AccessEvent{EventType: EventAccessGranted, Holder: "Alice", CardType: "iso14443a", Action: "toggle", Lock: "Front door"}))
	golden(t, "event_denied.golden", mustJSON(t, AccessEvent{EventType: EventAccessDenied, Holder: UnknownHolder, CardType: "felica", Action: "none", UID: "012E4CD8A1B2C3D4"}))
	golden(t, "event_lockout.golden", mustJSON(t, AccessEvent{EventType: EventLockout, Holder: UnknownHolder, CardType: "iso14443a", Action: "none", Until: "2026-11-22T03:05:05Z"}))
	golden(t, "event_action_failed.golden", mustJSON(t, AccessEvent{EventType: EventActionFailed, Holder: "Alice", Action: "unlock", Lock: "Front door", Result: ResultJammed, Detail: "not unlocked after 15s: the lock reports locked"}))
	golden(t, "event_denied_reason.golden", mustJSON(t, AccessEvent{EventType: EventAccessDenied, Holder: "Bob", CardType: "iso14443a", Action: "none", Lock: "Front door", Reason: "outside_hours", Message: "Bob's card opens this door only 08:00-18:00."}))
	golden(t, "event_card_enrolled.golden", mustJSON(t, AccessEvent{EventType: EventCardEnrolled, Holder: "Dana", CardType: "iso14443a", Action: "none", Message: "Dana's card was added."}))
	golden(t, "event_enroll_failed.golden", mustJSON(t, AccessEvent{EventType: EventEnrollFailed, Holder: UnknownHolder, Action: "none", Reason: "timeout", Message: "No card was tapped within 30s: nothing was added."}))
	golden(t, "event_card_changed.golden", mustJSON(t, AccessEvent{EventType: EventCardChanged, Holder: "Bob", Action: "none", Change: "disabled", Message: "Bob's card is disabled."}))
	golden(t, "event_change_refused.golden", mustJSON(t, AccessEvent{EventType: EventChangeRefused, Holder: "Alice", Action: "none", Reason: "managed", Message: "Alice's card comes from the add-on options: change it there."}))
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

// TestAccessEntitiesAsHAReadsIt: the select has options (never none), the
// text a max, the buttons their payloads on one command topic.
func TestAccessEntitiesAsHAReadsIt(t *testing.T) {
	for _, cards := range [][]string{nil, {"Alice", "Bob"}} {
		raw := Marshal(testDiscovery.ReaderConfig(Reader{NFC: true, Cards: cards}))
		var doc struct {
			Components map[string]map[string]any `json:"components"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		sel := doc.Components["card"]
		opts, _ := sel["options"].([]any)
		want := len(cards)
		if want == 0 {
			want = 1
		}
		if sel["platform"] != "select" || len(opts) != want || sel["command_topic"] != "sesame2mqtt/reader/card/set" {
			t.Errorf("select = %v", sel)
		}
		if txt := doc.Components["enroll_name"]; txt["platform"] != "text" || txt["max"] != float64(MaxCardName) {
			t.Errorf("text = %v", txt)
		}
		for key, payload := range map[string]string{"remove_card": PayloadRemove, "disable_card": PayloadDisable, "enable_card": PayloadEnable, "enroll": PayloadPress} {
			if b := doc.Components[key]; b["platform"] != "button" || b["payload_press"] != payload {
				t.Errorf("%s = %v", key, b)
			}
		}
	}
	if _, ok := testDiscovery.ReaderConfig(Reader{Feedback: []string{"ok"}}).Components["card"]; ok {
		t.Error("LEDs alone have no access entities")
	}
}

func TestParseCardAction(t *testing.T) {
	for _, p := range []string{PayloadRemove, PayloadDisable, PayloadEnable} {
		if got, err := ParseCardAction([]byte(p)); err != nil || got != p {
			t.Errorf("ParseCardAction(%q) = %q, %v", p, got, err)
		}
	}
	for _, p := range []string{"remove", "REMOVE ", "", "PRESS"} {
		if _, err := ParseCardAction([]byte(p)); !errors.Is(err, ErrBadPayload) {
			t.Errorf("ParseCardAction(%q) = %v, want ErrBadPayload", p, err)
		}
	}
}
