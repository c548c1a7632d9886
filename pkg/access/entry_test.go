package access

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckAcrossMidnightWeekdaysAndDST(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	office := Entry{Enabled: true, Weekdays: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}, From: "08:00", To: "18:00"}
	night := Entry{Enabled: true, Weekdays: []time.Weekday{time.Friday}, From: "22:00", To: "06:00"}
	// 2026-03-29 is the spring change in Berlin (02:00 -> 03:00), 2026-10-25 the autumn one.
	dstNight := Entry{Enabled: true, From: "01:30", To: "03:30"}
	dated := Entry{Enabled: true, ValidFrom: "2026-03-01", ValidUntil: "2026-03-31"}
	tests := []struct {
		name string
		e    Entry
		now  time.Time
		door string
		want string
	}{
		{"office hours, Monday 08:00", office, at("2026-03-02 08:00"), "front", ""},
		{"office, Monday 17:59", office, at("2026-03-02 17:59"), "front", ""},
		{"office, Monday 18:00 (end excluded)", office, at("2026-03-02 18:00"), "front", ReasonOutsideHours},
		{"office, Monday 07:59", office, at("2026-03-02 07:59"), "front", ReasonOutsideHours},
		{"office, Saturday noon", office, at("2026-03-07 12:00"), "front", ReasonOutsideHours},
		{"night, Friday 23:00", night, at("2026-03-06 23:00"), "front", ""},
		{"night, Saturday 03:00 belongs to Friday", night, at("2026-03-07 03:00"), "front", ""},
		{"night, Saturday 06:00 ended", night, at("2026-03-07 06:00"), "front", ReasonOutsideHours},
		{"night, Saturday 23:00 not Friday", night, at("2026-03-07 23:00"), "front", ReasonOutsideHours},
		{"night, Friday 03:00 belongs to Thursday", night, at("2026-03-06 03:00"), "front", ReasonOutsideHours},
		{"DST spring: 01:45 wall clock", dstNight, at("2026-03-29 01:45"), "front", ""},
		{"DST spring: 03:15 wall clock (an hour after 01:45)", dstNight, time.Date(2026, 3, 29, 1, 15, 0, 0, time.UTC), "front", ""},
		{"DST spring: 03:45", dstNight, at("2026-03-29 03:45"), "front", ReasonOutsideHours},
		{"DST autumn: the second 02:30", dstNight, time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC), "front", ""},
		{"DST autumn: 03:30", dstNight, at("2026-10-25 03:30"), "front", ReasonOutsideHours},
		{"valid from, first day 00:00 local", dated, at("2026-03-01 00:00"), "front", ""},
		{"valid from: the evening before in UTC is still the day before in Berlin", dated, time.Date(2026, 2, 28, 22, 59, 0, 0, time.UTC), "front", ReasonNotYetValid},
		{"valid until, last day 23:59", dated, at("2026-03-31 23:59"), "front", ""},
		{"valid until, the day after", dated, at("2026-04-01 00:00"), "front", ReasonExpired},
		{"disabled wins", Entry{Enabled: false}, at("2026-03-02 09:00"), "front", ReasonDisabled},
		{"other door", Entry{Enabled: true, Doors: []string{"back"}}, at("2026-03-02 09:00"), "front", ReasonNotThisDoor},
		{"its door", Entry{Enabled: true, Doors: []string{"back"}}, at("2026-03-02 09:00"), "BACK", ""},
		{"every door", Entry{Enabled: true}, at("2026-03-02 09:00"), "front", ""},
	}
	for _, tt := range tests {
		if got := tt.e.Check(tt.now, tt.door, berlin); got != tt.want {
			t.Errorf("%s: Check(%s) = %q, want %q", tt.name, tt.now.In(berlin).Format("Mon 2006-01-02 15:04 MST"), got, tt.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	e := Entry{UID: "04:a2:2b:1c:d3:5e:80", Name: "  Bob ", Action: ActionUnlock, Weekdays: []time.Weekday{5, 1, 1}, Doors: []string{" Back ", "back", ""}}
	if err := e.Normalize(); err != nil {
		t.Fatal(err)
	}
	if e.UID != "04A22B1CD35E80" || e.Name != "Bob" || len(e.Weekdays) != 2 || e.Weekdays[0] != time.Monday || len(e.Doors) != 1 || e.Doors[0] != "back" {
		t.Errorf("normalized = %+v", e)
	}
	bad := Entry{UID: "089A017F", Name: "", Action: "open", ValidFrom: "2026-13-01", ValidUntil: "x", From: "08:00", Weekdays: []time.Weekday{9}}
	err := bad.Normalize()
	fields := map[string]bool{}
	var fe FieldError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a FieldError", e)
		}
		fields[fe.Field] = true
	}
	for _, f := range []string{"UID", "Name", "Action", "ValidFrom", "ValidUntil", "From", "Weekdays"} {
		if !fields[f] {
			t.Errorf("no error for %s in %v", f, err)
		}
	}
	if !strings.Contains(err.Error(), "random UID") {
		t.Errorf("the random UID is not explained: %v", err)
	}
	same := Entry{UID: "04112233", Name: "x", Action: ActionNone, From: "08:00", To: "08:00"}
	if err := same.Normalize(); err == nil || !strings.Contains(err.Error(), "To:") {
		t.Errorf("From == To: %v", err)
	}
	order := Entry{UID: "04112233", Name: "x", Action: ActionNone, ValidFrom: "2026-05-02", ValidUntil: "2026-05-01"}
	if err := order.Normalize(); err == nil || !strings.Contains(err.Error(), "ValidUntil") {
		t.Errorf("until before from: %v", err)
	}
}
