package push

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// Sources of a Document.
const (
	SourcePush   = "push"        // a shadow update the feed delivered
	SourceShadow = "shadow_read" // the free one-shot GET of the shadow
)

// Document is one lock state taken from the lock's AWS IoT shadow.
type Document struct {
	UUID     string        // upper-case, as in the topic (match configured UUIDs case-insensitively)
	Status   sesame.Status // State (locked/unlocked/moved), RawState = mechst hex, Battery, Voltage, Position, HubOnline
	Critical bool          // battery critical flag
	Source   string        // SourcePush or SourceShadow
	Received time.Time
}

// Flags of mechst's last byte.
const (
	flagLockRange   = 0x02
	flagUnlockRange = 0x04
	flagCritical    = 0x20
)

// mechstLen is the length of a mechst in bytes; longer values are accepted
// and their extra bytes ignored, up to maxMechstLen.
const (
	mechstLen    = 8
	maxMechstLen = 64
	// maxDocument bounds a document; real ones are a few hundred bytes.
	maxDocument = 64 << 10
)

// batteryTable maps volts to percent, linear between the points
// (pysesame3's and the official SDK's table), highest first.
var batteryTable = []struct{ volts, percent float64 }{
	{6.0, 100}, {5.8, 50}, {5.7, 40}, {5.6, 32}, {5.4, 21},
	{5.2, 13}, {5.1, 10}, {5.0, 7}, {4.8, 3}, {4.6, 0},
}

// BatteryPercent converts a Sesame's battery voltage to percent, clamped
// to 0..100.
func BatteryPercent(volts float64) int {
	t := batteryTable
	if volts >= t[0].volts {
		return 100
	}
	for i := 1; i < len(t); i++ {
		hi, lo := t[i-1], t[i]
		if volts >= lo.volts {
			p := lo.percent + (volts-lo.volts)*(hi.percent-lo.percent)/(hi.volts-lo.volts)
			return int(math.Round(p))
		}
	}
	return 0
}

// reported is what a shadow document says about the lock. Fields are nil
// when the document does not carry them (an update/accepted document holds
// only what changed).
type reported struct {
	mechst  *mechst
	hubs    *bool // nil: no wm2s, or an empty one
	hasHubs bool  // wm2s present (possibly empty)
	version int64 // 0: none given
	at      time.Time
}

// mechst is a decoded mechanical status.
type mechst struct {
	raw      string // lower-case hex, as received
	volts    float64
	battery  int
	target   int
	position int
	state    sesame.LockState
	critical bool
}

// errIgnored marks a well-formed document that says nothing about the
// lock (a delete, a document without a reported state): skipped without a
// warning.
var errIgnored = errors.New("no reported state")

// decodeMechst parses mechst's hex: bytes 0-1 battery raw (volts = raw ×
// 7.2 / 1023), 2-3 target, 4-5 position (int16, little-endian), 6 return
// code, 7 flags.
func decodeMechst(s string) (mechst, error) {
	if len(s) > 2*maxMechstLen {
		return mechst{}, fmt.Errorf("mechst: %d characters, more than %d", len(s), 2*maxMechstLen)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return mechst{}, errors.New("mechst: not hex")
	}
	if len(b) < mechstLen {
		return mechst{}, fmt.Errorf("mechst: %d bytes, want %d", len(b), mechstLen)
	}
	m := mechst{raw: strings.ToLower(s[:2*mechstLen])}
	raw := int(b[0]) | int(b[1])<<8
	m.volts = math.Round(float64(raw)*7.2/1023*1000) / 1000
	m.battery = BatteryPercent(m.volts)
	m.target = int(int16(uint16(b[2]) | uint16(b[3])<<8))
	m.position = int(int16(uint16(b[4]) | uint16(b[5])<<8))
	flags := b[7]
	m.critical = flags&flagCritical != 0
	lock, unlock := flags&flagLockRange != 0, flags&flagUnlockRange != 0
	switch {
	case lock && !unlock:
		m.state = sesame.StateLocked
	case unlock && !lock:
		m.state = sesame.StateUnlocked
	default: // both: the thumb turn is moving; neither: between the ranges
		m.state = sesame.StateMoved
	}
	return m, nil
}

// decodeDocument parses a shadow document of either form: update/documents
// (the state under current.state.reported) or update/accepted and the
// shadow GET (under state.reported). It returns errIgnored for a document
// without a reported state and another error for anything malformed.
func decodeDocument(payload []byte) (reported, error) {
	if len(payload) > maxDocument {
		return reported{}, fmt.Errorf("document: %d bytes, more than %d", len(payload), maxDocument)
	}
	var doc struct {
		Current *struct {
			State    *shadowState `json:"state"`
			Metadata *shadowMeta  `json:"metadata"`
			Version  *json.Number `json:"version"`
		} `json:"current"`
		State     *shadowState `json:"state"`
		Metadata  *shadowMeta  `json:"metadata"`
		Version   *json.Number `json:"version"`
		Timestamp *json.Number `json:"timestamp"`
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return reported{}, fmt.Errorf("document: not a shadow document: %w", err)
	}
	if dec.More() {
		return reported{}, errors.New("document: more than one JSON value")
	}
	state, version, meta := doc.State, doc.Version, doc.Metadata
	if doc.Current != nil {
		state, version, meta = doc.Current.State, doc.Current.Version, doc.Current.Metadata
	}
	if state == nil || state.Reported == nil {
		return reported{}, errIgnored
	}
	var r reported
	if version != nil {
		v, err := version.Int64()
		if err != nil || v < 0 {
			return reported{}, errors.New("document: version is not a non-negative integer")
		}
		r.version = v
	}
	if doc.Timestamp != nil {
		ts, err := doc.Timestamp.Int64()
		if err != nil || ts < 0 || ts > 1<<40 {
			return reported{}, errors.New("document: timestamp is not a time in seconds")
		}
		if ts > 0 {
			r.at = time.Unix(ts, 0)
		}
	}
	// When mechst itself was reported, if the metadata says: for a shadow
	// read that is when the lock last changed, not when it was read.
	if meta != nil && meta.Reported.Mechst.Timestamp != nil {
		if ts, err := meta.Reported.Mechst.Timestamp.Int64(); err == nil && ts > 0 && ts <= 1<<40 {
			r.at = time.Unix(ts, 0)
		}
	}
	rep := state.Reported
	if raw, ok := rep["mechst"]; ok && !isNull(raw) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return reported{}, errors.New("document: mechst is not a string")
		}
		m, err := decodeMechst(s)
		if err != nil {
			return reported{}, fmt.Errorf("document: %w", err)
		}
		r.mechst = &m
	}
	if raw, ok := rep["wm2s"]; ok && !isNull(raw) {
		var hubs map[string]json.RawMessage
		if err := json.Unmarshal(raw, &hubs); err != nil || hubs == nil {
			return reported{}, errors.New("document: wm2s is not an object")
		}
		r.hasHubs = true
		if len(hubs) > 0 {
			online := false
			for _, v := range hubs {
				var s string
				if json.Unmarshal(v, &s) == nil && s == "01" {
					online = true
				}
			}
			r.hubs = &online
		}
	}
	if r.mechst == nil && !r.hasHubs {
		return reported{}, errors.New("document: reported state has neither mechst nor wm2s")
	}
	return r, nil
}

type shadowState struct {
	Reported map[string]json.RawMessage `json:"reported"`
}

// shadowMeta is the part of a shadow's metadata that says when mechst was
// last reported.
type shadowMeta struct {
	Reported struct {
		Mechst struct {
			Timestamp *json.Number `json:"timestamp"`
		} `json:"mechst"`
	} `json:"reported"`
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// status builds the lock's Status from a mechst and the hub state.
func (m mechst) status(hubs *bool, at time.Time) sesame.Status {
	return sesame.Status{
		State:     m.state,
		RawState:  m.raw,
		Battery:   m.battery,
		Voltage:   m.volts,
		Position:  m.position,
		Timestamp: at,
		HubOnline: hubs,
	}
}

// Decode parses a shadow document of either form for one lock and returns
// the Document it stands for, with Source and Received left for the caller.
// It is the decoder without the per-lock memory the Client keeps (which
// merges partial update/accepted documents): a document without a mechst
// is an error here.
func Decode(uuid string, payload []byte) (Document, error) {
	r, err := decodeDocument(payload)
	if err != nil {
		return Document{}, err
	}
	if r.mechst == nil {
		return Document{}, errors.New("document: no mechst")
	}
	return Document{
		UUID:     strings.ToUpper(uuid),
		Status:   r.mechst.status(r.hubs, r.at),
		Critical: r.mechst.critical,
	}, nil
}
