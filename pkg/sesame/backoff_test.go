package sesame

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"
)

func fixed(f float64) func() float64 { return func() float64 { return f } }

func TestBackoffDelay(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name    string
		b       Backoff
		attempt int
		want    time.Duration
	}{
		{"attempt 0, low jitter", Backoff{Base: s, Max: 8 * s, Rand: fixed(0)}, 0, 500 * time.Millisecond},
		{"attempt 0, mid jitter", Backoff{Base: s, Max: 8 * s, Rand: fixed(0.5)}, 0, 750 * time.Millisecond},
		{"attempt 1 doubles", Backoff{Base: s, Max: 8 * s, Rand: fixed(0)}, 1, s},
		{"attempt 2 doubles", Backoff{Base: s, Max: 8 * s, Rand: fixed(0)}, 2, 2 * s},
		{"attempt 3 reaches Max", Backoff{Base: s, Max: 8 * s, Rand: fixed(0)}, 3, 4 * s},
		{"attempt 4 capped", Backoff{Base: s, Max: 8 * s, Rand: fixed(0)}, 4, 4 * s},
		{"capped, mid jitter", Backoff{Base: s, Max: 8 * s, Rand: fixed(0.5)}, 9, 6 * s},
		{"huge attempt capped", Backoff{Base: s, Max: 8 * s, Rand: fixed(0)}, 1 << 30, 4 * s},
		{"Max not a power-of-two multiple", Backoff{Base: s, Max: 3 * s, Rand: fixed(0)}, 2, 1500 * time.Millisecond},
		{"negative attempt acts as 0", Backoff{Base: s, Max: 8 * s, Rand: fixed(0)}, -3, 500 * time.Millisecond},
		{"zero value: Base 250ms", Backoff{Rand: fixed(0)}, 0, 125 * time.Millisecond},
		{"zero value: Max 3s", Backoff{Rand: fixed(0)}, 10, 1500 * time.Millisecond},
		{"Max below Base", Backoff{Base: 2 * s, Max: s, Rand: fixed(0)}, 3, s},
		{"no overflow near MaxInt64", Backoff{Base: time.Nanosecond, Max: math.MaxInt64, Rand: fixed(0)}, 200, math.MaxInt64 / 2},
		{"Rand above 1 clamped", Backoff{Base: s, Max: 8 * s, Rand: fixed(7)}, 0, s},
		{"Rand below 0 clamped", Backoff{Base: s, Max: 8 * s, Rand: fixed(-1)}, 0, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.Delay(tt.attempt); got != tt.want {
				t.Errorf("Delay(%d) = %v, want %v", tt.attempt, got, tt.want)
			}
		})
	}
}

// With random jitter, every delay stays in [d/2, d] of the nominal d.
func TestBackoffDelayBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	b := Backoff{Base: 100 * time.Millisecond, Max: 5 * time.Second, Rand: rng.Float64}
	nominal := b.Base
	for attempt := range 12 {
		for range 50 {
			d := b.Delay(attempt)
			if d < nominal/2 || d > nominal {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", attempt, d, nominal/2, nominal)
			}
		}
		nominal = min(2*nominal, b.Max)
	}
	// nil Rand uses math/rand/v2 and keeps the same bounds.
	for range 100 {
		if d := (Backoff{Base: time.Second, Max: time.Second}).Delay(5); d < time.Second/2 || d > time.Second {
			t.Fatalf("Delay with nil Rand = %v", d)
		}
	}
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := sleep(t.Context(), 3*time.Second); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("slept %v, want 3s", got)
		}

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start = time.Now()
		if err := sleep(ctx, time.Hour); err != context.DeadlineExceeded {
			t.Errorf("sleep past the deadline = %v, want DeadlineExceeded", err)
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("sleep returned after %v, want 1s", got)
		}
		if err := sleep(ctx, 0); err != context.DeadlineExceeded {
			t.Errorf("sleep(0) on a done ctx = %v", err)
		}
	})
}
