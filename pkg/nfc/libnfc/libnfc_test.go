//go:build cgo

package libnfc_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/libnfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim/pn532simtest"
)

// envDir is where the simulator of TestListDevicesAndAuto puts its port:
// LIBNFC_DEVICE names it, and libnfc reads the variable once per process,
// at its first call, so TestMain sets it before any test runs.
var envDir string

func TestMain(m *testing.M) {
	if runtime.GOOS != "linux" {
		os.Exit(0) // the simulator needs Linux ptys
	}
	d, err := os.MkdirTemp("", "libnfc-test-")
	if err != nil {
		panic(err)
	}
	envDir = d
	os.Setenv("LIBNFC_DEVICE", "pn532_uart:"+filepath.Join(envDir, pn532sim.LinkName))
	code := m.Run()
	os.RemoveAll(envDir)
	os.Exit(code)
}

func open(t testing.TB, connstring string) *libnfc.Device {
	t.Helper()
	d, err := libnfc.Open(connstring)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

// within runs f and fails the test if it does not return in time: these
// are real-time tests against a real libnfc, and a hang must not eat the
// whole test timeout.
func within[T any](t *testing.T, d time.Duration, what string, f func() T) T {
	t.Helper()
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
		panic("unreachable")
	}
}

type pollResult struct {
	card nfc.Card
	err  error
}

func poll(t *testing.T, d *libnfc.Device) (nfc.Card, error) {
	t.Helper()
	r := within(t, libnfc.PollCycle+5*time.Second, "Poll", func() pollResult {
		c, err := d.Poll()
		return pollResult{c, err}
	})
	return r.card, r.err
}

type presentResult struct {
	ok  bool
	err error
}

func present(t *testing.T, d *libnfc.Device) (bool, error) {
	t.Helper()
	r := within(t, 5*time.Second, "Present", func() presentResult {
		ok, err := d.Present()
		return presentResult{ok, err}
	})
	return r.ok, r.err
}

func TestTapAndPresence(t *testing.T) {
	tests := []struct {
		name string
		card pn532sim.Card
		kind nfc.Kind
		uid  []byte
	}{
		{"MIFARE Classic, 4-byte UID", pn532sim.ISO14443A([]byte{0xDE, 0xAD, 0xBE, 0xEF}), nfc.ISO14443A, []byte{0xDE, 0xAD, 0xBE, 0xEF}},
		{"Ultralight, 7-byte UID", pn532sim.ISO14443A([]byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}), nfc.ISO14443A, []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}},
		{"ISO14443-4, 10-byte UID", pn532sim.ISO14443A([]byte{0x04, 1, 2, 3, 4, 5, 6, 7, 8, 9}), nfc.ISO14443A, []byte{0x04, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"MIFARE Plus SL2: libnfc cannot ping it", func() pn532sim.Card {
			c := pn532sim.ISO14443A([]byte{0x11, 0x22, 0x33, 0x44})
			c.SAK = 0x10
			return c
		}(), nfc.ISO14443A, []byte{0x11, 0x22, 0x33, 0x44}},
		{"FeliCa", pn532sim.FeliCa([]byte{0x01, 0x2E, 0x4C, 0x11, 0x22, 0x33, 0x44, 0x55}), nfc.FeliCa, []byte{0x01, 0x2E, 0x4C, 0x11, 0x22, 0x33, 0x44, 0x55}},
	}
	s := pn532simtest.Start(t, "")
	d := open(t, s.Connstring())
	if d.Name() != s.Connstring() {
		t.Errorf("Name() = %q, want %q", d.Name(), s.Connstring())
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.Put(tt.card)
			c, err := poll(t, d)
			if err != nil {
				t.Fatalf("Poll: %v", err)
			}
			if c.Kind != tt.kind || !bytes.Equal(c.UID, tt.uid) {
				t.Fatalf("Poll = %v %X, want %v %X", c.Kind, c.UID, tt.kind, tt.uid)
			}
			for i := range 3 {
				if ok, err := present(t, d); !ok || err != nil {
					t.Fatalf("Present #%d while held = %v, %v", i, ok, err)
				}
			}
			checks := s.Stats().PresenceChecks
			s.Remove()
			if ok, err := present(t, d); ok || err != nil {
				t.Fatalf("Present after Remove = %v, %v", ok, err)
			}
			if s.Stats().PresenceChecks == checks {
				t.Fatal("Present did not ask the chip")
			}
			if ok, err := present(t, d); ok || err != nil {
				t.Fatalf("Present again after Remove = %v, %v", ok, err)
			}
		})
	}
	if st := s.Stats(); st.Unknown != 0 || st.BadFrames != 0 {
		t.Fatalf("libnfc sent commands the simulator does not know: %+v", st)
	}
}

func TestPresentReplacedCard(t *testing.T) {
	s := pn532simtest.Start(t, "")
	d := open(t, s.Connstring())
	if ok, err := d.Present(); ok || err != nil {
		t.Fatalf("Present before any Poll = %v, %v", ok, err)
	}
	s.Put(pn532sim.ISO14443A([]byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}))
	if _, err := poll(t, d); err != nil {
		t.Fatal(err)
	}
	// Another card in the field is not the selected one.
	s.Put(pn532sim.ISO14443A([]byte{0x04, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44}))
	if ok, err := present(t, d); ok || err != nil {
		t.Fatalf("Present with another card = %v, %v", ok, err)
	}
	c, err := poll(t, d)
	if err != nil || c.UID[1] != 0x99 {
		t.Fatalf("Poll = %X, %v; want the new card", c.UID, err)
	}
}

func TestEmptyCycle(t *testing.T) {
	s := pn532simtest.Start(t, "")
	d := open(t, s.Connstring())
	start := time.Now()
	if _, err := poll(t, d); !errors.Is(err, nfc.ErrNoCard) {
		t.Fatalf("Poll on an empty field: %v, want ErrNoCard", err)
	}
	t.Logf("empty cycle took %v (PollCycle %v)", time.Since(start), libnfc.PollCycle)
	if st := s.Stats(); st.PollsEmpty != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAbortDuringPoll(t *testing.T) {
	s := pn532simtest.Start(t, "")
	// Abort at different moments of the poll: right after the chip
	// acknowledged InAutoPoll (libnfc may still be reading that ACK, when it
	// does not hear aborts) and later, while it waits for the answer.
	for i, delay := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond, 50 * time.Millisecond, 300 * time.Millisecond} {
		d, err := libnfc.Open(s.Connstring())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		done := make(chan pollResult, 1)
		go func() {
			c, err := d.Poll()
			done <- pollResult{c, err}
		}()
		if err := s.WaitPolling(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		time.Sleep(delay)
		start := time.Now()
		if err := d.Abort(); err != nil {
			t.Fatalf("Abort: %v", err)
		}
		var r pollResult
		select {
		case r = <-done:
		case <-time.After(libnfc.PollCycle + 5*time.Second):
			t.Fatal("Poll did not return after Abort")
		}
		if !errors.Is(r.err, nfc.ErrAborted) {
			t.Fatalf("abort %v into the poll: Poll returned %v, want ErrAborted", delay, r.err)
		}
		t.Logf("abort %v into the poll: Poll returned %v later", delay, time.Since(start))
		// The abort reached the chip (libnfc sends it an ACK): Poll did not
		// just run to the end of its cycle.
		deadline := time.Now().Add(2 * time.Second)
		for s.Stats().Aborts == i && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if st := s.Stats(); st.Aborts != i+1 || st.PollsEmpty != 0 {
			t.Fatalf("abort %v into the poll: the chip saw no abort: %+v", delay, st)
		}
		if err := within(t, 5*time.Second, "Close", d.Close); err != nil {
			t.Fatalf("Close after abort: %v", err)
		}
		if err := d.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := d.Abort(); err != nil {
			t.Fatalf("Abort after Close: %v", err)
		}
		if _, err := d.Poll(); err == nil {
			t.Fatal("Poll after Close succeeded")
		}
	}
	// The reader is fine: open it again and read a card.
	d := open(t, s.Connstring())
	s.Put(pn532sim.ISO14443A([]byte{1, 2, 3, 4}))
	if c, err := poll(t, d); err != nil || !bytes.Equal(c.UID, []byte{1, 2, 3, 4}) {
		t.Fatalf("Poll after reopening: %X, %v", c.UID, err)
	}
}

func TestAbortBetweenCalls(t *testing.T) {
	s := pn532simtest.Start(t, "")
	d := open(t, s.Connstring())
	s.Put(pn532sim.FeliCa([]byte{1, 2, 3, 4, 5, 6, 7, 8}))
	// libnfc drops an abort that arrives while no reply is awaited; the
	// Device keeps it for the next call.
	if err := d.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := poll(t, d); !errors.Is(err, nfc.ErrAborted) {
		t.Fatalf("Poll after an idle Abort: %v, want ErrAborted", err)
	}
	if c, err := poll(t, d); err != nil || c.Kind != nfc.FeliCa {
		t.Fatalf("the Poll after that: %v %X, %v", c.Kind, c.UID, err)
	}
	if err := d.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := present(t, d); !errors.Is(err, nfc.ErrAborted) {
		t.Fatalf("Present after an idle Abort: %v, want ErrAborted", err)
	}
	if ok, err := present(t, d); !ok || err != nil {
		t.Fatalf("the Present after that: %v, %v", ok, err)
	}
}

func TestUnplugReplug(t *testing.T) {
	s := pn532simtest.Start(t, "")
	notReaderGone := func(err error) bool {
		return err == nil || errors.Is(err, nfc.ErrNoCard) || errors.Is(err, nfc.ErrAborted)
	}

	t.Run("during Poll", func(t *testing.T) {
		d := open(t, s.Connstring())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := d.Poll()
			done <- err
		}()
		if err := s.WaitPolling(ctx); err != nil {
			t.Fatal(err)
		}
		s.Unplug()
		var err error
		select {
		case err = <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Poll did not return after Unplug")
		}
		if notReaderGone(err) || !strings.Contains(err.Error(), "EIO") {
			t.Fatalf("Poll after Unplug: %v, want an EIO error", err)
		}
		t.Logf("Poll after Unplug: %v", err)
		if _, err := libnfc.Open(s.Connstring()); err == nil {
			t.Fatal("Open succeeded while unplugged")
		}
		if err := s.Replug(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("between calls", func(t *testing.T) {
		d := open(t, s.Connstring())
		s.Put(pn532sim.ISO14443A([]byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}))
		if _, err := poll(t, d); err != nil {
			t.Fatal(err)
		}
		s.Unplug()
		if ok, err := present(t, d); ok || notReaderGone(err) {
			t.Fatalf("Present after Unplug: %v, %v; want an error", ok, err)
		}
		if _, err := poll(t, d); notReaderGone(err) {
			t.Fatalf("Poll after Unplug: %v, want an error", err)
		}
		if _, err := libnfc.Open(s.Connstring()); err == nil {
			t.Fatal("Open succeeded while unplugged")
		}
		if err := s.Replug(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("after Replug", func(t *testing.T) {
		d := open(t, s.Connstring())
		s.Put(pn532sim.ISO14443A([]byte{0xCA, 0xFE, 0xBA, 0xBE}))
		c, err := poll(t, d)
		if err != nil || !bytes.Equal(c.UID, []byte{0xCA, 0xFE, 0xBA, 0xBE}) {
			t.Fatalf("Poll after Replug: %X, %v", c.UID, err)
		}
		if ok, err := present(t, d); !ok || err != nil {
			t.Fatalf("Present after Replug: %v, %v", ok, err)
		}
	})
}

func TestListDevicesAndAuto(t *testing.T) {
	s := pn532simtest.Start(t, envDir)
	l, err := libnfc.ListDevices()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(l, s.Connstring()) {
		t.Fatalf("ListDevices() = %q, want it to hold %q", l, s.Connstring())
	}
	for _, c := range l {
		if strings.ContainsRune(c, 0) {
			t.Fatalf("connstring %q holds a NUL", c)
		}
	}
	d := open(t, "auto")
	if d.Name() != s.Connstring() {
		t.Fatalf("Open(auto) opened %q, want %q", d.Name(), s.Connstring())
	}
	s.Put(pn532sim.ISO14443A([]byte{9, 8, 7, 6}))
	if c, err := poll(t, d); err != nil || !bytes.Equal(c.UID, []byte{9, 8, 7, 6}) {
		t.Fatalf("Poll: %X, %v", c.UID, err)
	}
}

func TestOpenFails(t *testing.T) {
	for _, conn := range []string{"pn532_uart:" + filepath.Join(t.TempDir(), "nothing"), "no_such_driver:x"} {
		if d, err := libnfc.Open(conn); err == nil {
			d.Close()
			t.Errorf("Open(%q) succeeded", conn)
		} else if !strings.Contains(err.Error(), conn) {
			t.Errorf("Open(%q) error %q does not name the connstring", conn, err)
		}
	}
}
