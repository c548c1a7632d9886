package bridge

import (
	"context"
	"sync"
)

// maxPendingClears bounds the retained topics waiting to be cleared. Junk
// beyond it stays on the broker until a later (re)connect brings it back.
const maxPendingClears = 20000

// janitor clears retained messages (an empty retained publish) on its own
// goroutine: clearing waits for room in the outbox, and the message handler
// must never wait, or a flood of retained junk at subscribe time would
// overflow the MQTT client's queue and drop commands with it.
type janitor struct {
	mu      sync.Mutex
	pending map[string]struct{}
	wake    chan struct{}
}

func newJanitor() *janitor {
	return &janitor{pending: map[string]struct{}{}, wake: make(chan struct{}, 1)}
}

// clear queues topic for clearing; it never blocks. It reports false when
// the queue is full.
func (j *janitor) clear(topic string) bool {
	j.mu.Lock()
	_, dup := j.pending[topic]
	full := !dup && len(j.pending) >= maxPendingClears
	if !full {
		j.pending[topic] = struct{}{}
	}
	j.mu.Unlock()
	if full {
		return false
	}
	select {
	case j.wake <- struct{}{}:
	default:
	}
	return true
}

// take removes and returns what is queued.
func (j *janitor) take() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]string, 0, len(j.pending))
	for t := range j.pending {
		out = append(out, t)
	}
	clear(j.pending)
	return out
}

// runJanitor clears what is queued until ctx is done.
func (b *Bridge) runJanitor(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.janitor.wake:
		}
		for _, t := range b.janitor.take() {
			if ctx.Err() != nil {
				return
			}
			b.send(t, true, nil)
		}
	}
}

// clearRetained has a retained message removed from the broker.
func (b *Bridge) clearRetained(topic string) {
	if !b.janitor.clear(topic) {
		b.warn.Warn("clear queue full", "too many retained messages to clear at once; the rest is cleared after a later reconnect",
			"topic", logTopic(topic), "queued", maxPendingClears)
	}
}
