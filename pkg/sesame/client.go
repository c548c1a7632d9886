// Package sesame talks to the CANDY HOUSE Sesame Web API
// (https://app.candyhouse.co/api/sesame2): it reads a lock's status and sends
// lock and unlock commands signed with the device secret.
//
// Every HTTP request counts against the account's monthly quota, so Status
// makes exactly one attempt and only Command retries. A 200 answer to a
// command means the cloud accepted it, not that the lock moved: confirm with
// Status.
//
// Every answer's Date header tells the client how far the host's clock is
// off the cloud's. Beyond ClockSkewThreshold it signs with the cloud's time
// (see ClockState): the cloud judges a signature by its own clock.
package sesame

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Cmd is a command code of POST /{uuid}/cmd.
type Cmd int

// The commands Command sends. Toggle (88) is deliberately missing: a retried
// or duplicated toggle inverts the result, so callers resolve it into lock or
// unlock from the known state.
const (
	CmdLock   Cmd = 82
	CmdUnlock Cmd = 83
)

// String implements fmt.Stringer.
func (c Cmd) String() string {
	switch c {
	case CmdLock:
		return "lock"
	case CmdUnlock:
		return "unlock"
	default:
		return "cmd(" + strconv.Itoa(int(c)) + ")"
	}
}

// Counter is told about every HTTP request just before it is sent, retries
// included: the service's quota counts them all.
type Counter interface{ Count() }

// Options configure a Client.
type Options struct {
	BaseURL        string           // e.g. https://app.candyhouse.co/api/sesame2; a trailing slash is fine
	APIKey         Secret           // the account's x-api-key
	HTTPClient     *http.Client     // nil: a client with bounded dial, TLS and header timeouts
	RequestTimeout time.Duration    // bound of each HTTP attempt; 0 means 8s
	Counter        Counter          // may be nil
	Now            func() time.Time // the host's clock; nil means time.Now
	Backoff        Backoff          // delays between command retries; zero fields take the defaults
	Logger         *slog.Logger     // nil discards
}

const (
	defaultRequestTimeout = 8 * time.Second
	maxResponseBody       = 64 << 10
	maxMessage            = 200
	maxRetryAfterSeconds  = 1 << 30 // keeps the conversion to a Duration from overflowing
)

// Client is a Sesame Web API client. It is safe for concurrent use.
type Client struct {
	base    string
	key     Secret
	hc      *http.Client
	timeout time.Duration
	counter Counter
	now     func() time.Time
	clock   *clock
	backoff Backoff
	log     *slog.Logger
}

// New checks the options and returns a Client.
func New(o Options) (*Client, error) {
	if o.APIKey.IsZero() {
		return nil, errors.New("sesame: API key is empty")
	}
	u, err := url.Parse(o.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("sesame: base URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("sesame: base URL %q: want http(s)://host[/path]", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("sesame: base URL %q: no query or fragment allowed", u.Redacted())
	}
	c := &Client{
		base:    strings.TrimRight(o.BaseURL, "/"),
		key:     o.APIKey,
		hc:      o.HTTPClient,
		timeout: o.RequestTimeout,
		counter: o.Counter,
		now:     o.Now,
		backoff: o.Backoff,
		log:     o.Logger,
	}
	if c.hc == nil {
		c.hc = defaultHTTPClient()
	}
	if c.timeout <= 0 {
		c.timeout = defaultRequestTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.clock = newClock(c.log)
	return c, nil
}

// ClockState is what the client knows of the host's clock.
type ClockState struct {
	Measured  bool          // some answer carried a usable Date header
	Offset    time.Duration // the cloud's clock minus the host's at the last answer: positive when the host is behind
	Corrected bool          // commands are signed with the cloud's time (the offset went beyond ClockSkewThreshold)
}

// ClockState returns the offset measured at the last answer.
func (c *Client) ClockState() ClockState {
	off, corrected, measured := c.clock.Offset()
	return ClockState{Measured: measured, Offset: off, Corrected: corrected}
}

// ClockChanged receives a value (one slot, never blocking the client) at
// the first measurement, when the offset moved by 2 s or more since the last
// value (less is the Date header's resolution and the round trip), and
// when the signing clock changed.
func (c *Client) ClockChanged() <-chan struct{} { return c.clock.changed }

// defaultHTTPClient bounds every phase of a connection; the per-attempt
// context bounds the whole request.
func defaultHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          4,
	}}
}

// Status reads a lock's status: GET {base}/{uuid}, one attempt only, so
// background polling never spends quota on retries.
func (c *Client) Status(ctx context.Context, uuid string) (Status, error) {
	if uuid == "" {
		return Status{}, errors.New("sesame status: empty lock UUID")
	}
	rep, err := c.do(ctx, "status", uuid, http.MethodGet, c.lockURL(uuid), nil)
	if err != nil {
		return Status{}, wrap("status", uuid, err)
	}
	st, err := DecodeStatus(rep.body)
	if err != nil {
		return Status{}, fmt.Errorf("sesame status %s: %w", uuid, err)
	}
	return st, nil
}

// commandBody is the JSON of POST /{uuid}/cmd.
type commandBody struct {
	Cmd     int    `json:"cmd"`
	History string `json:"history"`
	Sign    string `json:"sign"`
}

// Command sends lock or unlock to a lock: POST {base}/{uuid}/cmd, signed
// with the device secret. Any other cmd is refused before anything is sent.
//
// Transient failures (network errors, per-attempt timeouts, 5xx, throttling)
// are retried with the Backoff, re-signing each attempt, until ctx is done;
// give ctx a deadline. A Retry-After is honoured when it ends before ctx's
// deadline; otherwise Command gives up at once with the throttling error.
// 403 and other 4xx answers are returned at once.
//
// A command is signed with the host's time, or the cloud's while the
// host's clock is off (ClockState). When the answer shows that the
// signature was made with a time more than ClockSkewThreshold off the
// cloud's clock (the first answer after the host's clock went wrong, or
// after NTP fixed it), the cloud has most likely accepted and ignored it:
// Command signs it again with the cloud's time and sends it once more.
// Lock and unlock are idempotent, so a second copy is harmless.
//
// A nil error means the service accepted the command, not that the lock
// moved: confirm with Status.
func (c *Client) Command(ctx context.Context, uuid string, secret Secret, cmd Cmd, tag string) error {
	if cmd != CmdLock && cmd != CmdUnlock {
		return fmt.Errorf("sesame command %s: refusing %s: only lock (%d) and unlock (%d) are sent", uuid, cmd, int(CmdLock), int(CmdUnlock))
	}
	if uuid == "" {
		return errors.New("sesame command: empty lock UUID")
	}
	key, err := DecodeDeviceSecret(secret)
	if err != nil {
		return fmt.Errorf("sesame command %s: %w", uuid, err)
	}
	history := HistoryTag(tag)
	target := c.lockURL(uuid) + "/cmd"
	log := c.log.With("uuid", uuid, "cmd", cmd.String())

	var lastAnswer error // the last answer the service gave, for the report
	resent := false      // sent again because the first signature was stale
	for attempt := 1; ; attempt++ {
		hostAt := c.now()
		signAt := c.clock.signTime(hostAt)
		sign, err := Sign(key, signAt)
		if err != nil {
			return fmt.Errorf("sesame command %s: %w", uuid, err)
		}
		body, err := json.Marshal(commandBody{Cmd: int(cmd), History: history, Sign: sign})
		if err != nil {
			return fmt.Errorf("sesame command %s: encode body: %w", uuid, err)
		}
		rep, err := c.do(ctx, "command", uuid, http.MethodPost, target, body)
		if err == nil {
			// The cloud's time when the command was signed, by this answer.
			// Sent again only when the cloud's time gives another signature:
			// the signature changes every 256 s, so a resend inside the same
			// window would be the very command the cloud just accepted.
			if miss := signAt.Sub(hostAt.Add(rep.offset)); rep.dated && !resent && miss.Abs() > ClockSkewThreshold && stale(key, sign, hostAt.Add(rep.offset)) {
				resent = true
				log.Warn("the command was signed with a time "+miss.Abs().Round(time.Second).String()+" off the Sesame cloud's clock, which ignores such commands; sending it again signed with the cloud's time",
					"attempt", attempt)
				continue
			}
			log.Debug("sesame command accepted", "attempts", attempt)
			return nil
		}
		if _, answered := errors.AsType[*APIError](err); answered {
			lastAnswer = err
		} else if ctx.Err() != nil && lastAnswer != nil {
			// The caller's deadline cut this attempt short, which says
			// nothing new: report what the service last said instead.
			err = lastAnswer
		}
		if !IsTransient(err) {
			if attempt == 1 {
				return wrap("command", uuid, err)
			}
			return &gaveUpError{uuid: uuid, attempts: attempt, last: err}
		}
		if cerr := ctx.Err(); cerr != nil {
			return &gaveUpError{uuid: uuid, attempts: attempt, last: err, cause: cerr}
		}

		wait := c.backoff.Delay(attempt - 1)
		ra, hasRA := RetryAfterOf(err)
		if hasRA {
			wait = ra
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= wait {
			reason := fmt.Sprintf("next try in %s would pass the deadline", wait)
			if hasRA {
				reason = fmt.Sprintf("Retry-After %s ends past the deadline", ra)
			}
			return &gaveUpError{uuid: uuid, attempts: attempt, last: err, reason: reason}
		}
		log.Debug("sesame command failed, retrying", "attempt", attempt, "delay", wait, "err", err)
		if cerr := sleep(ctx, wait); cerr != nil {
			return &gaveUpError{uuid: uuid, attempts: attempt, last: err, cause: cerr}
		}
	}
}

func (c *Client) lockURL(uuid string) string { return c.base + "/" + url.PathEscape(uuid) }

// answer is a 2xx answer.
type answer struct {
	body   []byte
	offset time.Duration // the cloud's clock minus the host's, by its Date header
	dated  bool          // the answer had a usable Date header
}

// do makes one HTTP attempt bounded by the request timeout and returns the
// body of a 2xx answer. Other answers become *APIError; failures to get an
// answer become *transportError. The Date header of every answer, 2xx or
// not, goes to the clock.
func (c *Client) do(ctx context.Context, op, uuid, method, target string, body []byte) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return answer{}, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("x-api-key", c.key.Reveal())
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.counter != nil {
		c.counter.Count()
	}
	sent := c.now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{}, &transportError{err: err}
	}
	defer resp.Body.Close()
	rep := answer{}
	rep.offset, rep.dated = c.clock.observe(resp.Header.Get("Date"), sent, c.now())
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return answer{}, &transportError{err: fmt.Errorf("read %s answer: %w", op, err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answer{}, &APIError{
			Op:         op,
			UUID:       uuid,
			StatusCode: resp.StatusCode,
			Message:    c.message(data),
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		}
	}
	rep.body = data
	return rep, nil
}

// wrap adds the operation and lock to err; an *APIError already names them.
func wrap(op, uuid string, err error) error {
	if _, ok := errors.AsType[*APIError](err); ok {
		return err
	}
	return fmt.Errorf("sesame %s %s: %w", op, uuid, err)
}

// message picks a short text out of an error body: its "message" field when
// it is JSON, else its first bytes. The API key, should the body echo it, is
// redacted.
func (c *Client) message(body []byte) string {
	var msg string
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) == nil {
		for _, k := range []string{"message", "Message"} {
			var s string
			if raw, ok := fields[k]; ok && json.Unmarshal(raw, &s) == nil && s != "" {
				msg = s
				break
			}
		}
	}
	if msg == "" {
		msg = string(body)
	}
	if key := c.key.Reveal(); key != "" {
		msg = strings.ReplaceAll(msg, key, redacted)
	}
	msg = strings.TrimSpace(msg)
	if len(msg) > maxMessage {
		n := maxMessage
		for n > 0 && !utf8.RuneStart(msg[n]) {
			n--
		}
		msg = msg[:n]
	}
	return strings.ToValidUTF8(msg, "\uFFFD")
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
// It returns 0 when the header is absent, malformed or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, maxRetryAfterSeconds)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// stale reports whether sign differs from the signature for the cloud's
// time at: only then did the cloud see a signature from another window.
func stale(key []byte, sign string, at time.Time) bool {
	want, err := Sign(key, at)
	return err == nil && want != sign
}
