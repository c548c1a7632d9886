package bridge_test

import (
	"slices"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
)

// BenchmarkCommandToSignedPOST measures Home Assistant's command to the
// signed request at the cloud: a publish on a real Mosquitto, through the
// bridge's MQTT client, worker, signing and HTTP client, to the arrival of
// the POST at the fake. It reports the median and the 99th percentile.
//
// The broker runs with Mosquitto's default settings (no set_tcp_nodelay), as
// Home Assistant's Mosquitto add-on does, and Home Assistant is one
// long-lived client publishing at QoS 1.
//   - spaced: commands 50 ms apart, when every earlier packet is settled;
//   - after_state_publish: each command is sent the moment Home Assistant
//     receives the bridge's QoS 1 state publish for the previous one, so the
//     broker's PUBACK for that publish is still unacknowledged — the case
//     Nagle's algorithm used to delay by up to 40 ms.
func BenchmarkCommandToSignedPOST(b *testing.B) {
	b.Run("spaced", func(b *testing.B) { commandToSignedPOST(b, false) })
	b.Run("after_state_publish", func(b *testing.B) { commandToSignedPOST(b, true) })
}

func commandToSignedPOST(b *testing.B, afterState bool) {
	broker := mosquittotest.Start(b)
	fake := newFake(b)
	fake.SetMoveDelay(0)
	ha := broker.Subscribe(b, topics.Base+"/#")
	startStack(b, broker, fake, b.TempDir())
	ha.WaitFor(b, topics.LockState(lockID), is("LOCKED"), 10*time.Second)
	haClient := broker.Connect(b)
	arrivals := fake.Notify()
	drain := func() {
		for {
			select {
			case <-arrivals:
			default:
				return
			}
		}
	}

	lat := make([]time.Duration, 0, b.N)
	cmds := []string{"UNLOCK", "LOCK"}
	moving := []string{"UNLOCKING", "LOCKING"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		drain()
		start := time.Now()
		haClient.Publish(b, topics.LockCommand(lockID), cmds[i%2], false)
		var req sesametest.Request
		for req.Method != "POST" {
			select {
			case req = <-arrivals:
			case <-time.After(5 * time.Second):
				b.Fatalf("no POST within 5 s for command %d", i)
			}
		}
		if !req.SignValid {
			b.Fatalf("request %d: invalid signature", i)
		}
		lat = append(lat, req.Time.Sub(start))
		b.StopTimer()
		if afterState {
			// The next command goes out as soon as HA has the state
			// publish that followed this one.
			ha.WaitForAfter(b, start, topics.LockState(lockID), is(moving[i%2]), 5*time.Second)
		} else {
			time.Sleep(50 * time.Millisecond)
		}
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
