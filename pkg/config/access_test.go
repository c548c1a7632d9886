package config

import (
	"strings"
	"testing"
)

func TestAccessShared(t *testing.T) {
	base := func() raw {
		r := raw{AccessShared: "false", AccessSharedTopic: DefaultSharedTopic, BaseTopic: "sesame2mqtt", DiscoveryPrefix: "homeassistant"}
		return r
	}
	for _, tt := range []struct {
		name   string
		edit   func(*raw)
		shared bool
		err    string
	}{
		{"default", func(*raw) {}, false, ""},
		{"on", func(r *raw) { r.AccessShared = "true" }, true, ""},
		{"bad bool", func(r *raw) { r.AccessShared = "maybe" }, false, "ACCESS_SHARED: must be true or false"},
		{"wildcard", func(r *raw) { r.AccessSharedTopic = "a/#" }, false, "ACCESS_SHARED_TOPIC"},
		{"under base", func(r *raw) { r.AccessSharedTopic = "sesame2mqtt/access" }, false, "outside MQTT_BASE_TOPIC"},
		{"is prefix", func(r *raw) { r.AccessSharedTopic = "homeassistant" }, false, "outside MQTT_BASE_TOPIC"},
		{"own", func(r *raw) { r.AccessSharedTopic = "building/access" }, false, ""},
	} {
		r := base()
		tt.edit(&r)
		a, errs := parseAccess(r)
		switch {
		case tt.err == "" && len(errs) > 0:
			t.Errorf("%s: %v", tt.name, errs)
		case tt.err != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.err)):
			t.Errorf("%s: errors %v, want one saying %q", tt.name, errs, tt.err)
		case tt.err == "" && a.Shared != tt.shared:
			t.Errorf("%s: shared = %v", tt.name, a.Shared)
		}
	}
	if w := accessWarnings(raw{AccessShared: "true"}); len(w) != 1 || !strings.Contains(w[0], "NFC_DEVICE") {
		t.Errorf("warnings = %v", w)
	}
}
