package access

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e LogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Errorf("%s line %d does not parse: %v", path, n+1, err)
		}
		n++
	}
	return n
}

func TestLogIsBoundedAndRotates(t *testing.T) {
	dir := t.TempDir()
	l, err := openLog(dir, 50, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 175 {
		l.Append(LogEntry{Time: t0.Add(time.Duration(i) * time.Second), Door: "Front", Card: fmt.Sprint(i), Result: ResultGranted})
	}
	l.Close()
	if cur, old := countLines(t, filepath.Join(dir, LogFile)), countLines(t, filepath.Join(dir, LogFileOld)); cur != 25 || old != 50 {
		t.Errorf("files hold %d and %d lines, want 25 and 50", cur, old)
	}
	again, err := openLog(dir, 50, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if n := again.Len(); n != 75 {
		t.Errorf("%d entries read back, want 75", n)
	}
	all := again.Query(LogFilter{Limit: 1000})
	if len(all) != 75 || all[0].Card != "174" || all[74].Card != "100" {
		t.Errorf("newest first: got %d, first %s, last %s", len(all), all[0].Card, all[len(all)-1].Card)
	}
	// In memory: at most two files' worth.
	for i := range 200 {
		again.Append(LogEntry{Time: t0, Card: fmt.Sprint("x", i)})
	}
	if n := again.Len(); n != 100 {
		t.Errorf("%d entries in memory, want 100", n)
	}
}

func TestLogSkipsATornLine(t *testing.T) {
	dir := t.TempDir()
	good, _ := json.Marshal(LogEntry{Time: t0, Door: "Front", Result: ResultDenied, Reason: ReasonUnknown})
	os.WriteFile(filepath.Join(dir, LogFile), append(append(good, '\n'), []byte(`{"time":"2026-03-02T09:`)...), 0o600)
	l, err := OpenLog(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Append(LogEntry{Time: t0.Add(time.Second), Door: "Front", Result: ResultGranted})
	l.Close()
	if n := l.Len(); n != 2 {
		t.Errorf("%d entries", n)
	}
	data, _ := os.ReadFile(filepath.Join(dir, LogFile))
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], `"granted"`) {
		t.Errorf("the new entry must start on its own line:\n%s", data)
	}
}

func TestLogFilterAndCSV(t *testing.T) {
	l, _ := OpenLog("", nil)
	l.Append(LogEntry{Time: t0, Door: "Front door", Holder: "Alice", Card: "aaa", Result: ResultGranted, Outcome: "success"})
	l.Append(LogEntry{Time: t0.Add(time.Hour), Door: "Back door", Holder: "Bob", Card: "bbb", Result: ResultDenied, Reason: ReasonOutsideHours})
	l.Append(LogEntry{Time: t0.Add(2 * time.Hour), Door: "Front door", Card: "ccc", Result: ResultDenied, Reason: ReasonUnknown})
	l.Append(LogEntry{Time: t0.Add(3 * time.Hour), Door: "Front door", Holder: "=HYPERLINK(\"x\")", Card: "ddd", Result: ResultEnrolled})
	for _, tt := range []struct {
		f    LogFilter
		want string
	}{
		{LogFilter{}, "ddd ccc bbb aaa"},
		{LogFilter{Person: "ali"}, "aaa"},
		{LogFilter{Door: "front DOOR"}, "ddd ccc aaa"},
		{LogFilter{Result: ResultDenied}, "ccc bbb"},
		{LogFilter{From: t0.Add(time.Hour), To: t0.Add(3 * time.Hour)}, "ccc bbb"},
		{LogFilter{Limit: 1}, "ddd"},
	} {
		var got []string
		for _, e := range l.Query(tt.f) {
			got = append(got, e.Card)
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("Query(%+v) = %v, want %s", tt.f, got, tt.want)
		}
	}
	var buf bytes.Buffer
	tokyo := time.FixedZone("JST", 9*3600)
	if err := WriteCSV(&buf, l.Query(LogFilter{}), tokyo); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 || strings.Join(recs[0], ",") != strings.Join(CSVHeader, ",") {
		t.Fatalf("csv = %v", recs)
	}
	if recs[4][0] != "2026-03-02T18:00:00+09:00" || recs[4][2] != "Alice" || recs[4][6] != "success" {
		t.Errorf("row = %v", recs[4])
	}
	if !strings.HasPrefix(recs[1][2], "'=") {
		t.Errorf("a formula is not defused: %q", recs[1][2])
	}
}
