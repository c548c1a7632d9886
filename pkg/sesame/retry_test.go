package sesame

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

const (
	testKey    = "TESTKEY0123456789abcdefghijklmnopqrstuvw" // 40 characters, like a real key
	testSecret = "a13d4b890111676ba8fb36ece7e94f7d"
	testUUID   = "11111111-2222-3333-4444-555555555555"
)

// step answers one HTTP attempt.
type step func(*http.Request) (*http.Response, error)

// reply returns a step answering status with body and headers (name, value
// pairs).
func reply(status int, body string, header ...string) step {
	return func(r *http.Request) (*http.Response, error) {
		h := http.Header{}
		for i := 0; i+1 < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		return &http.Response{
			StatusCode: status,
			Status:     http.StatusText(status),
			Header:     h,
			Body:       io.NopCloser(strings.NewReader(body)),
			Request:    r,
		}, nil
	}
}

// hang blocks until the attempt's context ends, like a server that never
// answers.
func hang(r *http.Request) (*http.Response, error) {
	<-r.Context().Done()
	return nil, r.Context().Err()
}

// attempt is what the scripted transport saw.
type attempt struct {
	at     time.Duration // since the transport was made
	method string
	path   string
	header http.Header
	body   commandBody
}

// script is an in-memory http.RoundTripper playing steps in order and
// repeating the last one; no network, so it runs inside a synctest bubble.
type script struct {
	start time.Time
	steps []step

	mu       sync.Mutex
	attempts []attempt
}

func newScript(steps ...step) *script { return &script{start: time.Now(), steps: steps} }

func (s *script) RoundTrip(r *http.Request) (*http.Response, error) {
	a := attempt{at: time.Since(s.start), method: r.Method, path: r.URL.Path, header: r.Header.Clone()}
	if r.Body != nil {
		data, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, err
		}
		if len(data) > 0 {
			if err := json.Unmarshal(data, &a.body); err != nil {
				return nil, err
			}
		}
	}
	s.mu.Lock()
	n := len(s.attempts)
	s.attempts = append(s.attempts, a)
	s.mu.Unlock()
	return s.steps[min(n, len(s.steps)-1)](r)
}

func (s *script) seen() []attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]attempt(nil), s.attempts...)
}

func (s *script) times() []time.Duration {
	var out []time.Duration
	for _, a := range s.seen() {
		out = append(out, a.at)
	}
	return out
}

type counter struct{ n atomic.Int64 }

func (c *counter) Count() { c.n.Add(1) }

// newScripted returns a client over the script with a deterministic
// backoff: Base 1s, Max 8s, no jitter above the minimum (500ms, 1s, 2s, 4s,
// 4s, ...).
func newScripted(t *testing.T, s *script, cnt Counter) *Client {
	t.Helper()
	c, err := New(Options{
		BaseURL:        "https://sesame.invalid/api/sesame2/",
		APIKey:         NewSecret(testKey),
		HTTPClient:     &http.Client{Transport: s},
		RequestTimeout: 2 * time.Second,
		Counter:        cnt,
		Backoff:        Backoff{Base: time.Second, Max: 8 * time.Second, Rand: fixed(0)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCommandRetriesServerErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(
			reply(500, `{"message":"Internal server error"}`),
			reply(502, `{"message":"Internal server error"}`),
			reply(200, `{"statusCode":200}`),
		)
		var cnt counter
		c := newScripted(t, s, &cnt)
		// Each attempt signs with a fresh clock reading: 5 minutes apart, so
		// every attempt falls in another 256-s slot.
		base := time.Unix(1621854456, 0)
		c.now = func() time.Time { return base.Add(time.Duration(len(s.seen())) * 5 * time.Minute) }

		start := time.Now()
		if err := c.Command(t.Context(), testUUID, NewSecret(testSecret), CmdLock, "Alice"); err != nil {
			t.Fatalf("Command: %v", err)
		}
		if got := time.Since(start); got != 1500*time.Millisecond {
			t.Errorf("Command took %v, want 1.5s (0.5s + 1s of backoff)", got)
		}
		if want := []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond}; !equalDurations(s.times(), want) {
			t.Errorf("attempts at %v, want %v", s.times(), want)
		}
		if cnt.n.Load() != 3 {
			t.Errorf("Counter saw %d requests, want 3", cnt.n.Load())
		}

		key, _ := DecodeDeviceSecret(NewSecret(testSecret))
		for i, a := range s.seen() {
			if a.method != http.MethodPost || a.path != "/api/sesame2/"+testUUID+"/cmd" {
				t.Errorf("attempt %d: %s %s", i, a.method, a.path)
			}
			if a.header.Get("x-api-key") != testKey || a.header.Get("Content-Type") != "application/json" {
				t.Errorf("attempt %d: headers x-api-key ok=%v, Content-Type %q", i,
					a.header.Get("x-api-key") == testKey, a.header.Get("Content-Type"))
			}
			wantSign, _ := Sign(key, base.Add(time.Duration(i)*5*time.Minute))
			if a.body.Cmd != 82 || a.body.Sign != wantSign {
				t.Errorf("attempt %d: cmd %d, sign %s, want 82 and %s (re-signed each attempt)", i, a.body.Cmd, a.body.Sign, wantSign)
			}
			if tag, err := base64.StdEncoding.DecodeString(a.body.History); err != nil || string(tag) != "Alice" {
				t.Errorf("attempt %d: history %q (%v)", i, a.body.History, err)
			}
		}
	})
}

func TestCommandHonoursRetryAfter(t *testing.T) {
	tests := []struct {
		name  string
		first step
		wait  time.Duration
	}{
		{"seconds", reply(429, `{"message":"Too Many Requests"}`, "Retry-After", "2"), 2 * time.Second},
		{"HTTP date", func(r *http.Request) (*http.Response, error) {
			// synctest's clock starts on a whole second, as HTTP dates are.
			date := time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat)
			return reply(429, `{"message":"Too Many Requests"}`, "Retry-After", date)(r)
		}, 3 * time.Second},
		{"quota body without 429", reply(400, `{"message":"Limit Exceeded"}`, "Retry-After", "5"), 5 * time.Second},
		{"throttle body, no header: backoff", reply(503, `Too Many Requests`), 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newScript(tt.first, reply(200, `{"statusCode":200}`))
				var cnt counter
				c := newScripted(t, s, &cnt)
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				if err := c.Command(ctx, testUUID, NewSecret(testSecret), CmdUnlock, "x"); err != nil {
					t.Fatalf("Command: %v", err)
				}
				if want := []time.Duration{0, tt.wait}; !equalDurations(s.times(), want) {
					t.Errorf("attempts at %v, want %v", s.times(), want)
				}
				if cnt.n.Load() != 2 {
					t.Errorf("Counter saw %d, want 2", cnt.n.Load())
				}
			})
		})
	}
}

func TestCommandRetryAfterPastDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(reply(429, `{"message":"Too Many Requests"}`, "Retry-After", "10"))
		c := newScripted(t, s, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		start := time.Now()
		err := c.Command(ctx, testUUID, NewSecret(testSecret), CmdLock, "")
		if err == nil {
			t.Fatal("Command succeeded; want the throttling error")
		}
		if time.Since(start) != 0 || len(s.seen()) != 1 {
			t.Errorf("gave up after %v and %d attempts, want at once after 1", time.Since(start), len(s.seen()))
		}
		if ra, ok := RetryAfterOf(err); !ok || ra != 10*time.Second {
			t.Errorf("RetryAfterOf = %v, %v; want 10s", ra, ok)
		}
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != 429 || !IsTransient(err) {
			t.Errorf("err = %v; want a transient 429 APIError", err)
		}
		if !strings.Contains(err.Error(), "Retry-After") {
			t.Errorf("err = %q; want it to say why it gave up", err)
		}
	})
}

func TestCommandPermanentErrors(t *testing.T) {
	tests := []struct {
		name      string
		answer    step
		forbidden bool
	}{
		{"403", reply(403, `{"message":"Forbidden"}`), true},
		{"404", reply(404, `{"message":"Not Found"}`), false},
		{"400", reply(400, `bad request`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newScript(tt.answer, reply(200, `{"statusCode":200}`))
				var cnt counter
				c := newScripted(t, s, &cnt)
				start := time.Now()
				err := c.Command(t.Context(), testUUID, NewSecret(testSecret), CmdLock, "")
				if err == nil {
					t.Fatal("Command succeeded; want an error")
				}
				if len(s.seen()) != 1 || cnt.n.Load() != 1 || time.Since(start) != 0 {
					t.Errorf("%d attempts (%d counted) over %v; want 1 at once", len(s.seen()), cnt.n.Load(), time.Since(start))
				}
				if errors.Is(err, ErrForbidden) != tt.forbidden {
					t.Errorf("errors.Is(%v, ErrForbidden) = %v, want %v", err, !tt.forbidden, tt.forbidden)
				}
				if IsTransient(err) {
					t.Errorf("IsTransient(%v) = true", err)
				}
				if !strings.Contains(err.Error(), testUUID) {
					t.Errorf("error %q does not name the lock", err)
				}
			})
		})
	}
}

func TestCommandGivesUpAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(reply(500, `{"message":"Internal server error"}`))
		var cnt counter
		c := newScripted(t, s, &cnt)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		start := time.Now()
		err := c.Command(ctx, testUUID, NewSecret(testSecret), CmdLock, "")
		if err == nil {
			t.Fatal("Command succeeded against a failing service")
		}
		// Attempts at 0, 0.5, 1.5, 3.5 s; the next would be at 7.5 s, past the
		// 5 s deadline, so it stops at 3.5 s.
		want := []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, 3500 * time.Millisecond}
		if !equalDurations(s.times(), want) {
			t.Errorf("attempts at %v, want %v", s.times(), want)
		}
		if got := time.Since(start); got != 3500*time.Millisecond {
			t.Errorf("gave up after %v, want 3.5s", got)
		}
		if cnt.n.Load() != 4 {
			t.Errorf("Counter saw %d, want 4", cnt.n.Load())
		}
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != 500 || !IsTransient(err) {
			t.Errorf("err = %v; want the transient 500", err)
		}
		if !strings.Contains(err.Error(), "4 attempts") {
			t.Errorf("err = %q; want the attempt count", err)
		}
	})
}

func TestCommandStopsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(reply(503, ``))
		c := newScripted(t, s, nil)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		time.AfterFunc(time.Second, cancel) // during the second wait (0.5 s .. 1.5 s)
		start := time.Now()
		err := c.Command(ctx, testUUID, NewSecret(testSecret), CmdLock, "")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if IsTransient(err) {
			t.Errorf("IsTransient(%v) = true for the caller's cancellation", err)
		}
		if got := time.Since(start); got != time.Second || len(s.seen()) != 2 {
			t.Errorf("returned after %v and %d attempts, want 1s and 2", got, len(s.seen()))
		}
	})
}

func TestCommandRetriesAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(hang, reply(200, `{"statusCode":200}`))
		var cnt counter
		c := newScripted(t, s, &cnt) // RequestTimeout 2s
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if err := c.Command(ctx, testUUID, NewSecret(testSecret), CmdUnlock, ""); err != nil {
			t.Fatalf("Command: %v", err)
		}
		if want := []time.Duration{0, 2500 * time.Millisecond}; !equalDurations(s.times(), want) {
			t.Errorf("attempts at %v, want %v (2s timeout + 0.5s backoff)", s.times(), want)
		}
		if cnt.n.Load() != 2 {
			t.Errorf("Counter saw %d, want 2", cnt.n.Load())
		}
	})
}

func TestCommandRefusesOtherCommands(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(reply(200, `{"statusCode":200}`))
		var cnt counter
		c := newScripted(t, s, &cnt)
		for _, cmd := range []Cmd{88, 89, 0, -1} {
			err := c.Command(t.Context(), testUUID, NewSecret(testSecret), cmd, "")
			if err == nil || !strings.Contains(err.Error(), cmd.String()) {
				t.Errorf("Command(%v) = %v, want a refusal naming it", cmd, err)
			}
		}
		for _, secret := range []string{"", "abc", strings.Repeat("z", 32)} {
			if err := c.Command(t.Context(), testUUID, NewSecret(secret), CmdLock, ""); err == nil {
				t.Errorf("Command with secret %q succeeded", secret)
			}
		}
		if err := c.Command(t.Context(), "", NewSecret(testSecret), CmdLock, ""); err == nil {
			t.Error("Command with an empty UUID succeeded")
		}
		if n := len(s.seen()); n != 0 || cnt.n.Load() != 0 {
			t.Errorf("%d requests sent (%d counted), want none", n, cnt.n.Load())
		}
	})
}

func TestStatusMakesOneAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(reply(500, `{"message":"Internal server error"}`),
			reply(200, `{"CHSesame2Status":"locked"}`))
		var cnt counter
		c := newScripted(t, s, &cnt)
		_, err := c.Status(t.Context(), testUUID)
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != 500 || ae.Op != "status" || ae.UUID != testUUID || ae.Message != "Internal server error" {
			t.Fatalf("Status err = %#v", err)
		}
		if !IsTransient(err) || len(s.seen()) != 1 || cnt.n.Load() != 1 {
			t.Errorf("transient %v, %d attempts, %d counted; want true, 1, 1", IsTransient(err), len(s.seen()), cnt.n.Load())
		}
		a := s.seen()[0]
		if a.method != http.MethodGet || a.path != "/api/sesame2/"+testUUID || a.header.Get("x-api-key") != testKey {
			t.Errorf("request %s %s, key ok %v", a.method, a.path, a.header.Get("x-api-key") == testKey)
		}

		st, err := c.Status(t.Context(), testUUID)
		if err != nil || st.State != StateLocked {
			t.Errorf("second Status = %+v, %v", st, err)
		}
	})
}

func TestStatusTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(hang)
		c := newScripted(t, s, nil) // RequestTimeout 2s
		start := time.Now()
		_, err := c.Status(t.Context(), testUUID)
		if err == nil || !IsTransient(err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Status err = %v; want a transient timeout", err)
		}
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("timed out after %v, want 2s", got)
		}
	})
}

func TestStatusBadBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(reply(200, `{"chsesame2status":"locked"}`))
		c := newScripted(t, s, nil)
		_, err := c.Status(t.Context(), testUUID)
		if err == nil || IsTransient(err) || !strings.Contains(err.Error(), "sesame status "+testUUID) {
			t.Errorf("Status err = %v; want a permanent decode error naming the lock", err)
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"2", 2 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-3", 0},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999999", maxRetryAfterSeconds * time.Second},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"Wed, 01 May 2024 12:00:30 GMT", 30 * time.Second},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.v, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	c := &Client{key: NewSecret(testKey)}
	long := strings.Repeat("é", 150) // 300 bytes
	tests := []struct {
		body, want string
	}{
		{`{"message":"Forbidden"}`, "Forbidden"},
		{`{"Message":"User is not authorized"}`, "User is not authorized"},
		{`{"message":""}`, `{"message":""}`},
		{`  Internal server error` + "\n", "Internal server error"},
		{``, ``},
		{`{"message":"bad key ` + testKey + `"}`, "bad key REDACTED"},
		{long, strings.Repeat("é", 100)},
	}
	for _, tt := range tests {
		if got := c.message([]byte(tt.body)); got != tt.want {
			t.Errorf("message(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestIsTransientAndErrorIs(t *testing.T) {
	tests := []struct {
		err                  error
		transient, forbidden bool
	}{
		{nil, false, false},
		{errors.New("boom"), false, false},
		{&APIError{StatusCode: 403, Message: "Forbidden"}, false, true},
		{&APIError{StatusCode: 403, Message: "Limit Exceeded"}, true, false},
		{&APIError{StatusCode: 429}, true, false},
		{&APIError{StatusCode: 400, Message: "Too Many Requests"}, true, false},
		{&APIError{StatusCode: 500}, true, false},
		{&APIError{StatusCode: 502}, true, false},
		{&APIError{StatusCode: 404}, false, false},
		{&transportError{err: io.ErrUnexpectedEOF}, true, false},
		{&transportError{err: context.Canceled}, false, false},
		{context.DeadlineExceeded, true, false},
		{&gaveUpError{uuid: "u", attempts: 2, last: &APIError{StatusCode: 500}, cause: context.Canceled}, false, false},
		{&gaveUpError{uuid: "u", attempts: 2, last: &APIError{StatusCode: 403}}, false, true},
	}
	for _, tt := range tests {
		if got := IsTransient(tt.err); got != tt.transient {
			t.Errorf("IsTransient(%v) = %v, want %v", tt.err, got, tt.transient)
		}
		if got := errors.Is(tt.err, ErrForbidden); got != tt.forbidden {
			t.Errorf("errors.Is(%v, ErrForbidden) = %v, want %v", tt.err, got, tt.forbidden)
		}
	}
	if _, ok := RetryAfterOf(errors.New("x")); ok {
		t.Error("RetryAfterOf(plain error) ok")
	}
}

func TestNewOptions(t *testing.T) {
	bad := []Options{
		{BaseURL: "https://app.candyhouse.co/api/sesame2"},
		{BaseURL: "", APIKey: NewSecret(testKey)},
		{BaseURL: "app.candyhouse.co/api/sesame2", APIKey: NewSecret(testKey)},
		{BaseURL: "ftp://app.candyhouse.co", APIKey: NewSecret(testKey)},
		{BaseURL: "https://app.candyhouse.co/x?y=1", APIKey: NewSecret(testKey)},
		{BaseURL: "https://%zz", APIKey: NewSecret(testKey)},
	}
	for _, o := range bad {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	for _, base := range []string{"https://app.candyhouse.co/api/sesame2", "https://app.candyhouse.co/api/sesame2/", "http://127.0.0.1:8080"} {
		c, err := New(Options{BaseURL: base, APIKey: NewSecret(testKey)})
		if err != nil {
			t.Fatalf("New(%q): %v", base, err)
		}
		if strings.HasSuffix(c.base, "/") || c.timeout != defaultRequestTimeout || c.hc == nil || c.now == nil || c.log == nil {
			t.Errorf("New(%q) defaults: base %q timeout %v", base, c.base, c.timeout)
		}
		if got := c.lockURL("a b"); got != strings.TrimRight(base, "/")+"/a%20b" {
			t.Errorf("lockURL = %q", got)
		}
	}
}

func TestCmdString(t *testing.T) {
	for cmd, want := range map[Cmd]string{CmdLock: "lock", CmdUnlock: "unlock", 88: "cmd(88)", 0: "cmd(0)"} {
		if got := cmd.String(); got != want {
			t.Errorf("Cmd(%d).String() = %q, want %q", int(cmd), got, want)
		}
	}
}
