// Package pn532simtest runs a simulated PN532 for a test: closed at the
// test's end, its log printed when the test failed.
package pn532simtest

import (
	"runtime"
	"testing"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim"
)

// Start starts a simulator whose symlink lives in dir (a new temporary
// folder when empty). It skips the test where ptys are not Linux's.
func Start(t testing.TB, dir string) *pn532sim.Sim {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("pn532sim needs Linux ptys")
	}
	if dir == "" {
		dir = t.TempDir()
	}
	log, buf := logcapture.New()
	s, err := pn532sim.Start(pn532sim.Options{Logger: log, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("simulator log:\n%s", buf.String())
		}
	})
	return s
}
