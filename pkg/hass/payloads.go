package hass

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// LockState is a payload on a lock's state topic.
type LockState string

// The lock entity's states. Reset makes HA show "unknown" (its payload_reset
// default): for a lock stopped between its end positions, or one never read.
const (
	Locked    LockState = "LOCKED"
	Unlocked  LockState = "UNLOCKED"
	Locking   LockState = "LOCKING"
	Unlocking LockState = "UNLOCKING"
	Jammed    LockState = "JAMMED"
	Reset     LockState = "None"
)

// Command payloads accepted on the command topics: exact bytes only.
const (
	PayloadLock   = "LOCK"
	PayloadUnlock = "UNLOCK"
	PayloadPress  = "PRESS"
)

// Action is what a command asks of a lock.
type Action int

// Actions. ActionToggle is resolved to lock or unlock from the confirmed
// state before anything is sent.
const (
	ActionNone Action = iota
	ActionLock
	ActionUnlock
	ActionToggle
	ActionRefresh
)

// String names the action as the result messages do.
func (a Action) String() string {
	switch a {
	case ActionLock:
		return "lock"
	case ActionUnlock:
		return "unlock"
	case ActionToggle:
		return "toggle"
	case ActionRefresh:
		return "refresh"
	}
	return "none"
}

// ErrBadPayload is wrapped by every parse error below.
var ErrBadPayload = errors.New("unexpected payload")

// ParseCommand turns a message on a command topic into an action. Only the
// exact payloads are accepted (no trimming, no case folding): LOCK or UNLOCK
// on the set topic, PRESS on the toggle and refresh topics.
func ParseCommand(kind CommandKind, payload []byte) (Action, error) {
	p := string(payload)
	switch kind {
	case TopicSet:
		switch p {
		case PayloadLock:
			return ActionLock, nil
		case PayloadUnlock:
			return ActionUnlock, nil
		}
		return ActionNone, fmt.Errorf("%w: want %s or %s (%s)", ErrBadPayload, PayloadLock, PayloadUnlock, describe(payload))
	case TopicToggle, TopicRefresh:
		if p == PayloadPress {
			if kind == TopicToggle {
				return ActionToggle, nil
			}
			return ActionRefresh, nil
		}
		return ActionNone, fmt.Errorf("%w: want %s (%s)", ErrBadPayload, PayloadPress, describe(payload))
	}
	return ActionNone, fmt.Errorf("%w: not a command topic", ErrBadPayload)
}

// Status is the JSON published on a lock's status topic: the last status
// read back from the cloud. Hub is "ON"/"OFF", or null when the cloud does
// not say (HA then shows the connectivity as unknown).
type Status struct {
	Battery      int     `json:"battery"`
	Voltage      float64 `json:"voltage"`
	Position     int     `json:"position"`
	Hub          *string `json:"hub"`
	SesameStatus string  `json:"sesame_status"`
	ReportedAt   string  `json:"reported_at,omitempty"` // the lock's own timestamp, RFC 3339 UTC
	ReadAt       string  `json:"read_at"`               // when the bridge read it, RFC 3339 UTC
	// Source says where the status came from: SourcePush, SourceShadowRead
	// or SourceWebAPI.
	Source string `json:"source,omitempty"`
	// Restored: the bridge restarted and shows what it read at ReadAt (kept
	// in its state directory); the lock has not been read since.
	Restored bool `json:"restored,omitempty"`
}

// Where a status came from.
const (
	SourcePush       = "push"        // a document of the cloud's push feed
	SourceShadowRead = "shadow_read" // a read of the push feed's shadow (free)
	SourceWebAPI     = "web_api"     // a Web API status read (counted)
)

// NewStatus fills a Status; hub nil means unknown.
func NewStatus(battery int, voltage float64, position int, hub *bool, sesameStatus string, reported, read time.Time, source string) Status {
	s := Status{
		Battery:      battery,
		Voltage:      finite(math.Round(voltage*1000) / 1000),
		Position:     position,
		SesameStatus: sesameStatus,
		ReadAt:       read.UTC().Format(time.RFC3339),
		Source:       source,
	}
	if !reported.IsZero() {
		s.ReportedAt = reported.UTC().Format(time.RFC3339)
	}
	if hub != nil {
		v := "OFF"
		if *hub {
			v = "ON"
		}
		s.Hub = &v
	}
	return s
}

// Result outcomes.
const (
	ResultSuccess = "success"
	ResultFailed  = "failed" // the command was not carried out (refused, not sent, superseded)
	ResultJammed  = "jammed"
	// ResultUnknown: the bridge stopped after the command may have reached
	// the cloud and before the lock was read back.
	ResultUnknown = "unknown"
)

// Result is the non-retained message that ends every command.
type Result struct {
	Command string `json:"command"`
	Result  string `json:"result"`
	Detail  string `json:"detail,omitempty"`
	Source  string `json:"source,omitempty"`
	// Delayed: the broker was unreachable when the command ended; this is
	// the result published after the reconnect, and EndedAt (RFC 3339 UTC)
	// says when the command ended.
	Delayed bool   `json:"delayed,omitempty"`
	EndedAt string `json:"ended_at,omitempty"`
}

// Usage is the JSON on the bridge's API usage topic.
type Usage struct {
	Month           string `json:"month"`
	Used            int    `json:"used"`
	Budget          int    `json:"budget"`
	Reserve         int    `json:"reserve"`
	Remaining       int    `json:"remaining"`
	BackgroundReads string `json:"background_reads"` // "active" or "stopped"
	PollIntervalS   int    `json:"poll_interval_s,omitempty"`
}

// State source values: where the lock states come from.
const (
	StateSourcePush    = "push"         // the push feed is healthy; background Web API reads stopped
	StateSourcePolling = "polling"      // push is off (SESAME_PUSH=off): budgeted Web API reads
	StateSourceFailing = "push failing" // push is on but not working: budgeted Web API reads meanwhile
)

// StateSource is the JSON on the bridge's state source topic.
type StateSource struct {
	Source string `json:"source"`
	Reason string `json:"reason,omitempty"`
	Since  string `json:"since"` // RFC 3339 UTC
}

// Activity event types of a lock's Activity event entity.
const (
	ActivityLocked         = "locked"
	ActivityUnlocked       = "unlocked"
	ActivityAutoLocked     = "auto_locked"
	ActivityManualLocked   = "manual_locked"
	ActivityManualUnlocked = "manual_unlocked"
	ActivityAppLocked      = "app_locked"
	ActivityAppUnlocked    = "app_unlocked"
	ActivityWebLocked      = "web_locked"
	ActivityWebUnlocked    = "web_unlocked"
	ActivityOther          = "other"
)

// ActivityTypes are the Activity entity's event types.
var ActivityTypes = []string{
	ActivityLocked, ActivityUnlocked, ActivityAutoLocked, ActivityManualLocked, ActivityManualUnlocked,
	ActivityAppLocked, ActivityAppUnlocked, ActivityWebLocked, ActivityWebUnlocked, ActivityOther,
}

// Activity is one event of a lock's Activity entity: who or what moved it.
type Activity struct {
	EventType   string `json:"event_type"`
	By          string `json:"by"`                     // the history tag: a card holder, "Home Assistant", an app user; "unknown"
	Method      string `json:"method"`                 // manual, auto_lock, bluetooth, wifi_module, web_api, sesame2mqtt, unknown
	HistoryType *int   `json:"history_type,omitempty"` // the cloud's record type, when the history was read
	At          string `json:"at"`                     // RFC 3339 UTC
}

// Clock is the JSON on the bridge's clock topic: how far the host's clock
// is off the Sesame cloud's, which judges the commands' signatures.
type Clock struct {
	OffsetS      int    `json:"offset_s"`      // the cloud's clock minus the host's, whole seconds: positive when the host's clock is behind
	SigningClock string `json:"signing_clock"` // "host", or "cloud" while the offset is beyond the threshold
}

// NewClock fills a Clock from the measured offset (cloud minus host).
func NewClock(offset time.Duration, corrected bool) Clock {
	c := Clock{OffsetS: int(offset.Round(time.Second) / time.Second), SigningClock: "host"}
	if corrected {
		c.SigningClock = "cloud"
	}
	return c
}

// JSON encodes one of the payload types above.
func JSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}

// finite maps NaN and infinities (which JSON cannot carry) to 0.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// ActivityOf names a history record type (pysesame3's numbering) as an
// Activity event type and the method behind it. Types without a lock or
// unlock in them are ActivityOther.
func ActivityOf(historyType int) (eventType, method string) {
	switch historyType {
	case 1:
		return ActivityAppLocked, "bluetooth"
	case 2:
		return ActivityAppUnlocked, "bluetooth"
	case 6:
		return ActivityAutoLocked, "auto_lock"
	case 7:
		return ActivityManualLocked, "manual"
	case 8:
		return ActivityManualUnlocked, "manual"
	case 9, 22:
		return ActivityOther, "manual"
	case 10:
		return ActivityLocked, "lock"
	case 11:
		return ActivityUnlocked, "lock"
	case 14:
		return ActivityAppLocked, "wifi_module"
	case 15:
		return ActivityAppUnlocked, "wifi_module"
	case 16:
		return ActivityWebLocked, "web_api"
	case 17:
		return ActivityWebUnlocked, "web_api"
	case 18:
		return ActivityOther, "web_api"
	}
	return ActivityOther, "unknown"
}
