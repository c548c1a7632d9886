package nfc

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
)

var (
	cardA = Card{Kind: ISO14443A, UID: []byte{0x04, 0xa2, 0x2b, 0x1c}}
	cardF = Card{Kind: FeliCa, UID: []byte{0x01, 0x2e, 0x4c, 0xd8, 0xa1, 0xb2, 0xc3, 0xd4}}
	errIO = errors.New("libnfc: input / output error")
)

// fakeDev plays a reader in fake time: a poll cycle lasts 300 ms, a card in
// the field is found within 50 ms.
type fakeDev struct {
	mu          sync.Mutex
	card        *Card
	fail        error // returned by every call once set
	noPresence  bool  // Present is not supported
	inCall      bool
	closed      bool
	closeInCall bool
	aborts      int
	abort       chan struct{}
}

func newFakeDev() *fakeDev { return &fakeDev{abort: make(chan struct{}, 1)} }

func (d *fakeDev) put(c Card) { d.mu.Lock(); d.card = &c; d.mu.Unlock() }
func (d *fakeDev) remove()    { d.mu.Lock(); d.card = nil; d.mu.Unlock() }
func (d *fakeDev) unplug()    { d.mu.Lock(); d.fail = errIO; d.mu.Unlock() }

func (d *fakeDev) enter() func() {
	d.mu.Lock()
	d.inCall = true
	d.mu.Unlock()
	return func() { d.mu.Lock(); d.inCall = false; d.mu.Unlock() }
}

func (d *fakeDev) Poll() (Card, error) {
	defer d.enter()()
	for range 6 {
		d.mu.Lock()
		card, fail := d.card, d.fail
		d.mu.Unlock()
		if fail != nil {
			return Card{}, fail
		}
		if card != nil {
			return *card, nil
		}
		select {
		case <-d.abort:
			return Card{}, ErrAborted
		case <-time.After(50 * time.Millisecond):
		}
	}
	return Card{}, ErrNoCard
}

func (d *fakeDev) Present() (bool, error) {
	defer d.enter()()
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.fail != nil:
		return false, d.fail
	case d.noPresence:
		return false, errors.New("libnfc: not supported by device")
	}
	return d.card != nil, nil
}

func (d *fakeDev) Abort() error {
	d.mu.Lock()
	d.aborts++
	d.mu.Unlock()
	select {
	case d.abort <- struct{}{}:
	default:
	}
	return nil
}

func (d *fakeDev) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.closeInCall = d.inCall
	return nil
}

func (d *fakeDev) Name() string { return "fake PN532" }

type tap struct {
	card Card
	at   time.Time
}

type statusEvent struct {
	status Status
	at     time.Time
}

// harness runs a Reader over devices handed out by open, in order.
type harness struct {
	mu       sync.Mutex
	taps     []tap
	statuses []statusEvent
	opens    []time.Time
	devs     []*fakeDev // nil entries fail to open
	cancel   context.CancelFunc
	done     chan error
	logs     *logcapture.Buffer
}

func start(t *testing.T, holdOff time.Duration, devs ...*fakeDev) *harness {
	t.Helper()
	h := &harness{devs: devs, done: make(chan error, 1)}
	log, buf := logcapture.New()
	h.logs = buf
	r, err := NewReader(Options{
		Connstring: "pn532_uart:/dev/fake",
		HoldOff:    holdOff,
		Open: func(string) (Device, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.opens = append(h.opens, time.Now())
			if len(h.devs) == 0 {
				return nil, errors.New("no such device")
			}
			d := h.devs[0]
			h.devs = h.devs[1:]
			if d == nil {
				return nil, errors.New("no such device")
			}
			return d, nil
		},
		OnTap: func(c Card, at time.Time) {
			h.mu.Lock()
			h.taps = append(h.taps, tap{c, at})
			h.mu.Unlock()
		},
		OnStatus: func(s Status, _ string, _ error) {
			h.mu.Lock()
			h.statuses = append(h.statuses, statusEvent{s, time.Now()})
			h.mu.Unlock()
		},
		Hash:   func(uid []byte) string { return "h" },
		Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	h.cancel = cancel
	go func() { h.done <- r.Run(ctx) }()
	return h
}

func (h *harness) stop(t *testing.T) {
	t.Helper()
	h.cancel()
	if err := <-h.done; err != nil {
		t.Errorf("Run = %v, want nil at shutdown", err)
	}
}

func (h *harness) tapCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.taps)
}

func TestHeldCardIsOneTap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDev()
		h := start(t, 3*time.Second, d)
		time.Sleep(time.Second)
		t0 := time.Now()
		d.put(cardA)
		time.Sleep(10 * time.Second) // held for 10 s
		if n := h.tapCount(); n != 1 {
			t.Fatalf("a card held 10 s gave %d taps, want 1", n)
		}
		if lat := h.taps[0].at.Sub(t0); lat > 50*time.Millisecond {
			t.Errorf("tap seen %v after the card arrived, want within one 50 ms poll slot", lat)
		}
		d.remove()
		time.Sleep(4 * time.Second) // removed, longer than the hold-off
		d.put(cardA)
		time.Sleep(time.Second)
		if n := h.tapCount(); n != 2 {
			t.Fatalf("removed and tapped again after the hold-off: %d taps, want 2", n)
		}
		h.stop(t)
	})
}

func TestQuickReTapWithinHoldOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDev()
		h := start(t, 3*time.Second, d)
		d.put(cardA)
		time.Sleep(time.Second)
		d.remove()
		time.Sleep(time.Second)
		d.put(cardA) // bounce: back 1 s after leaving
		time.Sleep(time.Second)
		if n := h.tapCount(); n != 1 {
			t.Fatalf("same card back within the hold-off: %d taps, want 1", n)
		}
		d.remove()
		time.Sleep(500 * time.Millisecond)
		d.put(cardF) // another card counts at once
		time.Sleep(time.Second)
		if n := h.tapCount(); n != 2 || h.taps[1].card.Kind != FeliCa {
			t.Fatalf("another card: taps = %+v, want a second FeliCa tap", h.taps)
		}
		h.stop(t)
	})
}

func TestNoPresenceCheckFallsBackToHoldOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDev()
		d.noPresence = true
		h := start(t, 3*time.Second, d)
		d.put(cardA)
		time.Sleep(20 * time.Second)
		if n := h.tapCount(); n != 1 {
			t.Fatalf("held card on a reader without presence check: %d taps, want 1", n)
		}
		d.remove()
		time.Sleep(5 * time.Second)
		d.put(cardA)
		time.Sleep(time.Second)
		if n := h.tapCount(); n != 2 {
			t.Fatalf("re-tap after the hold-off: %d taps, want 2", n)
		}
		h.stop(t)
	})
}

func TestUnplugAndComeBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d1, d2 := newFakeDev(), newFakeDev()
		// After the failure: two failed opens, then the reader is back.
		h := start(t, 3*time.Second, d1, nil, nil, d2)
		time.Sleep(time.Second)
		failedAt := time.Now()
		d1.unplug()
		time.Sleep(10 * time.Second)
		d1.mu.Lock()
		closed, inCall := d1.closed, d1.closeInCall
		d1.mu.Unlock()
		if !closed || inCall {
			t.Errorf("failed device closed=%v during a call=%v; want closed after the call", closed, inCall)
		}
		h.mu.Lock()
		var got []Status
		for _, s := range h.statuses {
			got = append(got, s.status)
		}
		opens := append([]time.Time(nil), h.opens...)
		h.mu.Unlock()
		want := []Status{StatusConnected, StatusUnplugged, StatusConnected}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("statuses = %v, want %v (failed re-opens do not repeat unplugged)", got, want)
		}
		// Re-opens 1 s after the failure, then backing off 1 s, 2 s.
		if len(opens) != 4 {
			t.Fatalf("opens = %d, want 4", len(opens))
		}
		for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
			if got := opens[i+1].Sub(failedAt); got < want || got > want+100*time.Millisecond {
				t.Errorf("re-open %d at %v after the failure, want %v", i+1, got, want)
			}
		}
		d2.put(cardF)
		time.Sleep(time.Second)
		if n := h.tapCount(); n != 1 {
			t.Fatalf("taps after the reader came back = %d, want 1", n)
		}
		h.stop(t)
	})
}

func TestNotFoundBacksOffToCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, 3*time.Second) // never opens
		time.Sleep(3 * time.Minute)
		h.stop(t)
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.statuses) != 1 || h.statuses[0].status != StatusNotFound {
			t.Fatalf("statuses = %+v, want one not_found", h.statuses)
		}
		var gaps []time.Duration
		for i := 1; i < len(h.opens); i++ {
			gaps = append(gaps, h.opens[i].Sub(h.opens[i-1]))
		}
		want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30, 30}
		for i, w := range want {
			if i >= len(gaps) || gaps[i] != w*time.Second {
				t.Fatalf("gaps between opens = %v, want %v s then 30 s", gaps, want)
			}
		}
	})
}

func TestShutdownAbortsPollThenCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDev()
		h := start(t, 3*time.Second, d)
		time.Sleep(1010 * time.Millisecond) // inside a poll
		begin := time.Now()
		h.stop(t)
		if took := time.Since(begin); took != 0 {
			t.Errorf("shutdown took %v of fake time; the abort should end the poll at once", took)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.aborts != 1 || !d.closed || d.closeInCall {
			t.Errorf("aborts=%d closed=%v closeInCall=%v; want one abort, then Close after the poll returned", d.aborts, d.closed, d.closeInCall)
		}
	})
}

func TestCardRandom(t *testing.T) {
	tests := []struct {
		c    Card
		want bool
	}{
		{Card{ISO14443A, []byte{0x08, 1, 2, 3}}, true},
		{Card{ISO14443A, []byte{0x04, 1, 2, 3}}, false},
		{Card{ISO14443A, []byte{0x08, 1, 2, 3, 4, 5, 6}}, false},
		{Card{FeliCa, []byte{0x08, 1, 2, 3}}, false},
	}
	for _, tt := range tests {
		if got := tt.c.Random(); got != tt.want {
			t.Errorf("%s %s Random() = %v, want %v", tt.c.Kind, tt.c.HexUID(), got, tt.want)
		}
	}
	if got := (Card{ISO14443A, []byte{0x04, 0xa2}}).HexUID(); got != "04A2" {
		t.Errorf("HexUID = %q", got)
	}
}
