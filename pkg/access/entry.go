package access

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Entry is one card of the access list.
type Entry struct {
	UID        string         `json:"uid"`                   // canonical upper-case hex (as NFC_CARDS)
	Name       string         `json:"name"`                  // the card holder
	Action     string         `json:"action"`                // "toggle" | "unlock" | "lock" | "none"
	Enabled    bool           `json:"enabled"`               //
	ValidFrom  string         `json:"valid_from,omitempty"`  // "2006-01-02" or "": from the start of that day, in the list's zone
	ValidUntil string         `json:"valid_until,omitempty"` // "2006-01-02" or "": to the end of that day, inclusive
	Weekdays   []time.Weekday `json:"weekdays,omitempty"`    // empty: every day
	From       string         `json:"from,omitempty"`        // "15:04" daily window; both "": all day; To < From spans midnight
	To         string         `json:"to,omitempty"`          //
	Doors      []string       `json:"doors,omitempty"`       // lock ids it opens; empty: every door of this bridge
	Managed    bool           `json:"managed,omitempty"`     // from NFC_CARDS / the add-on options: read-only
	AddedBy    string         `json:"added_by,omitempty"`
	AddedAt    time.Time      `json:"added_at"`
	UpdatedBy  string         `json:"updated_by,omitempty"`
	UpdatedAt  time.Time      `json:"updated_at"`
}

// Card actions an entry may carry.
const (
	ActionToggle = "toggle"
	ActionUnlock = "unlock"
	ActionLock   = "lock"
	ActionNone   = "none"
)

// Reasons a tap is denied (Decision.Reason, LogEntry.Reason).
const (
	ReasonUnknown      = "unknown"
	ReasonRandomUID    = "random_uid" // enrollment only; a random UID's tap is "unknown"
	ReasonDisabled     = "disabled"
	ReasonNotYetValid  = "not_yet_valid"
	ReasonExpired      = "expired"
	ReasonOutsideHours = "outside_hours"
	ReasonNotThisDoor  = "not_this_door"
	ReasonLockout      = "lockout"
)

// FieldError is one invalid field of an entry.
type FieldError struct{ Field, Message string }

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// MaxName bounds a holder's name (as NFC_CARDS does): it goes into the
// Sesame history and into events.
const MaxName = 64

const (
	dateLayout = "2006-01-02"
	timeLayout = "15:04"
)

// validUIDLens: ISO14443A single, double and triple size, FeliCa IDm.
var validUIDLens = map[int]bool{4: true, 7: true, 8: true, 10: true}

// CanonicalUID turns hex (with ':', '-' or spaces between bytes allowed)
// into the canonical form; ok is false for anything that is not a card UID.
func CanonicalUID(s string) (string, bool) {
	clean := strings.NewReplacer("-", "", " ", "", ":", "").Replace(strings.TrimSpace(s))
	b, err := hex.DecodeString(clean)
	if err != nil || !validUIDLens[len(b)] {
		return "", false
	}
	return strings.ToUpper(clean), true
}

// Normalize canonicalises what can be (UID case and separators, sorted
// unique weekdays and doors, trimmed name) and checks every field; the
// error joins one FieldError per problem.
func (e *Entry) Normalize() error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, FieldError{field, msg}) }
	if uid, ok := CanonicalUID(e.UID); ok {
		e.UID = uid
		if len(uid) == 8 && strings.HasPrefix(uid, "08") {
			bad("UID", "a 4-byte UID starting 08 is a random UID (phones, privacy cards): it changes at every tap")
		}
	} else {
		bad("UID", "must be the card's UID in hex: 4, 7 or 10 bytes (ISO14443A) or 8 (FeliCa IDm), like 04A22B1CD35E80")
	}
	e.Name = strings.TrimSpace(e.Name)
	switch {
	case e.Name == "":
		bad("Name", "required")
	case len(e.Name) > MaxName:
		bad("Name", fmt.Sprintf("at most %d bytes", MaxName))
	case !utf8.ValidString(e.Name) || strings.ContainsAny(e.Name, "\x00\r\n\t"):
		bad("Name", "must be plain text on one line")
	}
	switch e.Action {
	case ActionToggle, ActionUnlock, ActionLock, ActionNone:
	default:
		bad("Action", "must be toggle, unlock, lock or none")
	}
	var from, until time.Time
	if e.ValidFrom != "" {
		t, err := time.Parse(dateLayout, e.ValidFrom)
		if err != nil {
			bad("ValidFrom", "must be a date like 2026-03-31")
		}
		from = t
	}
	if e.ValidUntil != "" {
		t, err := time.Parse(dateLayout, e.ValidUntil)
		if err != nil {
			bad("ValidUntil", "must be a date like 2026-03-31")
		}
		until = t
	}
	if !from.IsZero() && !until.IsZero() && until.Before(from) {
		bad("ValidUntil", "must not be before ValidFrom")
	}
	days := slices.Clone(e.Weekdays)
	slices.Sort(days)
	days = slices.Compact(days)
	for _, d := range days {
		if d < time.Sunday || d > time.Saturday {
			bad("Weekdays", "unknown weekday")
			break
		}
	}
	if len(days) == 7 {
		days = nil
	}
	e.Weekdays = days
	switch {
	case e.From == "" && e.To == "":
	case e.From == "" || e.To == "":
		bad("From", "give both the start and the end of the daily window, or neither")
	default:
		f, ferr := time.Parse(timeLayout, e.From)
		t, terr := time.Parse(timeLayout, e.To)
		if ferr != nil {
			bad("From", "must be a time like 08:00")
		}
		if terr != nil {
			bad("To", "must be a time like 18:30")
		}
		if ferr == nil && terr == nil && f.Equal(t) {
			bad("To", "must differ from From (leave both empty for all day)")
		}
	}
	var doors []string
	for _, d := range e.Doors {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		if len(d) > 128 || strings.ContainsAny(d, ",\x00\r\n") {
			bad("Doors", "a door is a lock id (letters and digits)")
			break
		}
		doors = append(doors, strings.ToLower(d))
	}
	slices.Sort(doors)
	e.Doors = slices.Compact(doors)
	for _, f := range []struct{ name, v string }{{"AddedBy", e.AddedBy}, {"UpdatedBy", e.UpdatedBy}} {
		if len(f.v) > 256 || !utf8.ValidString(f.v) {
			bad(f.name, "at most 256 bytes of text")
		}
	}
	return errors.Join(errs...)
}

// minutes parses "15:04" into minutes after midnight; ok false for "".
func minutes(s string) (int, bool) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

// Check says why the entry does not open door at now ("" when it does).
// Dates, weekdays and hours are read in loc. The daily window includes
// From and excludes To; a window that spans midnight belongs to the day it
// starts on (Fri 22:00-06:00 lets in on Saturday at 03:00, not on Sunday).
func (e *Entry) Check(now time.Time, door string, loc *time.Location) string {
	if !e.Enabled {
		return ReasonDisabled
	}
	if len(e.Doors) > 0 && !slices.Contains(e.Doors, strings.ToLower(door)) {
		return ReasonNotThisDoor
	}
	local := now.In(loc)
	today := local.Format(dateLayout)
	if e.ValidFrom != "" && today < e.ValidFrom {
		return ReasonNotYetValid
	}
	if e.ValidUntil != "" && today > e.ValidUntil {
		return ReasonExpired
	}
	dayOK := func(d time.Weekday) bool { return len(e.Weekdays) == 0 || slices.Contains(e.Weekdays, d) }
	from, hasWindow := minutes(e.From)
	to, _ := minutes(e.To)
	m := local.Hour()*60 + local.Minute()
	wd := local.Weekday()
	yesterday := (wd + 6) % 7
	var ok bool
	switch {
	case !hasWindow:
		ok = dayOK(wd)
	case from < to:
		ok = dayOK(wd) && m >= from && m < to
	default: // spans midnight
		ok = (m >= from && dayOK(wd)) || (m < to && dayOK(yesterday))
	}
	if !ok {
		return ReasonOutsideHours
	}
	return ""
}

// clone copies an entry's slices.
func (e Entry) clone() Entry {
	e.Weekdays = slices.Clone(e.Weekdays)
	e.Doors = slices.Clone(e.Doors)
	return e
}

// EnrollEvent is one step of an enrollment by tapping.
type EnrollEvent struct {
	Kind    string // "waiting", "enrolled", "already_listed", "random_uid", "changing_idm", "timeout", "cancelled"
	Name    string
	UID     string // the full UID only in the "enrolled" event (to confirm it); "" otherwise
	Message string // one sentence for the user
}

// Enrollment event kinds.
const (
	EnrollWaiting       = "waiting"
	EnrollEnrolled      = "enrolled"
	EnrollAlreadyListed = "already_listed"
	EnrollRandomUID     = "random_uid"
	EnrollChangingIDm   = "changing_idm"
	EnrollTimeout       = "timeout"
	EnrollCancelled     = "cancelled"
)

// DoorStatus is one lock as the page shows it; State as on MQTT: LOCKED,
// UNLOCKED, ..., None.
type DoorStatus struct{ ID, Name, State string }
