package hass

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
// JSON is indented first so diffs stay readable.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", name, err, got)
	}
	pretty.WriteByte('\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update once): %v", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("%s differs from golden:\n got: %s\nwant: %s", name, pretty.Bytes(), want)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := JSON(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var testDiscovery = Discovery{Topics: Topics{Base: "sesame2mqtt", Prefix: "homeassistant"}, Version: "1.2.3"}

func TestDiscoveryGolden(t *testing.T) {
	golden(t, "bridge_device.golden", Marshal(testDiscovery.BridgeConfig()))
	golden(t, "lock_device.golden", Marshal(testDiscovery.LockConfig(Lock{
		ID: "488e1234abcd4ef0a1b2c3d4e5f60718", UUID: "488E1234-ABCD-4EF0-A1B2-C3D4E5F60718", Name: "Front door",
	})))
	golden(t, "lock_device_unnamed.golden", Marshal(testDiscovery.LockConfig(Lock{
		ID: "488e1234abcd4ef0a1b2c3d4e5f60718", UUID: "488E1234-ABCD-4EF0-A1B2-C3D4E5F60718", Name: "玄関",
	})))
}

// TestLockConfigAsHAReadsIt checks the keys HA requires and the invariants a
// golden file alone would not make obvious.
func TestLockConfigAsHAReadsIt(t *testing.T) {
	raw := Marshal(testDiscovery.LockConfig(Lock{ID: "abc", UUID: "ABC", Name: "Back Door"}))
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	cmps := doc["components"].(map[string]any)
	lock := cmps["lock"].(map[string]any)
	if name, present := lock["name"]; !present || name != nil {
		t.Errorf("lock name = %v (present %v), want explicit null", name, present)
	}
	if lock["default_entity_id"] != "lock.sesame_back_door" {
		t.Errorf("default_entity_id = %v", lock["default_entity_id"])
	}
	if _, bad := lock["retain"]; bad {
		t.Error("lock must not ask HA to retain commands")
	}
	for key, c := range cmps {
		c := c.(map[string]any)
		if _, bad := c["object_id"]; bad {
			t.Errorf("%s: object_id is gone from HA; use default_entity_id", key)
		}
		for _, k := range []string{"platform", "unique_id", "default_entity_id"} {
			if c[k] == nil || c[k] == "" {
				t.Errorf("component %s lacks %s", key, k)
			}
		}
		if c["entity_category"] == "config" && c["platform"] == "sensor" {
			t.Errorf("%s: sensors cannot be in the config category", key)
		}
	}
	dev := doc["device"].(map[string]any)
	if dev["via_device"] != testDiscovery.BridgeDeviceID() {
		t.Errorf("via_device = %v", dev["via_device"])
	}
	if !OwnedBy(raw, "sesame2mqtt/bridge/availability") {
		t.Error("OwnedBy must recognise our own document")
	}
	if OwnedBy(raw, "other/bridge/availability") || OwnedBy([]byte("not json"), "sesame2mqtt/bridge/availability") {
		t.Error("OwnedBy must reject documents of other bridges and garbage")
	}
}

func TestPayloadGoldens(t *testing.T) {
	hubOn, hubOff := true, false
	read := time.Date(2026, 11, 22, 3, 4, 5, 0, time.UTC)
	golden(t, "status_hub_on.golden", mustJSON(t, NewStatus(100, 6.00351, 479, &hubOn, "locked", time.Unix(1642253725, 0), read, SourceWebAPI)))
	golden(t, "status_hub_off.golden", mustJSON(t, NewStatus(7, 4.9, -12, &hubOff, "moved", time.Time{}, read, SourceShadowRead)))
	golden(t, "status_hub_unknown.golden", mustJSON(t, NewStatus(55, 5.5, 215, nil, "unlocked", time.Unix(1642253725, 0), read, SourceWebAPI)))
	golden(t, "status_push.golden", mustJSON(t, NewStatus(88, 5.93, -39, &hubOn, "locked", time.Time{}, read, SourcePush)))
	ht := 8
	golden(t, "activity_manual.golden", mustJSON(t, Activity{EventType: ActivityManualUnlocked, By: "unknown", Method: "manual", HistoryType: &ht, At: "2026-11-22T03:04:05Z"}))
	golden(t, "activity_ours.golden", mustJSON(t, Activity{EventType: ActivityWebUnlocked, By: "Alice", Method: "sesame2mqtt", At: "2026-11-22T03:04:05Z"}))
	golden(t, "state_source_push.golden", mustJSON(t, StateSource{Source: StateSourcePush, Since: "2026-11-22T03:04:05Z"}))
	golden(t, "state_source_failing.golden", mustJSON(t, StateSource{Source: StateSourceFailing, Reason: "no document from the push feed within 10s of a command", Since: "2026-11-22T03:04:05Z"}))
	golden(t, "result_success.golden", mustJSON(t, Result{Command: "unlock", Result: ResultSuccess, Detail: "unlocked (confirmed after 2.5s)", Source: "Home Assistant"}))
	golden(t, "result_jammed.golden", mustJSON(t, Result{Command: "lock", Result: ResultJammed, Detail: "lock still reports unlocked after 15s", Source: "Home Assistant"}))
	golden(t, "clock_skewed.golden", mustJSON(t, NewClock(10*time.Minute+400*time.Millisecond, true)))
	golden(t, "clock_ok.golden", mustJSON(t, NewClock(-1600*time.Millisecond, false)))
	golden(t, "result_unknown.golden", mustJSON(t, Result{Command: "unlock", Result: ResultUnknown,
		Detail: "interrupted after the cloud accepted it (the bridge is shutting down): the lock was not read back", Source: "Home Assistant"}))
	golden(t, "result_delayed.golden", mustJSON(t, Result{Command: "lock", Result: ResultSuccess, Detail: "locked (confirmed after 2.5s)",
		Source: "Alice", Delayed: true, EndedAt: "2026-11-30T07:59:58Z"}))
	restored := NewStatus(100, 6.00351, 479, &hubOn, "locked", time.Unix(1642253725, 0), read, SourceWebAPI)
	restored.Restored = true
	golden(t, "status_restored.golden", mustJSON(t, restored))
	golden(t, "usage.golden", mustJSON(t, Usage{Month: "2026-11", Used: 12, Budget: 3000, Reserve: 600, Remaining: 2988, BackgroundReads: "active", PollIntervalS: 1080}))
}

func TestLockStatePayloads(t *testing.T) {
	// The state payloads must be exactly what the discovery document declares.
	c := testDiscovery.LockConfig(Lock{ID: "x", Name: "x"}).Components["lock"]
	for declared, state := range map[string]LockState{
		c.StateLocked: Locked, c.StateUnlocked: Unlocked, c.StateLocking: Locking,
		c.StateUnlocking: Unlocking, c.StateJammed: Jammed,
	} {
		if declared != string(state) {
			t.Errorf("declared %q, publish %q", declared, state)
		}
	}
	if Reset != "None" {
		t.Errorf("Reset = %q; HA's payload_reset default is None", Reset)
	}
}

func TestNewStatusNonFinite(t *testing.T) {
	var nan float64
	nan = nan / nan
	b, err := JSON(NewStatus(1, nan, 0, nil, "locked", time.Time{}, time.Unix(0, 0), SourceWebAPI))
	if err != nil {
		t.Fatalf("NaN voltage must not break the payload: %v", err)
	}
	if !strings.Contains(string(b), `"voltage":0`) {
		t.Errorf("got %s", b)
	}
}

func TestParseCommand(t *testing.T) {
	tests := []struct {
		kind    CommandKind
		payload string
		want    Action
		wantErr bool
	}{
		{TopicSet, "LOCK", ActionLock, false},
		{TopicSet, "UNLOCK", ActionUnlock, false},
		{TopicSet, "lock", ActionNone, true},
		{TopicSet, "LOCK\n", ActionNone, true},
		{TopicSet, " UNLOCK", ActionNone, true},
		{TopicSet, "", ActionNone, true},
		{TopicSet, "OPEN", ActionNone, true},
		{TopicSet, "PRESS", ActionNone, true},
		{TopicToggle, "PRESS", ActionToggle, false},
		{TopicToggle, "UNLOCK", ActionNone, true},
		{TopicRefresh, "PRESS", ActionRefresh, false},
		{TopicRefresh, "press", ActionNone, true},
		{TopicUnknown, "LOCK", ActionNone, true},
	}
	for _, tt := range tests {
		got, err := ParseCommand(tt.kind, []byte(tt.payload))
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseCommand(%d, %q) = %v, %v; want %v, err %v", tt.kind, tt.payload, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrBadPayload) {
			t.Errorf("error %v does not wrap ErrBadPayload", err)
		}
	}
}

func TestDescribeDoesNotEchoBinary(t *testing.T) {
	_, err := ParseCommand(TopicSet, []byte("\x1b[31mUNLOCK\x00"))
	if err == nil || strings.ContainsAny(err.Error(), "\x1b\x00") {
		t.Fatalf("error must not carry control bytes: %q", err)
	}
	_, err = ParseCommand(TopicSet, bytes.Repeat([]byte("A"), 4096))
	if err == nil || len(err.Error()) > 200 {
		t.Fatalf("long payload must be cut and measured, not echoed: %d bytes", len(err.Error()))
	}
}

func TestDescribe(t *testing.T) {
	long := strings.Repeat("A", 70000)
	tests := []struct{ payload, want string }{
		{"", "empty payload"},
		{"UNLOCK\n", `got "UNLOCK\n"`},
		{"unlock", `got "unlock"`},
		{" LOCK", `got " LOCK"`},
		{"\x1b[31mUNLOCK\x00", `got "\x1b[31mUNLOCK\x00"`},
		{"\x00\xff", `got "\x00\xff"`},
		{"玄関", `got "玄関"`},
		{"\u202eKCOLNU", `got "\u202eKCOLNU"`}, // a right-to-left override is not shown raw
		{`say "hi"`, `got "say \"hi\""`},
		{strings.Repeat("B", 64), `got "` + strings.Repeat("B", 64) + `"`},
		{long, `got "` + long[:64] + `"…(70000 bytes)`},
		// 21 three-byte characters are 63 bytes; the 22nd is not split.
		{strings.Repeat("錠", 30), `got "` + strings.Repeat("錠", 21) + `"…(90 bytes)`},
		{strings.Repeat("\xff", 100), `got "` + strings.Repeat(`\xff`, 64) + `"…(100 bytes)`},
	}
	for _, tt := range tests {
		if got := describe([]byte(tt.payload)); got != tt.want {
			t.Errorf("describe(%.40q) = %s, want %s", tt.payload, got, tt.want)
		}
	}
	_, err := ParseCommand(TopicSet, []byte("UNLOCK\n"))
	if err == nil || !strings.Contains(err.Error(), `got "UNLOCK\n"`) {
		t.Errorf("ParseCommand error %v does not quote the payload", err)
	}
}

func TestParseCommandTopic(t *testing.T) {
	tp := Topics{Base: "s2m/home", Prefix: "homeassistant"}
	tests := []struct {
		topic string
		id    string
		kind  CommandKind
		ok    bool
	}{
		{"s2m/home/abc/set", "abc", TopicSet, true},
		{"s2m/home/abc/toggle", "abc", TopicToggle, true},
		{"s2m/home/abc/refresh", "abc", TopicRefresh, true},
		{"s2m/home/abc/state", "", TopicUnknown, false},
		{"s2m/home//set", "", TopicUnknown, false},
		{"s2m/home/abc/set/x", "", TopicUnknown, false},
		{"s2m/homeabc/set", "", TopicUnknown, false},
		{"other/abc/set", "", TopicUnknown, false},
	}
	for _, tt := range tests {
		id, kind, ok := tp.ParseCommandTopic(tt.topic)
		if id != tt.id || kind != tt.kind || ok != tt.ok {
			t.Errorf("ParseCommandTopic(%q) = %q, %d, %v", tt.topic, id, kind, ok)
		}
	}
	// Every command topic the discovery document announces parses back.
	c := Discovery{Topics: tp}.LockConfig(Lock{ID: "abc", Name: "n"})
	for key, want := range map[string]CommandKind{"lock": TopicSet, "toggle": TopicToggle, "refresh": TopicRefresh} {
		id, kind, ok := tp.ParseCommandTopic(c.Components[key].CommandTopic)
		if !ok || id != "abc" || kind != want {
			t.Errorf("%s command topic %q does not parse back", key, c.Components[key].CommandTopic)
		}
	}
	if id, ok := tp.DeviceIDFromConfigTopic("homeassistant/device/sesame_abc/config"); !ok || id != "sesame_abc" {
		t.Errorf("DeviceIDFromConfigTopic = %q, %v", id, ok)
	}
	if _, ok := tp.DeviceIDFromConfigTopic("homeassistant/lock/x/config"); ok {
		t.Error("per-entity discovery topic taken for a device topic")
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"Front door":      "front_door",
		"  Büro / Tür 2 ": "b_ro_t_r_2",
		"玄関":              "",
		"A--B__c":         "a_b_c",
	} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
	for name, want := range map[string]string{"Sesame 488E": "488e", "Sesame": "abcdef01", "Front": "front"} {
		if got := entitySlug(Lock{ID: "abcdef0123", Name: name}); got != want {
			t.Errorf("entitySlug(%q) = %q, want %q", name, got, want)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"LOCK", "UNLOCK", "PRESS", "", "lock", "LOCK\x00", "\xff\xfe"} {
		f.Add(uint8(TopicSet), []byte(s))
		f.Add(uint8(TopicToggle), []byte(s))
	}
	f.Fuzz(func(t *testing.T, kind uint8, payload []byte) {
		a, err := ParseCommand(CommandKind(kind%4), payload)
		if err != nil {
			if a != ActionNone || !errors.Is(err, ErrBadPayload) {
				t.Fatalf("error with action %v / unwrapped %v", a, err)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("error too long: %d", len(err.Error()))
			}
			return
		}
		// Accepted only for the exact payloads.
		p := string(payload)
		if p != PayloadLock && p != PayloadUnlock && p != PayloadPress {
			t.Fatalf("accepted %q as %v", payload, a)
		}
	})
}

// TestLongestTopic: no topic in any discovery document, nor any topic the
// bridge subscribes to, is longer than LongestTopic says.
func TestLongestTopic(t *testing.T) {
	for _, tp := range []Topics{{Base: "sesame2mqtt", Prefix: "homeassistant"}, {Base: "a", Prefix: "very/long/discovery/prefix/indeed"}, {Base: "x/" + strings.Repeat("b", 300), Prefix: "h"}} {
		ids := []string{"488e1234abcd4ef0a1b2c3d4e5f60718", "00000000000000000000000000000001"}
		max := len(tp.LongestTopic(ids))
		d := Discovery{Topics: tp}
		docs := []DeviceConfig{d.BridgeConfig(), d.ReaderConfig(Reader{NFC: true, Feedback: []string{"ok", "ko"}})}
		for _, id := range ids {
			docs = append(docs, d.LockConfig(Lock{ID: id, UUID: id, Name: "x"}))
		}
		var seen []string
		for _, doc := range docs {
			for _, a := range doc.Availability {
				seen = append(seen, a.Topic)
			}
			for _, c := range doc.Components {
				seen = append(seen, c.Topic, c.StateTopic, c.CommandTopic, c.JSONAttributesTopic)
			}
		}
		seen = append(seen, tp.DeviceConfig(d.BridgeDeviceID()), tp.DeviceConfig(d.ReaderDeviceID()), tp.DeviceConfig(LockDeviceID(ids[0])), tp.HAStatus())
		seen = append(seen, tp.CommandFilters()...)
		longest := ""
		for _, s := range seen {
			if len(s) > max {
				t.Errorf("%s: topic %q (%d bytes) is longer than LongestTopic's %d", tp.Base, s, len(s), max)
			}
			if len(s) > len(longest) {
				longest = s
			}
		}
		if len(longest) != max {
			t.Errorf("%s: LongestTopic %d bytes, but the longest topic in use is %q (%d)", tp.Base, max, longest, len(longest))
		}
	}
}

func TestActivityOf(t *testing.T) {
	for typ, want := range map[int][2]string{
		6: {ActivityAutoLocked, "auto_lock"}, 7: {ActivityManualLocked, "manual"}, 8: {ActivityManualUnlocked, "manual"},
		2: {ActivityAppUnlocked, "bluetooth"}, 15: {ActivityAppUnlocked, "wifi_module"}, 16: {ActivityWebLocked, "web_api"},
		17: {ActivityWebUnlocked, "web_api"}, 3: {ActivityOther, "unknown"}, 99: {ActivityOther, "unknown"},
	} {
		if e, m := ActivityOf(typ); e != want[0] || m != want[1] {
			t.Errorf("ActivityOf(%d) = %s, %s; want %v", typ, e, m, want)
		}
	}
	for _, e := range ActivityTypes {
		if e == "" {
			t.Error("empty event type")
		}
	}
}
