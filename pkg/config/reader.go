package config

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Card actions (NFC_ACTION).
const (
	ActionToggle = "toggle"
	ActionUnlock = "unlock"
	ActionLock   = "lock"
	ActionNone   = "none"
)

// Tag scanner modes (NFC_TAG_SCANNER).
const (
	TagScannerAll   = "all"
	TagScannerKnown = "known"
)

// NFC is the card reader's configuration. Device empty means no reader.
type NFC struct {
	Device     string // libnfc connstring, rcs380[:BBB:DDD], or "auto" for the first reader found
	Cards      []Card // the allowlist, in the order given
	Action     string // ActionToggle, ActionUnlock, ActionLock or ActionNone
	LockID     string // Lock.ID() of the lock an allowed card drives
	TagScanner string // TagScannerAll or TagScannerKnown
	HoldOff    time.Duration
}

// Enabled reports whether a reader is configured.
func (n NFC) Enabled() bool { return n.Device != "" }

// Card is one allowlisted card.
type Card struct {
	UID  []byte // raw UID (ISO14443A) or IDm (FeliCa)
	Name string // the card holder, shown in events and the Sesame history
}

// LED is the GPIO feedback's configuration; empty pins are not fitted.
type LED struct {
	Green, Red, Buzzer string
	ActiveLow          bool
}

// Enabled reports whether any output is configured.
func (l LED) Enabled() bool { return l.Green != "" || l.Red != "" || l.Buzzer != "" }

// validUIDLens are the UID lengths a reader returns: ISO14443A single,
// double and triple size (4, 7, 10 bytes) and the FeliCa IDm (8 bytes).
var validUIDLens = map[int]bool{4: true, 7: true, 8: true, 10: true}

// maxHolderName bounds a card holder's name: it goes into the Sesame
// history tag (21 bytes, cut by sesame.HistoryTag) and into events.
const maxHolderName = 64

// parseCards parses NFC_CARDS: comma-separated UID:NAME. The canonical UID
// is uppercase hex without separators (04112233445566). Bytes written as
// two-digit groups separated by ':' (04:A2:2B:1C), '-' or spaces are
// accepted too: with ':' every leading two-digit group belongs to the UID,
// and an entry made only of such groups is rejected as ambiguous. Errors
// name the entry number and the holder, never the UID.
func parseCards(s string) ([]Card, []error) {
	const key = "NFC_CARDS"
	if s == "" {
		return nil, nil
	}
	var (
		cards []Card
		errs  []error
		byUID = map[string]int{}
	)
	for i, entry := range strings.Split(s, ",") {
		n := i + 1
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		uidText, name, ok := splitCard(entry)
		if !ok {
			errs = append(errs, fmt.Errorf("%s entry %d: want UID:NAME with UID in hex, like 04112233445566:Alice (with ':' between UID bytes the name must not look like a hex byte)", key, n))
			continue
		}
		name = strings.TrimSpace(name)
		if name == "" {
			errs = append(errs, fmt.Errorf("%s entry %d: missing card holder name (want UID:NAME)", key, n))
			continue
		}
		if len(name) > maxHolderName {
			errs = append(errs, fmt.Errorf("%s entry %d (%s): name longer than %d bytes", key, n, name[:16]+"…", maxHolderName))
			continue
		}
		clean := strings.NewReplacer("-", "", " ", "", ":", "").Replace(uidText)
		uid, err := hex.DecodeString(clean)
		if err != nil || clean == "" {
			errs = append(errs, fmt.Errorf("%s entry %d (%s): UID must be hex digits, like 04112233445566", key, n, name))
			continue
		}
		if !validUIDLens[len(uid)] {
			errs = append(errs, fmt.Errorf("%s entry %d (%s): UID has %d bytes; cards have 4, 7 or 10 (ISO14443A) or 8 (FeliCa IDm)", key, n, name, len(uid)))
			continue
		}
		if len(uid) == 4 && uid[0] == 0x08 {
			errs = append(errs, fmt.Errorf("%s entry %d (%s): a 4-byte UID starting 08 is a random UID (phones, privacy cards) that changes at every tap; it can never match", key, n, name))
			continue
		}
		canon := strings.ToUpper(hex.EncodeToString(uid))
		if first, dup := byUID[canon]; dup {
			errs = append(errs, fmt.Errorf("%s entry %d (%s): same UID as entry %d", key, n, name, first))
			continue
		}
		byUID[canon] = n
		cards = append(cards, Card{UID: uid, Name: name})
	}
	return cards, errs
}

// splitCard splits one NFC_CARDS entry into UID text and name.
func splitCard(entry string) (uid, name string, ok bool) {
	parts := strings.Split(entry, ":")
	if len(parts) < 2 {
		return "", "", false
	}
	if !isHexByte(strings.TrimSpace(parts[0])) {
		// Canonical form (or '-'/space separated): the UID ends at the first ':'.
		return parts[0], strings.Join(parts[1:], ":"), true
	}
	// Colon-separated bytes: every leading two-digit hex group is UID.
	k := 0
	for k < len(parts) && isHexByte(strings.TrimSpace(parts[k])) {
		k++
	}
	if k == len(parts) {
		return "", "", false // no name left, or the name looks like a byte
	}
	return strings.Join(parts[:k], ""), strings.Join(parts[k:], ":"), true
}

func isHexByte(s string) bool {
	if len(s) != 2 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// resolveNFCLock finds the lock NFC_LOCK names (UUID in any case, or the
// name, case-insensitively); empty means the first lock.
func resolveNFCLock(s string, locks []Lock) (string, error) {
	if len(locks) == 0 {
		return "", nil // SESAME_LOCKS has its own error
	}
	if s == "" {
		return locks[0].ID(), nil
	}
	for _, l := range locks {
		if strings.EqualFold(l.UUID, s) || strings.EqualFold(l.Name, s) {
			return l.ID(), nil
		}
	}
	return "", fmt.Errorf("NFC_LOCK: %s is neither the UUID nor the name of a lock in SESAME_LOCKS", quote(s))
}

func parseNFC(r raw, locks []Lock) (NFC, []error) {
	var errs []error
	n := NFC{Device: r.NFCDevice, Action: strings.ToLower(r.NFCAction), TagScanner: strings.ToLower(r.NFCTagScanner)}
	var cardErrs []error
	n.Cards, cardErrs = parseCards(r.NFCCards)
	errs = append(errs, capErrors("NFC_CARDS", cardErrs)...)
	switch n.Action {
	case ActionToggle, ActionUnlock, ActionLock, ActionNone:
	default:
		errs = append(errs, fmt.Errorf("NFC_ACTION: must be toggle, unlock, lock or none, got %s", quote(r.NFCAction)))
	}
	switch n.TagScanner {
	case TagScannerAll, TagScannerKnown:
	default:
		errs = append(errs, fmt.Errorf("NFC_TAG_SCANNER: must be all or known, got %s", quote(r.NFCTagScanner)))
	}
	d, err := time.ParseDuration(r.NFCHoldOff)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("NFC_HOLD_OFF: must be a duration like 3s or 1500ms, got %s", quote(r.NFCHoldOff)))
	case d < 0 || d > time.Minute:
		errs = append(errs, fmt.Errorf("NFC_HOLD_OFF: must be between 0s and 1m, got %s", d))
	}
	n.HoldOff = d
	n.LockID, err = resolveNFCLock(r.NFCLock, locks)
	if err != nil {
		errs = append(errs, err)
	}
	if n.Device != "" && len(strings.TrimSpace(n.Device)) != len(n.Device) {
		errs = append(errs, fmt.Errorf("NFC_DEVICE: must not have surrounding spaces"))
	}
	if err := checkRCS380(n.Device); err != nil {
		errs = append(errs, err)
	}
	return n, errs
}

// rcs380Device is the Sony RC-S380's connstring: rcs380 (the first one
// found) or rcs380:BBB:DDD (bus and device number, as lsusb prints them).
var rcs380Device = regexp.MustCompile(`^(?i:rcs380)(?::([0-9]{1,3}):([0-9]{1,3}))?$`)

// checkRCS380 checks an NFC_DEVICE that names an RC-S380.
func checkRCS380(dev string) error {
	if !strings.HasPrefix(strings.ToLower(dev), "rcs380") {
		return nil
	}
	m := rcs380Device.FindStringSubmatch(dev)
	if m != nil && m[1] == "" {
		return nil
	}
	if m != nil {
		bus, _ := strconv.Atoi(m[1])
		num, _ := strconv.Atoi(m[2])
		if bus >= 1 && bus <= 255 && num >= 1 && num <= 127 {
			return nil
		}
	}
	return fmt.Errorf("NFC_DEVICE: %s: want rcs380 (the first Sony RC-S380 found) or rcs380:BBB:DDD "+
		"(bus 1-255 and device 1-127 as lsusb prints them, like rcs380:001:004)", quote(dev))
}

// pinRe-free check: periph.io names pins like GPIO23, P1_16 or a chip line
// name; the name is looked up at start-up, so only shape is checked here.
func parseLED(r raw) (LED, []error) {
	var errs []error
	l := LED{Green: r.LEDGreenPin, Red: r.LEDRedPin, Buzzer: r.BuzzerPin}
	seen := map[string]string{}
	for _, p := range []struct{ key, val string }{{"LED_GREEN_PIN", l.Green}, {"LED_RED_PIN", l.Red}, {"BUZZER_PIN", l.Buzzer}} {
		if p.val == "" {
			continue
		}
		if strings.ContainsAny(p.val, " \t,") {
			errs = append(errs, fmt.Errorf("%s: %s is not a pin name (like GPIO23)", p.key, quote(p.val)))
			continue
		}
		if other, dup := seen[strings.ToUpper(p.val)]; dup {
			errs = append(errs, fmt.Errorf("%s: pin %s is already used by %s", p.key, quote(p.val), other))
			continue
		}
		seen[strings.ToUpper(p.val)] = p.key
	}
	switch {
	case isTrue(r.LEDActiveLow):
		l.ActiveLow = true
	case isFalse(r.LEDActiveLow):
	default:
		errs = append(errs, fmt.Errorf("LED_ACTIVE_LOW: must be true or false, got %s", quote(r.LEDActiveLow)))
	}
	return l, errs
}

func isTrue(s string) bool {
	switch strings.ToLower(s) {
	case "true", "1", "yes", "on":
		return true
	}
	return false
}

func isFalse(s string) bool {
	switch strings.ToLower(s) {
	case "false", "0", "no", "off":
		return true
	}
	return false
}
