package hass

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Origin names the software behind the discovery documents (HA shows it in
// the device page and in its logs).
type Origin struct {
	Name       string `json:"name"`
	SWVersion  string `json:"sw_version,omitempty"`
	SupportURL string `json:"support_url,omitempty"`
}

// Device is the device block of a discovery document.
type Device struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer,omitempty"`
	Model        string   `json:"model,omitempty"`
	SerialNumber string   `json:"serial_number,omitempty"`
	SWVersion    string   `json:"sw_version,omitempty"`
	ViaDevice    string   `json:"via_device,omitempty"`
}

// Availability is one entry of the availability list.
type Availability struct {
	Topic string `json:"topic"`
}

// Component is one entity of a device-based discovery document. Name is a
// pointer so that the main entity can carry an explicit null (it then takes
// the device's name).
type Component struct {
	Platform            string   `json:"platform"`
	Name                *string  `json:"name"`
	UniqueID            string   `json:"unique_id"`
	DefaultEntityID     string   `json:"default_entity_id"`
	Topic               string   `json:"topic,omitempty"` // tag scanners only
	EventTypes          []string `json:"event_types,omitempty"`
	DeviceClass         string   `json:"device_class,omitempty"`
	Options             []string `json:"options,omitempty"` // enum sensors
	EntityCategory      string   `json:"entity_category,omitempty"`
	StateClass          string   `json:"state_class,omitempty"`
	Unit                string   `json:"unit_of_measurement,omitempty"`
	Precision           *int     `json:"suggested_display_precision,omitempty"`
	Icon                string   `json:"icon,omitempty"`
	StateTopic          string   `json:"state_topic,omitempty"`
	ValueTemplate       string   `json:"value_template,omitempty"`
	CommandTopic        string   `json:"command_topic,omitempty"`
	PayloadPress        string   `json:"payload_press,omitempty"`
	PayloadLock         string   `json:"payload_lock,omitempty"`
	PayloadUnlock       string   `json:"payload_unlock,omitempty"`
	StateLocked         string   `json:"state_locked,omitempty"`
	StateUnlocked       string   `json:"state_unlocked,omitempty"`
	StateLocking        string   `json:"state_locking,omitempty"`
	StateUnlocking      string   `json:"state_unlocking,omitempty"`
	StateJammed         string   `json:"state_jammed,omitempty"`
	JSONAttributesTopic string   `json:"json_attributes_topic,omitempty"`
}

// MarshalJSON encodes a component. A tag scanner is not an entity: it has
// no name, unique id or entity id, only its topic.
func (c Component) MarshalJSON() ([]byte, error) {
	if c.Platform == "tag" {
		return json.Marshal(struct {
			Platform      string `json:"platform"`
			Topic         string `json:"topic"`
			ValueTemplate string `json:"value_template,omitempty"`
		}{c.Platform, c.Topic, c.ValueTemplate})
	}
	type plain Component
	return json.Marshal(plain(c))
}

// DeviceConfig is a device-based discovery document
// (<prefix>/device/<id>/config). Availability and QoS are shared by every
// component.
type DeviceConfig struct {
	Device       Device               `json:"device"`
	Origin       Origin               `json:"origin"`
	Availability []Availability       `json:"availability"`
	QoS          int                  `json:"qos"`
	Components   map[string]Component `json:"components"`
}

// Lock describes one configured lock as discovery needs it.
type Lock struct {
	ID   string // stable id used in topics (UUID, lowercase, no dashes)
	UUID string // as the Sesame app shows it
	Name string
}

// Discovery builds the discovery documents of the bridge and its locks.
type Discovery struct {
	Topics  Topics
	Version string // the bridge's version, shown as sw_version
}

// BridgeDeviceID is the id of the bridge's own device. It derives from the
// base topic so that two bridges on one broker (with different base topics)
// do not share a device.
func (d Discovery) BridgeDeviceID() string { return slug(d.Topics.Base) + "_bridge" }

// LockDeviceID is the id of a lock's device.
func LockDeviceID(lockID string) string { return "sesame_" + lockID }

func (d Discovery) origin() Origin {
	return Origin{Name: "sesame2mqtt", SWVersion: d.Version, SupportURL: "https://github.com/sesame2mqtt/sesame2mqtt"}
}

func (d Discovery) availability() []Availability {
	return []Availability{{Topic: d.Topics.Availability()}}
}

func str(s string) *string { return &s }
func intp(i int) *int      { return &i }

// BridgeConfig is the discovery document of the bridge device: its
// diagnostic entities.
func (d Discovery) BridgeConfig() DeviceConfig {
	id := d.BridgeDeviceID()
	return DeviceConfig{
		Device: Device{
			Identifiers:  []string{id},
			Name:         "Sesame2MQTT bridge",
			Manufacturer: "sesame2mqtt",
			Model:        "Bridge",
			SWVersion:    d.Version,
		},
		Origin:       d.origin(),
		Availability: d.availability(),
		QoS:          1,
		Components: map[string]Component{
			"api_requests": {
				Platform:            "sensor",
				Name:                str("Web API requests this month"),
				UniqueID:            id + "_api_requests",
				DefaultEntityID:     "sensor." + id + "_api_requests",
				EntityCategory:      "diagnostic",
				StateClass:          "total_increasing",
				Unit:                "requests",
				Icon:                "mdi:cloud-upload",
				StateTopic:          d.Topics.Usage(),
				ValueTemplate:       "{{ value_json.used }}",
				JSONAttributesTopic: d.Topics.Usage(),
			},
			"clock_offset": {
				Platform:            "sensor",
				Name:                str("Clock offset"),
				UniqueID:            id + "_clock_offset",
				DefaultEntityID:     "sensor." + id + "_clock_offset",
				DeviceClass:         "duration",
				EntityCategory:      "diagnostic",
				StateClass:          "measurement",
				Unit:                "s",
				Precision:           intp(0),
				StateTopic:          d.Topics.Clock(),
				ValueTemplate:       "{{ value_json.offset_s }}",
				JSONAttributesTopic: d.Topics.Clock(),
			},
			"state_source": {
				Platform:            "sensor",
				Name:                str("State source"),
				UniqueID:            id + "_state_source",
				DefaultEntityID:     "sensor." + id + "_state_source",
				DeviceClass:         "enum",
				Options:             []string{StateSourcePush, StateSourcePolling, StateSourceFailing},
				EntityCategory:      "diagnostic",
				Icon:                "mdi:access-point-network",
				StateTopic:          d.Topics.StateSource(),
				ValueTemplate:       "{{ value_json.source }}",
				JSONAttributesTopic: d.Topics.StateSource(),
			},
		},
	}
}

// LockConfig is the discovery document of one lock's device.
func (d Discovery) LockConfig(l Lock) DeviceConfig {
	devID := LockDeviceID(l.ID)
	entity := "sesame_" + entitySlug(l)
	t := d.Topics
	status := t.LockStatus(l.ID)
	return DeviceConfig{
		Device: Device{
			Identifiers:  []string{devID},
			Name:         l.Name,
			Manufacturer: "CANDY HOUSE",
			Model:        "Sesame",
			SerialNumber: l.UUID,
			ViaDevice:    d.BridgeDeviceID(),
		},
		Origin:       d.origin(),
		Availability: d.availability(),
		QoS:          1,
		Components: map[string]Component{
			"lock": {
				Platform:            "lock",
				Name:                nil,
				UniqueID:            devID + "_lock",
				DefaultEntityID:     "lock." + entity,
				StateTopic:          t.LockState(l.ID),
				CommandTopic:        t.LockCommand(l.ID),
				PayloadLock:         PayloadLock,
				PayloadUnlock:       PayloadUnlock,
				StateLocked:         string(Locked),
				StateUnlocked:       string(Unlocked),
				StateLocking:        string(Locking),
				StateUnlocking:      string(Unlocking),
				StateJammed:         string(Jammed),
				JSONAttributesTopic: status,
			},
			"toggle": {
				Platform:        "button",
				Name:            str("Toggle"),
				UniqueID:        devID + "_toggle",
				DefaultEntityID: "button." + entity + "_toggle",
				Icon:            "mdi:lock-reset",
				CommandTopic:    t.LockToggle(l.ID),
				PayloadPress:    PayloadPress,
			},
			"refresh": {
				Platform:        "button",
				Name:            str("Refresh status"),
				UniqueID:        devID + "_refresh",
				DefaultEntityID: "button." + entity + "_refresh",
				EntityCategory:  "diagnostic",
				Icon:            "mdi:refresh",
				CommandTopic:    t.LockRefresh(l.ID),
				PayloadPress:    PayloadPress,
			},
			"battery": {
				Platform:        "sensor",
				Name:            str("Battery"),
				UniqueID:        devID + "_battery",
				DefaultEntityID: "sensor." + entity + "_battery",
				DeviceClass:     "battery",
				EntityCategory:  "diagnostic",
				StateClass:      "measurement",
				Unit:            "%",
				StateTopic:      status,
				ValueTemplate:   "{{ value_json.battery }}",
			},
			"voltage": {
				Platform:        "sensor",
				Name:            str("Battery voltage"),
				UniqueID:        devID + "_voltage",
				DefaultEntityID: "sensor." + entity + "_voltage",
				DeviceClass:     "voltage",
				EntityCategory:  "diagnostic",
				StateClass:      "measurement",
				Unit:            "V",
				Precision:       intp(2),
				StateTopic:      status,
				ValueTemplate:   "{{ value_json.voltage }}",
			},
			"position": {
				Platform:        "sensor",
				Name:            str("Position"),
				UniqueID:        devID + "_position",
				DefaultEntityID: "sensor." + entity + "_position",
				EntityCategory:  "diagnostic",
				StateClass:      "measurement",
				Icon:            "mdi:rotate-3d-variant",
				StateTopic:      status,
				ValueTemplate:   "{{ value_json.position }}",
			},
			"activity": {
				Platform:        "event",
				Name:            str("Activity"),
				UniqueID:        devID + "_activity",
				DefaultEntityID: "event." + entity + "_activity",
				Icon:            "mdi:account-key",
				StateTopic:      t.LockActivity(l.ID),
				EventTypes:      ActivityTypes,
			},
			"hub": {
				Platform:        "binary_sensor",
				Name:            str("Hub connectivity"),
				UniqueID:        devID + "_hub",
				DefaultEntityID: "binary_sensor." + entity + "_hub",
				DeviceClass:     "connectivity",
				EntityCategory:  "diagnostic",
				StateTopic:      status,
				ValueTemplate:   "{{ value_json.hub }}",
			},
		},
	}
}

// Marshal encodes a discovery document. Component keys come out sorted, so
// the bytes are stable for golden files and for HA's duplicate detection.
func Marshal(c DeviceConfig) []byte {
	b, err := json.Marshal(c)
	if err != nil {
		// Only plain strings, ints and maps of them: cannot fail.
		panic(fmt.Sprintf("hass: marshal discovery: %v", err))
	}
	return b
}

// OwnedBy reports whether a retained discovery document was published by a
// bridge whose availability topic is availTopic (that is: by us), so that a
// lock removed from the configuration can have its discovery cleared without
// touching anyone else's devices.
func OwnedBy(payload []byte, availTopic string) bool {
	var doc struct {
		Availability []Availability `json:"availability"`
	}
	if err := json.Unmarshal(payload, &doc); err != nil {
		return false
	}
	return len(doc.Availability) == 1 && doc.Availability[0].Topic == availTopic
}

// entitySlug is the name part of the default entity ids: the lock's name
// slugified, or its id when the name has no ASCII letters or digits.
func entitySlug(l Lock) string {
	if s := slug(l.Name); s != "" {
		// "Sesame 488E" must not become sesame_sesame_488e.
		if rest, ok := strings.CutPrefix(s, "sesame_"); ok {
			return rest
		}
		if s != "sesame" {
			return s
		}
	}
	if len(l.ID) > 8 {
		return l.ID[:8]
	}
	return l.ID
}

// slug lowercases s and turns every run of characters other than ASCII
// letters and digits into one underscore, trimmed at both ends.
func slug(s string) string {
	var b strings.Builder
	pendingSep := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if pendingSep && b.Len() > 0 {
				b.WriteByte('_')
			}
			pendingSep = false
			b.WriteRune(r)
			continue
		}
		pendingSep = true
	}
	return b.String()
}
