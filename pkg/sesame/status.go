package sesame

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// LockState is the lock's position as the cloud reports it.
type LockState string

// The states a Status can carry. Any CHSesame2Status string the service may
// invent later maps to StateUnknown.
const (
	StateLocked   LockState = "locked"
	StateUnlocked LockState = "unlocked"
	StateMoved    LockState = "moved" // turned by hand or stopped between the end positions
	StateUnknown  LockState = "unknown"
)

// Status is one decoded status body (GET /{uuid}).
type Status struct {
	State     LockState // locked, unlocked, moved or unknown
	RawState  string    // CHSesame2Status as received
	Battery   int       // batteryPercentage, 0..100
	Voltage   float64   // batteryVoltage in volts
	Position  int       // signed; 1024 = 360 degrees
	Timestamp time.Time // zero when the body has none
	HubOnline *bool     // wm2State; nil when absent
}

// Keys of the status body. They are matched exactly: the service's keys are
// case-sensitive in meaning, and encoding/json would match them ignoring case.
const (
	keyState    = "CHSesame2Status"
	keyBattery  = "batteryPercentage"
	keyVoltage  = "batteryVoltage"
	keyPosition = "position"
	keyTime     = "timestamp"
	keyHub      = "wm2State"
)

// maxPosition bounds |position|; anything larger is not a lock angle.
const maxPosition = 1 << 20

// msTimestamp is the smallest timestamp read as milliseconds: the API
// documentation says milliseconds, every observed body has seconds, and a
// seconds value this large would lie beyond the year 5000.
const msTimestamp = 100_000_000_000

// DecodeStatus parses a status body. Unknown keys are ignored; a missing
// battery, voltage, position or timestamp leaves the zero value. A JSON null
// counts as absent for those optional keys.
func DecodeStatus(body []byte) (Status, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return Status{}, fmt.Errorf("decode status: %w", err)
	}
	if fields == nil { // the body was null
		return Status{}, errors.New("decode status: body is null, not an object")
	}

	var st Status
	raw, ok := present(fields, keyState)
	if !ok {
		return Status{}, fmt.Errorf("decode status: %s missing", keyState)
	}
	if err := json.Unmarshal(raw, &st.RawState); err != nil || !isString(raw) {
		return Status{}, fmt.Errorf("decode status: %s is not a string", keyState)
	}
	switch s := LockState(st.RawState); s {
	case StateLocked, StateUnlocked, StateMoved:
		st.State = s
	default:
		st.State = StateUnknown
	}

	if raw, ok := present(fields, keyBattery); ok {
		n, err := integer(raw, keyBattery)
		if err != nil {
			return Status{}, err
		}
		if n < 0 || n > 100 {
			return Status{}, fmt.Errorf("decode status: %s %d outside 0..100", keyBattery, n)
		}
		st.Battery = int(n)
	}

	if raw, ok := present(fields, keyVoltage); ok {
		v, err := number(raw, keyVoltage)
		if err != nil {
			return Status{}, err
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return Status{}, fmt.Errorf("decode status: %s %v is not a voltage", keyVoltage, v)
		}
		st.Voltage = v
	}

	if raw, ok := present(fields, keyPosition); ok {
		n, err := integer(raw, keyPosition)
		if err != nil {
			return Status{}, err
		}
		if n > maxPosition || n < -maxPosition {
			return Status{}, fmt.Errorf("decode status: %s %d is not a lock angle", keyPosition, n)
		}
		st.Position = int(n)
	}

	if raw, ok := present(fields, keyTime); ok {
		n, err := integer(raw, keyTime)
		if err != nil {
			return Status{}, err
		}
		switch {
		case n < 0:
			return Status{}, fmt.Errorf("decode status: %s %d is negative", keyTime, n)
		case n >= msTimestamp:
			st.Timestamp = time.UnixMilli(n)
		case n > 0:
			st.Timestamp = time.Unix(n, 0)
		}
	}

	if raw, ok := present(fields, keyHub); ok {
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return Status{}, fmt.Errorf("decode status: %s is not a boolean", keyHub)
		}
		st.HubOnline = &b
	}
	return st, nil
}

// present returns the raw value of key, treating JSON null as absent.
func present(fields map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	raw, ok := fields[key]
	if !ok {
		return nil, false
	}
	raw = bytes.TrimSpace(raw)
	if bytes.Equal(raw, []byte("null")) {
		return nil, false
	}
	return raw, true
}

func isString(raw json.RawMessage) bool { return len(raw) > 0 && raw[0] == '"' }

// number decodes a JSON number; strings, booleans and the rest are errors.
func number(raw json.RawMessage, key string) (float64, error) {
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("decode status: %s is not a number", key)
	}
	return v, nil
}

// integer decodes a JSON number that has no fractional part.
func integer(raw json.RawMessage, key string) (int64, error) {
	v, err := number(raw, key)
	if err != nil {
		return 0, err
	}
	// ±2^53 keeps the conversion exact and far beyond any valid field.
	if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
		return 0, fmt.Errorf("decode status: %s %v is not an integer", key, v)
	}
	return int64(v), nil
}
