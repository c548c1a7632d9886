package push

import (
	"encoding/hex"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// The reference's example (pysesame3 tests/fixtures/lock_shadow_locked.json).
const example = `{"state":{"reported":{"mechst":"640300801d00000a","wm2s":{"00005E005300":"01"}}}}`

func TestDecodeExample(t *testing.T) {
	for _, payload := range []string{
		example, // update/accepted and the shadow GET
		`{"previous":null,"current":{"state":{"reported":{"mechst":"640300801d00000a","wm2s":{"00005E005300":"01"}}},"version":3},"timestamp":1700000000}`,
	} {
		d, err := Decode("488e1234-abcd-4ef0-a1b2-c3d4e5f60718", []byte(payload))
		if err != nil {
			t.Fatalf("%s: %v", payload, err)
		}
		st := d.Status
		// raw 0x0364 = 868 -> 868 * 7.2 / 1023 = 6.109 V -> 100 %.
		if st.State != sesame.StateLocked || st.Position != 29 || st.RawState != "640300801d00000a" ||
			math.Abs(st.Voltage-6.109) > 0.001 || st.Battery != 100 || d.Critical {
			t.Fatalf("decoded %+v critical=%v", st, d.Critical)
		}
		if st.HubOnline == nil || !*st.HubOnline {
			t.Fatalf("hub: %v", st.HubOnline)
		}
		if d.UUID != "488E1234-ABCD-4EF0-A1B2-C3D4E5F60718" {
			t.Fatalf("uuid %s", d.UUID)
		}
	}
}

// mechstOf encodes raw battery, position and flags.
func mechstOf(raw uint16, pos int16, flags byte) string {
	p := uint16(pos)
	return hex.EncodeToString([]byte{byte(raw), byte(raw >> 8), 0, 0x80, byte(p), byte(p >> 8), 0, flags})
}

func TestDecodeMechst(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mechst   string
		state    sesame.LockState
		pos      int
		critical bool
	}{
		{"lock range", mechstOf(868, 29, 0x02), sesame.StateLocked, 29, false},
		{"lock range, undocumented 0x08", mechstOf(868, 29, 0x0a), sesame.StateLocked, 29, false},
		{"unlock range", mechstOf(868, -250, 0x04), sesame.StateUnlocked, -250, false},
		{"both ranges: moving, never unlocked", mechstOf(868, 100, 0x06), sesame.StateMoved, 100, false},
		{"neither range", mechstOf(868, 500, 0x00), sesame.StateMoved, 500, false},
		{"battery critical", mechstOf(650, 0, 0x22), sesame.StateLocked, 0, true},
		{"upper-case hex, extra bytes ignored", strings.ToUpper(mechstOf(868, 1, 0x04)) + "FFFF", sesame.StateUnlocked, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := decodeMechst(tc.mechst)
			if err != nil {
				t.Fatal(err)
			}
			if m.state != tc.state || m.position != tc.pos || m.critical != tc.critical || len(m.raw) != 16 {
				t.Fatalf("%+v", m)
			}
		})
	}
	for _, bad := range []string{"", "6403", "640300801d00000", "zz0300801d00000a", strings.Repeat("00", maxMechstLen+1)} {
		if _, err := decodeMechst(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBatteryPercent(t *testing.T) {
	for _, tc := range []struct {
		volts float64
		want  int
	}{
		{7, 100}, {6.0, 100}, {5.9, 75}, {5.8, 50}, {5.75, 45}, {5.7, 40}, {5.6, 32},
		{5.5, 27}, {5.4, 21}, {5.2, 13}, {5.1, 10}, {5.0, 7}, {4.9, 5}, {4.8, 3},
		{4.7, 2}, {4.6, 0}, {3, 0}, {0, 0},
	} {
		if got := BatteryPercent(tc.volts); got != tc.want {
			t.Errorf("BatteryPercent(%v) = %d, want %d", tc.volts, got, tc.want)
		}
	}
}

func TestDecodeDocumentForms(t *testing.T) {
	ok := func(payload string) reported {
		t.Helper()
		r, err := decodeDocument([]byte(payload))
		if err != nil {
			t.Fatalf("%s: %v", payload, err)
		}
		return r
	}
	r := ok(`{"state":{"reported":{"wm2s":{"A":"00","B":"01"}}},"version":7,"timestamp":1700000000}`)
	if r.mechst != nil || r.hubs == nil || !*r.hubs || r.version != 7 || !r.at.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("%+v", r)
	}
	// A shadow read: the metadata's mechst time (the change), not the
	// document's (the read).
	r = ok(`{"state":{"reported":{"mechst":"640300801d00000a"}},"metadata":{"reported":{"mechst":{"timestamp":1600000000}}},"version":2,"timestamp":1700000000}`)
	if !r.at.Equal(time.Unix(1600000000, 0)) {
		t.Fatalf("time %s, want the metadata's", r.at)
	}
	r = ok(`{"current":{"state":{"reported":{"mechst":"640300801d00000a"}},"metadata":{"reported":{"mechst":{"timestamp":1600000001}}}},"timestamp":1700000000}`)
	if !r.at.Equal(time.Unix(1600000001, 0)) {
		t.Fatalf("documents form: time %s, want the metadata's", r.at)
	}
	r = ok(`{"state":{"reported":{"mechst":"640300801d00000a","wm2s":{"A":"00"}}}}`)
	if r.hubs == nil || *r.hubs {
		t.Fatalf("all hubs 00: %+v", r.hubs)
	}
	r = ok(`{"state":{"reported":{"mechst":"640300801d00000a","wm2s":{}}}}`)
	if r.hubs != nil || !r.hasHubs {
		t.Fatalf("empty wm2s: %+v", r)
	}
	for _, ignored := range []string{`{"state":{"desired":{"x":1}}}`, `{"current":{"state":{}}}`, `{}`, `{"state":null}`} {
		if _, err := decodeDocument([]byte(ignored)); err != errIgnored {
			t.Errorf("%s: %v, want errIgnored", ignored, err)
		}
	}
	for _, bad := range []string{
		``, `null x`, `[]`, `"s"`, `{"state":{"reported":{}}}`,
		`{"state":{"reported":{"mechst":true}}}`,
		`{"state":{"reported":{"wm2s":[]}}}`,
		`{"state":{"reported":{"mechst":"640300801d00000a"}},"version":-1}`,
		`{"state":{"reported":{"mechst":"640300801d00000a"}},"version":1.5}`,
		`{"state":{"reported":{"mechst":"640300801d00000a"}},"timestamp":"x"}`,
		`{"state":{"reported":{"mechst":"640300801d00000a"}}} {}`,
	} {
		if _, err := decodeDocument([]byte(bad)); err == nil || err == errIgnored {
			t.Errorf("%q: %v, want an error", bad, err)
		}
	}
}

// TestUnknownTopicIgnored hands the owner's handler a document on a topic
// of a lock that is not configured (as a broker that routes too much
// would): one rate-limited line, nothing delivered.
func TestUnknownTopicIgnored(t *testing.T) {
	log, buf := logcapture.New()
	var got []Document
	c, err := New(Options{Locks: []string{"488E1234-ABCD-4EF0-A1B2-C3D4E5F60718"}, Logger: log, OnDocument: func(d Document) { got = append(got, d) }})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		c.handle(inMsg{topic: topicPrefix + "99999999-0000-4000-8000-000000000000" + suffixDocuments, payload: []byte(example), source: SourcePush})
		c.handle(inMsg{topic: "$aws/things/other/shadow/update/documents", payload: []byte(example), source: SourcePush})
	}
	if len(got) != 0 {
		t.Fatalf("delivered %+v", got)
	}
	if n := strings.Count(buf.String(), "not configured"); n < 1 || n > 5 {
		t.Fatalf("%d lines:\n%s", n, buf)
	}
	c.handle(inMsg{topic: topicPrefix + "488e1234-abcd-4ef0-a1b2-c3d4e5f60718" + suffixAccepted, payload: []byte(example), source: SourcePush})
	if len(got) != 1 || got[0].UUID != "488E1234-ABCD-4EF0-A1B2-C3D4E5F60718" {
		t.Fatalf("configured lock in lower case: %+v", got)
	}
}

func TestBackoffCappedWithJitter(t *testing.T) {
	prev := time.Duration(0)
	for n := 1; n <= 40; n++ {
		d := backoff(n)
		if d <= 0 || d > backoffCap*12/10 {
			t.Fatalf("backoff(%d) = %s", n, d)
		}
		if n <= 3 && d < prev/2 {
			t.Fatalf("backoff(%d) = %s after %s", n, d, prev)
		}
		prev = d
	}
	if d := backoff(1); d < 400*time.Millisecond || d > 600*time.Millisecond {
		t.Fatalf("first backoff %s", d)
	}
}

func TestReplaceBeforeExpiryAndDayLimit(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hour := creds{obtained: now, expires: now.Add(time.Hour)}
	if got := hour.renewAt(); !got.Equal(now.Add(time.Hour - renewMargin)) {
		t.Fatalf("an hour's credentials renewed at %s", got)
	}
	short := creds{obtained: now, expires: now.Add(4 * time.Second)}
	if got := short.renewAt(); !got.Equal(now.Add(3 * time.Second)) {
		t.Fatalf("4 s credentials renewed at %s", got)
	}
	// Credentials longer than a day: the connection still goes before 24 h.
	long := &conn{started: now, creds: creds{obtained: now, expires: now.Add(48 * time.Hour)}}
	if got := long.replaceAt(); !got.Equal(now.Add(maxConnAge)) || maxConnAge >= 24*time.Hour {
		t.Fatalf("replaced at %s", got)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte(`{"current":{"state":{"reported":{"mechst":"640300801d00000a"}},"version":3},"timestamp":1}`))
	f.Add([]byte(`{"state":{"reported":{"wm2s":{"A":"01"}}},"version":9}`))
	f.Add([]byte(`{"state":{"reported":{"mechst":"ffffffffffffffff"}}}`))
	f.Add([]byte(`garbage`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := decodeDocument(payload)
		d, derr := Decode("x", payload)
		if err != nil {
			if derr == nil {
				t.Fatal("Decode accepted what decodeDocument refused")
			}
			return
		}
		if r.mechst == nil && !r.hasHubs {
			t.Fatal("accepted a document with nothing in it")
		}
		if r.mechst != nil {
			m := r.mechst
			if m.battery < 0 || m.battery > 100 || m.volts < 0 || m.volts > 7.2*65535/1023+0.01 ||
				m.position < math.MinInt16 || m.position > math.MaxInt16 || len(m.raw) != 16 {
				t.Fatalf("out of range: %+v", m)
			}
			switch m.state {
			case sesame.StateLocked, sesame.StateUnlocked, sesame.StateMoved:
			default:
				t.Fatalf("state %q", m.state)
			}
			if derr != nil || d.Status.State != m.state {
				t.Fatalf("Decode: %v %+v", derr, d)
			}
		}
	})
}
