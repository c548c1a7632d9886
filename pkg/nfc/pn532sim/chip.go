package pn532sim

import (
	"bytes"
	"encoding/hex"
	"log/slog"
	"time"
)

// PN532 command codes (PN532 User Manual §7); the answer's code is the
// command's plus one.
const (
	cmdDiagnose            = 0x00
	cmdGetFirmwareVersion  = 0x02
	cmdGetGeneralStatus    = 0x04
	cmdReadRegister        = 0x06
	cmdWriteRegister       = 0x08
	cmdReadGPIO            = 0x0C
	cmdWriteGPIO           = 0x0E
	cmdSetSerialBaudRate   = 0x10
	cmdSetParameters       = 0x12
	cmdSAMConfiguration    = 0x14
	cmdPowerDown           = 0x16
	cmdRFConfiguration     = 0x32
	cmdInDataExchange      = 0x40
	cmdInCommunicateThru   = 0x42
	cmdInDeselect          = 0x44
	cmdInListPassiveTarget = 0x4A
	cmdInRelease           = 0x52
	cmdInSelect            = 0x54
	cmdInAutoPoll          = 0x60
)

// Status bytes of the In* commands.
const (
	statusOK      = 0x00
	statusTimeout = 0x01 // the target did not answer: libnfc's "card gone"
	statusContext = 0x27 // command not acceptable in the current context
)

// paramAutoRATS is the SetParameters bit that makes the PN532 send RATS to
// ISO14443-4 cards it selects.
const paramAutoRATS = 0x10

// Target types of InAutoPoll (PN532 User Manual §7.3.13).
const (
	pttGeneric106 = 0x00
	pttGeneric212 = 0x01
	pttGeneric424 = 0x02
	pttMifare     = 0x10 // any NFC-A card at 106 kbit/s
	pttFeliCa212  = 0x11
	pttFeliCa424  = 0x12
	ptt14443_4A   = 0x20 // ISO14443-4 NFC-A cards only
)

// Baud rate / modulation codes (BrTy) of InListPassiveTarget.
const (
	brTy106A      = 0x00
	brTyFeliCa212 = 0x01
	brTyFeliCa424 = 0x02
)

// firmware is the GetFirmwareVersion answer: IC 32 (PN532), version 1.6,
// support 07 (ISO14443A, ISO14443B, ISO18092).
var firmware = []byte{0x32, 0x01, 0x06, 0x07}

// SlotTime is the length of one InAutoPoll slot per unit of Period: the
// PN532 spends Period×SlotTime on each target type of each poll.
const SlotTime = 150 * time.Millisecond

// regDefaults are approximate reset values of the registers libnfc reads
// (it reads registers only to merge masked writes, so any stable value
// works): the CIU block at 63xx and the port SFRs.
var regDefaults = map[uint16]byte{
	0x6301: 0x3B, 0x6302: 0x00, 0x6303: 0x00, 0x6304: 0x80, 0x6305: 0x00,
	0x6306: 0x10, 0x6307: 0x84, 0x6308: 0x84, 0x6309: 0x4D, 0x630C: 0x62,
	0x6313: 0x88, 0x6314: 0x26, 0x6315: 0x87, 0x6316: 0x48, 0x6317: 0x88,
	0x6318: 0x20, 0x6319: 0x20, 0x6332: 0x80, 0x633B: 0x08, 0x633C: 0x10,
	0x633E: 0x80, 0xFFB0: 0xFF, 0xFFF7: 0xFF,
}

// selection is the target the chip selected (Tg 1) and the card it was.
type selection struct {
	gen    uint64 // generation of the card in the field when it was selected
	card   Card
	active bool // false after InDeselect, until InSelect
	iso4   bool // RATS was done: ISO-DEP blocks are answered
	ptt    byte // target type reported to the host
}

// autoPoll is an InAutoPoll in progress.
type autoPoll struct {
	pollNr byte // 0xFF: endless
	period time.Duration
	types  []byte
	start  time.Time
	slot   int // the next slot to evaluate; slot k starts at start+k×period
}

// pendingList is an InListPassiveTarget waiting for a card (the host set
// MxRtyPassiveActivation to FF: infinite retries).
type pendingList struct {
	brTy byte
	init []byte
}

// chip is the simulated PN532's command processor. It is driven by one
// goroutine: feed for bytes from the host, tick for the clock and
// fieldChanged after Put/Remove; next tells when tick is due.
type chip struct {
	log        *slog.Logger
	field      func() (c Card, gen uint64, ok bool) // the card in the field
	write      func([]byte)                         // to the host
	count      func(func(*Stats))
	setPolling func(bool)

	parser   parser
	regs     map[uint16]byte
	params   byte
	rfOn     bool
	maxRetry byte // MxRtyPassiveActivation: 0xFF = try forever
	sel      *selection
	poll     *autoPoll
	list     *pendingList
	last     []byte // the last answer, for a NACK
}

func newChip(log *slog.Logger, field func() (Card, uint64, bool), write func([]byte), count func(func(*Stats)), setPolling func(bool)) *chip {
	regs := make(map[uint16]byte, len(regDefaults))
	for a, v := range regDefaults {
		regs[a] = v
	}
	return &chip{
		log: log, field: field, write: write, count: count, setPolling: setPolling,
		regs: regs, maxRetry: 0xFF,
	}
}

// busy reports a command still running (it waits for a card).
func (c *chip) busy() bool { return c.poll != nil || c.list != nil }

// cancel ends the running command without an answer.
func (c *chip) cancel() {
	if c.poll != nil {
		c.poll = nil
		c.setPolling(false)
	}
	c.list = nil
}

// next returns when tick must run next, if at all.
func (c *chip) next() (time.Time, bool) {
	if c.poll == nil {
		return time.Time{}, false
	}
	return c.poll.start.Add(time.Duration(c.poll.slot) * c.poll.period), true
}

// feed processes bytes from the host.
func (c *chip) feed(now time.Time, b []byte) {
	before := c.parser.skipped
	frames := c.parser.feed(b)
	if n := c.parser.skipped - before; n > 0 {
		c.log.Debug("skipped bytes outside frames", "n", n)
	}
	for _, f := range frames {
		c.onFrame(now, f)
	}
}

func (c *chip) onFrame(now time.Time, f frame) {
	switch f.kind {
	case frameAck:
		c.count(func(s *Stats) { s.Acks++ })
		if c.busy() {
			c.log.Debug("host ACK: command aborted", "polling", c.poll != nil)
			c.count(func(s *Stats) { s.Aborts++ })
			c.cancel()
			return
		}
		c.log.Debug("host ACK while idle: ignored")
	case frameNack:
		c.count(func(s *Stats) { s.Nacks++ })
		c.log.Debug("host NACK: sending the last answer again")
		if c.last != nil {
			c.write(c.last)
		}
	case frameBad:
		c.count(func(s *Stats) { s.BadFrames++ })
		c.log.Warn("frame with a bad data checksum", "data", hex.EncodeToString(f.data))
		c.write(nackFrame)
	case frameData:
		if f.tfi != tfiHost || len(f.data) == 0 {
			c.log.Warn("frame not addressed to the chip: ignored", "tfi", f.tfi, "len", len(f.data))
			return
		}
		c.count(func(s *Stats) { s.Frames++ })
		if c.busy() {
			c.log.Warn("new command while one runs: the running one is dropped", "cmd", hexByte(f.data[0]))
			c.cancel()
		}
		c.log.Debug("command", "cmd", hexByte(f.data[0]), "params", hex.EncodeToString(f.data[1:]))
		c.write(ackFrame)
		c.command(now, f.data[0], f.data[1:])
	}
}

// reply sends the answer to cmd.
func (c *chip) reply(cmd byte, data ...byte) {
	c.last = encodeFrame(tfiChip, append([]byte{cmd + 1}, data...))
	c.write(c.last)
}

// fail answers with the error frame (syntax error, unknown command).
func (c *chip) fail(cmd byte, p []byte, why string) {
	c.count(func(s *Stats) { s.Unknown++ })
	c.log.Warn("command answered with the error frame", "cmd", hexByte(cmd), "params", hex.EncodeToString(p), "why", why)
	c.last = errorFrame
	c.write(errorFrame)
}

func (c *chip) command(now time.Time, cmd byte, p []byte) {
	switch cmd {
	case cmdDiagnose:
		c.diagnose(p)
	case cmdGetFirmwareVersion:
		c.reply(cmd, firmware...)
	case cmdGetGeneralStatus:
		c.generalStatus()
	case cmdReadRegister:
		if len(p) == 0 || len(p)%2 != 0 {
			c.fail(cmd, p, "register list")
			return
		}
		v := make([]byte, 0, len(p)/2)
		for i := 0; i < len(p); i += 2 {
			v = append(v, c.regs[uint16(p[i])<<8|uint16(p[i+1])])
		}
		c.reply(cmd, v...)
	case cmdWriteRegister:
		if len(p) == 0 || len(p)%3 != 0 {
			c.fail(cmd, p, "register list")
			return
		}
		for i := 0; i < len(p); i += 3 {
			c.regs[uint16(p[i])<<8|uint16(p[i+1])] = p[i+2]
		}
		c.reply(cmd)
	case cmdReadGPIO:
		c.reply(cmd, c.regs[0xFFB0], c.regs[0xFFF7], 0x00)
	case cmdWriteGPIO, cmdSetSerialBaudRate:
		c.reply(cmd)
	case cmdSetParameters:
		if len(p) < 1 {
			c.fail(cmd, p, "no flags")
			return
		}
		c.params = p[0]
		c.reply(cmd)
	case cmdSAMConfiguration:
		if len(p) < 1 || p[0] < 1 || p[0] > 4 {
			c.fail(cmd, p, "SAM mode")
			return
		}
		c.reply(cmd)
	case cmdPowerDown:
		c.sel, c.rfOn = nil, false
		c.reply(cmd, statusOK)
	case cmdRFConfiguration:
		c.rfConfiguration(p)
	case cmdInListPassiveTarget:
		c.inListPassiveTarget(p)
	case cmdInDataExchange:
		c.count(func(s *Stats) { s.PresenceChecks++ })
		if len(p) < 1 {
			c.fail(cmd, p, "no target number")
			return
		}
		st, data := c.exchange(p[0], p[1:], false)
		c.reply(cmd, append([]byte{st}, data...)...)
	case cmdInCommunicateThru:
		c.count(func(s *Stats) { s.PresenceChecks++ })
		st, data := c.exchange(1, p, true)
		c.reply(cmd, append([]byte{st}, data...)...)
	case cmdInDeselect:
		if c.sel != nil && len(p) > 0 && (p[0] == 0 || p[0] == 1) {
			c.sel.active = false
		}
		c.reply(cmd, statusOK)
	case cmdInRelease:
		if len(p) > 0 && (p[0] == 0 || p[0] == 1) {
			c.sel = nil
		}
		c.reply(cmd, statusOK)
	case cmdInSelect:
		switch {
		case c.sel == nil:
			c.reply(cmd, statusContext)
		case !c.selectedPresent():
			c.reply(cmd, statusTimeout)
		default:
			c.sel.active = true
			c.reply(cmd, statusOK)
		}
	case cmdInAutoPoll:
		c.inAutoPoll(now, p)
	default:
		c.fail(cmd, p, "command not simulated")
	}
}

func (c *chip) diagnose(p []byte) {
	if len(p) < 1 {
		c.fail(cmdDiagnose, p, "no test number")
		return
	}
	switch p[0] {
	case 0x00: // communication line test: echo
		c.count(func(s *Stats) { s.CommTests++ })
		c.reply(cmdDiagnose, p...)
	case 0x01, 0x02, 0x07: // ROM, RAM, antenna self-tests: pass
		c.reply(cmdDiagnose, statusOK)
	case 0x04: // polling test to the target: number of failures
		c.reply(cmdDiagnose, 0x00)
	case 0x06: // attention request test (card presence)
		c.count(func(s *Stats) { s.PresenceChecks++ })
		if c.sel != nil && c.selectedPresent() {
			c.reply(cmdDiagnose, statusOK)
		} else {
			c.reply(cmdDiagnose, statusTimeout)
		}
	default:
		c.fail(cmdDiagnose, p, "diagnose test not simulated")
	}
}

func (c *chip) generalStatus() {
	field := byte(0)
	if c.rfOn {
		field = 1
	}
	st := []byte{0x00, field}
	if c.sel != nil && c.sel.active && c.selectedPresent() {
		br := byte(0x00)
		if c.sel.ptt == pttFeliCa212 {
			br = 0x01
		} else if c.sel.ptt == pttFeliCa424 {
			br = 0x02
		}
		st = append(st, 1, 1, br, br, c.sel.ptt)
	} else {
		st = append(st, 0)
	}
	c.reply(cmdGetGeneralStatus, append(st, 0x00)...)
}

func (c *chip) rfConfiguration(p []byte) {
	if len(p) < 1 {
		c.fail(cmdRFConfiguration, p, "no item")
		return
	}
	switch p[0] {
	case 0x01: // RF field
		if len(p) < 2 {
			c.fail(cmdRFConfiguration, p, "RF field")
			return
		}
		c.rfOn = p[1]&0x01 != 0
		if !c.rfOn {
			c.sel = nil // the card loses power
		}
	case 0x05: // MxRtyATR, MxRtyPSL, MxRtyPassiveActivation
		if len(p) < 4 {
			c.fail(cmdRFConfiguration, p, "retries")
			return
		}
		c.maxRetry = p[3]
	}
	c.reply(cmdRFConfiguration)
}

// selectedPresent reports whether the selected card is still in the field
// (a card put back in is a new card: it needs to be selected again).
func (c *chip) selectedPresent() bool {
	_, gen, ok := c.field()
	return ok && gen == c.sel.gen
}

func (c *chip) inListPassiveTarget(p []byte) {
	if len(p) < 2 {
		c.fail(cmdInListPassiveTarget, p, "MaxTg, BrTy")
		return
	}
	c.count(func(s *Stats) { s.Lists++ })
	brTy, init := p[1], bytes.Clone(p[2:])
	if brTy == brTy106A && len(init) > 0 {
		c.count(func(s *Stats) { s.PresenceChecks++ }) // libnfc re-selects MIFARE Classic by UID
	}
	if t := c.listTarget(brTy, init); t != nil {
		c.reply(cmdInListPassiveTarget, append([]byte{1}, t...)...)
		return
	}
	if c.maxRetry == 0xFF {
		c.log.Debug("InListPassiveTarget waits for a card (infinite retries)")
		c.list = &pendingList{brTy: brTy, init: init}
		return
	}
	c.reply(cmdInListPassiveTarget, 0)
}

// listTarget selects the card in the field if it answers brTy (and init)
// and returns its TargetData.
func (c *chip) listTarget(brTy byte, init []byte) []byte {
	card, gen, ok := c.field()
	if !ok {
		return nil
	}
	switch {
	case brTy == brTy106A && card.Kind == KindISO14443A:
		if len(init) > 0 && !bytes.Equal(uncascade(init), card.UID) {
			return nil
		}
		ats := card.iso4() && c.params&paramAutoRATS != 0
		c.sel = &selection{gen: gen, card: card, active: true, iso4: ats, ptt: pttMifare}
		return card.targetDataA(1, ats)
	case (brTy == brTyFeliCa212 || brTy == brTyFeliCa424) && card.Kind == KindFeliCa:
		sc, rc := [2]byte{0xFF, 0xFF}, byte(0)
		if len(init) >= 5 && init[0] == 0x00 {
			sc, rc = [2]byte{init[1], init[2]}, init[3]
		}
		if !card.matchesSysCode(sc) {
			return nil
		}
		ptt := byte(pttFeliCa212)
		if brTy == brTyFeliCa424 {
			ptt = pttFeliCa424
		}
		c.sel = &selection{gen: gen, card: card, active: true, ptt: ptt}
		return append([]byte{1}, card.polRes(rc == 0x01)...)
	}
	return nil
}

// fieldChanged re-examines a command waiting for a card after Put/Remove.
// InAutoPoll does not look: it finds a card at the start of a slot.
func (c *chip) fieldChanged() {
	if c.list == nil {
		return
	}
	if t := c.listTarget(c.list.brTy, c.list.init); t != nil {
		c.list = nil
		c.reply(cmdInListPassiveTarget, append([]byte{1}, t...)...)
	}
}

// exchange answers InDataExchange (raw=false: the PN532 frames ISO-DEP
// itself) and InCommunicateThru (raw=true) with what the selected card
// would answer: status statusTimeout when it is gone.
func (c *chip) exchange(tg byte, data []byte, raw bool) (status byte, resp []byte) {
	if c.sel == nil || !c.sel.active || tg != 1 {
		if raw {
			return c.unselectedThru(data)
		}
		return statusContext, nil
	}
	if !c.selectedPresent() {
		return statusTimeout, nil
	}
	card := c.sel.card
	switch card.Kind {
	case KindFeliCa:
		return felicaCommand(card, data)
	case KindISO14443A:
		switch {
		case len(data) == 0:
			return statusTimeout, nil
		case raw && c.sel.iso4 && isRBlock(data):
			// R(NAK) or R(ACK) -> R(ACK) with the same block number (and CID).
			ack := []byte{0xA2 | data[0]&0x09}
			if data[0]&0x08 != 0 && len(data) > 1 {
				ack = append(ack, data[1])
			}
			return statusOK, ack
		case !raw && c.sel.iso4:
			if len(data) >= 2 && data[0] == 0x00 && data[1] == 0xA4 {
				return statusOK, []byte{0x6A, 0x82} // SELECT: file not found
			}
			return statusOK, []byte{0x6D, 0x00} // INS not supported
		case data[0] == 0x30 && len(data) == 2: // READ
			return statusOK, card.memory(data[1])
		case (data[0] == 0x60 || data[0] == 0x61) && card.SAK&0x08 != 0: // MIFARE Classic AUTH
			return statusOK, nil
		}
	}
	return statusTimeout, nil
}

// unselectedThru answers InCommunicateThru without a selected target: only
// a FeliCa Polling reaches a card (any FeliCa card in the field answers).
func (c *chip) unselectedThru(data []byte) (byte, []byte) {
	card, _, ok := c.field()
	if ok && card.Kind == KindFeliCa && len(data) >= 2 && data[1] == 0x00 {
		return felicaCommand(card, data)
	}
	return statusTimeout, nil
}

// hexByte formats a command code or target type for logs.
func hexByte(b byte) string { return hex.EncodeToString([]byte{b}) }

// isRBlock reports an ISO14443-4 R-block PCB (1011x01x / 1010x01x).
func isRBlock(b []byte) bool { return b[0]&0xE6 == 0xA2 }

// felicaCommand answers a FeliCa command frame (LEN, code, ...).
func felicaCommand(card Card, data []byte) (byte, []byte) {
	if len(data) < 2 || int(data[0]) != len(data) {
		return statusTimeout, nil
	}
	switch code := data[1]; {
	case code == 0x00 && len(data) == 6: // Polling: system code, request code, time slots
		if !card.matchesSysCode([2]byte{data[2], data[3]}) {
			return statusTimeout, nil
		}
		return statusOK, card.polRes(data[4] == 0x01)
	case code == 0x04 && len(data) == 10 && bytes.Equal(data[2:10], card.IDm[:]): // Request Response
		r := append([]byte{11, 0x05}, card.IDm[:]...)
		return statusOK, append(r, 0x00) // mode 0
	case code == 0x0C && len(data) == 10 && bytes.Equal(data[2:10], card.IDm[:]): // Request System Code
		r := append([]byte{13, 0x0D}, card.IDm[:]...)
		return statusOK, append(r, 0x01, card.SysCode[0], card.SysCode[1])
	}
	return statusTimeout, nil
}

func (c *chip) inAutoPoll(now time.Time, p []byte) {
	if len(p) < 3 || len(p) > 2+15 {
		c.fail(cmdInAutoPoll, p, "PollNr, Period, 1-15 target types")
		return
	}
	period := p[1]
	if period == 0 {
		c.log.Warn("InAutoPoll period 0: taken as 1")
		period = 1
	}
	c.poll = &autoPoll{
		pollNr: p[0],
		period: time.Duration(period) * SlotTime,
		types:  bytes.Clone(p[2:]),
		start:  now,
	}
	c.count(func(s *Stats) { s.Polls++ })
	c.log.Debug("InAutoPoll started", "pollNr", p[0], "period", c.poll.period, "types", hex.EncodeToString(p[2:]))
	c.setPolling(true)
	c.tick(now)
}

// tick evaluates the InAutoPoll slots that have started by now.
func (c *chip) tick(now time.Time) {
	for c.poll != nil {
		p := c.poll
		if now.Before(p.start.Add(time.Duration(p.slot) * p.period)) {
			return
		}
		if p.pollNr != 0xFF && p.slot >= int(p.pollNr)*len(p.types) {
			c.count(func(s *Stats) { s.PollsEmpty++ })
			c.log.Debug("InAutoPoll ended without a card", "took", now.Sub(p.start))
			c.cancel()
			c.reply(cmdInAutoPoll, 0)
			return
		}
		if ptt, data := c.autoPollTarget(p.types[p.slot%len(p.types)]); data != nil {
			c.count(func(s *Stats) { s.PollHits++ })
			c.log.Debug("InAutoPoll found a card", "type", hexByte(ptt), "slot", p.slot, "took", now.Sub(p.start))
			c.cancel()
			c.reply(cmdInAutoPoll, append([]byte{1, ptt, byte(len(data))}, data...)...)
			return
		}
		p.slot++
	}
}

// autoPollTarget selects the card in the field if it answers target type
// typ and returns the type to report and its TargetData.
func (c *chip) autoPollTarget(typ byte) (byte, []byte) {
	card, gen, ok := c.field()
	if !ok {
		return 0, nil
	}
	switch typ {
	case pttGeneric106, pttMifare, ptt14443_4A:
		if card.Kind != KindISO14443A || (typ == ptt14443_4A && !card.iso4()) {
			return 0, nil
		}
		ats := card.iso4() && (typ == ptt14443_4A || c.params&paramAutoRATS != 0)
		ptt := byte(pttMifare)
		if typ == ptt14443_4A {
			ptt = ptt14443_4A
		}
		c.sel = &selection{gen: gen, card: card, active: true, iso4: ats, ptt: ptt}
		return ptt, card.targetDataA(1, ats)
	case pttGeneric212, pttFeliCa212, pttGeneric424, pttFeliCa424:
		if card.Kind != KindFeliCa {
			return 0, nil
		}
		ptt := byte(pttFeliCa212)
		if typ == pttGeneric424 || typ == pttFeliCa424 {
			ptt = pttFeliCa424
		}
		c.sel = &selection{gen: gen, card: card, active: true, ptt: ptt}
		return ptt, append([]byte{1}, card.polRes(true)...)
	}
	return 0, nil
}
