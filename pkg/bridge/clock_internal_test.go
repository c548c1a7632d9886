package bridge

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// datedCloud is the in-memory cloud whose status timestamps are off the
// host's clock by ahead (a cloud whose clock runs ahead of the host's), and
// which reports a measured clock state when it has one.
type datedCloud struct {
	*cloud
	ahead time.Duration

	mu      sync.Mutex
	clock   sesame.ClockState
	changed chan struct{}
}

func (c *datedCloud) Status(ctx context.Context, uuid string) (sesame.Status, error) {
	st, err := c.cloud.Status(ctx, uuid)
	if err == nil {
		st.Timestamp = time.Now().Add(c.ahead).Truncate(time.Second)
	}
	return st, err
}

// plainCloud hides the ClockSource methods: a cloud that measures nothing.
type plainCloud struct{ d *datedCloud }

func (c plainCloud) Status(ctx context.Context, uuid string) (sesame.Status, error) {
	return c.d.Status(ctx, uuid)
}

func (c plainCloud) Command(ctx context.Context, uuid string, s sesame.Secret, cmd sesame.Cmd, tag string) error {
	return c.d.Command(ctx, uuid, s, cmd, tag)
}

var (
	_ ClockSource = (*datedCloud)(nil)
	_ Cloud       = plainCloud{}
)

func (c *datedCloud) ClockState() sesame.ClockState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clock
}

func (c *datedCloud) ClockChanged() <-chan struct{} { return c.changed }

func (c *datedCloud) setClock(st sesame.ClockState) {
	c.mu.Lock()
	c.clock = st
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func newDatedCloud(ahead time.Duration) *datedCloud {
	c := newCloud(sesame.StateUnlocked)
	c.noMove = true // the cloud ignores the stale signatures
	return &datedCloud{cloud: c, ahead: ahead, changed: make(chan struct{}, 1)}
}

// TestJammedNamesTheClock: a command the cloud ignores because the host's
// clock is wrong is still reported jammed, but the reason and the log say
// it is the clock: from the status dated after it was read (a cloud that
// measures nothing), or from the offset the client measured.
func TestJammedNamesTheClock(t *testing.T) {
	tests := []struct {
		name  string
		cloud func() Cloud
		says  []string
	}{
		{"status dated in the future", func() Cloud { return plainCloud{newDatedCloud(10 * time.Minute)} },
			[]string{"the lock's status is dated 10m0s after the bridge read it", "the host's clock is wrong (behind)"}},
		{"offset measured", func() Cloud {
			c := newDatedCloud(0)
			c.clock = sesame.ClockState{Measured: true, Offset: -10 * time.Minute, Corrected: true}
			return c
		}, []string{"the host's clock is 10m0s ahead of the Sesame cloud's"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := start(t, nil, nil, true, func(o *Options) { o.Cloud = tt.cloud() })
				synctest.Wait()
				h.send("set", "LOCK")
				time.Sleep(30 * time.Second)
				synctest.Wait()
				r := h.results(t)
				if len(r) != 1 || r[0].Result != "jammed" {
					t.Fatalf("results %+v, want one jammed", r)
				}
				logs := h.logs.String()
				for _, s := range tt.says {
					if !strings.Contains(r[0].Detail, s) {
						t.Errorf("jammed detail %q does not say %q", r[0].Detail, s)
					}
					if !strings.Contains(logs, s) {
						t.Errorf("the log does not say %q:\n%s", s, logs)
					}
				}
			})
		})
	}
}

// TestJammedWithARightClockSaysNothingOfIt: a status dated in the past (the
// lock's last move) is no clock problem.
func TestJammedWithARightClockSaysNothingOfIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newDatedCloud(-3 * time.Hour)
		c.clock = sesame.ClockState{Measured: true, Offset: 2 * time.Second}
		h := start(t, nil, nil, true, func(o *Options) { o.Cloud = c })
		synctest.Wait()
		h.send("set", "LOCK")
		time.Sleep(30 * time.Second)
		synctest.Wait()
		r := h.results(t)
		if len(r) != 1 || r[0].Result != "jammed" || strings.Contains(r[0].Detail, "clock") {
			t.Errorf("results %+v, want jammed without a word about the clock", r)
		}
	})
}

// TestClockSensorPublishing: nothing before the first measurement; then
// the offset, retained, once per change, and again after every connect.
func TestClockSensorPublishing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newDatedCloud(0)
		h := start(t, nil, nil, true, func(o *Options) { o.Cloud = c })
		topic := h.topics.Clock()
		h.b.OnConnect()
		synctest.Wait()
		if got := h.pub.on(topic); len(got) != 0 {
			t.Fatalf("published %+v before any measurement", got)
		}

		c.setClock(sesame.ClockState{Measured: true, Offset: 10*time.Minute + 300*time.Millisecond, Corrected: true})
		synctest.Wait()
		c.setClock(sesame.ClockState{Measured: true, Offset: 10*time.Minute - 200*time.Millisecond, Corrected: true}) // same second
		synctest.Wait()
		want := `{"offset_s":600,"signing_clock":"cloud"}`
		got := h.pub.on(topic)
		if len(got) != 1 || got[0].Payload != want || !got[0].Retained {
			t.Fatalf("published %+v, want one retained %s", got, want)
		}

		h.b.OnConnect()
		c.setClock(sesame.ClockState{Measured: true, Offset: time.Second})
		synctest.Wait()
		if got := h.pub.payloads(topic); !equal(got, []string{want, want, `{"offset_s":1,"signing_clock":"host"}`}) {
			t.Errorf("published %q, want the offset again after the connect, then the new one", got)
		}
	})
}

// TestNoClockSensorFeedWithoutASource: a Cloud that measures nothing feeds
// nothing (the sensor stays unknown).
func TestNoClockSensorFeedWithoutASource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newDatedCloud(0)
		d.clock = sesame.ClockState{Measured: true, Offset: time.Hour, Corrected: true} // not asked
		h := start(t, nil, nil, true, func(o *Options) { o.Cloud = plainCloud{d} })
		if _, isSource := any(plainCloud{d}).(ClockSource); isSource {
			t.Fatal("plainCloud must not be a ClockSource")
		}
		h.b.OnConnect()
		synctest.Wait()
		if got := h.pub.on(h.topics.Clock()); len(got) != 0 {
			t.Errorf("published %+v without a clock source", got)
		}
	})
}
