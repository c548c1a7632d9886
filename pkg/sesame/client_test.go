package sesame_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
)

const (
	apiKey     = "APIKEY-0123456789abcdefghijklmnopqrstuv" // 40 characters
	lockUUID   = "A1B2C3D4-0000-4000-8000-00000000AAAA"
	lockSecret = "a13d4b890111676ba8fb36ece7e94f7d"
	otherUUID  = "A1B2C3D4-0000-4000-8000-00000000BBBB"
	otherSecr  = "00112233445566778899aabbccddeeff"
)

func newFake(t *testing.T) *sesametest.Server {
	t.Helper()
	fake := sesametest.NewServer(apiKey,
		sesametest.Lock{UUID: lockUUID, Secret: lockSecret},
		sesametest.Lock{UUID: otherUUID, Secret: otherSecr, State: sesame.StateUnlocked, Battery: 42, Voltage: 5.2},
	)
	t.Cleanup(fake.Close)
	return fake
}

type counter struct{ n atomic.Int64 }

func (c *counter) Count() { c.n.Add(1) }

func newClient(t *testing.T, fake *sesametest.Server, mod func(*sesame.Options)) *sesame.Client {
	t.Helper()
	o := sesame.Options{
		BaseURL:        fake.URL() + "/",
		APIKey:         sesame.NewSecret(apiKey),
		RequestTimeout: 2 * time.Second,
		Backoff:        sesame.Backoff{Base: 5 * time.Millisecond, Max: 20 * time.Millisecond},
	}
	if mod != nil {
		mod(&o)
	}
	c, err := sesame.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestClientStatus(t *testing.T) {
	fake := newFake(t)
	c := newClient(t, fake, nil)
	before := time.Now().Add(-2 * time.Second)

	st, err := c.Status(ctxTimeout(t, 5*time.Second), lockUUID)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != sesame.StateLocked || st.RawState != "locked" || st.Battery != 100 || st.Voltage != 6.0 || st.Position != -39 {
		t.Errorf("status = %+v", st)
	}
	if st.HubOnline == nil || !*st.HubOnline {
		t.Errorf("HubOnline = %v, want true", st.HubOnline)
	}
	if st.Timestamp.Before(before) || st.Timestamp.After(time.Now().Add(time.Second)) {
		t.Errorf("Timestamp %v is not about now", st.Timestamp)
	}

	st, err = c.Status(ctxTimeout(t, 5*time.Second), otherUUID)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != sesame.StateUnlocked || st.Battery != 42 || st.Voltage != 5.2 || st.Position != 215 {
		t.Errorf("other status = %+v", st)
	}

	reqs := fake.Requests()
	if len(reqs) != 2 || reqs[0].Method != http.MethodGet || reqs[0].UUID != lockUUID || !reqs[0].KeyValid || reqs[0].Status != 200 {
		t.Errorf("fake saw %+v", reqs)
	}
}

func TestClientCommandMovesLock(t *testing.T) {
	fake := newFake(t)
	var cnt counter
	c := newClient(t, fake, func(o *sesame.Options) { o.Counter = &cnt })
	const tag = "玄関 Alice's card"

	fake.SetMoveDelay(time.Hour) // stays "moved" for the whole check
	if err := c.Command(ctxTimeout(t, 5*time.Second), lockUUID, sesame.NewSecret(lockSecret), sesame.CmdUnlock, tag); err != nil {
		t.Fatalf("Command: %v", err)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("fake saw %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/"+lockUUID+"/cmd" || r.Cmd != 83 || !r.KeyValid || !r.SignValid || r.Status != 200 {
		t.Errorf("fake saw %+v", r)
	}
	if r.History != tag { // 19 bytes: not cut
		t.Errorf("history %q, want %q", r.History, tag)
	}
	st, err := c.Status(ctxTimeout(t, 5*time.Second), lockUUID)
	if err != nil || st.State != sesame.StateMoved || st.Position != 90 {
		t.Errorf("status during the move = %+v, %v", st, err)
	}

	fake.SetMoveDelay(0)
	if err := c.Command(ctxTimeout(t, 5*time.Second), lockUUID, sesame.NewSecret(lockSecret), sesame.CmdLock, strings.Repeat("x", 30)); err != nil {
		t.Fatalf("Command: %v", err)
	}
	st, err = c.Status(ctxTimeout(t, 5*time.Second), lockUUID)
	if err != nil || st.State != sesame.StateLocked {
		t.Errorf("status after lock = %+v, %v", st, err)
	}
	if got := fake.Requests()[2].History; got != strings.Repeat("x", 21) {
		t.Errorf("history %q, want the tag cut to 21 bytes", got)
	}
	if cnt.n.Load() != 4 || len(fake.Requests()) != 4 {
		t.Errorf("counted %d, fake saw %d; want 4 and 4", cnt.n.Load(), len(fake.Requests()))
	}
}

func TestClientWrongKey(t *testing.T) {
	fake := newFake(t)
	const wrongKey = "WRONGKEY-0123456789abcdefghijklmnopqrst"
	c := newClient(t, fake, func(o *sesame.Options) { o.APIKey = sesame.NewSecret(wrongKey) })

	_, err := c.Status(ctxTimeout(t, 5*time.Second), lockUUID)
	if !errors.Is(err, sesame.ErrForbidden) || sesame.IsTransient(err) {
		t.Errorf("Status err = %v; want permanent ErrForbidden", err)
	}
	var ae *sesame.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 403 || ae.Message != "Forbidden" || ae.Op != "status" || ae.UUID != lockUUID {
		t.Errorf("APIError = %+v", ae)
	}

	err = c.Command(ctxTimeout(t, 5*time.Second), lockUUID, sesame.NewSecret(lockSecret), sesame.CmdUnlock, "")
	if !errors.Is(err, sesame.ErrForbidden) {
		t.Errorf("Command err = %v; want ErrForbidden", err)
	}
	reqs := fake.Requests()
	if len(reqs) != 2 || reqs[1].KeyValid || reqs[1].Status != 403 {
		t.Errorf("fake saw %+v; want one command, refused with 403", reqs)
	}
	if got := fake.State(lockUUID); got != sesame.StateLocked {
		t.Errorf("lock %s after a refused command", got)
	}
}

func TestClientWrongSecretIsAcceptedButNothingMoves(t *testing.T) {
	fake := newFake(t)
	fake.SetMoveDelay(0)
	c := newClient(t, fake, nil)
	// A well-formed secret of another lock: the service cannot tell, says 200.
	if err := c.Command(ctxTimeout(t, 5*time.Second), lockUUID, sesame.NewSecret(otherSecr), sesame.CmdUnlock, ""); err != nil {
		t.Fatalf("Command: %v", err)
	}
	r := fake.Requests()[0]
	if r.SignValid || !r.KeyValid || r.Status != 200 {
		t.Errorf("fake saw %+v; want a 200 with an invalid sign", r)
	}
	st, err := c.Status(ctxTimeout(t, 5*time.Second), lockUUID)
	if err != nil || st.State != sesame.StateLocked {
		t.Errorf("status = %+v, %v; want still locked", st, err)
	}
}

func TestClientClockSkew(t *testing.T) {
	tests := []struct {
		skew  time.Duration
		valid bool
	}{
		{0, true},
		{200 * time.Second, true}, // at most one slot off
		{-200 * time.Second, true},
		{900 * time.Second, false}, // three slots off or more
		{-900 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.skew.String(), func(t *testing.T) {
			fake := newFake(t)
			c := newClient(t, fake, func(o *sesame.Options) { o.Now = func() time.Time { return time.Now().Add(tt.skew) } })
			// The signature changes every 256 s: is the host's window the
			// cloud's? (Measured around the command, in case it crosses.)
			window := func() bool { n := time.Now(); return n.Add(tt.skew).Unix()>>8 == n.Unix()>>8 }
			sameBefore := window()
			if err := c.Command(ctxTimeout(t, 5*time.Second), lockUUID, sesame.NewSecret(lockSecret), sesame.CmdUnlock, ""); err != nil {
				t.Fatal(err)
			}
			if window() != sameBefore {
				t.Skip("a signature window boundary passed during the command")
			}
			reqs := fake.Requests()
			if got := reqs[0].SignValid; got != tt.valid {
				t.Errorf("SignValid = %v, want %v", got, tt.valid)
			}
			// Beyond the threshold the answer's Date shows the signature
			// was stale: sent once more, signed with the cloud's time —
			// unless that time gives the same signature (the same window),
			// which would send the accepted command twice.
			want := 1
			if (tt.skew > sesame.ClockSkewThreshold || tt.skew < -sesame.ClockSkewThreshold) && !sameBefore {
				want = 2
			}
			if len(reqs) != want || !reqs[len(reqs)-1].SignValid {
				t.Errorf("fake saw %+v; want %d request(s), the last validly signed", reqs, want)
			}
		})
	}
}

func TestClientUnknownLock(t *testing.T) {
	fake := newFake(t)
	c := newClient(t, fake, nil)
	_, err := c.Status(ctxTimeout(t, 5*time.Second), "NO-SUCH-LOCK")
	var ae *sesame.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 500 || ae.Message != "Internal server error" || !sesame.IsTransient(err) {
		t.Errorf("Status err = %v; want a transient 500", err)
	}

	err = c.Command(ctxTimeout(t, 300*time.Millisecond), "NO-SUCH-LOCK", sesame.NewSecret(lockSecret), sesame.CmdLock, "")
	if !errors.As(err, &ae) || ae.StatusCode != 500 {
		t.Errorf("Command err = %v; want to give up on the 500", err)
	}
	if n := len(fake.Requests()); n < 3 {
		t.Errorf("fake saw %d requests; want the command retried", n)
	}
}

func TestClientRecoversFromFailures(t *testing.T) {
	fake := newFake(t)
	fake.SetMoveDelay(0)
	var cnt counter
	c := newClient(t, fake, func(o *sesame.Options) { o.Counter = &cnt })
	fake.FailNext(2, 503, `{"message":"Service Unavailable"}`, "")
	if err := c.Command(ctxTimeout(t, 5*time.Second), lockUUID, sesame.NewSecret(lockSecret), sesame.CmdUnlock, ""); err != nil {
		t.Fatalf("Command: %v", err)
	}
	reqs := fake.Requests()
	if len(reqs) != 3 || reqs[0].Status != 503 || reqs[1].Status != 503 || reqs[2].Status != 200 || cnt.n.Load() != 3 {
		t.Errorf("fake saw %+v, counted %d; want 503, 503, 200", reqs, cnt.n.Load())
	}
	if got := fake.State(lockUUID); got != sesame.StateUnlocked {
		t.Errorf("lock %s, want unlocked", got)
	}

	// Status does not retry, and carries the Retry-After.
	fake.FailNext(1, 429, `{"message":"Too Many Requests"}`, "7")
	_, err := c.Status(ctxTimeout(t, 5*time.Second), lockUUID)
	if ra, ok := sesame.RetryAfterOf(err); !ok || ra != 7*time.Second || !sesame.IsTransient(err) {
		t.Errorf("Status err = %v, Retry-After %v %v", err, ra, ok)
	}
	if cnt.n.Load() != 4 {
		t.Errorf("counted %d, want 4", cnt.n.Load())
	}
}

func TestClientTimeoutAndCancel(t *testing.T) {
	fake := newFake(t)
	fake.SetLatency(2 * time.Second)
	c := newClient(t, fake, func(o *sesame.Options) { o.RequestTimeout = 50 * time.Millisecond })

	_, err := c.Status(ctxTimeout(t, 5*time.Second), lockUUID)
	if err == nil || !sesame.IsTransient(err) {
		t.Errorf("Status past the request timeout: %v; want a transient error", err)
	}

	c = newClient(t, fake, nil)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = c.Status(ctx, lockUUID)
	if !errors.Is(err, context.Canceled) || sesame.IsTransient(err) {
		t.Errorf("Status cancelled by the caller: %v; want context.Canceled, not transient", err)
	}
}

func TestClientRefusesToggle(t *testing.T) {
	fake := newFake(t)
	c := newClient(t, fake, nil)
	if err := c.Command(ctxTimeout(t, 5*time.Second), lockUUID, sesame.NewSecret(lockSecret), sesame.Cmd(88), ""); err == nil {
		t.Error("toggle accepted")
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("fake saw %d requests, want none", n)
	}
}

// capture records every command body on its way to the fake.
type capture struct {
	mu     sync.Mutex
	bodies []string
}

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		data, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.bodies = append(c.bodies, string(data))
		c.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(data))
	}
	return http.DefaultTransport.RoundTrip(r)
}

// No error and no log line may carry the API key, a device secret, or a
// signature.
func TestSecretsNeverLeak(t *testing.T) {
	fake := newFake(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	capt := &capture{}
	c := newClient(t, fake, func(o *sesame.Options) {
		o.Logger = logger
		o.HTTPClient = &http.Client{Transport: capt}
	})
	const wrongKey = "WRONGKEY-0123456789abcdefghijklmnopqrst"
	wrong := newClient(t, fake, func(o *sesame.Options) { o.APIKey = sesame.NewSecret(wrongKey); o.Logger = logger })
	const badSecret = "zz3d4b890111676ba8fb36ece7e94f7d"

	var errs []error
	add := func(err error) {
		if err == nil {
			t.Errorf("expected an error (case %d)", len(errs))
			return
		}
		errs = append(errs, err)
	}
	ctx := func() context.Context { return ctxTimeout(t, 200*time.Millisecond) }

	_, err := wrong.Status(ctx(), lockUUID)
	add(err)
	add(wrong.Command(ctx(), lockUUID, sesame.NewSecret(lockSecret), sesame.CmdLock, ""))
	add(c.Command(ctx(), lockUUID, sesame.NewSecret(badSecret), sesame.CmdLock, ""))
	add(c.Command(ctx(), lockUUID, sesame.NewSecret(lockSecret[:31]), sesame.CmdLock, ""))
	add(c.Command(ctx(), lockUUID, sesame.NewSecret(lockSecret), sesame.Cmd(88), ""))
	add(c.Command(ctx(), "NO-SUCH-LOCK", sesame.NewSecret(lockSecret), sesame.CmdLock, ""))
	fake.FailNext(3, 400, `{"message":"bad key `+apiKey+` and secret"}`, "")
	_, err = c.Status(ctx(), lockUUID)
	add(err)
	add(c.Command(ctx(), lockUUID, sesame.NewSecret(lockSecret), sesame.CmdLock, ""))
	fake.FailNext(1_000, 500, `{"message":"Internal server error"}`, "")
	add(c.Command(ctx(), lockUUID, sesame.NewSecret(lockSecret), sesame.CmdUnlock, "tag"))
	fake.FailNext(0, 0, "", "")
	fake.SetLatency(time.Second)
	add(c.Command(ctxTimeout(t, 300*time.Millisecond), lockUUID, sesame.NewSecret(lockSecret), sesame.CmdUnlock, ""))
	fake.SetLatency(0)
	fake.Close()
	_, err = c.Status(ctx(), lockUUID)
	add(err)
	add(c.Command(ctx(), lockUUID, sesame.NewSecret(lockSecret), sesame.CmdLock, ""))
	_, err = sesame.New(sesame.Options{BaseURL: "::", APIKey: sesame.NewSecret(apiKey)})
	add(err)

	var signs []string
	for _, b := range capt.bodies {
		if i := strings.Index(b, `"sign":"`); i >= 0 {
			signs = append(signs, b[i+8:i+8+32])
		}
	}
	if len(signs) < 3 {
		t.Fatalf("captured %d signatures; the test did not exercise commands", len(signs))
	}
	forbidden := append([]string{apiKey, wrongKey, lockSecret, badSecret, lockSecret[:31], otherSecr}, signs...)
	for i, err := range errs {
		t.Logf("error %d: %v", i, err)
		for _, form := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%q", err), fmt.Sprintf("%#v", err)} {
			for _, s := range forbidden {
				if strings.Contains(form, s) {
					t.Errorf("error %d %q contains a secret", i, form)
				}
			}
		}
	}
	if logs.Len() == 0 {
		t.Fatal("no log output; the retry paths were not logged")
	}
	for _, s := range forbidden {
		if strings.Contains(logs.String(), s) {
			t.Errorf("logs contain a secret:\n%s", logs.String())
		}
	}
}
