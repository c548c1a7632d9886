package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380/rcs380sim"
)

// TestAutoFindsRCS380: NFC_DEVICE=auto opens an RC-S380 when libnfc finds
// no reader (or the build has no libnfc).
func TestAutoFindsRCS380(t *testing.T) {
	t.Setenv("LIBNFC_DEVICE", "")
	log, _ := logcapture.New()
	sim := rcs380sim.New(rcs380sim.Options{})
	useRCS380Sim(t, sim)
	dev, err := openReader(log)("auto")
	if err != nil {
		t.Fatalf("auto: %v", err)
	}
	defer dev.Close()
	if !strings.Contains(dev.Name(), "RC-S380") || sim.Stats().Opens != 1 {
		t.Errorf("auto opened %q (RC-S380 opens %d)", dev.Name(), sim.Stats().Opens)
	}
	// Without an RC-S380 either: an error that names both.
	sim.Unplug()
	if _, err := openReader(log)("auto"); err == nil || !strings.Contains(err.Error(), "no reader") {
		t.Errorf("auto without any reader: %v", err)
	}
}

// TestRCS380SetupProblemIsConfigError: the port100 driver or the node's
// permissions found at start stop the bridge with a configuration error;
// a reader not plugged in does not.
func TestRCS380SetupProblemIsConfigError(t *testing.T) {
	old := rcs380Dialer
	t.Cleanup(func() { rcs380Dialer = old })
	for _, tc := range []struct {
		name   string
		err    error
		config bool
	}{
		{"permission", fmt.Errorf("x: %w", rcs380.ErrSetup), true},
		{"not plugged in", rcs380.ErrNotFound, false},
		{"gone", syscall.ENODEV, false},
	} {
		rcs380Dialer = func(*slog.Logger) rcs380.Dialer {
			return func(string) (rcs380.Transport, string, error) { return nil, "", tc.err }
		}
		log, _ := logcapture.New()
		err := checkReader("rcs380:001:004", log)
		var ce configError
		if got := errors.As(err, &ce); got != tc.config {
			t.Errorf("%s: %v, configuration error %v, want %v", tc.name, err, got, tc.config)
		}
		if tc.config && !strings.Contains(err.Error(), "NFC_DEVICE rcs380:001:004") {
			t.Errorf("%s: %v does not name the variable", tc.name, err)
		}
	}
	if err := checkReader("pn532_uart:/dev/ttyAMA0", slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("a libnfc reader is not checked: %v", err)
	}
}
