package rcs380

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380/usbfs"
)

// USB ids of the RC-S380/S and RC-S380/P (nfcpy's device table).
const (
	VendorSony = 0x054c
	ProductS   = 0x06c1
	ProductP   = 0x06c3
)

// Connstring names: "rcs380" for the first RC-S380 found, "rcs380:BBB:DDD"
// for the one on bus BBB with device number DDD (as lsusb prints them).
const Prefix = "rcs380"

// IsConnstring reports whether s names an RC-S380 rather than a libnfc
// reader.
func IsConnstring(s string) bool {
	return strings.EqualFold(s, Prefix) || strings.HasPrefix(strings.ToLower(s), Prefix+":")
}

// ParseConnstring returns the bus and device number s names; 0, 0 for the
// first RC-S380 found.
func ParseConnstring(s string) (bus, dev int, err error) {
	if !IsConnstring(s) {
		return 0, 0, fmt.Errorf("%q is not rcs380 or rcs380:BBB:DDD", s)
	}
	if len(s) == len(Prefix) {
		return 0, 0, nil
	}
	parts := strings.Split(s[len(Prefix)+1:], ":")
	if len(parts) != 2 {
		return 0, 0, fmt.Errorf("%q: want rcs380 or rcs380:BBB:DDD (bus and device number, as lsusb prints them)", s)
	}
	bus, err1 := strconv.Atoi(parts[0])
	dev, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || len(parts[0]) > 3 || len(parts[1]) > 3 || bus < 1 || bus > 255 || dev < 1 || dev > 127 {
		return 0, 0, fmt.Errorf("%q: the bus (1-255) and device number (1-127) are decimal, like rcs380:001:004", s)
	}
	return bus, dev, nil
}

// UdevRule lets the members of plugdev open an RC-S380 (README, Card reader).
const UdevRule = `SUBSYSTEM=="usb", ATTRS{idVendor}=="054c", ATTRS{idProduct}=="06c1|06c3", GROUP="plugdev", MODE="0660"`

// ErrSetup marks what the machine's configuration must fix (permissions,
// the port100 kernel driver); re-opening will not help until then.
var ErrSetup = errors.New("rcs380: the machine needs setting up")

// setupError is an ErrSetup with what to do.
type setupError struct {
	msg string
	err error
}

func (e *setupError) Error() string   { return e.msg }
func (e *setupError) Unwrap() []error { return []error{ErrSetup, e.err} }

// ErrNotFound: no RC-S380 on the USB (or not the one asked for).
var ErrNotFound = errors.New("rcs380: no Sony RC-S380 found (lsusb lists it as 054c:06c1 or 054c:06c3)")

// Dialer opens the transport of the reader connstring names and says what
// it is, for logs.
type Dialer func(connstring string) (t Transport, name string, err error)

// Open opens the RC-S380 connstring names through dial and initialises it.
func Open(connstring string, dial Dialer, log *slog.Logger) (*Device, error) {
	t, name, err := dial(connstring)
	if err != nil {
		return nil, err
	}
	return New(t, Options{Name: name, Logger: log})
}

// USB finds RC-S380s in a usbfs tree and opens them.
type USB struct {
	Tree   usbfs.Tree
	Logger *slog.Logger
}

// Find lists the RC-S380s connstring selects.
func (u USB) Find(connstring string) ([]usbfs.Info, error) {
	bus, dev, err := ParseConnstring(connstring)
	if err != nil {
		return nil, err
	}
	return u.Tree.Find(func(i usbfs.Info) bool {
		return i.Vendor == VendorSony && (i.Product == ProductS || i.Product == ProductP) &&
			(bus == 0 || (i.Bus == bus && i.Dev == dev))
	})
}

// Dial is the Dialer of the machine's USB: it finds the RC-S380,
// detaches the kernel's port100 driver when the kernel allows it, and
// claims the interface. Errors that the machine's setup must fix wrap
// ErrSetup and say what to do.
func (u USB) Dial(connstring string) (Transport, string, error) {
	found, err := u.Find(connstring)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, "", fmt.Errorf("%w: this machine shows no USB devices (%v; in a container, pass the USB devices in)", ErrNotFound, err)
	case err != nil:
		return nil, "", fmt.Errorf("rcs380: %w", err)
	}
	if len(found) == 0 {
		if connstring != Prefix {
			return nil, "", fmt.Errorf("%w at %s", ErrNotFound, connstring)
		}
		return nil, "", ErrNotFound
	}
	info := found[0]
	where := fmt.Sprintf("%s:%03d:%03d", Prefix, info.Bus, info.Dev)
	name := strings.TrimSpace(info.ProductName)
	if name == "" {
		name = "RC-S380"
	}
	if !strings.Contains(strings.ToLower(name), "sony") {
		name = "Sony " + name
	}
	name += " (" + where + ")"
	conn, err := usbfs.Open(info, usbfs.Options{Detach: true})
	if err != nil {
		return nil, "", openError(info, name, err)
	}
	if conn.Detached != "" && u.Logger != nil {
		u.Logger.Info("rcs380: detached the kernel driver from the reader", "driver", conn.Detached, "device", info.Node)
	}
	return conn, name, nil
}

// openError says what to do about a failed open: the setup problems wrap
// ErrSetup. The driver comes first: a refused detach is EPERM too.
func openError(info usbfs.Info, name string, err error) error {
	switch {
	case errors.Is(err, usbfs.ErrDriverBound):
		return &setupError{err: err, msg: fmt.Sprintf(
			"rcs380: %s at %s: %v: unload it with modprobe -r port100 and keep it unloaded with the line "+
				"blacklist port100 in /etc/modprobe.d/blacklist-port100.conf",
			name, info.Node, err)}
	case errors.Is(err, os.ErrPermission):
		return &setupError{err: err, msg: fmt.Sprintf(
			"rcs380: %s (%s) may not be opened by this user (%v): add the udev rule %s to /etc/udev/rules.d/60-nfc-reader.rules, "+
				"run udevadm control --reload and udevadm trigger (or plug the reader in again), and add the user to the plugdev group",
			info.Node, name, errors.Unwrap(err), UdevRule)}
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENODEV):
		return fmt.Errorf("%w: %s is gone (%v)", ErrNotFound, info.Node, err)
	}
	return fmt.Errorf("rcs380: open %s: %w", info.Node, err)
}
