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

// ReaderEnroll takes PRESS from the "Enroll next card" button.
func (t Topics) ReaderEnroll() string { return t.Base + "/reader/enroll" }

// ReaderEnrollName takes the text of the "New card name" entity.
func (t Topics) ReaderEnrollName() string { return t.Base + "/reader/enroll_name/set" }

// ReaderEnrollNameState echoes the name to enroll (retained).
func (t Topics) ReaderEnrollNameState() string { return t.Base + "/reader/enroll_name" }

// ReaderCard takes the option chosen in the "Card" select.
func (t Topics) ReaderCard() string { return t.Base + "/reader/card/set" }

// ReaderCardState is the select's chosen option (retained).
func (t Topics) ReaderCardState() string { return t.Base + "/reader/card" }

// ReaderCardAction takes REMOVE, DISABLE or ENABLE for the chosen card.
func (t Topics) ReaderCardAction() string { return t.Base + "/reader/card_action" }

// ReaderCommandTopics are the reader's command topics for access edits.
func (t Topics) ReaderCommandTopics() []string {
	return []string{t.ReaderEnroll(), t.ReaderEnrollName(), t.ReaderCard(), t.ReaderCardAction()}
}

// Payloads of the card action buttons.
const (
	PayloadRemove  = "REMOVE"
	PayloadDisable = "DISABLE"
	PayloadEnable  = "ENABLE"
)

// NoCards is the select's only option while the list has no card Home
// Assistant may edit (a select needs at least one option).
const NoCards = "(no cards)"

// ParseCardAction checks a message on the card action topic: exact bytes.
func ParseCardAction(payload []byte) (string, error) {
	switch p := string(payload); p {
	case PayloadRemove, PayloadDisable, PayloadEnable:
		return p, nil
	}
	return "", fmt.Errorf("%w: want %s, %s or %s (%s)", ErrBadPayload, PayloadRemove, PayloadDisable, PayloadEnable, describe(payload))
}

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
	EventCardEnrolled    = "card_enrolled"
	EventEnrollFailed    = "enroll_failed"
	EventCardChanged     = "card_changed"   // removed, disabled or enabled from Home Assistant
	EventChangeRefused   = "change_refused" // an edit that was not made (an options' card)
)

// EventTypes are the event entity's event types.
var EventTypes = []string{EventAccessGranted, EventAccessDenied, EventLockout, EventActionSucceeded, EventActionFailed,
	EventCardEnrolled, EventEnrollFailed, EventCardChanged, EventChangeRefused}

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
	// Reason a tap was denied (unknown, disabled, not_yet_valid, expired,
	// outside_hours, not_this_door, lockout) or an enrollment failed
	// (already_listed, random_uid, changing_idm, timeout, cancelled).
	Reason  string `json:"reason,omitempty"`
	Change  string `json:"change,omitempty"`  // card_changed: removed, disabled, enabled
	Message string `json:"message,omitempty"` // one sentence for people`
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
	// Cards are the select's options (the cards Home Assistant may edit);
	// empty gives the single option NoCards. Only with NFC.
	Cards []string
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
	if r.NFC {
		d.accessComponents(cmps, r.Cards)
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

// accessComponents are the entities that edit the access list: enroll by
// tapping, and remove, disable or enable the card chosen in a select.
func (d Discovery) accessComponents(cmps map[string]Component, cards []string) {
	id := d.ReaderDeviceID()
	t := d.Topics
	if len(cards) == 0 {
		cards = []string{NoCards}
	}
	cmps["enroll_name"] = Component{
		Platform:        "text",
		Name:            str("New card name"),
		UniqueID:        id + "_enroll_name",
		DefaultEntityID: "text." + id + "_new_card_name",
		Icon:            "mdi:card-account-details-outline",
		EntityCategory:  "config",
		CommandTopic:    t.ReaderEnrollName(),
		StateTopic:      t.ReaderEnrollNameState(),
		Max:             MaxCardName,
	}
	cmps["enroll"] = Component{
		Platform:        "button",
		Name:            str("Enroll next card"),
		UniqueID:        id + "_enroll",
		DefaultEntityID: "button." + id + "_enroll_next_card",
		Icon:            "mdi:card-plus",
		EntityCategory:  "config",
		CommandTopic:    t.ReaderEnroll(),
		PayloadPress:    PayloadPress,
	}
	cmps["card"] = Component{
		Platform:        "select",
		Name:            str("Card"),
		UniqueID:        id + "_card",
		DefaultEntityID: "select." + id + "_card",
		Icon:            "mdi:card-account-details",
		EntityCategory:  "config",
		CommandTopic:    t.ReaderCard(),
		StateTopic:      t.ReaderCardState(),
		Options:         cards,
	}
	for _, b := range []struct{ key, name, payload, icon string }{
		{"remove_card", "Remove card", PayloadRemove, "mdi:card-remove"},
		{"disable_card", "Disable card", PayloadDisable, "mdi:card-off"},
		{"enable_card", "Enable card", PayloadEnable, "mdi:card-bulleted"},
	} {
		cmps[b.key] = Component{
			Platform:        "button",
			Name:            str(b.name),
			UniqueID:        id + "_" + b.key,
			DefaultEntityID: "button." + id + "_" + b.key,
			Icon:            b.icon,
			EntityCategory:  "config",
			CommandTopic:    t.ReaderCardAction(),
			PayloadPress:    b.payload,
		}
	}
}

// MaxCardName is the longest holder name (bytes), as the access list takes it.
const MaxCardName = 64
