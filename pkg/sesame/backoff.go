package sesame

import (
	"context"
	"math/rand/v2"
	"time"
)

// Default retry delays, used for zero Backoff fields.
const (
	defaultBackoffBase = 250 * time.Millisecond
	defaultBackoffMax  = 3 * time.Second
)

// Backoff is the retry policy: capped exponential delays with jitter.
// The zero value means Backoff{Base: 250ms, Max: 3s}.
type Backoff struct {
	Base, Max time.Duration
	Rand      func() float64 // uniform in [0,1); nil uses math/rand/v2
}

// Delay returns how long to wait after failed attempt number attempt
// (0 for the first): the nominal delay is Base doubled attempt times and
// capped at Max, and the result is uniform in [nominal/2, nominal].
func (b Backoff) Delay(attempt int) time.Duration {
	base, ceiling := b.Base, b.Max
	if base <= 0 {
		base = defaultBackoffBase
	}
	if ceiling <= 0 {
		ceiling = defaultBackoffMax
	}
	if ceiling < base {
		ceiling = base
	}
	d := base
	for i := 0; i < attempt && d < ceiling; i++ {
		if d > ceiling/2 {
			d = ceiling
			break
		}
		d *= 2
	}

	r := b.Rand
	if r == nil {
		r = rand.Float64
	}
	f := min(max(r(), 0), 1)
	return d/2 + time.Duration(f*float64(d-d/2))
}

// sleep waits d or until ctx is done, whichever comes first. It uses a timer
// and select (never time.Sleep), so testing/synctest can drive it.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
