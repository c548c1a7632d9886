package rcs380sim

import (
	"bytes"
	"fmt"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380/port100"
)

// Card is a card the simulated reader can hold in its field.
type Card struct {
	felica bool
	uid    []byte // ISO14443A UID or FeliCa IDm
	sak    byte   // ISO14443A: the final SAK
	atqa   [2]byte
	rates  []port100.Rate // FeliCa: the rates it answers at
}

// ISO14443A is a MIFARE-like card with a 4-, 7- or 10-byte UID.
func ISO14443A(uid []byte) Card {
	if len(uid) != 4 && len(uid) != 7 && len(uid) != 10 {
		panic(fmt.Sprintf("rcs380sim: an ISO14443A UID has 4, 7 or 10 bytes, not %d", len(uid)))
	}
	size := map[int]byte{4: 0x00, 7: 0x40, 10: 0x80}[len(uid)]
	return Card{uid: bytes.Clone(uid), sak: 0x08, atqa: [2]byte{0x04 | size, 0x00}}
}

// FeliCa is a FeliCa card with this IDm that answers at 212 and 424
// kbit/s (as Suica and current office cards do).
func FeliCa(idm []byte) Card { return FeliCaAt(idm, port100.Rate212F, port100.Rate424F) }

// FeliCaAt is a FeliCa card that answers only at the given rates.
func FeliCaAt(idm []byte, rates ...port100.Rate) Card {
	if len(idm) != 8 {
		panic(fmt.Sprintf("rcs380sim: an IDm has 8 bytes, not %d", len(idm)))
	}
	return Card{felica: true, uid: bytes.Clone(idm), rates: rates}
}

// UID is the card's UID or IDm.
func (c Card) UID() []byte { return bytes.Clone(c.uid) }

// card states (ISO 14443-3).
const (
	stIdle = iota
	stReady
	stActive
	stHalt
)

// inField is a card in the field with its state.
type inField struct {
	Card
	state int
	level int // cascade level reached in stReady (0-based)
}

// parts are the UID parts of the cascade levels (CT inserted).
func (c *inField) parts() [][]byte {
	u := c.uid
	switch len(u) {
	case 4:
		return [][]byte{u}
	case 7:
		return [][]byte{{0x88, u[0], u[1], u[2]}, u[3:7]}
	default:
		return [][]byte{{0x88, u[0], u[1], u[2]}, {0x88, u[3], u[4], u[5]}, u[6:10]}
	}
}

func (c *inField) answersAt(r port100.Rate) bool {
	for _, x := range c.rates {
		if x == r {
			return true
		}
	}
	return false
}
