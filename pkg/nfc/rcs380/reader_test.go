package rcs380_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380/rcs380sim"
)

// loop is the reader loop of the bridge (nfc.Reader) on a simulated
// RC-S380, in fake time.
type loop struct {
	sim    *rcs380sim.Sim
	log    *logcapture.Buffer
	mu     sync.Mutex
	taps   []nfc.Card
	status []nfc.Status
	cancel context.CancelFunc
	done   chan error
}

func (l *loop) tapped() []nfc.Card {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]nfc.Card(nil), l.taps...)
}

func (l *loop) statuses() []nfc.Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]nfc.Status(nil), l.status...)
}

// startLoop runs nfc.Reader on a new simulated RC-S380 (inside a synctest
// bubble) and stops it at the end of the test function.
func startLoop(t *testing.T) *loop {
	t.Helper()
	log, buf := logcapture.New()
	l := &loop{sim: rcs380sim.New(rcs380sim.Options{Logger: log}), log: buf, done: make(chan error, 1)}
	dial := func(string) (rcs380.Transport, string, error) {
		tr, err := l.sim.Open()
		return tr, l.sim.Name(), err
	}
	r, err := nfc.NewReader(nfc.Options{
		Connstring: "rcs380",
		Open: func(conn string) (nfc.Device, error) {
			d, err := rcs380.Open(conn, dial, log)
			if err != nil {
				return nil, err
			}
			return d, nil
		},
		HoldOff: 3 * time.Second,
		OnTap: func(c nfc.Card, _ time.Time) {
			l.mu.Lock()
			l.taps = append(l.taps, c)
			l.mu.Unlock()
		},
		OnStatus: func(s nfc.Status, _ string, _ error) {
			l.mu.Lock()
			l.status = append(l.status, s)
			l.mu.Unlock()
		},
		Hash:   func([]byte) string { return "hash" },
		Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go func() { l.done <- r.Run(ctx) }()
	t.Cleanup(func() {
		l.stop(t)
		if v := l.sim.Violations(); len(v) > 0 {
			t.Errorf("the driver did what a chip would not accept:\n%s", strings.Join(v, "\n"))
		}
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	time.Sleep(time.Second)
	synctest.Wait()
	if s := l.statuses(); len(s) != 1 || s[0] != nfc.StatusConnected {
		t.Fatalf("statuses after start = %v, want connected", s)
	}
	return l
}

func (l *loop) stop(t *testing.T) {
	if l.cancel == nil {
		return
	}
	l.cancel()
	l.cancel = nil
	if err := <-l.done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// hold keeps c on the reader for d.
func (l *loop) hold(c rcs380sim.Card, d time.Duration) {
	l.sim.Put(c)
	time.Sleep(d)
	l.sim.Remove()
}

func TestReaderTapEachKind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := startLoop(t)
		cards := []rcs380sim.Card{
			rcs380sim.ISO14443A(uid4), rcs380sim.ISO14443A(uid7), rcs380sim.ISO14443A(uid10),
			rcs380sim.FeliCa(idm), rcs380sim.FeliCaAt([]byte{1, 2, 3, 4, 5, 6, 7, 8}, "424F"),
		}
		for _, c := range cards {
			l.hold(c, 400*time.Millisecond) // a quick tap: within two poll cycles
			time.Sleep(time.Second)
		}
		got := l.tapped()
		if len(got) != len(cards) {
			t.Fatalf("%d taps, want %d: %v", len(got), len(cards), got)
		}
		for i, c := range cards {
			if !bytes.Equal(got[i].UID, c.UID()) {
				t.Errorf("tap %d = %X, want %X", i, got[i].UID, c.UID())
			}
		}
		if got[3].Kind != nfc.FeliCa || got[0].Kind != nfc.ISO14443A {
			t.Errorf("kinds = %v %v", got[0].Kind, got[3].Kind)
		}
	})
}

// TestReaderFindsCardWithinPollPeriod: a card put anywhere in the cycle is
// tapped within one PollPeriod (plus the exchanges of finding it).
func TestReaderFindsCardWithinPollPeriod(t *testing.T) {
	for _, offset := range []time.Duration{0, 60 * time.Millisecond, 130 * time.Millisecond, 240 * time.Millisecond} {
		synctest.Test(t, func(t *testing.T) {
			l := startLoop(t)
			time.Sleep(offset)
			l.sim.Put(rcs380sim.FeliCa(idm))
			start := time.Now()
			for len(l.tapped()) == 0 && time.Since(start) < time.Second {
				time.Sleep(time.Millisecond)
			}
			if got := time.Since(start); len(l.tapped()) != 1 || got > rcs380.PollPeriod+60*time.Millisecond {
				t.Errorf("offset %v: tapped %d after %v (fake time), want 1 within %v", offset, len(l.tapped()), got, rcs380.PollPeriod)
			}
		})
	}
}

func TestReaderHeldIsOneTap(t *testing.T) {
	for _, c := range []rcs380sim.Card{rcs380sim.ISO14443A(uid7), rcs380sim.FeliCa(idm)} {
		synctest.Test(t, func(t *testing.T) {
			l := startLoop(t)
			l.hold(c, 10*time.Second)
			time.Sleep(time.Second)
			if n := len(l.tapped()); n != 1 {
				t.Errorf("a card held 10 s gave %d taps, want 1", n)
			}
		})
	}
}

func TestReaderHoldOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := startLoop(t)
		c := rcs380sim.ISO14443A(uid10)
		l.hold(c, 500*time.Millisecond)
		time.Sleep(time.Second) // back within the hold-off: not a new tap
		l.hold(c, 500*time.Millisecond)
		if n := len(l.tapped()); n != 1 {
			t.Fatalf("back within the hold-off: %d taps, want 1", n)
		}
		time.Sleep(4 * time.Second) // after the hold-off: a new tap
		l.hold(c, 500*time.Millisecond)
		time.Sleep(time.Second)
		if n := len(l.tapped()); n != 2 {
			t.Fatalf("back after the hold-off: %d taps, want 2", n)
		}
	})
}

func TestReaderUnpluggedAndBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := startLoop(t)
		time.Sleep(120 * time.Millisecond) // mid-cycle
		l.sim.Unplug()
		time.Sleep(5 * time.Second)
		if s := l.statuses(); len(s) != 2 || s[1] != nfc.StatusUnplugged {
			t.Fatalf("statuses after unplug = %v, want connected, unplugged", s)
		}
		l.sim.Replug()
		time.Sleep(40 * time.Second) // the backoff is at most 30 s
		if s := l.statuses(); len(s) != 3 || s[2] != nfc.StatusConnected {
			t.Fatalf("statuses after replug = %v, want connected again", s)
		}
		l.hold(rcs380sim.ISO14443A(uid7), 500*time.Millisecond)
		time.Sleep(time.Second)
		if n := len(l.tapped()); n != 1 {
			t.Fatalf("%d taps after the replug, want 1", n)
		}
		if st := l.sim.Stats(); st.Opens < 2 {
			t.Errorf("opens = %d, want the reader opened again", st.Opens)
		}
	})
}

func TestReaderMalformedFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := startLoop(t)
		l.sim.Corrupt(rcs380sim.Truncated, rcs380sim.Garbage)
		time.Sleep(2 * time.Second)
		l.sim.Corrupt(rcs380sim.BadChecksum)
		l.hold(rcs380sim.FeliCa(idm), time.Second)
		time.Sleep(time.Second)
		if n := len(l.tapped()); n != 1 {
			t.Errorf("%d taps, want 1", n)
		}
		if s := l.statuses(); len(s) != 1 {
			t.Errorf("statuses = %v: a few bad frames are no unplugged reader", s)
		}
		if n := strings.Count(l.log.String(), "re-synchronising"); n != 3 {
			t.Errorf("%d re-sync log lines, want 3", n)
		}
	})
}

func TestReaderShutdownDuringPoll(t *testing.T) {
	for _, at := range []time.Duration{5 * time.Millisecond, 40 * time.Millisecond, 200 * time.Millisecond} {
		synctest.Test(t, func(t *testing.T) {
			l := startLoop(t)
			time.Sleep(at)
			start := time.Now()
			l.stop(t)
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("shutdown at %v into a cycle took %v (fake time)", at, d)
			}
			if st := l.sim.Stats(); st.Closes != 1 {
				t.Errorf("closes = %d, want the device closed once", st.Closes)
			}
		})
	}
}
