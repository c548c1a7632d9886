package e2e

// What the README promises Home Assistant shows, as the contract test
// (e2e_test.go, build tag e2e) checks it. This file has no build tag: the
// README check runs in every `go test ./...`, without Home Assistant.

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The demo's lock (cmd/sesame2mqtt/demo.go) and cards (demoreader.go).
const (
	demoUUID    = "DE300000-5E5A-4E00-8000-000000000001"
	demoLockID  = "de3000005e5a4e008000000000000001"
	demoName    = "Demo door"
	aliceUID    = "04A1B2C3D4E5F6"
	strangerUID = "04112233"
	phoneUID    = "089A017F" // a random UID (08...), as phones send
	tapTopic    = "sesame2mqtt/demo/tap"
)

// wantEntity is what the README's "What appears in Home Assistant" promises
// for one entity, with the demo lock "Demo door" in place of "Front door".
type wantEntity struct {
	device      string // lock, bridge or reader
	name        string // the entity's own name; "" = the device's name (the lock)
	category    string // entity_category
	deviceClass string
	unit        string
	stateClass  string
	attributes  []string // attributes the README names
}

var wantEntities = map[string]wantEntity{
	"lock.sesame_demo_door":           {device: "lock", attributes: []string{"sesame_status", "reported_at", "read_at"}},
	"button.sesame_demo_door_toggle":  {device: "lock", name: "Toggle"},
	"button.sesame_demo_door_refresh": {device: "lock", name: "Refresh status", category: "diagnostic"},
	"sensor.sesame_demo_door_battery": {device: "lock", name: "Battery", category: "diagnostic",
		deviceClass: "battery", unit: "%", stateClass: "measurement"},
	"sensor.sesame_demo_door_voltage": {device: "lock", name: "Battery voltage", category: "diagnostic",
		deviceClass: "voltage", unit: "V", stateClass: "measurement"},
	"sensor.sesame_demo_door_position": {device: "lock", name: "Position", category: "diagnostic", stateClass: "measurement"},
	"binary_sensor.sesame_demo_door_hub": {device: "lock", name: "Hub connectivity", category: "diagnostic",
		deviceClass: "connectivity"},
	"sensor.sesame2mqtt_bridge_api_requests": {device: "bridge", name: "Web API requests this month", category: "diagnostic",
		unit: "requests", stateClass: "total_increasing",
		// poll_interval_s only while polling: the demo's push feed is healthy.
		attributes: []string{"budget", "reserve", "remaining", "background_reads"}},
	"sensor.sesame2mqtt_bridge_clock_offset": {device: "bridge", name: "Clock offset", category: "diagnostic",
		deviceClass: "duration", unit: "s", stateClass: "measurement"}, // signing_clock once the cloud answered (checked after a command)
	"event.sesame_demo_door_activity": {device: "lock", name: "Activity", attributes: []string{"event_types"}},
	"sensor.sesame2mqtt_bridge_state_source": {device: "bridge", name: "State source", category: "diagnostic",
		deviceClass: "enum", attributes: []string{"since"}},
	"event.sesame2mqtt_reader_access": {device: "reader", name: "Access",
		attributes: []string{"event_types"}},
	"binary_sensor.sesame2mqtt_reader_connectivity": {device: "reader", name: "Reader", category: "diagnostic",
		deviceClass: "connectivity", attributes: []string{"status"}},
	"text.sesame2mqtt_reader_new_card_name":      {device: "reader", name: "New card name", category: "config"},
	"button.sesame2mqtt_reader_enroll_next_card": {device: "reader", name: "Enroll next card", category: "config"},
	"select.sesame2mqtt_reader_card":             {device: "reader", name: "Card", category: "config"},
	"button.sesame2mqtt_reader_remove_card":      {device: "reader", name: "Remove card", category: "config"},
	"button.sesame2mqtt_reader_disable_card":     {device: "reader", name: "Disable card", category: "config"},
	"button.sesame2mqtt_reader_enable_card":      {device: "reader", name: "Enable card", category: "config"},
}

// TestReadmePromises keeps wantEntities and the README in step: every
// example id of the README's "What appears in Home Assistant" (Front door
// read as the demo's Demo door; the LED buttons aside, the demo has no LEDs)
// is expected, and nothing else.
func TestReadmePromises(t *testing.T) {
	ids := readmeEntityIDs(t)
	got := slices.Sorted(maps.Keys(wantEntities))
	if !slices.Equal(ids, got) {
		t.Fatalf("README promises %v,\nthe test expects %v", ids, got)
	}
}

func readmeEntityIDs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatalf("README: %v", err)
	}
	_, section, ok := strings.Cut(string(b), "\n## What appears in Home Assistant\n")
	if !ok {
		t.Fatal(`README has no "## What appears in Home Assistant" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	idRE := regexp.MustCompile("`((?:lock|button|sensor|binary_sensor|event|text|select)\\.[a-z0-9_]+)`")
	var ids []string
	for line := range strings.SplitSeq(section, "\n") {
		if !strings.HasPrefix(line, "|") || strings.Contains(line, "only with LEDs configured") {
			continue
		}
		for _, m := range idRE.FindAllStringSubmatch(line, -1) {
			ids = append(ids, strings.ReplaceAll(m[1], "front_door", "demo_door"))
		}
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		t.Fatal("README: no entity ids found in its tables")
	}
	return ids
}
