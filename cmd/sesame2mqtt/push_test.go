package main

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/push/pushtest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
)

// pushEnv is bridgeEnv with the push feed on, pointed at the simulated one,
// and every move of the fake lock published on it as a shadow document.
func pushEnv(t testing.TB, broker *mosquittotest.Broker, fake *sesametest.Server, feed *pushtest.Server) []string {
	fake.OnChange(func(uuid string, st sesame.LockState) {
		feed.PublishMechst(uuid, pushtest.Mechst(st, 6.0, 29), map[string]bool{"00005E005300": true})
	})
	t.Cleanup(func() { fake.OnChange(nil) })
	feed.PublishMechst(lockUUID, pushtest.Mechst(fake.State(lockUUID), 6.0, 29), map[string]bool{"00005E005300": true})
	return append(bridgeEnv(t, broker, fake),
		"SESAME_PUSH=on",
		"SESAME_PUSH_POOL_ID="+feed.PoolID(),
		"SESAME_PUSH_ENDPOINT="+feed.Endpoint(),
		"SESAME_PUSH_COGNITO_URL="+feed.CognitoURL(),
		"SESAME_PUSH_SHADOW_URL="+feed.ShadowURL(),
	)
}

func webAPIStatusReads(fake *sesametest.Server) int {
	n := 0
	for _, r := range fake.Requests() {
		if r.Method == "GET" && r.Path == "/"+r.UUID {
			n++
		}
	}
	return n
}

// The binary with the push feed: the start costs no Web API read, a hand
// turn reaches Home Assistant in under a second with zero reads, the
// Activity event names it, and a command costs exactly one request.
func TestPushEndToEnd(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	feed := pushtest.Start(t)
	rec := broker.Subscribe(t, "sesame2mqtt/#")
	p := startProc(t, pushEnv(t, broker, fake, feed))
	state := "sesame2mqtt/" + lockID + "/state"
	rec.WaitFor(t, state, is("LOCKED"), 15*time.Second)
	rec.WaitFor(t, "sesame2mqtt/bridge/state_source", func(s string) bool { return strings.Contains(s, `"source":"push"`) }, 15*time.Second)

	t0 := time.Now()
	fake.Turn(lockUUID, sesame.StateUnlocked)
	got := rec.WaitForAfter(t, t0, state, is("UNLOCKED"), time.Second)
	t.Logf("hand turn -> HA: %s", got.At.Sub(t0))
	ev := rec.WaitForAfter(t, t0, "sesame2mqtt/"+lockID+"/event", nil, 10*time.Second)
	var a hass.Activity
	if err := json.Unmarshal([]byte(ev.Payload), &a); err != nil || a.EventType != hass.ActivityManualUnlocked {
		t.Errorf("activity %s", ev.Payload)
	}
	if n := webAPIStatusReads(fake); n != 0 {
		t.Errorf("%d Web API status reads, want 0; stderr:\n%s", n, p.stderr.String())
	}

	before := len(fake.Requests())
	t1 := time.Now()
	broker.Publish(t, "sesame2mqtt/"+lockID+"/set", "LOCK", false)
	res := rec.WaitForAfter(t, t1, "sesame2mqtt/"+lockID+"/result", nil, 10*time.Second)
	if !strings.Contains(res.Payload, `"result":"success"`) || !strings.Contains(res.Payload, "push") {
		t.Errorf("result %s", res.Payload)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(fake.Requests()) - before; n != 1 {
		t.Errorf("the command cost %d requests, want 1: %+v", n, fake.Requests()[before:])
	}
	p.terminate(t, 5*time.Second)
	if strings.Contains(p.stderr.String(), "X-Amz-Signature=") {
		t.Error("the log carries a presigned URL")
	}
}

// TestDemoTurnByHand: typing turn, or publishing it, turns the simulated
// lock; the state follows at once, the Activity event says manual_*.
func TestDemoTurnByHand(t *testing.T) {
	addr := freePort(t)
	p := startProcStdin(t, cleanEnv(t), "-demo", "-demo-listen", addr)
	client := connectDemo(t, p, addr, "demo-turn-test")
	waitStdout := func(want string, d time.Duration) { t.Helper(); p.waitStdout(t, want, d) }
	waitStdout("Demo door: LOCKED", 15*time.Second)
	waitStdout("type turn here", time.Second)
	if _, err := io.WriteString(p.stdin, "turn\n"); err != nil {
		t.Fatal(err)
	}
	waitStdout("Demo door: UNLOCKED", 2*time.Second)
	waitStdout("activity manual_unlocked", 10*time.Second)
	pub := client.Publish("sesame2mqtt/demo/turn", 1, false, "turn")
	if !pub.WaitTimeout(5*time.Second) || pub.Error() != nil {
		t.Fatalf("publish: %v", pub.Error())
	}
	deadline := time.Now().Add(2 * time.Second)
	for strings.Count(p.stdout.String(), "Demo door: LOCKED") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the turn published on the demo topic did not lock:\n%s", p.stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitStdout("activity manual_locked", 10*time.Second)
}
