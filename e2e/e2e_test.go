//go:build e2e

// Package e2e is the contract test against a real Home Assistant: the
// bridge's -demo (simulated lock and card reader, real libnfc) on a real
// Mosquitto, checked only through Home Assistant's own REST and WebSocket
// APIs. .ci/e2e (make e2e) installs and starts Home Assistant and Mosquitto
// and runs it; the environment says where they are:
//
//	E2E_HA_URL          Home Assistant, http://127.0.0.1:PORT, not onboarded yet
//	E2E_HA_LOG          its home-assistant.log
//	E2E_MQTT_PORT       Mosquitto on 127.0.0.1 (password logins only)
//	E2E_HA_MQTT_USER, E2E_HA_MQTT_PASS          Home Assistant's login
//	E2E_BRIDGE_MQTT_USER, E2E_BRIDGE_MQTT_PASS  the bridge's login
//	E2E_BRIDGE          the sesame2mqtt binary
//	E2E_BRIDGE_LOG      where the bridge's output goes
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bounds of the waits. Generous: the machine is shared; nothing here
// measures speed.
const (
	haUpTimeout      = 240 * time.Second // first start compiles nothing, but loads ~100 integrations
	discoveryTimeout = 60 * time.Second
	stepTimeout      = 40 * time.Second // a command: LOCKING at once, read back after 2.5 s
	stopTimeout      = 20 * time.Second
)

// wantDevices are the devices, by their MQTT identifier.
var wantDevices = map[string]device{
	"bridge": {Identifiers: [][]string{{"mqtt", "sesame2mqtt_bridge"}}, Name: "Sesame2MQTT bridge", Manufacturer: "sesame2mqtt", Model: "Bridge"},
	"lock": {Identifiers: [][]string{{"mqtt", "sesame_" + demoLockID}}, Name: demoName, Manufacturer: "CANDY HOUSE", Model: "Sesame",
		SerialNumber: demoUUID},
	"reader": {Identifiers: [][]string{{"mqtt", "sesame2mqtt_reader"}}, Name: "Door reader", Manufacturer: "sesame2mqtt", Model: "NFC reader"},
}

func env(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run this test through .ci/e2e (make e2e)", name)
	}
	return v
}

func TestHomeAssistant(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	h := newHA(env(t, "E2E_HA_URL"))
	haLog := env(t, "E2E_HA_LOG")
	mqttPort, err := strconv.Atoi(env(t, "E2E_MQTT_PORT"))
	if err != nil {
		t.Fatalf("E2E_MQTT_PORT: %v", err)
	}

	step(t, "waiting for Home Assistant at %s", h.base)
	upCtx, upCancel := context.WithTimeout(ctx, haUpTimeout)
	err = h.waitUp(upCtx)
	upCancel()
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Version string `json:"version"`
	}
	step(t, "onboarding: creating the owner and logging in")
	if err := h.onboard(ctx, "e2e", "e2e-password-not-secret"); err != nil {
		t.Fatal(err)
	}
	if err := h.do(ctx, "GET", "/api/config", nil, &cfg); err != nil {
		t.Fatal(err)
	}
	step(t, "Home Assistant %s is up; adding the MQTT integration (broker 127.0.0.1:%d)", cfg.Version, mqttPort)
	entry, err := h.addMQTT(ctx, "127.0.0.1", mqttPort, env(t, "E2E_HA_MQTT_USER"), env(t, "E2E_HA_MQTT_PASS"))
	if err != nil {
		t.Fatal(err)
	}
	if entry.Result.State != "loaded" {
		t.Fatalf("MQTT config entry is %q, want loaded", entry.Result.State)
	}

	w, err := h.dialWS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	for _, ev := range []string{"state_changed", "tag_scanned"} {
		if err := w.subscribe(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	ev := &watch{t: t, w: w}

	step(t, "starting the bridge: %s -demo", env(t, "E2E_BRIDGE"))
	bridge := startBridge(t, mqttPort)

	step(t, "waiting for discovery: the devices and entities the README promises")
	devices, entities := waitDiscovered(ctx, t, w)
	checkDevices(t, devices)
	checkEntities(ctx, t, h, devices, entities)

	lockID := "lock.sesame_demo_door"
	step(t, "waiting for the lock's first read-back: locked")
	waitState(ctx, t, h, lockID, "locked")
	waitAttr(ctx, t, h, lockID, "sesame_status", "locked") // the cloud's own word

	step(t, "lock.unlock → unlocking → unlocked")
	mark := ev.mark()
	if err := h.call(ctx, "lock", "unlock", map[string]any{"entity_id": lockID}); err != nil {
		t.Fatal(err)
	}
	ev.states(ctx, mark, lockID, "unlocking", "unlocked")
	waitAttr(ctx, t, h, lockID, "sesame_status", "unlocked")
	// The demo's push feed is healthy: the state comes from it, background
	// reads are off, and the command's answer measured the clock.
	waitState(ctx, t, h, "sensor.sesame2mqtt_bridge_state_source", "push")
	waitAttr(ctx, t, h, "sensor.sesame2mqtt_bridge_api_requests", "background_reads", "push")
	if s := waitState(ctx, t, h, "sensor.sesame2mqtt_bridge_clock_offset", ""); s.State == "" {
		t.Error("no clock offset after the cloud answered a command")
	} else if _, err := strconv.ParseFloat(s.State, 64); err != nil {
		t.Errorf("clock offset %q is not a number", s.State)
	}
	waitAttr(ctx, t, h, "sensor.sesame2mqtt_bridge_clock_offset", "signing_clock", "host")

	step(t, "lock.lock → locking → locked")
	mark = ev.mark()
	if err := h.call(ctx, "lock", "lock", map[string]any{"entity_id": lockID}); err != nil {
		t.Fatal(err)
	}
	ev.states(ctx, mark, lockID, "locking", "locked")

	step(t, "Toggle button (lock locked) → unlocking → unlocked")
	mark = ev.mark()
	if err := h.call(ctx, "button", "press", map[string]any{"entity_id": "button.sesame_demo_door_toggle"}); err != nil {
		t.Fatal(err)
	}
	ev.states(ctx, mark, lockID, "unlocking", "unlocked")

	readerDev := devices["reader"].ID
	step(t, "tap alice (allowlisted; the demo's cards toggle): tag_scanned, access_granted, locking → locked")
	mark = ev.mark()
	if err := h.call(ctx, "mqtt", "publish", map[string]any{"topic": tapTopic, "payload": "alice"}); err != nil {
		t.Fatal(err)
	}
	ev.tagScanned(ctx, mark, aliceUID, readerDev)
	ev.accessEvent(ctx, mark, "access_granted", map[string]string{"holder": "Alice", "action": "toggle", "lock": demoName, "card_type": "iso14443a"})
	ev.states(ctx, mark, lockID, "locking", "locked")
	ev.accessEvent(ctx, mark, "action_succeeded", map[string]string{"holder": "Alice"})

	step(t, "tap phone (a random UID): access_denied, and not a tag: HA's tag registry never sees it")
	mark = ev.mark()
	if err := h.call(ctx, "mqtt", "publish", map[string]any{"topic": tapTopic, "payload": "phone"}); err != nil {
		t.Fatal(err)
	}
	ev.accessEvent(ctx, mark, "access_denied", map[string]string{"holder": "unknown", "uid": ""})

	step(t, "tap stranger (not allowlisted): tag_scanned, access_denied with its uid, the lock does not move")
	if err := h.call(ctx, "mqtt", "publish", map[string]any{"topic": tapTopic, "payload": "stranger"}); err != nil {
		t.Fatal(err)
	}
	// Taps are handled in order and MQTT keeps the order: by the stranger's
	// scan, a scan of the phone would have arrived.
	ev.tagScanned(ctx, mark, strangerUID, readerDev)
	ev.accessEvent(ctx, mark, "access_denied", map[string]string{"holder": "unknown", "uid": strangerUID})
	if scans := ev.tagIDs(mark); slices.Contains(scans, phoneUID) || len(scans) != 1 {
		t.Fatalf("tag_scanned since the phone's tap: %v, want only the stranger's %s", scans, strangerUID)
	}
	if s, err := h.state(ctx, lockID); err != nil || s.State != "locked" {
		t.Fatalf("after the unknown taps the lock is %q (%v), want locked", s.State, err)
	}
	if moved := ev.stateChanges(mark, lockID); len(moved) > 0 {
		t.Fatalf("an unknown card moved the lock: %v", moved)
	}
	var tags []struct {
		ID string `json:"id"`
	}
	if err := w.command(ctx, map[string]any{"type": "tag/list"}, &tags); err != nil {
		t.Fatal(err)
	}
	var tagIDs []string
	for _, tg := range tags {
		tagIDs = append(tagIDs, tg.ID)
	}
	slices.Sort(tagIDs)
	if want := []string{strangerUID, aliceUID}; !slices.Equal(tagIDs, want) {
		t.Fatalf("Settings → Tags (tag/list) has %v, want %v", tagIDs, want)
	}

	step(t, "SIGTERM to the bridge: every entity of its devices becomes unavailable")
	bridge.stop(t)
	waitUnavailable(ctx, t, h, entities)

	if n := w.lost(); n > 0 {
		t.Fatalf("%d WebSocket events dropped: the test read them too slowly", n)
	}
	step(t, "Home Assistant's log: no warning or error about MQTT discovery, our devices or our entities")
	checkLog(t, haLog)
}

func step(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("e2e: "+format, args...)
}

// bridgeProc is the running bridge.
type bridgeProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // Wait's result, once exited is closed
}

func startBridge(t *testing.T, mqttPort int) *bridgeProc {
	t.Helper()
	out, err := os.OpenFile(env(t, "E2E_BRIDGE_LOG"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatalf("bridge log: %v", err)
	}
	t.Cleanup(func() { _ = out.Close() })
	cmd := exec.Command(env(t, "E2E_BRIDGE"), "-demo")
	var environ []string
	for _, kv := range os.Environ() {
		// The demo's own settings, not the caller's.
		if !strings.HasPrefix(kv, "MQTT_") && !strings.HasPrefix(kv, "NFC_") && !strings.HasPrefix(kv, "SESAME_") {
			environ = append(environ, kv)
		}
	}
	cmd.Env = append(environ,
		"MQTT_URL=tcp://127.0.0.1:"+strconv.Itoa(mqttPort),
		"MQTT_USERNAME="+env(t, "E2E_BRIDGE_MQTT_USER"),
		"MQTT_PASSWORD="+env(t, "E2E_BRIDGE_MQTT_PASS"),
		"LOG_LEVEL=debug",
	)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the bridge: %v", err)
	}
	b := &bridgeProc{cmd: cmd, exited: make(chan struct{})}
	go func() { b.err = cmd.Wait(); close(b.exited) }()
	t.Cleanup(func() {
		select {
		case <-b.exited:
		default:
			_ = cmd.Process.Kill()
			<-b.exited
		}
	})
	return b
}

// stop sends SIGTERM and waits (bounded) for a clean exit.
func (b *bridgeProc) stop(t *testing.T) {
	t.Helper()
	select {
	case <-b.exited:
		t.Fatalf("the bridge exited before SIGTERM: %v", b.err)
	default:
	}
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-b.exited:
		if b.err != nil {
			t.Fatalf("the bridge exited with %v after SIGTERM, want status 0", b.err)
		}
	case <-time.After(stopTimeout):
		t.Fatalf("the bridge still runs %v after SIGTERM", stopTimeout)
	}
}

// waitDiscovered waits until HA's registries hold the three devices and
// every expected entity, and returns them: devices by role, entities by id.
func waitDiscovered(ctx context.Context, t *testing.T, w *ws) (map[string]device, map[string]entity) {
	t.Helper()
	deadline := time.Now().Add(discoveryTimeout)
	for {
		var devs []device
		var ents []entity
		if err := w.command(ctx, map[string]any{"type": "config/device_registry/list"}, &devs); err != nil {
			t.Fatal(err)
		}
		if err := w.command(ctx, map[string]any{"type": "config/entity_registry/list"}, &ents); err != nil {
			t.Fatal(err)
		}
		devices := map[string]device{}
		for _, d := range devs {
			for role, want := range wantDevices {
				if slices.EqualFunc(d.Identifiers, want.Identifiers, slices.Equal) {
					devices[role] = d
				}
			}
		}
		ids := map[string]bool{}
		for _, d := range devices {
			ids[d.ID] = true
		}
		entities := map[string]entity{}
		for _, e := range ents {
			if ids[e.DeviceID] || wantEntities[e.EntityID].device != "" {
				entities[e.EntityID] = e
			}
		}
		var missing []string
		for role := range wantDevices {
			if _, ok := devices[role]; !ok {
				missing = append(missing, "device "+role)
			}
		}
		for id := range wantEntities {
			if _, ok := entities[id]; !ok {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return devices, entities
		}
		if time.Now().After(deadline) {
			var have []string
			for _, e := range ents {
				if e.Platform == "mqtt" {
					have = append(have, e.EntityID+" ("+e.UniqueID+")")
				}
			}
			t.Fatalf("after %v still missing: %v\nMQTT entities HA has: %v", discoveryTimeout, missing, have)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func checkDevices(t *testing.T, devices map[string]device) {
	t.Helper()
	bridgeID := devices["bridge"].ID
	for role, want := range wantDevices {
		got := devices[role]
		if got.Name != want.Name || got.Manufacturer != want.Manufacturer || got.Model != want.Model || got.SerialNumber != want.SerialNumber {
			t.Errorf("device %s: got name %q, manufacturer %q, model %q, serial %q; want %q, %q, %q, %q", role,
				got.Name, got.Manufacturer, got.Model, got.SerialNumber, want.Name, want.Manufacturer, want.Model, want.SerialNumber)
		}
		if got.SWVersion == "" && role != "lock" {
			t.Errorf("device %s: no sw_version", role)
		}
		wantVia := bridgeID
		if role == "bridge" {
			wantVia = ""
		}
		if got.ViaDeviceID != wantVia {
			t.Errorf("device %s: via_device_id %q, want %q (the bridge device)", role, got.ViaDeviceID, wantVia)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// checkEntities compares the registry entries and states of our devices'
// entities with what the README promises: no entity missing, none extra,
// each on its device, with its name, category, class and unit, available.
func checkEntities(ctx context.Context, t *testing.T, h *ha, devices map[string]device, entities map[string]entity) {
	t.Helper()
	roleOf := map[string]string{}
	for role, d := range devices {
		roleOf[d.ID] = role
	}
	// The registry is filled when the discovery arrives; states and
	// attributes follow with the retained availability and status
	// messages: poll until every promise holds, report what did not.
	deadline := time.Now().Add(stepTimeout)
	for {
		problems := entityProblems(ctx, h, devices, entities, roleOf)
		if len(problems) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v:\n%s", stepTimeout, strings.Join(problems, "\n"))
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	// Values that prove the templates and topics are wired, not just present.
	if s, _ := h.state(ctx, "event.sesame2mqtt_reader_access"); !slices.Equal(toStrings(s.Attributes["event_types"]),
		[]string{"access_granted", "access_denied", "lockout", "action_succeeded", "action_failed",
			"card_enrolled", "enroll_failed", "card_changed", "change_refused"}) {
		t.Errorf("event types %v", s.Attributes["event_types"])
	}
	waitState(ctx, t, h, "binary_sensor.sesame2mqtt_reader_connectivity", "on")
	if s, _ := h.state(ctx, "binary_sensor.sesame2mqtt_reader_connectivity"); attr(s, "status") != "connected" {
		t.Errorf("reader status attribute %q, want connected", attr(s, "status"))
	}
	waitState(ctx, t, h, "binary_sensor.sesame_demo_door_hub", "on")
	for _, id := range []string{"sensor.sesame_demo_door_battery", "sensor.sesame_demo_door_voltage", "sensor.sesame_demo_door_position", "sensor.sesame2mqtt_bridge_api_requests"} {
		s := waitState(ctx, t, h, id, "")
		if _, err := strconv.ParseFloat(s.State, 64); err != nil {
			t.Errorf("%s: state %q is not a number", id, s.State)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func entityProblems(ctx context.Context, h *ha, devices map[string]device, entities map[string]entity, roleOf map[string]string) []string {
	var p []string
	for _, id := range slices.Sorted(maps.Keys(entities)) {
		e := entities[id]
		want, ok := wantEntities[id]
		if !ok {
			p = append(p, fmt.Sprintf("%s (unique_id %s) is on our %s device but the README does not mention it", id, e.UniqueID, roleOf[e.DeviceID]))
			continue
		}
		if e.Platform != "mqtt" {
			p = append(p, fmt.Sprintf("%s: platform %q, want mqtt", id, e.Platform))
		}
		if got := roleOf[e.DeviceID]; got != want.device {
			p = append(p, fmt.Sprintf("%s: on device %q, want the %s device", id, got, want.device))
		}
		if e.EntityCategory != want.category {
			p = append(p, fmt.Sprintf("%s: entity_category %q, want %q", id, e.EntityCategory, want.category))
		}
		if e.DisabledBy != "" {
			p = append(p, fmt.Sprintf("%s: disabled by %s", id, e.DisabledBy))
		}
		s, err := h.state(ctx, id)
		if err != nil {
			p = append(p, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		wantFriendly := devices[want.device].Name
		if want.name != "" {
			wantFriendly += " " + want.name
		}
		if got := attr(s, "friendly_name"); got != wantFriendly {
			p = append(p, fmt.Sprintf("%s: friendly_name %q, want %q", id, got, wantFriendly))
		}
		for _, key := range []string{"device_class", "unit_of_measurement", "state_class"} {
			w := map[string]string{"device_class": want.deviceClass, "unit_of_measurement": want.unit, "state_class": want.stateClass}[key]
			if got := attr(s, key); got != w {
				p = append(p, fmt.Sprintf("%s: %s %q, want %q", id, key, got, w))
			}
		}
		for _, a := range want.attributes {
			if _, ok := s.Attributes[a]; !ok {
				p = append(p, fmt.Sprintf("%s: no attribute %q (has %v)", id, a, slices.Sorted(maps.Keys(s.Attributes))))
			}
		}
		if s.State == "unavailable" {
			p = append(p, id+" is unavailable while the bridge runs")
		}
	}
	return p
}

func attr(s state, key string) string {
	switch v := s.Attributes[key].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// waitState polls until the entity has the state (any state other than
// unknown and unavailable when want is empty).
func waitState(ctx context.Context, t *testing.T, h *ha, id, want string) state {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		s, err := h.state(ctx, id)
		if err == nil && (s.State == want || want == "" && s.State != "unknown" && s.State != "unavailable") {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: state %q (%v) after %v, want %q", id, s.State, err, stepTimeout, cmp(want, "a value"))
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitAttr polls until the entity's attribute has the value.
func waitAttr(ctx context.Context, t *testing.T, h *ha, id, key, want string) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		s, err := h.state(ctx, id)
		if err == nil && attr(s, key) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: attribute %s %q (%v) after %v, want %q", id, key, attr(s, key), err, stepTimeout, want)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func cmp(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

func waitUnavailable(ctx context.Context, t *testing.T, h *ha, entities map[string]entity) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		var still []string
		for id := range entities {
			s, err := h.state(ctx, id)
			if err != nil || s.State != "unavailable" {
				still = append(still, id+"="+s.State)
			}
		}
		if len(still) == 0 {
			return
		}
		if time.Now().After(deadline) {
			slices.Sort(still)
			t.Fatalf("after SIGTERM, not unavailable after %v: %v", stepTimeout, still)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// watch keeps every WebSocket event seen, so that a step can look for what
// happened since its mark, in order.
type watch struct {
	t    *testing.T
	w    *ws
	seen []wsEvent
}

func (x *watch) drain() {
	for {
		select {
		case e := <-x.w.events:
			x.seen = append(x.seen, e)
		default:
			return
		}
	}
}

func (x *watch) mark() int { x.drain(); return len(x.seen) }

// find returns the index of the first event at or after from that matches,
// waiting for more events until stepTimeout; -1 when none came.
func (x *watch) find(ctx context.Context, from int, match func(wsEvent) bool) int {
	deadline := time.NewTimer(stepTimeout)
	defer deadline.Stop()
	for i := from; ; i++ {
		for i >= len(x.seen) {
			select {
			case e := <-x.w.events:
				x.seen = append(x.seen, e)
			case <-deadline.C:
				return -1
			case <-ctx.Done():
				return -1
			}
		}
		if match(x.seen[i]) {
			return i
		}
	}
}

type stateChange struct {
	EntityID string `json:"entity_id"`
	NewState *state `json:"new_state"`
}

func decodeChange(e wsEvent) (stateChange, bool) {
	var c stateChange
	if e.EventType != "state_changed" || json.Unmarshal(e.Data, &c) != nil || c.NewState == nil {
		return c, false
	}
	return c, true
}

// stateChanges lists the states entityID went through since from.
func (x *watch) stateChanges(from int, entityID string) []string {
	x.drain()
	var out []string
	for _, e := range x.seen[from:] {
		if c, ok := decodeChange(e); ok && c.EntityID == entityID {
			out = append(out, c.NewState.State)
		}
	}
	return out
}

// states waits until entityID went through want, in order, since from.
func (x *watch) states(ctx context.Context, from int, entityID string, want ...string) {
	x.t.Helper()
	i := from
	for _, w := range want {
		j := x.find(ctx, i, func(e wsEvent) bool {
			c, ok := decodeChange(e)
			return ok && c.EntityID == entityID && c.NewState.State == w
		})
		if j < 0 {
			x.t.Fatalf("%s: want the states %v, saw %v", entityID, want, x.stateChanges(from, entityID))
		}
		i = j + 1
	}
}

// tagScanned waits for HA's tag_scanned event for uid from the reader.
func (x *watch) tagScanned(ctx context.Context, from int, uid, deviceID string) {
	x.t.Helper()
	type scan struct {
		TagID    string `json:"tag_id"`
		DeviceID string `json:"device_id"`
	}
	var scans []scan
	j := x.find(ctx, from, func(e wsEvent) bool {
		var s scan
		if e.EventType != "tag_scanned" || json.Unmarshal(e.Data, &s) != nil {
			return false
		}
		scans = append(scans, s)
		return s.TagID == uid
	})
	if j < 0 {
		x.t.Fatalf("no tag_scanned event for %s; saw %+v", uid, scans)
	}
	if s := scans[len(scans)-1]; s.DeviceID != deviceID {
		x.t.Fatalf("tag_scanned for %s names device %q, want the reader %q", uid, s.DeviceID, deviceID)
	}
}

// tagIDs lists the tag ids of the tag_scanned events since from.
func (x *watch) tagIDs(from int) []string {
	x.drain()
	var out []string
	for _, e := range x.seen[from:] {
		var s struct {
			TagID string `json:"tag_id"`
		}
		if e.EventType == "tag_scanned" && json.Unmarshal(e.Data, &s) == nil {
			out = append(out, s.TagID)
		}
	}
	return out
}

// accessEvent waits for the Access event entity to report eventType with
// the attributes given, and returns its index in seen.
func (x *watch) accessEvent(ctx context.Context, from int, eventType string, attrs map[string]string) int {
	x.t.Helper()
	const id = "event.sesame2mqtt_reader_access"
	var got []map[string]any
	j := x.find(ctx, from, func(e wsEvent) bool {
		c, ok := decodeChange(e)
		if !ok || c.EntityID != id {
			return false
		}
		got = append(got, c.NewState.Attributes)
		if attr(*c.NewState, "event_type") != eventType {
			return false
		}
		for k, v := range attrs {
			if attr(*c.NewState, k) != v {
				return false
			}
		}
		return true
	})
	if j < 0 {
		x.t.Fatalf("%s: no %s with %v; events seen: %v", id, eventType, attrs, got)
	}
	return j
}

// logRecordRE is the start of a record in home-assistant.log.
// "2026-12-02 01:45:18.346+00:00 ERROR (MainThread) [logger] message"
var logRecordRE = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+(?:[+-]\d\d:\d\d)? (DEBUG|INFO|WARNING|ERROR|CRITICAL) \(`)

// oursRE marks a record about MQTT, its discovery, our devices or entities,
// or the entity platforms they use.
var oursRE = regexp.MustCompile(`(?i)mqtt|sesame|demo door|door reader|demo_door|` +
	`homeassistant\.components\.(lock|sensor|binary_sensor|button|event|tag)\b`)

// checkLog fails on every WARNING, ERROR or CRITICAL record of HA's log
// that concerns us, and lists the others for information.
func checkLog(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("Home Assistant's log: %v", err)
	}
	defer f.Close()
	var records []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if logRecordRE.MatchString(line) || len(records) == 0 {
			records = append(records, line)
		} else {
			records[len(records)-1] += "\n" + line
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("Home Assistant's log: %v", err)
	}
	if len(records) == 0 {
		t.Fatal("Home Assistant's log is empty: wrong file?")
	}
	var ours, others []string
	mqttRecords := 0
	for _, r := range records {
		m := logRecordRE.FindStringSubmatch(r)
		if m == nil {
			continue
		}
		if m[1] == "DEBUG" || m[1] == "INFO" {
			if strings.Contains(r, "[homeassistant.components.mqtt") {
				mqttRecords++
			}
			continue
		}
		if oursRE.MatchString(r) {
			ours = append(ours, r)
		} else {
			others = append(others, r)
		}
	}
	// The MQTT integration logs at debug level (e2e/configuration.yaml):
	// none of its records found means this reads the wrong file or format.
	if mqttRecords == 0 {
		t.Fatalf("Home Assistant's log (%d records) has no record of the MQTT integration: wrong file, or its format changed", len(records))
	}
	t.Logf("e2e: %d log records, %d of the MQTT integration at debug/info level", len(records), mqttRecords)
	for _, r := range others {
		first, _, _ := strings.Cut(r, "\n")
		t.Logf("e2e: (not ours) %s", first)
	}
	if len(ours) > 0 {
		t.Fatalf("Home Assistant's log has %d warnings/errors about MQTT or our devices:\n%s", len(ours), strings.Join(ours, "\n"))
	}
}
