package mqtt_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
)

// brokerDown is how long the broker stays killed: the outage after which
// paho's own reconnect (1, 2, 4 s) found it back only after 7 s.
const brokerDown = 3 * time.Second

// connectedAfterRestart kills b, keeps it down for brokerDown, starts it
// again and returns how long after the broker first accepted connections
// the client was subscribed again (OnConnect runs after the SUBACK).
func connectedAfterRestart(tb testing.TB, b *mosquittotest.Broker, connected <-chan time.Time) time.Duration {
	tb.Helper()
	b.Kill()
	time.Sleep(brokerDown)
	for len(connected) > 0 {
		<-connected
	}
	b.Restart()
	select {
	case at := <-connected:
		return at.Sub(b.AcceptedAt())
	case <-time.After(30 * time.Second):
		tb.Fatal("not subscribed again within 30 s of the broker's restart")
		return 0
	}
}

func newReconnectingClient(tb testing.TB, b *mosquittotest.Broker, opts mqtt.Options) <-chan time.Time {
	tb.Helper()
	connected := make(chan time.Time, 4)
	opts.URL = b.URL()
	opts.Subscriptions = []string{"rc/cmd/#"}
	opts.OnConnect = func() { connected <- time.Now() }
	c, err := mqtt.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = c.Run(tb.Context()) }()
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		tb.Fatal("no first connect")
	}
	return connected
}

// TestBackWithinASecondOfBrokerRestart: after a broker restart the client
// is subscribed again soon after the broker accepts connections (the
// schedule itself, on a fake clock, is TestReconnectScheduleOnFakeClock).
func TestBackWithinASecondOfBrokerRestart(t *testing.T) {
	t.Parallel()
	b := mosquittotest.Start(t)
	log, logs := newLogger(t)
	connected := newReconnectingClient(t, b, mqtt.Options{Logger: log})

	late := connectedAfterRestart(t, b, connected)
	t.Logf("subscribed again %s after the broker accepted connections (broker down %s)", late.Round(time.Millisecond), brokerDown)
	// A generous bound for a loaded machine; paho's own backoff was 4 s late.
	if late > 2500*time.Millisecond {
		t.Errorf("subscribed again %s after the broker was back, want about a second at most", late)
	}
	out := logs.String()
	if !strings.Contains(out, `msg="mqtt reconnected"`) || !strings.Contains(out, "down_for=") {
		t.Errorf("no reconnect line with the outage:\n%s", out)
	}
	if n := strings.Count(out, `level=WARN msg="mqtt connect failed"`); n > 2 {
		t.Errorf("%d warnings for one restart; the fast retries must not each warn", n)
	}
}

// BenchmarkReconnectAfterBrokerRestart reports how long after a restarted
// broker accepts connections the client is subscribed again (broker down
// 3 s each time). Run: go test ./pkg/mqtt -run ^$ -bench Reconnect -benchtime 5x
func BenchmarkReconnectAfterBrokerRestart(b *testing.B) {
	broker := mosquittotest.Start(b)
	connected := newReconnectingClient(b, broker, mqtt.Options{})
	var lates []time.Duration
	for b.Loop() {
		lates = append(lates, connectedAfterRestart(b, broker, connected))
	}
	slices.Sort(lates)
	b.ReportMetric(float64(lates[len(lates)/2].Microseconds())/1000, "median-ms-after-accept")
	b.ReportMetric(float64(lates[len(lates)-1].Microseconds())/1000, "max-ms-after-accept")
	b.ReportMetric(0, "ns/op")
}
