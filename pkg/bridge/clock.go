package bridge

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// ClockSource is what the bridge shows of the host's clock: the offset to
// the Sesame cloud's clock that the Cloud measured. A Cloud that implements
// it (sesame.Client does) gets the "Clock offset" sensor fed.
type ClockSource interface {
	ClockState() sesame.ClockState
	ClockChanged() <-chan struct{}
}

// clockFeed publishes the clock offset; the zero value (no source) does
// nothing.
type clockFeed struct {
	src ClockSource

	mu   sync.Mutex
	last []byte // the payload last published; nil before the first measurement
}

// watchClock publishes the offset whenever the source says it changed.
func (b *Bridge) watchClock(ctx context.Context) {
	if b.cloudClock.src == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.cloudClock.src.ClockChanged():
			b.publishClock(false)
		}
	}
}

// publishClock publishes the measured offset when it differs from what was
// published last, or again (after a connect) when again is set. Nothing is
// published before the first measurement.
func (b *Bridge) publishClock(again bool) {
	if b.cloudClock.src == nil {
		return
	}
	st := b.cloudClock.src.ClockState()
	if !st.Measured {
		return
	}
	payload, err := hass.JSON(hass.NewClock(st.Offset, st.Corrected))
	if err != nil {
		b.log.Error("cannot encode payload", "topic", b.topics.Clock(), "err", err)
		return
	}
	b.cloudClock.mu.Lock()
	defer b.cloudClock.mu.Unlock()
	if !again && string(payload) == string(b.cloudClock.last) {
		return
	}
	b.cloudClock.last = payload
	b.send(b.topics.Clock(), true, payload) // retained: waits for room, never dropped
}

// clockHint names the clock when a status read disagrees with the host's
// clock: the lock's status dated more than the threshold after the moment
// the bridge read it can only come from a host whose clock is behind, and
// then the commands' signatures are stale too. A correcting client
// (ClockSource) is asked as well. It returns "" when the clock looks right.
func (b *Bridge) clockHint(st sesame.Status, readAt time.Time) string {
	if !st.Timestamp.IsZero() {
		if ahead := st.Timestamp.Sub(readAt); ahead > sesame.ClockSkewThreshold {
			return fmt.Sprintf("; the lock's status is dated %s after the bridge read it: the host's clock is wrong (behind), which makes the cloud ignore commands; fix it (NTP)",
				ahead.Round(time.Second))
		}
	}
	if b.cloudClock.src != nil {
		if cs := b.cloudClock.src.ClockState(); cs.Measured && cs.Offset.Abs() > sesame.ClockSkewThreshold {
			return "; the host's clock is " + sesame.DescribeOffset(cs.Offset) + " the Sesame cloud's (commands are signed with the cloud's time)"
		}
	}
	return ""
}
