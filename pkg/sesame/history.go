package sesame

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// History types (pysesame3's history.py). Unknown types are kept, named by
// their number.
const (
	HistoryBLELock        = 1
	HistoryBLEUnlock      = 2
	HistoryTimeChanged    = 3
	HistoryAutoLockUpdate = 4
	HistoryMechUpdate     = 5
	HistoryAutoLock       = 6
	HistoryManualLocked   = 7
	HistoryManualUnlocked = 8
	HistoryManualElse     = 9
	HistoryDriveLocked    = 10
	HistoryDriveUnlocked  = 11
	HistoryDriveFailed    = 12
	HistoryBLEAdvUpdate   = 13
	HistoryWM2Lock        = 14
	HistoryWM2Unlock      = 15
	HistoryWebLock        = 16
	HistoryWebUnlock      = 17
	HistoryWebClick       = 18
	HistoryDriveClick     = 21
	HistoryManualClick    = 22
)

// HistoryEntry is one record of a lock's history, newest first as the cloud
// lists them.
type HistoryEntry struct {
	Type     int
	At       time.Time // zero when the record has no timestamp
	Tag      string    // the decoded history tag ("" when none); invalid UTF-8 replaced
	RecordID int64
}

// MaxHistory is the most records one page holds.
const MaxHistory = 50

// History reads the newest n records of a lock's history:
// GET {base}/{uuid}/history?page=0&lg=n, one attempt, counted like every
// request. n is clamped to 1..MaxHistory.
func (c *Client) History(ctx context.Context, uuid string, n int) ([]HistoryEntry, error) {
	if uuid == "" {
		return nil, errors.New("sesame history: empty lock UUID")
	}
	n = min(max(n, 1), MaxHistory)
	target := c.lockURL(uuid) + "/history?page=0&lg=" + strconv.Itoa(n)
	rep, err := c.do(ctx, "history", uuid, http.MethodGet, target, nil)
	if err != nil {
		return nil, wrap("history", uuid, err)
	}
	h, err := DecodeHistory(rep.body)
	if err != nil {
		return nil, fmt.Errorf("sesame history %s: %w", uuid, err)
	}
	return h, nil
}

// DecodeHistory parses a history page: an array of
// {"type","timeStamp","historyTag","recordID",...}. timeStamp may be seconds
// or milliseconds; historyTag is base64 or null. A record that cannot be
// read makes the whole page an error.
func DecodeHistory(body []byte) ([]HistoryEntry, error) {
	var raw []struct {
		Type       *float64 `json:"type"`
		TimeStamp  *float64 `json:"timeStamp"`
		HistoryTag *string  `json:"historyTag"`
		RecordID   *float64 `json:"recordID"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("decode history: %w", err)
	}
	if raw == nil {
		return nil, errors.New("decode history: not an array")
	}
	out := make([]HistoryEntry, 0, len(raw))
	for i, r := range raw {
		if r.Type == nil || *r.Type != math.Trunc(*r.Type) || *r.Type < 0 || *r.Type > 1<<16 {
			return nil, fmt.Errorf("decode history: record %d: type missing or not a small integer", i)
		}
		e := HistoryEntry{Type: int(*r.Type)}
		if r.TimeStamp != nil {
			ts := *r.TimeStamp
			switch {
			case math.IsNaN(ts) || ts < 0 || ts > 1<<53:
				return nil, fmt.Errorf("decode history: record %d: timeStamp %v", i, ts)
			case ts >= msTimestamp:
				e.At = time.UnixMilli(int64(ts))
			case ts > 0:
				sec, frac := math.Modf(ts)
				e.At = time.Unix(int64(sec), int64(frac*1e9))
			}
		}
		if r.RecordID != nil {
			if *r.RecordID != math.Trunc(*r.RecordID) || math.Abs(*r.RecordID) > 1<<53 {
				return nil, fmt.Errorf("decode history: record %d: recordID %v is not an integer", i, *r.RecordID)
			}
			e.RecordID = int64(*r.RecordID)
		}
		if r.HistoryTag != nil && *r.HistoryTag != "" {
			tag, err := base64.StdEncoding.DecodeString(*r.HistoryTag)
			if err != nil {
				return nil, fmt.Errorf("decode history: record %d: historyTag is not base64", i)
			}
			e.Tag = cleanTag(tag)
		}
		out = append(out, e)
	}
	return out, nil
}

// cleanTag makes a history tag printable: valid UTF-8, no control
// characters, at most 64 bytes (the cloud keeps 21).
func cleanTag(b []byte) string {
	s := []rune(string(b)) // invalid bytes become U+FFFD
	out := make([]rune, 0, len(s))
	size := 0
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			continue
		}
		if size+utf8.RuneLen(r) > 64 {
			break
		}
		size += utf8.RuneLen(r)
		out = append(out, r)
	}
	return string(out)
}
