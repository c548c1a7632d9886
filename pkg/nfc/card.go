// Package nfc turns a card reader into taps: one goroutine owns the reader,
// polls it, tells a card held on the reader from a new tap, and re-opens a
// reader that was unplugged. It does not use cgo: the libnfc driver lives in
// pkg/nfc/libnfc and is handed in as an Opener.
package nfc

import (
	"encoding/hex"
	"errors"
	"strings"
)

// Kind is the card technology a UID was read with.
type Kind int

const (
	// ISO14443A: MIFARE, NTAG, most office and transit cards outside Japan.
	ISO14443A Kind = iota + 1
	// FeliCa (212 or 424 kbit/s): Suica and Japanese office cards. The UID
	// is the IDm.
	FeliCa
)

func (k Kind) String() string {
	switch k {
	case ISO14443A:
		return "iso14443a"
	case FeliCa:
		return "felica"
	}
	return "unknown"
}

// Card is one card in the reader's field.
type Card struct {
	Kind Kind
	UID  []byte // ISO14443A UID (4, 7 or 10 bytes) or FeliCa IDm (8 bytes)
}

// HexUID is the canonical form of a UID: uppercase hex without separators.
func (c Card) HexUID() string { return strings.ToUpper(hex.EncodeToString(c.UID)) }

// Random reports a UID that a phone or a privacy-minded card makes up anew
// at every tap (ISO 14443-3: a 4-byte UID starting 0x08). It identifies
// nobody and must never match an allowlist.
func (c Card) Random() bool {
	return c.Kind == ISO14443A && len(c.UID) == 4 && c.UID[0] == 0x08
}

// Errors a Device returns; anything else means the reader failed (unplugged,
// I/O error) and is closed and opened again.
var (
	// ErrNoCard: a poll cycle ended without a card in the field.
	ErrNoCard = errors.New("nfc: no card")
	// ErrAborted: Abort interrupted the call.
	ErrAborted = errors.New("nfc: aborted")
)

// Device is an open reader. Only Abort may be called from a goroutine other
// than the one that owns the device, and Close only after the owner's last
// call returned.
type Device interface {
	// Poll waits up to one poll cycle for a card. It returns ErrNoCard when
	// the cycle ended empty and ErrAborted when Abort interrupted it.
	Poll() (Card, error)
	// Present reports whether the card returned by the last Poll is still in
	// the field.
	Present() (bool, error)
	// Abort interrupts a Poll or Present in progress; safe from any goroutine.
	Abort() error
	// Close releases the reader.
	Close() error
	// Name is what the reader calls itself, for logs.
	Name() string
}
