package rcs380

import (
	"bytes"
	"errors"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380/port100"
)

// ISO 14443-3 commands.
const (
	sensReq    = 0x26 // SENS_REQ (REQA), 7 bits
	cascadeTag = 0x88 // CT: more UID follows at the next cascade level
	nvbSDD     = 0x20 // SDD_REQ: no UID bits known
	nvbSelect  = 0x70 // SEL_REQ: all 40 bits (UID part and BCC)
	sakMore    = 0x04 // SAK bit: UID not complete
)

// selCodes are the SEL commands of cascade levels 1, 2 and 3.
var selCodes = [3]byte{0x93, 0x95, 0x97}

// senseA looks for an ISO14443A card at 106 kbit/s as nfcpy's sense_tta
// does and returns its UID (4, 7 or 10 bytes); nil when none answered
// properly. With uid it selects exactly that card (a presence check)
// instead of running the anticollision. Only transport failures, protocol
// errors and Abort are errors.
func (d *Device) senseA(uid []byte) ([]byte, error) {
	if err := d.inSetRF(port100.Rate106A); err != nil {
		return nil, err
	}
	if err := d.inSetProtocolDefaults(); err != nil {
		return nil, err
	}
	// nfcpy's keyword arguments, in its (alphabetical) order.
	if err := d.inSetProtocol(
		port100.Setting{Key: port100.AddCRC, Value: 0},
		port100.Setting{Key: port100.CheckCRC, Value: 0},
		port100.Setting{Key: port100.CheckParity, Value: 1},
		port100.Setting{Key: port100.InitialGuardTime, Value: 6},
		port100.Setting{Key: port100.LastByteBitCount, Value: 7},
	); err != nil {
		return nil, err
	}
	sensRes, ok, err := d.rf([]byte{sensReq}, rfTimeoutA)
	if err != nil || !ok {
		return nil, err
	}
	if len(sensRes) != 2 {
		d.log.Debug("rcs380: SENS_RES of the wrong length", "bytes", len(sensRes))
		return nil, nil
	}
	if sensRes[0]&0x1F == 0 {
		d.log.Debug("rcs380: a Type 1 (Topaz) tag: not supported")
		return nil, nil
	}
	if d.abortedNow() {
		return nil, nfc.ErrAborted
	}
	if err := d.inSetProtocol(
		port100.Setting{Key: port100.AddParity, Value: 1},
		port100.Setting{Key: port100.LastByteBitCount, Value: 8},
	); err != nil {
		return nil, err
	}
	if uid != nil {
		return d.selectUID(uid)
	}
	return d.anticollision()
}

// anticollision runs SDD_REQ and SEL_REQ at each cascade level until the
// SAK says the UID is complete.
func (d *Device) anticollision() ([]byte, error) {
	var uid []byte
	for _, sel := range selCodes {
		if err := d.inSetProtocol(
			port100.Setting{Key: port100.AddCRC, Value: 0},
			port100.Setting{Key: port100.CheckCRC, Value: 0},
		); err != nil {
			return nil, err
		}
		sdd, ok, err := d.rf([]byte{sel, nvbSDD}, rfTimeoutA)
		if err != nil || !ok {
			return nil, err
		}
		if len(sdd) != 5 || sdd[0]^sdd[1]^sdd[2]^sdd[3] != sdd[4] {
			d.log.Debug("rcs380: SDD_RES malformed or with a wrong BCC (a collision?)", "bytes", len(sdd))
			return nil, nil
		}
		if err := d.inSetProtocol(
			port100.Setting{Key: port100.AddCRC, Value: 1},
			port100.Setting{Key: port100.CheckCRC, Value: 1},
		); err != nil {
			return nil, err
		}
		sak, ok, err := d.rf(append([]byte{sel, nvbSelect}, sdd...), rfTimeoutA)
		if err != nil || !ok {
			return nil, err
		}
		if len(sak) < 1 {
			return nil, nil
		}
		if sak[0]&sakMore == 0 {
			return append(uid, sdd[0:4]...), nil
		}
		if sdd[0] != cascadeTag {
			d.log.Debug("rcs380: SAK says more UID follows, but no cascade tag")
			return nil, nil
		}
		uid = append(uid, sdd[1:4]...)
		if d.abortedNow() {
			return nil, nfc.ErrAborted
		}
	}
	d.log.Debug("rcs380: UID longer than three cascade levels")
	return nil, nil
}

// cascade splits a 4-, 7- or 10-byte UID into the 4-byte parts the cascade
// levels select (cascade tags inserted).
func cascade(uid []byte) [][]byte {
	switch len(uid) {
	case 4:
		return [][]byte{uid}
	case 7:
		return [][]byte{{cascadeTag, uid[0], uid[1], uid[2]}, uid[3:7]}
	case 10:
		return [][]byte{{cascadeTag, uid[0], uid[1], uid[2]}, {cascadeTag, uid[3], uid[4], uid[5]}, uid[6:10]}
	}
	return nil
}

// selectUID selects the card with this UID through the cascade levels
// (nfcpy's sense_tta with sel_req); uid when it answered each level and
// the last SAK says complete.
func (d *Device) selectUID(uid []byte) ([]byte, error) {
	parts := cascade(uid)
	if parts == nil {
		return nil, nil
	}
	if err := d.inSetProtocol(
		port100.Setting{Key: port100.AddCRC, Value: 1},
		port100.Setting{Key: port100.CheckCRC, Value: 1},
	); err != nil {
		return nil, err
	}
	for i, p := range parts {
		req := append([]byte{selCodes[i], nvbSelect}, p...)
		req = append(req, p[0]^p[1]^p[2]^p[3])
		sak, ok, err := d.rf(req, rfTimeoutA)
		if err != nil || !ok || len(sak) < 1 {
			return nil, err
		}
		last := i == len(parts)-1
		if (sak[0]&sakMore != 0) == last {
			return nil, nil
		}
	}
	return uid, nil
}

// sensfReq is SENSF_REQ with its length byte: system code FFFF (any),
// request code 01 (the system code in the answer), time slot 0.
var sensfReq = []byte{0x06, 0x00, 0xFF, 0xFF, 0x01, 0x00}

// senseF polls for a FeliCa card at rate as nfcpy's sense_ttf does and
// returns its IDm; nil when none answered properly.
func (d *Device) senseF(rate port100.Rate) ([]byte, error) {
	if err := d.inSetRF(rate); err != nil {
		return nil, err
	}
	if err := d.inSetProtocolDefaults(); err != nil {
		return nil, err
	}
	if err := d.inSetProtocol(port100.Setting{Key: port100.InitialGuardTime, Value: 24}); err != nil {
		return nil, err
	}
	f, ok, err := d.rf(sensfReq, rfTimeoutF)
	if err != nil || !ok {
		return nil, err
	}
	if len(f) < 18 || int(f[0]) != len(f) || f[1] != 0x01 {
		d.log.Debug("rcs380: SENSF_RES malformed", "bytes", len(f))
		return nil, nil
	}
	return bytes.Clone(f[2:10]), nil
}

// rf is one InCommRF: ok false when the card did not answer properly (a
// timeout, a CRC or parity error, a collision), which is no error.
func (d *Device) rf(data []byte, timeoutMs int) ([]byte, bool, error) {
	rsp, err := d.inCommRF(data, timeoutMs)
	var ce port100.CommError
	switch {
	case errors.As(err, &ce):
		if !ce.Timeout() {
			d.log.Debug("rcs380: card answer", "err", ce)
		}
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	return rsp, true, nil
}
