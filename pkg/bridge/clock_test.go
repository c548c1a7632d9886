package bridge_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// TestWrongHostClockStillOpensTheDoor: the host's clock is 10 minutes
// behind the cloud's (a Pi that booted before NTP). The bridge measures the
// offset at its first status read, warns once naming it, shows it on the
// bridge's Clock offset sensor, and an UNLOCK from Home Assistant signed
// with the cloud's time moves the lock.
func TestWrongHostClockStillOpensTheDoor(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	fake.SetClockSkew(10 * time.Minute)
	ha := broker.Subscribe(t, "#")
	st := startStack(t, broker, fake, t.TempDir())

	// Discovery names the sensor and its topic.
	cfg := ha.WaitFor(t, topics.DeviceConfig("sesame2mqtt_bridge"), nil, 10*time.Second)
	var doc hass.DeviceConfig
	if err := json.Unmarshal([]byte(cfg.Payload), &doc); err != nil {
		t.Fatal(err)
	}
	sensor, ok := doc.Components["clock_offset"]
	if !ok || sensor.DeviceClass != "duration" || sensor.Unit != "s" || sensor.EntityCategory != "diagnostic" || sensor.StateClass != "measurement" {
		t.Fatalf("clock_offset component %+v", sensor)
	}
	msg := ha.WaitFor(t, sensor.StateTopic, func(p string) bool { return strings.Contains(p, `"signing_clock":"cloud"`) }, 10*time.Second)
	var clk hass.Clock
	if err := json.Unmarshal([]byte(msg.Payload), &clk); err != nil {
		t.Fatal(err)
	}
	if clk.OffsetS < 598 || clk.OffsetS > 602 {
		t.Errorf("clock sensor %s, want about 600 s", msg.Payload)
	}
	if !msg.Retained && !retainedCopy(t, broker, sensor.StateTopic) {
		t.Error("the clock offset must be retained")
	}

	ha.WaitFor(t, topics.LockState(lockID), is("LOCKED"), 5*time.Second)
	since := time.Now()
	broker.Publish(t, topics.LockCommand(lockID), "UNLOCK", false)
	ha.WaitForAfter(t, since, topics.LockState(lockID), is("UNLOCKED"), 10*time.Second)
	res := ha.WaitForAfter(t, since, topics.LockResult(lockID), nil, 5*time.Second)
	if !strings.Contains(res.Payload, `"result":"success"`) {
		t.Errorf("result %s, want success", res.Payload)
	}
	if cmds := commands(fake); len(cmds) != 1 || !cmds[0].SignValid || cmds[0].Cmd != 83 {
		t.Errorf("commands at the fake %+v, want one unlock signed by the cloud's clock", cmds)
	}
	if fake.State(lockUUID) != sesame.StateUnlocked {
		t.Errorf("fake lock is %s", fake.State(lockUUID))
	}
	logs := st.logs.String()
	if n := strings.Count(logs, "the host's clock is 10m0s behind the Sesame cloud's"); n != 1 {
		t.Errorf("%d warnings naming the offset, want 1:\n%s", n, logs)
	}
	checkNoSecrets(t, logs, ha)
}

// retainedCopy reports whether a fresh subscriber gets topic retained.
func retainedCopy(t *testing.T, broker *mosquittotest.Broker, topic string) bool {
	t.Helper()
	late := broker.Subscribe(t, topic)
	return late.WaitFor(t, topic, nil, 5*time.Second).Retained
}
