package sesametest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
)

const (
	apiKey = "FAKEKEY-0123456789abcdefghijklmnopqrstu"
	uuid   = "F0000000-0000-4000-8000-000000000001"
	secret = "a13d4b890111676ba8fb36ece7e94f7d"
	uuid2  = "F0000000-0000-4000-8000-000000000002"
)

func start(t *testing.T) *sesametest.Server {
	t.Helper()
	s := sesametest.NewServer(apiKey,
		sesametest.Lock{UUID: uuid, Secret: secret},
		sesametest.Lock{UUID: uuid2, Secret: strings.ToUpper(secret), State: sesame.StateUnlocked, Battery: 20, Voltage: 4.9},
	)
	t.Cleanup(s.Close)
	return s
}

// do sends one raw request and returns status, body and Retry-After.
func do(t *testing.T, method, url, key, body string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(data), resp.Header.Get("Retry-After")
}

func cmdBody(t *testing.T, cmd int, tag string, at time.Time) string {
	t.Helper()
	key, err := sesame.DecodeDeviceSecret(sesame.NewSecret(secret))
	if err != nil {
		t.Fatal(err)
	}
	sign, err := sesame.Sign(key, at)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"cmd": cmd, "history": base64.StdEncoding.EncodeToString([]byte(tag)), "sign": sign})
	return string(b)
}

func status(t *testing.T, s *sesametest.Server, id string) (sesame.Status, map[string]any) {
	t.Helper()
	code, body, _ := do(t, http.MethodGet, s.URL()+"/"+id, apiKey, "")
	if code != 200 {
		t.Fatalf("GET status: %d %s", code, body)
	}
	st, err := sesame.DecodeStatus([]byte(body))
	if err != nil {
		t.Fatalf("fake's status body %s: %v", body, err)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	return st, raw
}

func TestStatusBody(t *testing.T) {
	s := start(t)
	st, raw := status(t, s, uuid)
	for _, k := range []string{"batteryPercentage", "batteryVoltage", "position", "CHSesame2Status", "timestamp", "wm2State"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("status body lacks %q: %v", k, raw)
		}
	}
	if st.State != sesame.StateLocked || st.Battery != 100 || st.Voltage != 6.0 || st.Position != -39 || st.HubOnline == nil || !*st.HubOnline {
		t.Errorf("default lock status = %+v", st)
	}
	if d := time.Since(st.Timestamp); d < -time.Second || d > 5*time.Second {
		t.Errorf("timestamp %v is not about now", st.Timestamp)
	}
	st, _ = status(t, s, uuid2)
	if st.State != sesame.StateUnlocked || st.Battery != 20 || st.Voltage != 4.9 || st.Position != 215 {
		t.Errorf("second lock status = %+v", st)
	}
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[0].UUID != uuid || reqs[0].Cmd != 0 || !reqs[0].KeyValid || reqs[0].Status != 200 || reqs[0].Method != "GET" {
		t.Errorf("requests = %+v", reqs)
	}
}

func TestKeyCheck(t *testing.T) {
	s := start(t)
	for _, key := range []string{"", "wrong", strings.ToLower(apiKey)} {
		code, body, _ := do(t, http.MethodGet, s.URL()+"/"+uuid, key, "")
		if code != 403 || body != `{"message":"Forbidden"}` {
			t.Errorf("key %q: %d %s; want 403 Forbidden", key, code, body)
		}
		code, _, _ = do(t, http.MethodPost, s.URL()+"/"+uuid+"/cmd", key, cmdBody(t, 83, "", time.Now()))
		if code != 403 {
			t.Errorf("command with key %q: %d; want 403", key, code)
		}
	}
	for _, r := range s.Requests() {
		if r.KeyValid || r.Status != 403 {
			t.Errorf("request %+v; want KeyValid false, 403", r)
		}
	}
	if got := s.State(uuid); got != sesame.StateLocked {
		t.Errorf("lock %s after refused commands", got)
	}
}

func TestBadSignIsAcceptedButNothingMoves(t *testing.T) {
	s := start(t)
	s.SetMoveDelay(0)
	for _, at := range []time.Time{time.Now().Add(-10 * time.Minute), time.Now().Add(10 * time.Minute)} {
		code, body, _ := do(t, http.MethodPost, s.URL()+"/"+uuid+"/cmd", apiKey, cmdBody(t, 83, "x", at))
		if code != 200 || body != `{"statusCode":200}` {
			t.Errorf("bad sign: %d %s; want 200 {\"statusCode\":200}", code, body)
		}
	}
	garbage := `{"cmd":83,"history":"","sign":"00000000000000000000000000000000"}`
	if code, _, _ := do(t, http.MethodPost, s.URL()+"/"+uuid+"/cmd", apiKey, garbage); code != 200 {
		t.Errorf("garbage sign: %d, want 200", code)
	}
	for _, r := range s.Requests() {
		if r.SignValid || !r.KeyValid || r.Cmd != 83 {
			t.Errorf("request %+v; want an invalid sign recorded", r)
		}
	}
	if st, _ := status(t, s, uuid); st.State != sesame.StateLocked {
		t.Errorf("lock %s after badly signed commands, want locked", st.State)
	}
}

func TestSignSlots(t *testing.T) {
	tests := []struct {
		offset time.Duration
		valid  bool
	}{
		{0, true},
		{-256 * time.Second, true},
		{256 * time.Second, true},
		{-900 * time.Second, false},
		{900 * time.Second, false},
	}
	s := start(t)
	s.SetNoMove(uuid, true)
	for _, tt := range tests {
		do(t, http.MethodPost, s.URL()+"/"+uuid+"/cmd", apiKey, cmdBody(t, 82, "", time.Now().Add(tt.offset)))
		reqs := s.Requests()
		if got := reqs[len(reqs)-1].SignValid; got != tt.valid {
			t.Errorf("sign %v off: SignValid %v, want %v", tt.offset, got, tt.valid)
		}
	}
}

func TestGoodSignMovesAfterDelay(t *testing.T) {
	s := start(t)
	const delay = 150 * time.Millisecond
	s.SetMoveDelay(delay)
	sent := time.Now()
	code, body, _ := do(t, http.MethodPost, s.URL()+"/"+uuid+"/cmd", apiKey, cmdBody(t, 83, "玄関", time.Now()))
	if code != 200 || body != `{"statusCode":200}` {
		t.Fatalf("command: %d %s", code, body)
	}
	r := s.Requests()[0]
	if !r.SignValid || !r.KeyValid || r.Cmd != 83 || r.History != "玄関" || r.Path != "/"+uuid+"/cmd" || r.UUID != uuid {
		t.Errorf("request %+v", r)
	}
	st, _ := status(t, s, uuid)
	if time.Since(sent) < delay && (st.State != sesame.StateMoved || st.Position != 90) {
		t.Errorf("during the move: %+v; want moved at 90", st)
	}
	deadline := time.Now().Add(3 * time.Second)
	for s.State(uuid) != sesame.StateUnlocked && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if time.Since(sent) < delay {
		t.Errorf("unlocked after %v, before the %v move delay", time.Since(sent), delay)
	}
	st, _ = status(t, s, uuid)
	if st.State != sesame.StateUnlocked || st.Position != 215 {
		t.Errorf("after the move: %+v; want unlocked at 215", st)
	}
}

func TestMovedDuringLongDelay(t *testing.T) {
	s := start(t)
	s.SetMoveDelay(time.Hour)
	do(t, http.MethodPost, s.URL()+"/"+uuid+"/cmd", apiKey, cmdBody(t, 83, "", time.Now()))
	if st, _ := status(t, s, uuid); st.State != sesame.StateMoved || st.Position != 90 {
		t.Errorf("status %+v; want moved", st)
	}
	// A lock command reverses the move; with no delay it lands at once.
	s.SetMoveDelay(0)
	do(t, http.MethodPost, s.URL()+"/"+uuid+"/cmd", apiKey, cmdBody(t, 82, "", time.Now()))
	if got := s.State(uuid); got != sesame.StateLocked {
		t.Errorf("state %s; want locked", got)
	}
}

func TestToggleIsRecordedAndToggles(t *testing.T) {
	s := start(t)
	s.SetMoveDelay(0)
	do(t, http.MethodPost, s.URL()+"/"+uuid+"/cmd", apiKey, cmdBody(t, 88, "", time.Now()))
	if got := s.State(uuid); got != sesame.StateUnlocked {
		t.Errorf("after toggle: %s, want unlocked", got)
	}
	do(t, http.MethodPost, s.URL()+"/"+uuid+"/cmd", apiKey, cmdBody(t, 88, "", time.Now()))
	if got := s.State(uuid); got != sesame.StateLocked {
		t.Errorf("after second toggle: %s, want locked", got)
	}
	for _, r := range s.Requests() {
		if r.Cmd != 88 || !r.SignValid {
			t.Errorf("request %+v; want cmd 88 recorded", r)
		}
	}
}

func TestHubOfflineAndNoMove(t *testing.T) {
	s := start(t)
	s.SetMoveDelay(0)

	s.SetHubOnline(uuid, false)
	code, _, _ := do(t, http.MethodPost, s.URL()+"/"+uuid+"/cmd", apiKey, cmdBody(t, 83, "", time.Now()))
	st, _ := status(t, s, uuid)
	if code != 200 || st.State != sesame.StateLocked || st.HubOnline == nil || *st.HubOnline {
		t.Errorf("hub offline: command %d, status %+v; want 200, locked, wm2State false", code, st)
	}

	s.SetHubOnline(uuid, true)
	s.SetNoMove(uuid, true)
	code, _, _ = do(t, http.MethodPost, s.URL()+"/"+uuid+"/cmd", apiKey, cmdBody(t, 83, "", time.Now()))
	st, _ = status(t, s, uuid)
	if code != 200 || st.State != sesame.StateLocked || !*st.HubOnline {
		t.Errorf("jammed: command %d, status %+v; want 200, locked, online", code, st)
	}

	s.SetNoMove(uuid, false)
	do(t, http.MethodPost, s.URL()+"/"+uuid+"/cmd", apiKey, cmdBody(t, 83, "", time.Now()))
	if got := s.State(uuid); got != sesame.StateUnlocked {
		t.Errorf("unjammed: %s, want unlocked", got)
	}
}

func TestFailNext(t *testing.T) {
	s := start(t)
	s.SetMoveDelay(0)
	s.FailNext(2, 429, `{"message":"Too Many Requests"}`, "3")
	for i := range 2 {
		code, body, ra := do(t, http.MethodPost, s.URL()+"/"+uuid+"/cmd", apiKey, cmdBody(t, 83, "", time.Now()))
		if code != 429 || body != `{"message":"Too Many Requests"}` || ra != "3" {
			t.Errorf("request %d: %d %s Retry-After %q", i, code, body, ra)
		}
	}
	if got := s.State(uuid); got != sesame.StateLocked {
		t.Errorf("failed commands moved the lock to %s", got)
	}
	code, _, ra := do(t, http.MethodPost, s.URL()+"/"+uuid+"/cmd", apiKey, cmdBody(t, 83, "", time.Now()))
	if code != 200 || ra != "" || s.State(uuid) != sesame.StateUnlocked {
		t.Errorf("third request: %d, Retry-After %q, state %s", code, ra, s.State(uuid))
	}
	reqs := s.Requests()
	if len(reqs) != 3 || reqs[0].Status != 429 || reqs[1].Status != 429 || reqs[2].Status != 200 || !reqs[0].SignValid {
		t.Errorf("requests = %+v", reqs)
	}

	// Any kind of request, even one with a wrong key, takes a failure.
	s.FailNext(1, 500, `oops`, "")
	if code, body, _ := do(t, http.MethodGet, s.URL()+"/"+uuid, "wrong", ""); code != 500 || body != "oops" {
		t.Errorf("failed GET: %d %s", code, body)
	}
	if code, _, _ := do(t, http.MethodGet, s.URL()+"/"+uuid, "wrong", ""); code != 403 {
		t.Errorf("after the failures: %d, want 403", code)
	}
}

func TestErrorsOfTheService(t *testing.T) {
	s := start(t)
	tests := []struct {
		method, path, body string
		code               int
		answer             string
	}{
		{"GET", "/NO-SUCH-LOCK", "", 500, `{"message":"Internal server error"}`},
		{"POST", "/NO-SUCH-LOCK/cmd", cmdBody(t, 82, "", time.Now()), 500, `{"message":"Internal server error"}`},
		{"POST", "/" + uuid + "/cmd", `{"cmd":`, 502, `{"message":"Internal server error"}`},
		{"GET", "/", "", 404, `{"message":"Not Found"}`},
		{"GET", "/" + uuid + "/history", "", 400, `{"message":"Bad Request"}`}, // no lg
		{"GET", "/" + uuid + "/events", "", 404, `{"message":"Not Found"}`},
		{"DELETE", "/" + uuid, "", 405, `{"message":"Method Not Allowed"}`},
	}
	for _, tt := range tests {
		code, body, _ := do(t, tt.method, s.URL()+tt.path, apiKey, tt.body)
		if code != tt.code || body != tt.answer {
			t.Errorf("%s %s: %d %s; want %d %s", tt.method, tt.path, code, body, tt.code, tt.answer)
		}
	}
	if n := len(s.Requests()); n != len(tests) {
		t.Errorf("recorded %d requests, want %d", n, len(tests))
	}
}

func TestTurnAndState(t *testing.T) {
	s := start(t)
	s.Turn(uuid, sesame.StateUnlocked)
	if st, _ := status(t, s, uuid); st.State != sesame.StateUnlocked {
		t.Errorf("after Turn: %s", st.State)
	}
	s.Turn(uuid, sesame.StateMoved)
	if st, _ := status(t, s, uuid); st.State != sesame.StateMoved || st.Position != 90 {
		t.Errorf("turned halfway: %+v", st)
	}
	s.Turn(uuid, "jammed")
	if st, _ := status(t, s, uuid); st.State != sesame.StateUnknown || st.RawState != "jammed" {
		t.Errorf("turned to an odd state: %+v", st)
	}
	if got := s.State("NO-SUCH-LOCK"); got != sesame.StateUnknown {
		t.Errorf("State of an unknown lock: %q", got)
	}
}

func TestNotifyLatencyAndRequestsCopy(t *testing.T) {
	s := start(t)
	const latency = 300 * time.Millisecond
	s.SetLatency(latency)
	arrivals := s.Notify()

	done := make(chan time.Time, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, s.URL()+"/"+uuid, nil)
		req.Header.Set("x-api-key", apiKey)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
		done <- time.Now()
	}()
	select {
	case r := <-arrivals:
		if r.Method != "GET" || r.UUID != uuid || r.Status != 200 {
			t.Errorf("notified %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification")
	}
	select {
	case <-done:
		t.Error("answered before the latency passed; the notification should come first")
	default:
	}
	answered := <-done
	if r := s.Requests()[0]; answered.Sub(r.Time) < latency {
		t.Errorf("answered %v after arrival, want at least %v", answered.Sub(r.Time), latency)
	}

	// A client giving up early ends the wait.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/"+uuid, nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Error("request outlived its context")
	}

	reqs := s.Requests()
	reqs[0].UUID = "changed"
	if s.Requests()[0].UUID != uuid {
		t.Error("Requests returned the server's own slice")
	}

	s.Close()
	s.Close() // twice is fine
	n := 0
	for r := range arrivals { // ends: Close closed the channel
		if r.Method != "GET" {
			t.Errorf("notified %+v", r)
		}
		n++
	}
	if n != len(s.Requests())-1 {
		t.Errorf("%d notifications left after Close, want %d", n, len(s.Requests())-1)
	}
}

func TestNewServerPanicsOnBadLocks(t *testing.T) {
	for name, locks := range map[string][]sesametest.Lock{
		"no UUID":    {{Secret: secret}},
		"bad secret": {{UUID: uuid, Secret: "nothex"}},
		"duplicate":  {{UUID: uuid, Secret: secret}, {UUID: uuid, Secret: secret}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: NewServer did not panic", name)
				}
			}()
			s := sesametest.NewServer(apiKey, locks...)
			s.Close()
		}()
	}
}

// TestClockSkew: a skewed cloud dates its answers and its status timestamps
// by its own clock and judges signatures by it.
func TestClockSkew(t *testing.T) {
	for _, skew := range []time.Duration{10 * time.Minute, -10 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			s := start(t)
			s.SetMoveDelay(0)
			s.SetClockSkew(skew)

			before := time.Now()
			resp, err := http.Get(s.URL() + "/" + uuid) // no key: 403, dated all the same
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			after := time.Now()
			date, err := http.ParseTime(resp.Header.Get("Date"))
			if err != nil {
				t.Fatalf("Date header %q: %v", resp.Header.Get("Date"), err)
			}
			if lo, hi := before.Add(skew).Truncate(time.Second), after.Add(skew); date.Before(lo) || date.After(hi) {
				t.Errorf("Date %s, want the cloud's time between %s and %s", date, lo, hi)
			}

			s.Turn(uuid, sesame.StateLocked)
			st, _ := status(t, s, uuid)
			if d := st.Timestamp.Sub(time.Now().Add(skew)); d < -3*time.Second || d > 3*time.Second {
				t.Errorf("status timestamp %s is %s off the cloud's clock", st.Timestamp, d)
			}

			// Signed by the host's clock: too far off for the cloud.
			do(t, http.MethodPost, s.URL()+"/"+uuid+"/cmd", apiKey, cmdBody(t, 83, "", time.Now()))
			if reqs := s.Requests(); reqs[len(reqs)-1].SignValid {
				t.Error("a signature by the host's clock was accepted by a cloud 10 min off")
			}
			if got := s.State(uuid); got != sesame.StateLocked {
				t.Errorf("after a stale signature the lock is %s, want locked", got)
			}
			// Signed by the cloud's clock: accepted, the lock moves.
			do(t, http.MethodPost, s.URL()+"/"+uuid+"/cmd", apiKey, cmdBody(t, 83, "", time.Now().Add(skew)))
			if reqs := s.Requests(); !reqs[len(reqs)-1].SignValid {
				t.Error("a signature by the cloud's clock was refused")
			}
			if got := s.State(uuid); got != sesame.StateUnlocked {
				t.Errorf("after a signature by the cloud's clock the lock is %s, want unlocked", got)
			}
		})
	}
}
