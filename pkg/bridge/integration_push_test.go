package bridge_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/bridge"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
)

var pushTiming = bridge.Timing{
	Freshness:     5 * time.Second,
	ConfirmAt:     []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, 900 * time.Millisecond, 1500 * time.Millisecond},
	StatusTimeout: 2 * time.Second,
	PushSilence:   time.Second,
	HistoryDelay:  200 * time.Millisecond,
}

func statusReads(fake *sesametest.Server) int {
	n := 0
	for _, r := range fake.Requests() {
		if r.Method == "GET" && r.Path == "/"+r.UUID {
			n++
		}
	}
	return n
}

// A lock turned by hand reaches Home Assistant at once with zero Web API
// status reads, and the Activity event names how it was turned.
func TestPushHandTurnReachesHA(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	ha := broker.Subscribe(t, topics.Base+"/#")
	tm := pushTiming
	startStackWith(t, broker, fake, t.TempDir(), stackOptions{push: true, timing: &tm})
	ha.WaitFor(t, topics.LockState(lockID), is("LOCKED"), 10*time.Second)

	t0 := time.Now()
	fake.Turn(lockUUID, sesame.StateUnlocked)
	got := ha.WaitForAfter(t, t0, topics.LockState(lockID), is("UNLOCKED"), time.Second)
	t.Logf("hand turn -> UNLOCKED at HA: %s", got.At.Sub(t0))
	st := ha.WaitForAfter(t, t0, topics.LockStatus(lockID), nil, time.Second)
	var s hass.Status
	if err := json.Unmarshal([]byte(st.Payload), &s); err != nil || s.Source != hass.SourcePush {
		t.Errorf("status %s: want source push", st.Payload)
	}
	ev := ha.WaitForAfter(t, t0, topics.LockActivity(lockID), nil, 5*time.Second)
	var a hass.Activity
	if err := json.Unmarshal([]byte(ev.Payload), &a); err != nil {
		t.Fatal(err)
	}
	if a.EventType != hass.ActivityManualUnlocked || a.Method != "manual" {
		t.Errorf("activity %+v", a)
	}
	if n := statusReads(fake); n != 0 {
		t.Errorf("%d Web API status reads, want 0", n)
	}
	src := ha.WaitFor(t, topics.StateSource(), nil, 5*time.Second)
	if !json.Valid([]byte(src.Payload)) {
		t.Errorf("state source %q", src.Payload)
	}
}

// A command confirmed by push costs exactly one Web API request, and its
// Activity event carries the source we wrote.
func TestPushCommandCostsOneRequest(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	ha := broker.Subscribe(t, topics.Base+"/#")
	tm := pushTiming
	startStackWith(t, broker, fake, t.TempDir(), stackOptions{push: true, timing: &tm})
	ha.WaitFor(t, topics.LockState(lockID), is("LOCKED"), 10*time.Second)
	haClient := broker.Connect(t)
	t0 := time.Now()
	haClient.Publish(t, topics.LockCommand(lockID), "UNLOCK", false)
	res := ha.WaitForAfter(t, t0, topics.LockResult(lockID), nil, 5*time.Second)
	var r hass.Result
	if err := json.Unmarshal([]byte(res.Payload), &r); err != nil || r.Result != hass.ResultSuccess {
		t.Fatalf("result %s", res.Payload)
	}
	ha.WaitForAfter(t, t0, topics.LockActivity(lockID), nil, 5*time.Second)
	time.Sleep(500 * time.Millisecond) // nothing more may follow
	reqs := fake.Requests()
	if len(reqs) != 1 || reqs[0].Method != "POST" {
		t.Errorf("requests %+v, want exactly the one command", reqs)
	}
	h := fake.History(lockUUID)
	if len(h) != 1 || h[0].Tag != bridge.SourceHA {
		t.Errorf("history %+v", h)
	}
}

// BenchmarkPushDocumentToMQTT measures a push document's arrival at the
// bridge to its state at Home Assistant's client, through a real Mosquitto.
func BenchmarkPushDocumentToMQTT(b *testing.B) {
	broker := mosquittotest.Start(b)
	fake := newFake(b)
	ha := broker.Subscribe(b, topics.LockState(lockID))
	tm := pushTiming
	st := startStackWith(b, broker, fake, b.TempDir(), stackOptions{push: true, timing: &tm, quiet: true})
	ha.WaitFor(b, topics.LockState(lockID), is("LOCKED"), 10*time.Second)
	states := []sesame.LockState{sesame.StateUnlocked, sesame.StateLocked}
	want := []string{"UNLOCKED", "LOCKED"}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		st.br.PushDocument(fakeDoc(lockUUID, states[i%2], hass.SourcePush))
		got := ha.WaitForAfter(b, start, topics.LockState(lockID), is(want[i%2]), 5*time.Second)
		lat = append(lat, got.At.Sub(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}
