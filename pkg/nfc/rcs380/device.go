// Package rcs380 drives Sony's PaSoRi RC-S380/S and RC-S380/P (USB
// 054c:06c1 and 054c:06c3, the NFC Port-100 chip) in pure Go over the
// kernel's usbfs: no cgo, no libusb, no kernel port100 driver. It
// implements nfc.Device, so the reader loop (taps, held cards, hold-off,
// unplug and re-open) is the same as with libnfc's readers.
//
// The protocol follows nfcpy's clf/rcs380.py: frames and ACKs (package
// port100), SetCommandType, GetFirmwareVersion, SwitchRF, InSetRF,
// InSetProtocol and InCommRF; sensing ISO14443A at 106 kbit/s (SENS_REQ,
// anticollision and select through the cascade levels of 4-, 7- and
// 10-byte UIDs) and FeliCa at 212 and 424 kbit/s (SENSF_REQ, the IDm). The
// RF field is off between poll cycles, as nfcpy's sense loop leaves it.
//
// The driver talks to the chip through a Transport: one bulk transfer per
// frame. OpenUSB's transport is usbfs (package usbfs); the tests and the
// demo use a simulated chip (package rcs380sim) at the same boundary.
package rcs380

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380/port100"
)

var _ nfc.Device = (*Device)(nil)

// Transport is the USB side of the reader: one call is one bulk transfer.
// Errors wrap syscall.ETIMEDOUT when the timeout passed and
// syscall.ENODEV when the device is gone.
type Transport interface {
	// Write sends one frame to the bulk OUT endpoint.
	Write(p []byte, timeout time.Duration) error
	// Read receives one frame from the bulk IN endpoint into p.
	Read(p []byte, timeout time.Duration) (int, error)
	// Close releases the device.
	Close() error
}

// The poll cycle: every PollPeriod the driver senses 106A, 212F and 424F
// once and then switches the field off until the next cycle. A card
// entering the field is found within one PollPeriod (the bound is
// 300 ms for both technologies).
const PollPeriod = 250 * time.Millisecond

// Timeouts of one command (each a bound on one bulk transfer).
const (
	writeTimeout = 100 * time.Millisecond
	ackTimeout   = 100 * time.Millisecond
	// rspTimeout bounds the answer to a command that does not wait for a
	// card; InCommRF's adds its own RF timeout.
	rspTimeout = 250 * time.Millisecond
	// drainTimeout is how long a read waits for leftovers at open and at
	// a re-sync (nfcpy: 10 ms).
	drainTimeout = 10 * time.Millisecond
	maxDrain     = 16

	// The RF timeouts of nfcpy's sense_tta and sense_ttf, in ms.
	rfTimeoutA = 30
	rfTimeoutF = 10

	// rfReset is how long the field stays off before a presence check, so
	// that a card resets (ISO 14443-3 wants at least 5.1 ms).
	rfReset = 10 * time.Millisecond

	// maxProtocolErrors: this many malformed or missing answers in a row
	// and the reader counts as failed (closed and opened again).
	maxProtocolErrors = 3
)

// Options configure a Device.
type Options struct {
	// Name is where the reader is ("rcs380:001:004"), for logs.
	Name   string
	Logger *slog.Logger
}

// Device is an open RC-S380. One goroutine owns it (Poll, Present, Close);
// Abort may be called from any goroutine at any time.
type Device struct {
	t    Transport
	name string
	log  *slog.Logger

	aborted atomic.Bool
	wake    chan struct{} // Abort's signal to a wait in progress; buffered 1

	mu     sync.Mutex // guards closed
	closed bool

	// Owner only.
	rfOn       bool
	target     *nfc.Card
	targetRate port100.Rate
	protoErrs  int
	buf        []byte
	firmware   [2]byte
}

// errProtocol marks an answer that was malformed, missing or out of order:
// the driver re-synchronises with the chip and goes on.
var errProtocol = errors.New("rcs380: protocol error")

var errClosed = errors.New("rcs380: device closed")

// New initialises the chip behind t as nfcpy does: an ACK (a soft reset),
// leftovers of an earlier session drained, SetCommandType 1,
// GetFirmwareVersion, GetPDDataVersion and the field off. On error t is
// closed.
func New(t Transport, o Options) (*Device, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Device{t: t, name: o.Name, log: log, wake: make(chan struct{}, 1), buf: make([]byte, port100.MaxFrame)}
	if err := d.init(); err != nil {
		_ = t.Close()
		return nil, fmt.Errorf("rcs380: initialise %s: %w", o.Name, err)
	}
	d.name = fmt.Sprintf("%s, NFC Port-100 v%x.%02x", o.Name, d.firmware[1], d.firmware[0])
	return d, nil
}

func (d *Device) init() error {
	if err := d.t.Write(port100.ACK, writeTimeout); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	if err := d.drain(); err != nil {
		return err
	}
	if err := d.status(port100.SetCommandType, []byte{1}); err != nil {
		return err
	}
	fw, err := d.command(port100.GetFirmwareVersion, nil, rspTimeout)
	if err != nil {
		return err
	}
	if len(fw) < 2 {
		return fmt.Errorf("%w: firmware version of %d bytes", errProtocol, len(fw))
	}
	copy(d.firmware[:], fw)
	if _, err := d.command(port100.GetPDDataVersion, nil, rspTimeout); err != nil {
		return err
	}
	return d.switchRF(false)
}

// drain reads what an earlier session left in the chip until a read times
// out.
func (d *Device) drain() error {
	for range maxDrain {
		n, err := d.t.Read(d.buf, drainTimeout)
		switch {
		case errors.Is(err, syscall.ETIMEDOUT):
			return nil
		case err != nil:
			return fmt.Errorf("drain: %w", err)
		}
		d.log.Debug("rcs380: cleared leftover bytes", "bytes", n)
	}
	return fmt.Errorf("%w: the chip keeps sending", errProtocol)
}

// Name says which reader this is, for logs.
func (d *Device) Name() string { return d.name }

// command sends one command and returns the parameters of the chip's
// answer: the frame, the chip's ACK, the response. Transport failures
// (ENODEV: unplugged) are returned as they are; a malformed, missing or
// unexpected answer is errProtocol.
func (d *Device) command(code byte, params []byte, timeout time.Duration) ([]byte, error) {
	if err := d.t.Write(port100.Command(code, params), writeTimeout); err != nil {
		return nil, d.transportErr(code, "write", err)
	}
	n, err := d.t.Read(d.buf, ackTimeout)
	if err != nil {
		return nil, d.transportErr(code, "read ACK", err)
	}
	if ack, _, err := port100.Decode(d.buf[:n]); err != nil || !ack {
		return nil, fmt.Errorf("%w: %s: expected an ACK, got % X (%v)", errProtocol, port100.CommandName(code), cut(d.buf[:n]), err)
	}
	n, err = d.t.Read(d.buf, timeout)
	if err != nil {
		return nil, d.transportErr(code, "read response", err)
	}
	ack, data, err := port100.Decode(d.buf[:n])
	if err == nil && ack {
		err = errors.New("a second ACK")
	}
	if err == nil {
		var rsp []byte
		if rsp, err = port100.ParseResponse(code, data); err == nil {
			return bytes.Clone(rsp), nil
		}
	}
	return nil, fmt.Errorf("%w: %s: % X: %v", errProtocol, port100.CommandName(code), cut(d.buf[:n]), err)
}

func (d *Device) transportErr(code byte, what string, err error) error {
	if errors.Is(err, syscall.ETIMEDOUT) {
		return fmt.Errorf("%w: %s: %s: %v", errProtocol, port100.CommandName(code), what, err)
	}
	return fmt.Errorf("rcs380: %s: %s %s: %w", d.name, port100.CommandName(code), what, err)
}

// cut bounds the bytes an error message shows.
func cut(b []byte) []byte { return b[:min(len(b), 16)] }

// status sends a command whose answer is one status byte.
func (d *Device) status(code byte, params []byte) error {
	rsp, err := d.command(code, params, rspTimeout)
	if err != nil {
		return err
	}
	if len(rsp) < 1 {
		return fmt.Errorf("%w: %s: empty answer", errProtocol, port100.CommandName(code))
	}
	if rsp[0] != 0 {
		return fmt.Errorf("rcs380: %s: %w", port100.CommandName(code), port100.StatusError(rsp[0]))
	}
	return nil
}

func (d *Device) switchRF(on bool) error {
	v := byte(0)
	if on {
		v = 1
	}
	if err := d.status(port100.SwitchRF, []byte{v}); err != nil {
		return err
	}
	d.rfOn = on
	return nil
}

func (d *Device) inSetRF(r port100.Rate) error {
	return d.status(port100.InSetRF, port100.InSetRFParams(r))
}

func (d *Device) inSetProtocol(s ...port100.Setting) error {
	return d.status(port100.InSetProtocol, port100.Settings(s...))
}

func (d *Device) inSetProtocolDefaults() error {
	return d.status(port100.InSetProtocol, port100.ProtocolDefaults)
}

// inCommRF sends data to the card and returns its answer; a
// port100.CommError when it did not answer properly.
func (d *Device) inCommRF(data []byte, timeoutMs int) ([]byte, error) {
	d.rfOn = true // InCommRF switches the field on
	rsp, err := d.command(port100.InCommRF, port100.InCommRFParams(timeoutMs, data),
		rspTimeout+time.Duration(timeoutMs)*time.Millisecond)
	if err != nil {
		return nil, err
	}
	rx, err := port100.ParseInCommRF(rsp)
	if errors.Is(err, port100.ErrFrame) {
		return nil, fmt.Errorf("%w: %v", errProtocol, err)
	}
	return rx, err
}

// abortedNow consumes a pending Abort.
func (d *Device) abortedNow() bool {
	if d.aborted.Swap(false) {
		select {
		case <-d.wake:
		default:
		}
		return true
	}
	return false
}

// wait sleeps for dur unless Abort comes first; false when aborted.
func (d *Device) wait(dur time.Duration) bool {
	if dur <= 0 {
		return !d.abortedNow()
	}
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-d.wake:
		d.aborted.Store(false)
		return false
	case <-t.C:
		return !d.abortedNow()
	}
}

// Abort interrupts the Poll or Present in progress at its next step (at
// most one bulk transfer later); with none in progress the next one returns
// ErrAborted at once. Safe from any goroutine, also during Close.
func (d *Device) Abort() error {
	d.aborted.Store(true)
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return nil
}

func (d *Device) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// Poll runs one poll cycle: 106A, then 212F, then 424F, and, when no card
// answered, the field off until PollPeriod has passed since the cycle
// began. It returns the first card found (the field stays on for the
// presence checks), ErrNoCard, ErrAborted, or an error when the reader
// failed (unplugged: the error wraps syscall.ENODEV). A malformed answer
// is logged, the driver re-synchronises with the chip, and the cycle ends
// as ErrNoCard; several in a row count as a failed reader.
func (d *Device) Poll() (nfc.Card, error) {
	if d.isClosed() {
		return nfc.Card{}, errClosed
	}
	d.target = nil
	if d.abortedNow() {
		return nfc.Card{}, nfc.ErrAborted
	}
	start := time.Now()
	c, err := d.sense()
	if err == nil {
		// A whole sensing pass went through: only that ends a run of bad
		// answers (a good SwitchRF between bad InCommRF answers does not).
		d.protoErrs = 0
	}
	switch {
	case errors.Is(err, nfc.ErrAborted):
		return nfc.Card{}, err
	case errors.Is(err, errProtocol):
		if rerr := d.resync(err); rerr != nil {
			return nfc.Card{}, rerr
		}
		return nfc.Card{}, nfc.ErrNoCard
	case err != nil:
		return nfc.Card{}, err
	case c != nil:
		return *c, nil
	}
	if err := d.switchRF(false); err != nil {
		if errors.Is(err, errProtocol) {
			if rerr := d.resync(err); rerr != nil {
				return nfc.Card{}, rerr
			}
			return nfc.Card{}, nfc.ErrNoCard
		}
		return nfc.Card{}, err
	}
	if !d.wait(PollPeriod - time.Since(start)) {
		return nfc.Card{}, nfc.ErrAborted
	}
	return nfc.Card{}, nfc.ErrNoCard
}

// sense is one pass over the technologies; nil, nil when no card answered.
func (d *Device) sense() (*nfc.Card, error) {
	if d.rfOn {
		// A card was on the reader: the field goes off first, so that
		// every card in the field starts afresh (nfcpy's mute).
		if err := d.switchRF(false); err != nil {
			return nil, err
		}
		if !d.wait(rfReset) {
			return nil, nfc.ErrAborted
		}
	}
	uid, err := d.senseA(nil)
	if err != nil {
		return nil, err
	}
	if uid != nil {
		d.target, d.targetRate = &nfc.Card{Kind: nfc.ISO14443A, UID: uid}, port100.Rate106A
		return d.target, nil
	}
	for _, r := range []port100.Rate{port100.Rate212F, port100.Rate424F} {
		if d.abortedNow() {
			return nil, nfc.ErrAborted
		}
		idm, err := d.senseF(r)
		if err != nil {
			return nil, err
		}
		if idm != nil {
			d.target, d.targetRate = &nfc.Card{Kind: nfc.FeliCa, UID: idm}, r
			return d.target, nil
		}
	}
	return nil, nil
}

// Present reports whether the card the last Poll returned is still in the
// field: an ISO14443A card is reset (the field off for rfReset) and
// selected again by its UID; a FeliCa card is polled at its rate and must
// answer with its IDm. False without such a card.
func (d *Device) Present() (bool, error) {
	if d.isClosed() {
		return false, errClosed
	}
	if d.abortedNow() {
		return false, nfc.ErrAborted
	}
	if d.target == nil {
		return false, nil
	}
	var ok bool
	var err error
	switch d.target.Kind {
	case nfc.ISO14443A:
		if err = d.switchRF(false); err == nil {
			if !d.wait(rfReset) {
				return false, nfc.ErrAborted
			}
			var uid []byte
			uid, err = d.senseA(d.target.UID)
			ok = uid != nil
		}
	case nfc.FeliCa:
		var idm []byte
		idm, err = d.senseF(d.targetRate)
		ok = bytes.Equal(idm, d.target.UID)
	}
	if err == nil {
		d.protoErrs = 0
	}
	switch {
	case errors.Is(err, nfc.ErrAborted):
		return false, err
	case errors.Is(err, errProtocol):
		if rerr := d.resync(err); rerr != nil {
			return false, rerr
		}
		d.target = nil
		return false, nil
	case err != nil:
		return false, err
	}
	if !ok {
		d.target = nil
	}
	return ok, nil
}

// resync logs a malformed or missing answer, cancels what the chip is doing
// (an ACK) and drains what it still sends. It returns an error when the
// reader failed or keeps answering badly.
func (d *Device) resync(cause error) error {
	d.protoErrs++
	d.log.Warn("rcs380: bad answer from the reader; re-synchronising", "reader", d.name, "err", cause, "in_a_row", d.protoErrs)
	d.rfOn = true // unknown: switch it off before the next sense
	if err := d.t.Write(port100.ACK, writeTimeout); err != nil {
		return fmt.Errorf("rcs380: %s: re-sync: %w", d.name, err)
	}
	if err := d.drain(); err != nil {
		return fmt.Errorf("rcs380: %s: re-sync: %w", d.name, err)
	}
	if d.protoErrs >= maxProtocolErrors {
		return fmt.Errorf("rcs380: %s: %d bad answers in a row: %w", d.name, d.protoErrs, cause)
	}
	return nil
}

// Close switches the field off, cancels what the chip is doing and releases
// the device. Idempotent; never while the owner's Poll or Present runs.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.target = nil
	if err := d.switchRF(false); err != nil {
		d.log.Debug("rcs380: field off at close", "reader", d.name, "err", err)
	} else if err := d.t.Write(port100.ACK, writeTimeout); err != nil {
		d.log.Debug("rcs380: ACK at close", "reader", d.name, "err", err)
	}
	if err := d.t.Close(); err != nil {
		return fmt.Errorf("rcs380: close %s: %w", d.name, err)
	}
	return nil
}
