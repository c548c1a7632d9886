//go:build cgo

package libnfc

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cnfc "github.com/clausecker/nfc/v2"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
)

var _ nfc.Device = (*Device)(nil)

// Available reports whether this build has the libnfc driver: with cgo, yes.
const Available = true

// modulations are what Poll looks for. Never empty: clausecker/nfc panics
// on an empty slice.
var modulations = []cnfc.Modulation{
	{Type: cnfc.ISO14443a, BaudRate: cnfc.Nbr106},
	{Type: cnfc.Felica, BaudRate: cnfc.Nbr212},
	{Type: cnfc.Felica, BaudRate: cnfc.Nbr424},
}

var errClosed = errors.New("libnfc: device closed")

// Device is an open reader in initiator (reader) mode. See the package
// documentation for which goroutine may call what.
type Device struct {
	dev  cnfc.Device
	name string

	mu     sync.Mutex // serialises Abort with Close
	closed bool       // guarded by mu

	// aborted is set by Abort and consumed by the Poll or Present that was
	// running, or else by the next one: libnfc forgets an abort that
	// arrives while no reply is awaited.
	aborted atomic.Bool

	// call is odd while the owner's Poll or Present runs in libnfc: it
	// is incremented when the call starts and when it returns.
	call atomic.Uint64

	// target is the card the last Poll returned while libnfc still holds
	// it selected; nil once Present found it gone. Owner only.
	target *nfc.Card
}

// Open opens the reader at connstring ("auto" or "": the first reader
// libnfc finds, LIBNFC_DEVICE first), makes it an initiator and turns
// infinite select off: every select tries once, so that no call blocks on
// an empty field and the MIFARE Classic presence check needs no extra
// round trips. libnfc's own reason for a failed open goes to stderr with
// LIBNFC_LOG_LEVEL=3.
func Open(connstring string) (*Device, error) {
	conn := connstring
	if conn == "auto" {
		conn = ""
	}
	dev, err := cnfc.Open(conn)
	if err = check(err); err != nil {
		return nil, fmt.Errorf("libnfc: open %q: %w", connstring, err)
	}
	d := &Device{dev: dev, name: deviceName(dev)}
	if err := check(dev.InitiatorInit()); err != nil {
		dev.Close()
		return nil, fmt.Errorf("libnfc: initiator init %s: %w", d.name, describe(err))
	}
	if err := check(dev.SetPropertyBool(cnfc.InfiniteSelect, false)); err != nil {
		dev.Close()
		return nil, fmt.Errorf("libnfc: infinite select off %s: %w", d.name, describe(err))
	}
	return d, nil
}

// Name names the reader for logs: libnfc's name and, when that does not
// say where the reader is, its connstring ("pn532_uart:/dev/ttyUSB0", "ACS
// / ACR122U PICC Interface (acr122_usb:001:004)").
func (d *Device) Name() string { return d.name }

func deviceName(dev cnfc.Device) string {
	name, conn := dev.String(), dev.Connection()
	switch {
	case conn == "" || strings.HasPrefix(conn, name):
		return name
	case name == "" || name == "user defined device": // LIBNFC_DEVICE, libnfc.conf
		return conn
	}
	return name + " (" + conn + ")"
}

// Poll runs one poll cycle (PollCycle when no card comes) and returns the
// first card found: ErrNoCard when none came, ErrAborted after Abort, and
// a wrapped libnfc error (e.g. EIO: reader unplugged) otherwise.
func (d *Device) Poll() (nfc.Card, error) {
	if d.isClosed() {
		return nfc.Card{}, errClosed
	}
	d.target = nil
	if d.aborted.Swap(false) {
		return nfc.Card{}, nfc.ErrAborted
	}
	d.call.Add(1)
	n, t, err := d.dev.InitiatorPollTarget(modulations, PollNr, PollPeriod)
	d.call.Add(1)
	err = check(err)
	if d.aborted.Swap(false) {
		return nfc.Card{}, nfc.ErrAborted
	}
	switch {
	case is(err, cnfc.EOPABORTED):
		return nfc.Card{}, nfc.ErrAborted
	case is(err, cnfc.ETIMEOUT):
		return nfc.Card{}, nfc.ErrNoCard
	case err != nil:
		return nfc.Card{}, fmt.Errorf("libnfc: poll %s: %w", d.name, describe(err))
	case n <= 0 || t == nil:
		return nfc.Card{}, nfc.ErrNoCard
	}
	var c nfc.Card
	switch t := t.(type) {
	case *cnfc.ISO14443aTarget:
		c = nfc.Card{Kind: nfc.ISO14443A, UID: bytes.Clone(t.UID[:min(max(t.UIDLen, 0), len(t.UID))])}
	case *cnfc.FelicaTarget:
		c = nfc.Card{Kind: nfc.FeliCa, UID: bytes.Clone(t.ID[:])}
	default:
		return nfc.Card{}, fmt.Errorf("libnfc: poll %s: unexpected target %T", d.name, t)
	}
	if len(c.UID) == 0 {
		return nfc.Card{}, fmt.Errorf("libnfc: poll %s: target without a UID", d.name)
	}
	d.target = &c
	return c, nil
}

// Present reports whether the card the last Poll returned is still in the
// field (libnfc's nfc_initiator_target_is_present: an R(NAK) for
// ISO14443-4 cards, a page read for Ultralight/NTAG, a re-select by UID for
// MIFARE Classic, a FeliCa Request Response). Cards libnfc cannot ping are
// re-selected by UID. Without such a card (no Poll yet, or already gone)
// it returns false. ErrAborted after Abort; a wrapped libnfc error when the
// reader fails.
func (d *Device) Present() (bool, error) {
	if d.isClosed() {
		return false, errClosed
	}
	if d.aborted.Swap(false) {
		return false, nfc.ErrAborted
	}
	if d.target == nil {
		return false, nil
	}
	d.call.Add(1)
	err := check(d.dev.InitiatorTargetIsPresent(nil))
	if is(err, cnfc.EDEVNOTSUPP) && d.target.Kind == nfc.ISO14443A && !d.aborted.Load() {
		ok, err := d.reselect()
		d.call.Add(1)
		return ok, err
	}
	d.call.Add(1)
	if d.aborted.Swap(false) {
		return false, nfc.ErrAborted
	}
	switch {
	case err == nil:
		return true, nil
	case is(err, cnfc.ETGRELEASED), is(err, cnfc.ERFTRANS):
		// Gone (libnfc has forgotten the target), or it no longer answers
		// properly, which is how a card leaving the field looks.
		d.target = nil
		return false, nil
	case is(err, cnfc.EOPABORTED):
		return false, nfc.ErrAborted
	}
	return false, fmt.Errorf("libnfc: presence check %s: %w", d.name, describe(err))
}

// reselect checks an ISO14443A card libnfc cannot ping by selecting its
// UID again (what libnfc does for MIFARE Classic).
func (d *Device) reselect() (bool, error) {
	t, err := d.selectUID(d.target.UID)
	err = check(err)
	if d.aborted.Swap(false) {
		return false, nfc.ErrAborted
	}
	switch {
	case is(err, cnfc.EOPABORTED):
		return false, nfc.ErrAborted
	case is(err, cnfc.ERFTRANS), is(err, cnfc.ETIMEOUT):
		d.target = nil
		return false, nil
	case err != nil:
		return false, fmt.Errorf("libnfc: presence check (re-select) %s: %w", d.name, describe(err))
	}
	if a, ok := t.(*cnfc.ISO14443aTarget); ok && a.UIDLen > 0 && a.UIDLen <= len(a.UID) && bytes.Equal(a.UID[:a.UIDLen], d.target.UID) {
		return true, nil
	}
	d.target = nil
	return false, nil
}

// selectUID selects the ISO14443A card with this UID; nil, nil when it
// does not answer. clausecker/nfc v2.2.0 panics when the select finds no
// card (it decodes the empty target); the panic comes from Go code after
// the C call returned, so recovering it is safe.
func (d *Device) selectUID(uid []byte) (t cnfc.Target, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, nil
		}
	}()
	return d.dev.InitiatorSelectPassiveTarget(modulations[0], uid)
}

// abortRetries are the delays after which Abort repeats libnfc's abort
// while the same call still runs. libnfc's pn532_uart driver only hears an
// abort while it waits for the chip's answer, not while it sends a command
// or waits for the chip's ACK (a few milliseconds); an abort in that window
// is lost and would leave Poll running to the end of its cycle.
var abortRetries = []time.Duration{20 * time.Millisecond, 200 * time.Millisecond}

// Abort interrupts the Poll or Present in progress, which then returns
// ErrAborted, usually within milliseconds and at worst at the end of its
// poll cycle; when none is in progress, the next one returns ErrAborted at
// once. Abort does not block. Safe from any goroutine, also concurrently
// with Close (then a no-op).
func (d *Device) Abort() error {
	d.aborted.Store(true)
	call := d.call.Load()
	if err := d.abortCommand(); err != nil {
		return err
	}
	if call%2 == 1 {
		d.retryAbort(call, 0)
	}
	return nil
}

// retryAbort repeats the abort after abortRetries[i] if the call that was
// running is still running. The timers need no stopping: they check the
// call sequence and, under mu, whether the device was closed. Should the
// call end and the owner start the next one right between the check and
// the abort, that next call returns ErrAborted once: harmless, as callers
// retry on ErrAborted unless they are shutting down.
func (d *Device) retryAbort(call uint64, i int) {
	if i >= len(abortRetries) {
		return
	}
	time.AfterFunc(abortRetries[i], func() {
		if d.call.Load() != call {
			return
		}
		if err := d.abortCommand(); err != nil {
			return // closed in between, or libnfc failed: nothing to add
		}
		d.retryAbort(call, i+1)
	})
}

func (d *Device) abortCommand() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	if err := check(d.dev.AbortCommand()); err != nil {
		return fmt.Errorf("libnfc: abort %s: %w", d.name, describe(err))
	}
	return nil
}

// Close releases the reader (libnfc switches the field off and puts the
// chip to sleep). Idempotent. Never while the owner's Poll or Present runs.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	d.target = nil
	if err := check(d.dev.Close()); err != nil {
		return fmt.Errorf("libnfc: close %s: %w", d.name, err)
	}
	return nil
}

func (d *Device) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// ListDevices returns the connstrings of the readers libnfc knows: those
// named by LIBNFC_DEVICE or its configuration, then those its scan found
// (the scan never probes serial ports or ptys).
func ListDevices() ([]string, error) {
	l, err := cnfc.ListDevices()
	if err = check(err); err != nil {
		return nil, fmt.Errorf("libnfc: list devices: %w", describe(err))
	}
	for i := range l {
		l[i] = strings.TrimRight(l[i], "\x00")
	}
	return l, nil
}

// check maps the nfc.Error(0) that some clausecker/nfc calls return on
// success to nil.
func check(err error) error {
	var e cnfc.Error
	if errors.As(err, &e) && e == cnfc.SUCCESS {
		return nil
	}
	return err
}

// is reports whether err is the libnfc error code.
func is(err error, code int) bool {
	var e cnfc.Error
	return errors.As(err, &e) && int(e) == code
}

// codeNames are libnfc's symbolic error names, for messages.
var codeNames = map[cnfc.Error]string{
	cnfc.EIO: "EIO", cnfc.EINVARG: "EINVARG", cnfc.EDEVNOTSUPP: "EDEVNOTSUPP",
	cnfc.ENOTSUCHDEV: "ENOTSUCHDEV", cnfc.EOVFLOW: "EOVFLOW", cnfc.ETIMEOUT: "ETIMEOUT",
	cnfc.EOPABORTED: "EOPABORTED", cnfc.ENOTIMPL: "ENOTIMPL", cnfc.ETGRELEASED: "ETGRELEASED",
	cnfc.ERFTRANS: "ERFTRANS", cnfc.EMFCAUTHFAIL: "EMFCAUTHFAIL", cnfc.ESOFT: "ESOFT",
	cnfc.ECHIP: "ECHIP",
}

// codeError is a libnfc error with its code in the message; it unwraps to
// the cnfc.Error.
type codeError struct{ err cnfc.Error }

func (e codeError) Error() string {
	name, ok := codeNames[e.err]
	if !ok {
		name = "code"
	}
	return fmt.Sprintf("%s (%s %d)", e.err.Error(), name, int(e.err))
}

func (e codeError) Unwrap() error { return e.err }

// describe adds the symbolic code to a libnfc error ("input / output error
// (EIO -1)"); other errors pass through.
func describe(err error) error {
	var e cnfc.Error
	if errors.As(err, &e) {
		return codeError{e}
	}
	return err
}
