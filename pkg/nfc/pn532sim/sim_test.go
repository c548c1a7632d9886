package pn532sim_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim/pn532simtest"
)

// host is a minimal PN532 host speaking through the pty, as libnfc does.
type host struct {
	t *testing.T
	f *os.File
}

func dial(t *testing.T, path string) *host {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &host{t: t, f: f}
}

func frame(data ...byte) []byte {
	f := []byte{0x00, 0x00, 0xFF, byte(len(data) + 1), byte(-(len(data) + 1)), 0xD4}
	sum := byte(0xD4)
	for _, b := range data {
		sum += b
	}
	return append(append(f, data...), -sum, 0x00)
}

var ack = []byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00}

func (h *host) write(b []byte) {
	h.t.Helper()
	if _, err := h.f.Write(b); err != nil {
		h.t.Fatalf("host write: %v", err)
	}
}

// read returns exactly n bytes, or fails after the timeout.
func (h *host) read(n int, timeout time.Duration) ([]byte, error) {
	if err := h.f.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	_, err := io.ReadFull(h.f, b)
	return b, err
}

// call sends a command and returns the answer frame's data after TFI.
func (h *host) call(cmd ...byte) []byte {
	h.t.Helper()
	h.write(frame(cmd...))
	got, err := h.read(6, 2*time.Second)
	if err != nil || !bytes.Equal(got, ack) {
		h.t.Fatalf("command % X: ACK % X, %v", cmd, got, err)
	}
	return h.answer(2 * time.Second)
}

func (h *host) answer(timeout time.Duration) []byte {
	h.t.Helper()
	head, err := h.read(5, timeout)
	if err != nil {
		h.t.Fatalf("answer: %v", err)
	}
	if head[3]+head[4] != 0 {
		h.t.Fatalf("answer header % X", head)
	}
	rest, err := h.read(int(head[3])+2, time.Second)
	if err != nil {
		h.t.Fatalf("answer body: %v", err)
	}
	if rest[0] != 0xD5 {
		h.t.Fatalf("answer TFI %02X", rest[0])
	}
	return rest[1 : len(rest)-2]
}

func TestSessionsOverThePTY(t *testing.T) {
	s := pn532simtest.Start(t, "")
	if !strings.HasPrefix(s.Connstring(), "pn532_uart:") || !strings.HasSuffix(s.Path(), "/"+pn532sim.LinkName) {
		t.Fatalf("Connstring %q, Path %q", s.Connstring(), s.Path())
	}
	for session := range 3 { // the host closes and opens again: no EIO in between
		h := dial(t, s.Path())
		h.write([]byte{0x55, 0x55, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
		if got := h.call(0x14, 0x01); !bytes.Equal(got, []byte{0x15}) {
			t.Fatalf("session %d: SAMConfiguration answer % X", session, got)
		}
		if got := h.call(0x00, 0x00, 'l', 'i', 'b', 'n', 'f', 'c'); !bytes.Equal(got, []byte{0x01, 0x00, 'l', 'i', 'b', 'n', 'f', 'c'}) {
			t.Fatalf("session %d: Diagnose answer % X", session, got)
		}
		h.f.Close()
	}
	if st := s.Stats(); st.Frames != 6 || st.CommTests != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWaitPollingPutAndAbort(t *testing.T) {
	s := pn532simtest.Start(t, "")
	h := dial(t, s.Path())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A card put while the host polls is answered at its next slot.
	waited := make(chan error, 1)
	go func() { waited <- s.WaitPolling(ctx) }()
	h.write(frame(0x60, 0x02, 0x01, 0x10, 0x11))
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if got, err := h.read(6, time.Second); err != nil || !bytes.Equal(got, ack) {
		t.Fatalf("ACK % X, %v", got, err)
	}
	s.Put(pn532sim.FeliCa([]byte{1, 2, 3, 4, 5, 6, 7, 8}))
	got := h.answer(2 * time.Second)
	if got[0] != 0x61 || got[1] != 1 || got[2] != 0x11 || !bytes.Equal(got[7:15], []byte{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("InAutoPoll answer % X", got)
	}

	// A host ACK aborts the next poll: nothing comes back.
	s.Remove()
	h.write(frame(0x60, 0xFF, 0x01, 0x10))
	if err := s.WaitPolling(ctx); err != nil {
		t.Fatal(err)
	}
	h.read(6, time.Second)
	h.write(ack)
	s.Put(pn532sim.ISO14443A([]byte{1, 2, 3, 4}))
	if b, err := h.read(1, 400*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after the abort the chip sent % X (%v)", b, err)
	}
	if st := s.Stats(); st.Polls != 2 || st.PollHits != 1 || st.Aborts != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnplugReplug(t *testing.T) {
	s := pn532simtest.Start(t, "")
	h := dial(t, s.Path())
	h.call(0x02)

	s.Unplug()
	s.Unplug() // no-op
	if _, err := h.read(1, time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("host read after unplug: %v, want an I/O error", err)
	}
	if _, err := h.f.Write(frame(0x02)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("host write after unplug: %v, want EIO", err)
	}
	if _, err := os.Stat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Path after unplug: %v, want it gone", err)
	}

	if err := s.Replug(); err != nil {
		t.Fatal(err)
	}
	if err := s.Replug(); err == nil {
		t.Fatal("Replug while plugged in succeeded")
	}
	h2 := dial(t, s.Path())
	if got := h2.call(0x02); !bytes.Equal(got, []byte{0x03, 0x32, 0x01, 0x06, 0x07}) {
		t.Fatalf("after replug: % X", got)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pn532sim needs Linux ptys")
	}
	before := runtime.NumGoroutine()
	s, err := pn532sim.Start(pn532sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := dial(t, s.Path())
	h.write(frame(0x60, 0xFF, 0x01, 0x10)) // a poll in progress
	if err := s.WaitPolling(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir := s.Path()[:strings.LastIndex(s.Path(), "/")]
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary directory after Close: %v", err)
	}
	if err := s.WaitPolling(context.Background()); !errors.Is(err, pn532sim.ErrClosed) {
		t.Fatalf("WaitPolling after Close: %v", err)
	}
	if err := s.Replug(); !errors.Is(err, pn532sim.ErrClosed) {
		t.Fatalf("Replug after Close: %v", err)
	}
	s.Unplug()
	s.Put(pn532sim.ISO14443A([]byte{1, 2, 3, 4}))
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after Close, %d before Start", n, before)
	}
}

func TestRefusedCard(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pn532sim needs Linux ptys")
	}
	log, buf := logcapture.New()
	s, err := pn532sim.Start(pn532sim.Options{Logger: log.With("test", t.Name())})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Put(pn532sim.ISO14443A([]byte{1, 2, 3}))
	if !strings.Contains(buf.String(), "card refused") {
		t.Fatalf("no error logged for a 3-byte UID:\n%s", buf.String())
	}
}

func TestStartRejectsColon(t *testing.T) {
	if _, err := pn532sim.Start(pn532sim.Options{Dir: t.TempDir() + "/a:b", Logger: slog.New(slog.DiscardHandler)}); err == nil {
		t.Fatal("Start accepted a directory with ':'")
	}
}

// needTool returns the path of a libnfc command-line tool, skipping the
// test when it is missing (failing instead when CI is set).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing (apt-get install libnfc-bin libnfc-examples): %v", name, err)
		}
		t.Skipf("%s missing: %v", name, err)
	}
	return p
}

// libnfcTool runs a libnfc tool against the simulator.
func libnfcTool(t *testing.T, s *pn532sim.Sim, timeout time.Duration, name string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, needTool(t, name), args...)
	cmd.Env = append(os.Environ(), "LIBNFC_DEVICE="+s.Connstring(), "LIBNFC_LOG_LEVEL=1")
	return cmd
}

func TestNfcList(t *testing.T) {
	s := pn532simtest.Start(t, "")
	tests := []struct {
		card pn532sim.Card
		mask string
		want []string
	}{
		{pn532sim.ISO14443A([]byte{0xDE, 0xAD, 0xBE, 0xEF}), "1", []string{"1 ISO14443A passive target(s) found", "UID (NFCID1): de  ad  be  ef", "SAK (SEL_RES): 08"}},
		{pn532sim.ISO14443A([]byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}), "1", []string{"ATQA (SENS_RES): 00  44", "UID (NFCID1): 04  11  22  33  44  55  66"}},
		{pn532sim.ISO14443A([]byte{0x04, 1, 2, 3, 4, 5, 6, 7, 8, 9}), "1", []string{"UID (NFCID1): 04  01  02  03  04  05  06  07  08  09", "ATS: 75  77  81  02  80"}},
		{pn532sim.FeliCa([]byte{0x01, 0x2E, 0x4C, 0x11, 0x22, 0x33, 0x44, 0x55}), "6", []string{"1 Felica (212 kbps) passive target(s) found", "ID (NFCID2): 01  2e  4c  11  22  33  44  55"}},
	}
	for _, tt := range tests {
		s.Put(tt.card)
		out, err := libnfcTool(t, s, 20*time.Second, "nfc-list", "-t", tt.mask).CombinedOutput()
		if err != nil {
			t.Fatalf("nfc-list: %v\n%s", err, out)
		}
		for _, w := range tt.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("nfc-list output lacks %q:\n%s", w, out)
			}
		}
	}
	if st := s.Stats(); st.Unknown != 0 || st.BadFrames != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNfcPoll(t *testing.T) {
	s := pn532simtest.Start(t, "")
	cmd := libnfcTool(t, s, 30*time.Second, "nfc-poll")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitPolling(ctx); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("%v\n%s", err, out.String())
	}
	s.Put(pn532sim.ISO14443A([]byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}))
	// nfc-poll pings the card until it leaves, then exits.
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().PresenceChecks < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s.Remove()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("nfc-poll: %v\n%s", err, out.String())
	}
	for _, w := range []string{"UID (NFCID1): 04  11  22  33  44  55  66", "Waiting for card removing...", "done."} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("nfc-poll output lacks %q:\n%s", w, out.String())
		}
	}
}
