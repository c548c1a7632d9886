package pn532sim

import "bytes"

// The PN532 frame protocol (PN532 User Manual §6.2) as the pn532_uart
// driver of libnfc speaks it over a serial line:
//
//	normal:   00 00 FF LEN LCS TFI DATA... DCS 00   LEN = 1+len(DATA), LEN+LCS = 0 mod 256
//	extended: 00 00 FF FF FF LENM LENL LCS TFI DATA... DCS 00
//	ACK:      00 00 FF 00 FF 00
//	NACK:     00 00 FF FF 00 00
//	error:    00 00 FF 01 FF 7F 81 00 (application level error)
//
// TFI is D4 from host to chip and D5 back; TFI+sum(DATA)+DCS = 0 mod 256.
// The host wakes a sleeping chip with 55 55 and zero bytes; anything before
// a start code (00 FF) is skipped.
const (
	tfiHost = 0xD4 // frame identifier: host to PN532
	tfiChip = 0xD5 // frame identifier: PN532 to host

	// maxNormalLen is the largest LEN (TFI + data) of a normal frame.
	maxNormalLen = 255
	// maxExtendedLen is the largest LEN of an extended frame the PN532
	// accepts (264 data bytes + TFI).
	maxExtendedLen = 265
)

var (
	ackFrame   = []byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00}
	nackFrame  = []byte{0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00}
	errorFrame = []byte{0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00}
)

// encodeFrame wraps TFI and data in a normal frame, or in an extended one
// when TFI+data exceed 255 bytes.
func encodeFrame(tfi byte, data []byte) []byte {
	n := len(data) + 1
	f := make([]byte, 0, n+10)
	f = append(f, 0x00, 0x00, 0xFF)
	if n <= maxNormalLen {
		f = append(f, byte(n), byte(-n))
	} else {
		hi, lo := byte(n>>8), byte(n)
		f = append(f, 0xFF, 0xFF, hi, lo, -(hi + lo))
	}
	sum := tfi
	f = append(f, tfi)
	for _, b := range data {
		sum += b
	}
	f = append(f, data...)
	return append(f, -sum, 0x00)
}

// frameKind tells what the parser found.
type frameKind int

const (
	frameData frameKind = iota + 1 // an information frame: TFI and data
	frameAck
	frameNack
	frameBad // an information frame whose data checksum is wrong
)

func (k frameKind) String() string {
	switch k {
	case frameData:
		return "data"
	case frameAck:
		return "ack"
	case frameNack:
		return "nack"
	case frameBad:
		return "bad-checksum"
	}
	return "unknown"
}

// frame is one frame read from the host.
type frame struct {
	kind frameKind
	tfi  byte
	data []byte // without TFI
}

// parser turns a byte stream into frames. Bytes that belong to no frame
// (the wake-up preamble, postambles, line noise) are skipped; a frame whose
// length checksum is wrong is not a frame, and the search for the next start
// code resumes right after its start code.
type parser struct {
	buf     []byte
	skipped int // bytes skipped outside frames (for logs)
}

var startCode = []byte{0x00, 0xFF}

// feed appends b and returns the complete frames it closed, in order.
func (p *parser) feed(b []byte) []frame {
	p.buf = append(p.buf, b...)
	var out []frame
	for {
		i := bytes.Index(p.buf, startCode)
		if i < 0 {
			// Keep a trailing 00: it may be the first half of a start code.
			keep := 0
			if len(p.buf) > 0 && p.buf[len(p.buf)-1] == 0x00 {
				keep = 1
			}
			p.skip(len(p.buf) - keep)
			return out
		}
		p.skip(i)
		f, n, ok := parseAt(p.buf)
		if !ok {
			return out // incomplete: wait for more bytes
		}
		if n == 0 { // not a frame after all: resume after this start code
			p.skip(len(startCode))
			continue
		}
		p.buf = p.buf[n:]
		out = append(out, f)
	}
}

// skip drops n bytes from the front of the buffer, counting those that are
// neither preamble (00) nor wake-up (55) bytes.
func (p *parser) skip(n int) {
	for _, c := range p.buf[:n] {
		if c != 0x00 && c != 0x55 {
			p.skipped++
		}
	}
	p.buf = p.buf[n:]
	if len(p.buf) == 0 {
		p.buf = p.buf[:0:0] // let a large buffer go
	}
}

// parseAt parses the frame whose start code begins b. It returns ok=false
// when b ends before the frame does, and n=0 when b does not start a frame.
func parseAt(b []byte) (f frame, n int, ok bool) {
	// b[0:2] is the start code.
	if len(b) < 4 {
		return frame{}, 0, false
	}
	l, lcs := b[2], b[3]
	switch {
	case l == 0x00 && lcs == 0xFF:
		return frame{kind: frameAck}, 4, true
	case l == 0xFF && lcs == 0x00:
		return frame{kind: frameNack}, 4, true
	}
	var length, head int
	if l == 0xFF && lcs == 0xFF {
		if len(b) < 7 {
			return frame{}, 0, false
		}
		if b[4]+b[5]+b[6] != 0 {
			return frame{}, 0, true
		}
		length, head = int(b[4])<<8|int(b[5]), 7
		if length > maxExtendedLen {
			return frame{}, 0, true
		}
	} else {
		if l+lcs != 0 {
			return frame{}, 0, true
		}
		length, head = int(l), 4
	}
	if length == 0 {
		return frame{}, 0, true
	}
	if len(b) < head+length+1 {
		return frame{}, 0, false
	}
	body := b[head : head+length]
	var sum byte
	for _, c := range body {
		sum += c
	}
	sum += b[head+length] // DCS
	f = frame{kind: frameData, tfi: body[0], data: bytes.Clone(body[1:])}
	if sum != 0 {
		f.kind = frameBad
	}
	return f, head + length + 1, true
}
