//go:build !cgo

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/libnfc"
)

// TestReaderNeedsCgo: a binary built without cgo has no libnfc driver, so a
// configured reader is a configuration error at start (exit 2, what to
// install), not a reader that silently never opens.
func TestReaderNeedsCgo(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	rec := broker.Subscribe(t, "#")
	p := startProc(t, append(bridgeEnv(t, broker, fake), "NFC_DEVICE=pn532_uart:/dev/ttyAMA0", "NFC_CARDS=04A22B1CD35E80:Alice"))
	p.waitExit(t, 2, 10*time.Second)
	errOut := p.stderr.String()
	if !strings.Contains(errOut, "configuration: NFC_DEVICE is set, but this binary was built without cgo: "+libnfc.Install) {
		t.Errorf("stderr = %q, want the configuration error saying what to install", errOut)
	}
	if n := len(rec.Messages()); n != 0 || len(fake.Requests()) != 0 {
		t.Errorf("%d MQTT messages and %d cloud requests before the configuration error, want none", n, len(fake.Requests()))
	}
}
