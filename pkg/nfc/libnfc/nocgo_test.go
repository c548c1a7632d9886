//go:build !cgo

package libnfc_test

import (
	"errors"
	"testing"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/libnfc"
)

func TestWithoutCgo(t *testing.T) {
	if _, err := libnfc.Open("auto"); !errors.Is(err, libnfc.ErrNoCgo) {
		t.Fatalf("Open: %v, want ErrNoCgo", err)
	}
	if _, err := libnfc.ListDevices(); !errors.Is(err, libnfc.ErrNoCgo) {
		t.Fatalf("ListDevices: %v, want ErrNoCgo", err)
	}
}
