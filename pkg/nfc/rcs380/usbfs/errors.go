package usbfs

import (
	"errors"
	"fmt"
)

// ErrDriverBound is returned by Open when a kernel driver holds the
// interface and detaching it is not allowed or failed.
var ErrDriverBound = errors.New("usbfs: a kernel driver holds the interface")

// DriverError says which driver holds the interface and why it stays.
type DriverError struct {
	Driver string
	Err    error // why detaching failed; nil when Detach was off
}

func (e *DriverError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("the kernel driver %s holds the interface and could not be detached: %v", e.Driver, e.Err)
	}
	return fmt.Sprintf("the kernel driver %s holds the interface", e.Driver)
}

func (e *DriverError) Unwrap() []error { return []error{ErrDriverBound, e.Err} }

// Options of Open.
type Options struct {
	// Detach disconnects a kernel driver bound to the interface
	// (USBDEVFS_DISCONNECT) before claiming it.
	Detach bool
}
