// Package hass holds what Home Assistant sees of the bridge: the topic
// layout, the MQTT discovery documents, and the payloads published on and
// accepted from those topics. Everything here is pure: no I/O, no clocks.
package hass

import "strings"

// Topics is the bridge's topic layout. Base is the root of every topic the
// bridge owns; Prefix is Home Assistant's discovery prefix.
type Topics struct {
	Base   string
	Prefix string
}

// Availability is the bridge-level availability topic (retained online/offline, also the LWT).
func (t Topics) Availability() string { return t.Base + "/bridge/availability" }

// Usage carries the Web API request count of the month (retained JSON).
func (t Topics) Usage() string { return t.Base + "/bridge/api_usage" }

// Clock carries the host's clock offset to the Sesame cloud (retained JSON).
func (t Topics) Clock() string { return t.Base + "/bridge/clock" }

// StateSource says where the lock states come from (retained JSON).
func (t Topics) StateSource() string { return t.Base + "/bridge/state_source" }

// LockActivity carries the Activity events of a lock (non-retained JSON).
func (t Topics) LockActivity(id string) string { return t.Base + "/" + id + "/event" }

// LockState carries the lock entity's state (retained).
func (t Topics) LockState(id string) string { return t.Base + "/" + id + "/state" }

// LockStatus carries the last status read back from the cloud (retained JSON):
// battery, voltage, position, hub connectivity, raw Sesame status.
func (t Topics) LockStatus(id string) string { return t.Base + "/" + id + "/status" }

// LockCommand takes LOCK and UNLOCK from the lock entity.
func (t Topics) LockCommand(id string) string { return t.Base + "/" + id + "/set" }

// LockToggle takes PRESS from the Toggle button.
func (t Topics) LockToggle(id string) string { return t.Base + "/" + id + "/toggle" }

// LockRefresh takes PRESS from the Refresh button (one status read).
func (t Topics) LockRefresh(id string) string { return t.Base + "/" + id + "/refresh" }

// LockResult carries one non-retained result message per command.
func (t Topics) LockResult(id string) string { return t.Base + "/" + id + "/result" }

// HAStatus is Home Assistant's birth/last-will topic.
func (t Topics) HAStatus() string { return t.Prefix + "/status" }

// DeviceConfig is the device-based discovery topic of one device.
func (t Topics) DeviceConfig(deviceID string) string {
	return t.Prefix + "/device/" + deviceID + "/config"
}

// DeviceConfigFilter matches every device-based discovery topic; the bridge
// reads the retained ones once to clear locks removed from its configuration.
func (t Topics) DeviceConfigFilter() string { return t.Prefix + "/device/+/config" }

// CommandFilters are the filters the bridge subscribes to for commands.
func (t Topics) CommandFilters() []string {
	return []string{t.Base + "/+/set", t.Base + "/+/toggle", t.Base + "/+/refresh"}
}

// CommandKind is what a command topic asks for.
type CommandKind int

// Command topics.
const (
	TopicUnknown CommandKind = iota
	TopicSet                 // LOCK / UNLOCK
	TopicToggle              // PRESS
	TopicRefresh             // PRESS
)

// ParseCommandTopic splits "<base>/<id>/<set|toggle|refresh>" into the lock
// id and the kind. ok is false for any other topic.
func (t Topics) ParseCommandTopic(topic string) (id string, kind CommandKind, ok bool) {
	rest, found := strings.CutPrefix(topic, t.Base+"/")
	if !found {
		return "", TopicUnknown, false
	}
	id, leaf, found := strings.Cut(rest, "/")
	if !found || id == "" || strings.Contains(leaf, "/") {
		return "", TopicUnknown, false
	}
	switch leaf {
	case "set":
		return id, TopicSet, true
	case "toggle":
		return id, TopicToggle, true
	case "refresh":
		return id, TopicRefresh, true
	}
	return "", TopicUnknown, false
}

// DeviceIDFromConfigTopic returns the device id of "<prefix>/device/<id>/config".
func (t Topics) DeviceIDFromConfigTopic(topic string) (string, bool) {
	rest, found := strings.CutPrefix(topic, t.Prefix+"/device/")
	if !found {
		return "", false
	}
	id, found := strings.CutSuffix(rest, "/config")
	if !found || id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return id, true
}
