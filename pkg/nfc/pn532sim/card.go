package pn532sim

import (
	"bytes"
	"fmt"
)

// Kind is a card's technology.
type Kind int

const (
	// KindISO14443A: NFC-A cards (MIFARE Classic, Ultralight, NTAG,
	// DESFire and other ISO/IEC 14443-4 cards, phones).
	KindISO14443A Kind = iota + 1
	// KindFeliCa: NFC-F cards (Suica, Japanese office cards). They answer
	// at 212 and at 424 kbit/s.
	KindFeliCa
)

func (k Kind) String() string {
	switch k {
	case KindISO14443A:
		return "iso14443a"
	case KindFeliCa:
		return "felica"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Card is a card the simulated reader can see. Build one with ISO14443A or
// FeliCa and change fields as needed.
type Card struct {
	Kind Kind

	// ISO14443A fields.

	// UID is 4, 7 or 10 bytes long.
	UID []byte
	// ATQA (SENS_RES) in the order the PN532 reports it and libnfc prints
	// it: {0x00, 0x04} for MIFARE Classic 1K, {0x00, 0x44} for
	// Ultralight/NTAG.
	ATQA [2]byte
	// SAK (SEL_RES). libnfc picks its presence check from it: bit 0x20
	// (ISO14443-4) sends an R(NAK) block, ATQA 00 44 with SAK 00
	// (Ultralight) reads page 0, bit 0x08 (MIFARE Classic) re-selects the
	// UID; other cards cannot be checked ("not supported by device").
	SAK byte
	// ATS of an ISO14443-4 card (SAK bit 0x20), starting with its length
	// byte TL; nil gives a DESFire EV1's 06 75 77 81 02 80. The PN532
	// requests it (RATS) when SetParameters enabled automatic RATS, as
	// libnfc does.
	ATS []byte

	// FeliCa fields.

	IDm     [8]byte // manufacture ID, what libnfc reports as the card's ID
	PMm     [8]byte // manufacture parameters
	SysCode [2]byte // the system code a Polling with request code 01 returns
}

// Default parameters of the constructors.
var (
	// defaultATS is a MIFARE DESFire EV1's ATS.
	defaultATS = []byte{0x06, 0x75, 0x77, 0x81, 0x02, 0x80}
	// DefaultPMm is a FeliCa Standard card's PMm.
	DefaultPMm = [8]byte{0x01, 0x20, 0x22, 0x04, 0x27, 0x67, 0x4E, 0xFF}
	// DefaultSysCode is the transit system code (Suica and friends).
	DefaultSysCode = [2]byte{0x00, 0x03}
)

// ISO14443A returns an NFC-A card with the given UID and the ATQA/SAK of
// the most common card of that UID size: MIFARE Classic 1K for 4 bytes
// (ATQA 00 04, SAK 08), MIFARE Ultralight/NTAG for 7 bytes (ATQA 00 44,
// SAK 00), and an ISO14443-4 card for 10 bytes (ATQA 00 84, SAK 20, with
// the default ATS). Other lengths give a card Put refuses.
func ISO14443A(uid []byte) Card {
	c := Card{Kind: KindISO14443A, UID: bytes.Clone(uid)}
	switch len(uid) {
	case 4:
		c.ATQA, c.SAK = [2]byte{0x00, 0x04}, 0x08
	case 7:
		c.ATQA, c.SAK = [2]byte{0x00, 0x44}, 0x00
	default:
		c.ATQA, c.SAK = [2]byte{0x00, 0x84}, 0x20
	}
	return c
}

// FeliCa returns a FeliCa card with the given IDm (8 bytes; shorter ones
// are zero-padded, longer ones cut), DefaultPMm and DefaultSysCode.
func FeliCa(idm []byte) Card {
	c := Card{Kind: KindFeliCa, PMm: DefaultPMm, SysCode: DefaultSysCode}
	copy(c.IDm[:], idm)
	return c
}

// validate reports a card the simulated chip cannot present.
func (c Card) validate() error {
	switch c.Kind {
	case KindISO14443A:
		switch len(c.UID) {
		case 4, 7, 10:
		default:
			return fmt.Errorf("pn532sim: ISO14443A UID of %d bytes (want 4, 7 or 10)", len(c.UID))
		}
		if c.UID[0] == 0x88 {
			return fmt.Errorf("pn532sim: ISO14443A UID starts with the cascade tag 88")
		}
		if c.ATS != nil && (len(c.ATS) == 0 || int(c.ATS[0]) != len(c.ATS)) {
			return fmt.Errorf("pn532sim: ATS length byte %d does not match its %d bytes", c.ATS[0], len(c.ATS))
		}
	case KindFeliCa:
	default:
		return fmt.Errorf("pn532sim: unknown card kind %v", c.Kind)
	}
	return nil
}

// clone returns a deep copy, so that callers may reuse their slices.
func (c Card) clone() Card {
	c.UID = bytes.Clone(c.UID)
	c.ATS = bytes.Clone(c.ATS)
	return c
}

// iso4 reports an ISO14443-4 compliant NFC-A card.
func (c Card) iso4() bool { return c.Kind == KindISO14443A && c.SAK&0x20 != 0 }

// ats returns the card's ATS, or the default one.
func (c Card) ats() []byte {
	if c.ATS != nil {
		return c.ATS
	}
	return defaultATS
}

// targetDataA is the PN532's TargetData for an NFC-A target: Tg, SENS_RES,
// SEL_RES, NFCIDLength, NFCID1 and, when RATS was done, the ATS.
func (c Card) targetDataA(tg byte, withATS bool) []byte {
	d := []byte{tg, c.ATQA[0], c.ATQA[1], c.SAK, byte(len(c.UID))}
	d = append(d, c.UID...)
	if withATS {
		d = append(d, c.ats()...)
	}
	return d
}

// polRes is a FeliCa Polling response as the PN532 returns it: its length
// byte, response code 01, IDm, PMm and, when asked for (request code 01),
// the system code.
func (c Card) polRes(withSysCode bool) []byte {
	n := 18
	if withSysCode {
		n = 20
	}
	d := make([]byte, 0, n)
	d = append(d, byte(n), 0x01)
	d = append(d, c.IDm[:]...)
	d = append(d, c.PMm[:]...)
	if withSysCode {
		d = append(d, c.SysCode[:]...)
	}
	return d
}

// matchesSysCode reports whether the card answers a Polling for system
// code sc, where FF in either byte is a wildcard.
func (c Card) matchesSysCode(sc [2]byte) bool {
	return (sc[0] == 0xFF || sc[0] == c.SysCode[0]) && (sc[1] == 0xFF || sc[1] == c.SysCode[1])
}

// uncascade turns the cascaded UID libnfc sends to select a card (88 and
// three bytes per cascade level but the last) back into the UID.
func uncascade(b []byte) []byte {
	switch {
	case len(b) == 8 && b[0] == 0x88:
		return append(bytes.Clone(b[1:4]), b[4:]...)
	case len(b) == 12 && b[0] == 0x88 && b[4] == 0x88:
		u := bytes.Clone(b[1:4])
		u = append(u, b[5:8]...)
		return append(u, b[8:]...)
	}
	return b
}

// memory returns 16 bytes of the card's memory from block (Classic) or page
// (Ultralight) n: the manufacturer block/pages carry the UID, the rest is
// zero.
func (c Card) memory(n byte) []byte {
	m := make([]byte, 16)
	switch {
	case len(c.UID) == 4 && n == 0: // Classic block 0: UID, BCC, SAK, ATQA
		copy(m, c.UID)
		m[4] = c.UID[0] ^ c.UID[1] ^ c.UID[2] ^ c.UID[3]
		m[5], m[6], m[7] = c.SAK, c.ATQA[1], c.ATQA[0]
	case len(c.UID) == 7 && n == 0: // Ultralight pages 0-3
		u := c.UID
		copy(m, []byte{u[0], u[1], u[2], 0x88 ^ u[0] ^ u[1] ^ u[2], u[3], u[4], u[5], u[6], u[3] ^ u[4] ^ u[5] ^ u[6]})
	}
	return m
}
