package mqtt

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff hands out capped, exponentially growing delays with jitter. The
// zero value is not usable; set min and max.
type backoff struct {
	min, max time.Duration
	next     time.Duration
}

// delay returns the next wait: min, 2*min, 4*min, ... capped at max, each
// shortened by up to a quarter at random so that many clients restarted
// together do not hit the broker in lockstep. It never exceeds max.
func (b *backoff) delay() time.Duration {
	if b.next <= 0 {
		b.next = b.min
	}
	d := b.next
	b.next = min(b.next*2, b.max)
	if q := int64(d / 4); q > 0 {
		d -= time.Duration(rand.Int64N(q + 1))
	}
	return d
}

// sleep waits d or until ctx is done; it reports whether the full d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
