package sesame

import (
	"strings"
	"testing"
	"time"
)

func boolPtr(b bool) *bool { return &b }

func TestDecodeStatus(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    Status
		wantErr string // substring of the error; "" means success
	}{
		{
			name: "reference example",
			body: `{"batteryPercentage":100,"batteryVoltage":6.0035,"position":479,
				"CHSesame2Status":"locked","timestamp":1642253725,"wm2State":true}`,
			want: Status{State: StateLocked, RawState: "locked", Battery: 100, Voltage: 6.0035,
				Position: 479, Timestamp: time.Unix(1642253725, 0), HubOnline: boolPtr(true)},
		},
		{
			name: "unlocked, hub offline",
			body: `{"CHSesame2Status":"unlocked","batteryPercentage":57,"batteryVoltage":5.5,"position":215,"timestamp":1700000000,"wm2State":false}`,
			want: Status{State: StateUnlocked, RawState: "unlocked", Battery: 57, Voltage: 5.5,
				Position: 215, Timestamp: time.Unix(1700000000, 0), HubOnline: boolPtr(false)},
		},
		{
			name: "moved, negative position, no wm2State",
			body: `{"CHSesame2Status":"moved","position":-120,"batteryPercentage":3}`,
			want: Status{State: StateMoved, RawState: "moved", Battery: 3, Position: -120},
		},
		{
			name: "unknown state string is not an error",
			body: `{"CHSesame2Status":"jammed"}`,
			want: Status{State: StateUnknown, RawState: "jammed"},
		},
		{
			name: "empty state string",
			body: `{"CHSesame2Status":""}`,
			want: Status{State: StateUnknown, RawState: ""},
		},
		{
			name: "state compared exactly",
			body: `{"CHSesame2Status":"Locked"}`,
			want: Status{State: StateUnknown, RawState: "Locked"},
		},
		{
			name: "isRechargeBattery and other unknown keys ignored",
			body: `{"CHSesame2Status":"locked","isRechargeBattery":1,"somethingNew":{"a":[1,2]},"batteryPercentage":80}`,
			want: Status{State: StateLocked, RawState: "locked", Battery: 80},
		},
		{
			name: "wrong-case key for another field is ignored",
			body: `{"CHSesame2Status":"locked","BatteryPercentage":"lots"}`,
			want: Status{State: StateLocked, RawState: "locked"},
		},
		{
			name: "null optional fields count as absent",
			body: `{"CHSesame2Status":"locked","batteryPercentage":null,"position":null,"wm2State":null,"timestamp":null}`,
			want: Status{State: StateLocked, RawState: "locked"},
		},
		{
			name: "integral float battery",
			body: `{"CHSesame2Status":"locked","batteryPercentage":100.0,"position":-1e2}`,
			want: Status{State: StateLocked, RawState: "locked", Battery: 100, Position: -100},
		},
		{
			name: "timestamp in milliseconds",
			body: `{"CHSesame2Status":"locked","timestamp":1642253725123}`,
			want: Status{State: StateLocked, RawState: "locked", Timestamp: time.UnixMilli(1642253725123)},
		},
		{
			name: "boundaries",
			body: `{"CHSesame2Status":"locked","batteryPercentage":0,"batteryVoltage":0,"position":-1048576}`,
			want: Status{State: StateLocked, RawState: "locked", Position: -1 << 20},
		},

		{name: "not JSON", body: `locked`, wantErr: "decode status"},
		{name: "empty body", body: ``, wantErr: "decode status"},
		{name: "truncated", body: `{"CHSesame2Status":"locked"`, wantErr: "decode status"},
		{name: "array", body: `[{"CHSesame2Status":"locked"}]`, wantErr: "decode status"},
		{name: "string", body: `"locked"`, wantErr: "decode status"},
		{name: "null", body: `null`, wantErr: "not an object"},
		{name: "state missing", body: `{"batteryPercentage":100}`, wantErr: "CHSesame2Status missing"},
		{name: "wrong-case state key", body: `{"chsesame2status":"locked"}`, wantErr: "CHSesame2Status missing"},
		{name: "state null", body: `{"CHSesame2Status":null}`, wantErr: "CHSesame2Status missing"},
		{name: "state number", body: `{"CHSesame2Status":1}`, wantErr: "CHSesame2Status is not a string"},
		{name: "state bool", body: `{"CHSesame2Status":true}`, wantErr: "CHSesame2Status is not a string"},
		{name: "battery string", body: `{"CHSesame2Status":"locked","batteryPercentage":"100"}`, wantErr: "batteryPercentage is not a number"},
		{name: "battery fraction", body: `{"CHSesame2Status":"locked","batteryPercentage":99.5}`, wantErr: "batteryPercentage 99.5 is not an integer"},
		{name: "battery over 100", body: `{"CHSesame2Status":"locked","batteryPercentage":101}`, wantErr: "outside 0..100"},
		{name: "battery negative", body: `{"CHSesame2Status":"locked","batteryPercentage":-1}`, wantErr: "outside 0..100"},
		{name: "voltage string", body: `{"CHSesame2Status":"locked","batteryVoltage":"6.0"}`, wantErr: "batteryVoltage is not a number"},
		{name: "voltage negative", body: `{"CHSesame2Status":"locked","batteryVoltage":-0.1}`, wantErr: "is not a voltage"},
		{name: "voltage overflow", body: `{"CHSesame2Status":"locked","batteryVoltage":1e999}`, wantErr: "batteryVoltage"},
		{name: "position too large", body: `{"CHSesame2Status":"locked","position":1048577}`, wantErr: "not a lock angle"},
		{name: "position too small", body: `{"CHSesame2Status":"locked","position":-2000000}`, wantErr: "not a lock angle"},
		{name: "position huge", body: `{"CHSesame2Status":"locked","position":1e300}`, wantErr: "position"},
		{name: "position object", body: `{"CHSesame2Status":"locked","position":{}}`, wantErr: "position is not a number"},
		{name: "timestamp string", body: `{"CHSesame2Status":"locked","timestamp":"1642253725"}`, wantErr: "timestamp is not a number"},
		{name: "timestamp negative", body: `{"CHSesame2Status":"locked","timestamp":-5}`, wantErr: "timestamp -5 is negative"},
		{name: "wm2State string", body: `{"CHSesame2Status":"locked","wm2State":"true"}`, wantErr: "wm2State is not a boolean"},
		{name: "wm2State number", body: `{"CHSesame2Status":"locked","wm2State":1}`, wantErr: "wm2State is not a boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeStatus([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("DecodeStatus(%s) = %+v, want error containing %q", tt.body, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DecodeStatus(%s) error %q, want it to contain %q", tt.body, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeStatus(%s): %v", tt.body, err)
			}
			assertStatus(t, got, tt.want)
		})
	}
}

func assertStatus(t *testing.T, got, want Status) {
	t.Helper()
	if got.State != want.State || got.RawState != want.RawState || got.Battery != want.Battery ||
		got.Voltage != want.Voltage || got.Position != want.Position || !got.Timestamp.Equal(want.Timestamp) {
		t.Errorf("status = %+v, want %+v", got, want)
	}
	switch {
	case (got.HubOnline == nil) != (want.HubOnline == nil):
		t.Errorf("HubOnline = %v, want %v", got.HubOnline, want.HubOnline)
	case got.HubOnline != nil && *got.HubOnline != *want.HubOnline:
		t.Errorf("HubOnline = %v, want %v", *got.HubOnline, *want.HubOnline)
	}
}

func FuzzDecodeStatus(f *testing.F) {
	for _, seed := range []string{
		`{"batteryPercentage":100,"batteryVoltage":6.0035,"position":479,"CHSesame2Status":"locked","timestamp":1642253725,"wm2State":true}`,
		`{"CHSesame2Status":"moved","position":-120}`,
		`{"CHSesame2Status":"unlocked","isRechargeBattery":1}`,
		`{"CHSesame2Status":"??","batteryPercentage":101}`,
		`{"chsesame2status":"locked"}`,
		`{"CHSesame2Status":"locked","batteryVoltage":-1}`,
		`{"CHSesame2Status":"locked","position":1e300}`,
		`{"CHSesame2Status":"locked","timestamp":1e20}`,
		`{"CHSesame2Status":"locked","CHSesame2Status":"unlocked"}`,
		`null`, `[]`, `"x"`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		st, err := DecodeStatus(body)
		if err != nil {
			if st != (Status{}) {
				t.Errorf("error %v with a non-zero Status %+v", err, st)
			}
			return
		}
		switch st.State {
		case StateLocked, StateUnlocked, StateMoved:
			if string(st.State) != st.RawState {
				t.Errorf("State %q from RawState %q", st.State, st.RawState)
			}
		case StateUnknown:
		default:
			t.Errorf("State %q is none of the four constants", st.State)
		}
		if st.Battery < 0 || st.Battery > 100 {
			t.Errorf("Battery %d outside 0..100", st.Battery)
		}
		if st.Voltage < 0 || st.Position > 1<<20 || st.Position < -(1<<20) {
			t.Errorf("Voltage %v / Position %d out of range", st.Voltage, st.Position)
		}
	})
}
