package port100

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Rate is a bit rate and technology, as nfcpy names them.
type Rate string

// The rates a door reader polls.
const (
	Rate106A Rate = "106A"
	Rate212F Rate = "212F"
	Rate424F Rate = "424F"
)

// rfSettings are InSetRF's parameters per rate (nfcpy's in_set_rf table):
// the send pair, then the receive pair.
var rfSettings = map[Rate][4]byte{
	Rate212F: {1, 1, 15, 1},
	Rate424F: {1, 2, 15, 2},
	Rate106A: {2, 3, 15, 3},
}

// InSetRFParams are InSetRF's parameters for sending and receiving at r.
func InSetRFParams(r Rate) []byte {
	s, ok := rfSettings[r]
	if !ok {
		panic("port100: unknown rate " + string(r)) // a programming error: the rates are constants
	}
	return s[:]
}

// RateOf is the rate InSetRF's parameters select; false for others.
func RateOf(params []byte) (Rate, bool) {
	if len(params) != 4 {
		return "", false
	}
	for r, s := range rfSettings {
		if [4]byte(params) == s {
			return r, true
		}
	}
	return "", false
}

// Protocol setting numbers (InSetProtocol's key byte, nfcpy's KEYS order).
const (
	InitialGuardTime = 0
	AddCRC           = 1
	CheckCRC         = 2
	MultiCard        = 3
	AddParity        = 4
	CheckParity      = 5
	BitwiseAnticoll  = 6
	LastByteBitCount = 7
	MifareCrypto     = 8
	AddSOF           = 9
	CheckSOF         = 10
	AddEOF           = 11
	CheckEOF         = 12
	DeafTime         = 14
	ContinuousRecv   = 15
	MinLenForCRM     = 16
	Type1TagRRDD     = 17
	RFCA             = 18
	GuardTime        = 19
	NumSettings      = 20
)

// ProtocolDefaults is what nfcpy sends before every sense: every setting
// to its default.
var ProtocolDefaults = []byte{
	0x00, 0x18, 0x01, 0x01, 0x02, 0x01, 0x03, 0x00, 0x04, 0x00, 0x05, 0x00, 0x06, 0x00, 0x07, 0x08,
	0x08, 0x00, 0x09, 0x00, 0x0A, 0x00, 0x0B, 0x00, 0x0C, 0x00, 0x0E, 0x04, 0x0F, 0x00, 0x10, 0x00,
	0x11, 0x00, 0x12, 0x00, 0x13, 0x06,
}

// Setting is one InSetProtocol pair.
type Setting struct{ Key, Value byte }

// Settings encodes pairs in the order given (nfcpy sorts them by name;
// callers list them that way).
func Settings(s ...Setting) []byte {
	b := make([]byte, 0, 2*len(s))
	for _, p := range s {
		b = append(b, p.Key, p.Value)
	}
	return b
}

// InCommRF status bits (the first four bytes of its answer, little endian).
const (
	StatusProtocol       = 0x00000001
	StatusParity         = 0x00000002
	StatusCRC            = 0x00000004
	StatusCollision      = 0x00000008
	StatusOverflow       = 0x00000010
	StatusTemperature    = 0x00000040
	StatusReceiveTimeout = 0x00000080
	StatusCrypto1        = 0x00000100
	StatusRFCA           = 0x00000200
	StatusRFOff          = 0x00000400
	StatusTransmitTime   = 0x00000800
	StatusReceiveLength  = 0x80000000
)

var statusNames = []struct {
	bit  uint32
	name string
}{
	{StatusProtocol, "PROTOCOL_ERROR"}, {StatusParity, "PARITY_ERROR"}, {StatusCRC, "CRC_ERROR"},
	{StatusCollision, "COLLISION_ERROR"}, {StatusOverflow, "OVERFLOW_ERROR"},
	{StatusTemperature, "TEMPERATURE_ERROR"}, {StatusReceiveTimeout, "RECEIVE_TIMEOUT_ERROR"},
	{StatusCrypto1, "CRYPTO1_ERROR"}, {StatusRFCA, "RFCA_ERROR"}, {StatusRFOff, "RF_OFF_ERROR"},
	{StatusTransmitTime, "TRANSMIT_TIMEOUT_ERROR"}, {StatusReceiveLength, "RECEIVE_LENGTH_ERROR"},
}

// CommError is a non-zero InCommRF status: the card did not answer, or not
// properly.
type CommError uint32

func (e CommError) Error() string {
	var names []string
	for _, s := range statusNames {
		if uint32(e)&s.bit != 0 {
			names = append(names, s.name)
		}
	}
	if len(names) == 0 {
		return fmt.Sprintf("port100: InCommRF status 0x%08X", uint32(e))
	}
	return "port100: InCommRF " + strings.Join(names, "|")
}

// Timeout reports the receive timeout: no card answered.
func (e CommError) Timeout() bool { return uint32(e)&StatusReceiveTimeout != 0 }

// StatusError is a non-zero status byte of the other commands.
type StatusError byte

var statusErrNames = []string{"SUCCESS", "PARAMETER_ERROR", "PB_ERROR", "RFCA_ERROR",
	"TEMPERATURE_ERROR", "PWD_ERROR", "RECEIVE_ERROR", "COMMANDTYPE_ERROR"}

func (e StatusError) Error() string {
	if int(e) < len(statusErrNames) {
		return "port100: status " + statusErrNames[e]
	}
	return fmt.Sprintf("port100: status 0x%02X", byte(e))
}

// CommTimeout encodes an InCommRF timeout in milliseconds as nfcpy does:
// units of 0.1 ms, one millisecond added, at most 0xFFFF.
func CommTimeout(ms int) uint16 {
	if ms > 0 {
		ms++
	}
	return uint16(min(ms*10, 0xFFFF))
}

// InCommRFParams are InCommRF's parameters: the timeout, then the bytes to
// send.
func InCommRFParams(timeoutMs int, data []byte) []byte {
	b := binary.LittleEndian.AppendUint16(make([]byte, 0, 2+len(data)), CommTimeout(timeoutMs))
	return append(b, data...)
}

// ParseInCommRF splits InCommRF's answer: four status bytes, one more,
// then what the card sent. A non-zero status is a CommError.
func ParseInCommRF(params []byte) ([]byte, error) {
	if len(params) < 5 {
		return nil, fmt.Errorf("%w: InCommRF answer of %d bytes", ErrFrame, len(params))
	}
	if st := binary.LittleEndian.Uint32(params[:4]); st != 0 {
		return nil, CommError(st)
	}
	return params[5:], nil
}
