package push_test

import (
	"slices"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/push"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/push/pushtest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// BenchmarkDocumentToOnDocument: a document published at the fake IoT
// endpoint (a real broker behind a real WebSocket) until OnDocument is
// called with it; reports the median as median-ns.
func BenchmarkDocumentToOnDocument(b *testing.B) {
	srv := pushtest.Start(b)
	docs := make(chan push.Document, 16)
	connected := make(chan struct{}, 16)
	c, err := push.New(push.Options{
		Locks: []string{lockA}, PoolID: srv.PoolID(), Endpoint: srv.Endpoint(),
		CognitoURL: srv.CognitoURL(), ShadowURL: srv.ShadowURL(),
		OnDocument: func(d push.Document) { docs <- d },
		OnHealth: func(h push.Health) {
			if h.Connected {
				connected <- struct{}{}
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	srv.SetShadow(lockA, pushtest.Mechst(sesame.StateLocked, 6, 0), nil)
	ctx := b.Context()
	go func() { _ = c.Run(ctx) }()
	select {
	case <-connected:
	case <-time.After(wait):
		b.Fatal("not connected")
	}
	select { // the shadow read after the connect: from now on only the feed delivers
	case <-docs:
	case <-time.After(wait):
		b.Fatal("no shadow read")
	}
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		pos := i%30000 + 1
		t0 := time.Now()
		if err := srv.PublishMechst(lockA, pushtest.Mechst(sesame.StateLocked, 6, pos), nil); err != nil {
			b.Fatal(err)
		}
		for {
			select {
			case d := <-docs:
				if d.Source != push.SourcePush || d.Status.Position != pos {
					continue
				}
				durations = append(durations, time.Since(t0))
			case <-time.After(wait):
				b.Fatal("document not delivered")
			}
			break
		}
	}
	b.StopTimer()
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Nanoseconds()), "median-ns")
}
