package hass

import (
	"fmt"
	"slices"
)

// Reader topics: one card reader (and its LEDs) per bridge.

// ReaderTag carries the UID of each tap for Home Assistant's tag registry.
func (t Topics) ReaderTag() string { return t.Base + "/reader/tag" }

// ReaderEvent carries the access events (non-retained JSON).
func (t Topics) ReaderEvent() string { return t.Base + "/reader/event" }

// ReaderStatus carries the reader's connectivity (retained JSON).
func (t Topics) ReaderStatus() string { return t.Base + "/reader/status" }

// ReaderFeedback is the command topic that plays an LED/buzzer pattern.
func (t Topics) ReaderFeedback() string { return t.Base + "/reader/feedback" }

// ParseFeedback checks a message on the feedback topic: exactly one of the
// pattern names, no trimming or case folding, as for the lock commands.
func ParseFeedback(payload []byte, names []string) (string, error) {
	if p := string(payload); slices.Contains(names, p) {
		return p, nil
	}
	return "", fmt.Errorf("%w: want one of %v (%s)", ErrBadPayload, names, describe(payload))
}

// Access event types, in the order the event entity lists them.
const (
	EventAccessGranted   = "access_granted"
	EventAccessDenied    = "access_denied"
	EventLockout         = "lockout"
	EventActionSucceeded = "action_succeeded"
	EventActionFailed    = "action_failed"
)

// EventTypes are the event entity's event types.
var EventTypes = []string{EventAccessGranted, EventAccessDenied, EventLockout, EventActionSucceeded, EventActionFailed}

// UnknownHolder is the holder of a card that is not on the allowlist.
const UnknownHolder = "unknown"

// AccessEvent is one event of the reader's event entity. Known cards are
// named by their holder, never by their UID.
type AccessEvent struct {
	EventType string `json:"event_type"`
	Holder    string `json:"holder"`
	CardType  string `json:"card_type,omitempty"` // iso14443a or felica
	Action    string `json:"action"`              // toggle, unlock, lock or none
	Lock      string `json:"lock,omitempty"`      // the lock's name
	Result    string `json:"result,omitempty"`    // action events: success, failed, jammed
	Detail    string `json:"detail,omitempty"`
	Until     string `json:"until,omitempty"` // lockout end, RFC 3339 UTC
	// UID of an unknown card, only when every card goes to the tag
	// registry anyway (NFC_TAG_SCANNER=all): what an admin adds to the list.
	UID string `json:"uid,omitempty"`
}

// ReaderState is the retained JSON on the reader's status topic.
type ReaderState struct {
	Status string `json:"status"` // connected, not_found or unplugged
	Device string `json:"device,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Reader describes the reader device for discovery.
type Reader struct {
	NFC      bool     // a card reader is configured
	Feedback []string // pattern names Home Assistant may play; empty = no LEDs
}

// ReaderDeviceID is the id of the reader's device.
func (d Discovery) ReaderDeviceID() string { return slug(d.Topics.Base) + "_reader" }

// ReaderConfig is the discovery document of the reader device.
func (d Discovery) ReaderConfig(r Reader) DeviceConfig {
	id := d.ReaderDeviceID()
	t := d.Topics
	model := "NFC reader"
	switch {
	case r.NFC && len(r.Feedback) > 0:
		model = "NFC reader with LED feedback"
	case !r.NFC:
		model = "LED feedback"
	}
	cmps := map[string]Component{}
	if r.NFC {
		cmps["tag"] = Component{Platform: "tag", Topic: t.ReaderTag()}
		cmps["access"] = Component{
			Platform:        "event",
			Name:            str("Access"),
			UniqueID:        id + "_access",
			DefaultEntityID: "event." + id + "_access",
			Icon:            "mdi:card-account-details",
			StateTopic:      t.ReaderEvent(),
			EventTypes:      EventTypes,
		}
		cmps["connectivity"] = Component{
			Platform:            "binary_sensor",
			Name:                str("Reader"),
			UniqueID:            id + "_connectivity",
			DefaultEntityID:     "binary_sensor." + id + "_connectivity",
			DeviceClass:         "connectivity",
			EntityCategory:      "diagnostic",
			StateTopic:          t.ReaderStatus(),
			ValueTemplate:       "{{ 'ON' if value_json.status == 'connected' else 'OFF' }}",
			JSONAttributesTopic: t.ReaderStatus(),
		}
	}
	for _, name := range r.Feedback {
		cmps["feedback_"+name] = Component{
			Platform:        "button",
			Name:            str("Signal " + humanize(name)),
			UniqueID:        id + "_feedback_" + name,
			DefaultEntityID: "button." + id + "_signal_" + name,
			Icon:            "mdi:led-on",
			CommandTopic:    t.ReaderFeedback(),
			PayloadPress:    name,
		}
	}
	return DeviceConfig{
		Device: Device{
			Identifiers:  []string{id},
			Name:         "Door reader",
			Manufacturer: "sesame2mqtt",
			Model:        model,
			SWVersion:    d.Version,
			ViaDevice:    d.BridgeDeviceID(),
		},
		Origin:       d.origin(),
		Availability: d.availability(),
		QoS:          1,
		Components:   cmps,
	}
}

// humanize turns a pattern name into words: reader_gone -> reader gone.
func humanize(name string) string {
	b := []byte(name)
	for i, c := range b {
		if c == '_' {
			b[i] = ' '
		}
	}
	return string(b)
}
