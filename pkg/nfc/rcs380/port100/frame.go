// Package port100 is the frame format and the command codes of Sony's NFC
// Port-100 chip (the RC-S380's), after nfcpy's clf/rcs380.py. Both the
// driver (package rcs380) and the simulated chip (package rcs380sim) use
// it, so the format is in one place and fuzzed once.
//
// Every frame on the bulk endpoints is one of
//
//	ACK:  00 00 FF 00 FF 00
//	data: 00 00 FF FF FF LENL LENH LCS DATA... DCS 00
//
// with LEN the little-endian length of DATA, LENL+LENH+LCS = 0 mod 256 and
// sum(DATA)+DCS = 0 mod 256. DATA starts D6 (host to chip) or D7 (chip to
// host), then the command code (the response's is the command's + 1), then
// the parameters. An ACK from the host cancels the command in progress
// (nfcpy's soft reset).
package port100

import (
	"bytes"
	"errors"
	"fmt"
)

// Frame identifiers: the first data byte.
const (
	HostToChip = 0xD6
	ChipToHost = 0xD7
)

// MaxData is the longest DATA a frame may carry here: nfcpy reads 300-byte
// transfers, so a frame (8 header bytes, DATA, 2 trailer bytes) fits 290.
const MaxData = 290

// MaxFrame is the largest frame: the bulk IN transfer size to ask for.
const MaxFrame = MaxData + 10

// Command codes (nfcpy's Chipset.CMD): the subset a door reader needs.
const (
	InSetRF            = 0x00
	InSetProtocol      = 0x02
	InCommRF           = 0x04
	SwitchRF           = 0x06
	GetFirmwareVersion = 0x20
	GetPDDataVersion   = 0x22
	SetCommandType     = 0x2A
)

// CommandName names a command code for logs and errors.
func CommandName(code byte) string {
	switch code {
	case InSetRF:
		return "InSetRF"
	case InSetProtocol:
		return "InSetProtocol"
	case InCommRF:
		return "InCommRF"
	case SwitchRF:
		return "SwitchRF"
	case GetFirmwareVersion:
		return "GetFirmwareVersion"
	case GetPDDataVersion:
		return "GetPDDataVersion"
	case SetCommandType:
		return "SetCommandType"
	}
	return fmt.Sprintf("command %02X", code)
}

// ACK is the acknowledgement frame, both ways.
var ACK = []byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00}

// Errors of Decode. Every malformed frame unwraps to ErrFrame.
var (
	ErrFrame    = errors.New("port100: malformed frame")
	errShort    = fmt.Errorf("%w: too short", ErrFrame)
	errStart    = fmt.Errorf("%w: no start code 00 00 FF", ErrFrame)
	errLenSum   = fmt.Errorf("%w: length checksum", ErrFrame)
	errDataSum  = fmt.Errorf("%w: data checksum", ErrFrame)
	errPostamb  = fmt.Errorf("%w: no postamble 00", ErrFrame)
	errTooLong  = fmt.Errorf("%w: longer than %d data bytes", ErrFrame, MaxData)
	errTrailing = fmt.Errorf("%w: bytes after the frame", ErrFrame)
	errEmpty    = fmt.Errorf("%w: no data", ErrFrame)
)

// Encode wraps data (starting with D6 or D7) in a data frame.
func Encode(data []byte) []byte {
	n := len(data)
	f := make([]byte, 0, n+10)
	lo, hi := byte(n), byte(n>>8)
	f = append(f, 0x00, 0x00, 0xFF, 0xFF, 0xFF, lo, hi, -(lo + hi))
	f = append(f, data...)
	return append(f, checksum(data), 0x00)
}

func checksum(data []byte) byte {
	var s byte
	for _, b := range data {
		s += b
	}
	return -s
}

// Command builds the frame of a host command.
func Command(code byte, params []byte) []byte {
	d := make([]byte, 0, 2+len(params))
	d = append(d, HostToChip, code)
	return Encode(append(d, params...))
}

// Response builds the frame of the chip's answer to command code.
func Response(code byte, params []byte) []byte {
	d := make([]byte, 0, 2+len(params))
	d = append(d, ChipToHost, code+1)
	return Encode(append(d, params...))
}

// Decode parses one bulk transfer, which holds exactly one frame: it
// reports an ACK (data nil) or returns the frame's data. It never panics
// and never reads past b.
func Decode(b []byte) (ack bool, data []byte, err error) {
	switch {
	case bytes.Equal(b, ACK):
		return true, nil, nil
	case len(b) < 3:
		return false, nil, errShort
	case b[0] != 0x00 || b[1] != 0x00 || b[2] != 0xFF:
		return false, nil, errStart
	case len(b) < 10:
		return false, nil, errShort
	case b[3] != 0xFF || b[4] != 0xFF:
		return false, nil, fmt.Errorf("%w: not an extended frame (%02X %02X)", ErrFrame, b[3], b[4])
	case b[5]+b[6]+b[7] != 0:
		return false, nil, errLenSum
	}
	n := int(b[5]) | int(b[6])<<8
	switch {
	case n == 0:
		return false, nil, errEmpty
	case n > MaxData:
		return false, nil, errTooLong
	case len(b) < 8+n+2:
		return false, nil, fmt.Errorf("%w: %d bytes, the header says %d", errShort, len(b), 8+n+2)
	case len(b) > 8+n+2:
		return false, nil, errTrailing
	}
	data = b[8 : 8+n]
	if checksum(data) != b[8+n] {
		return false, nil, errDataSum
	}
	if b[9+n] != 0x00 {
		return false, nil, errPostamb
	}
	return false, data, nil
}

// ParseResponse checks that data (from Decode) is the chip's answer to
// command code and returns its parameters.
func ParseResponse(code byte, data []byte) ([]byte, error) {
	if len(data) < 2 {
		return nil, fmt.Errorf("%w: %d-byte response", ErrFrame, len(data))
	}
	if data[0] != ChipToHost || data[1] != code+1 {
		return nil, fmt.Errorf("%w: expected response D7 %02X to %s, got %02X %02X", ErrFrame, code+1, CommandName(code), data[0], data[1])
	}
	return data[2:], nil
}

// ParseCommand checks that data (from Decode) is a host command and returns
// its code and parameters.
func ParseCommand(data []byte) (code byte, params []byte, err error) {
	if len(data) < 2 || data[0] != HostToChip {
		return 0, nil, fmt.Errorf("%w: not a host command: % X", ErrFrame, data[:min(len(data), 2)])
	}
	return data[1], data[2:], nil
}
