//go:build !cgo

package libnfc

import "github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"

var _ nfc.Device = (*Device)(nil)

// Available reports whether this build has the libnfc driver: not without cgo.
const Available = false

// Device is an open reader; without cgo there is none.
type Device struct{}

// Open fails: this build has no libnfc.
func Open(connstring string) (*Device, error) { return nil, ErrNoCgo }

// Name returns "".
func (d *Device) Name() string { return "" }

// Poll fails with ErrNoCgo.
func (d *Device) Poll() (nfc.Card, error) { return nfc.Card{}, ErrNoCgo }

// Present fails with ErrNoCgo.
func (d *Device) Present() (bool, error) { return false, ErrNoCgo }

// Abort does nothing.
func (d *Device) Abort() error { return nil }

// Close does nothing.
func (d *Device) Close() error { return nil }

// ListDevices fails with ErrNoCgo.
func ListDevices() ([]string, error) { return nil, ErrNoCgo }
