package sesame

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrForbidden matches (errors.Is) every 403 answer: a wrong API key, or a
// lock not shared with the key's account. Retrying does not help.
var ErrForbidden = errors.New("forbidden (check the API key and that the lock is shared with it)")

var (
	_ error = (*APIError)(nil)
	_ error = (*transportError)(nil)
	_ error = (*gaveUpError)(nil)
)

// APIError is an answer other than 2xx from the service.
type APIError struct {
	Op         string // "status" or "command"
	UUID       string
	StatusCode int
	Message    string        // short text from the body
	RetryAfter time.Duration // from the Retry-After header; 0 when absent
}

// Error implements error. It names the operation and the lock, never the key.
func (e *APIError) Error() string {
	return fmt.Sprintf("sesame %s %s: %s", e.Op, e.UUID, e.detail())
}

// detail is the error without the operation and lock.
func (e *APIError) detail() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrForbidden) hold for a 403 that is not throttling.
func (e *APIError) Is(target error) bool {
	return target == ErrForbidden && e.StatusCode == http.StatusForbidden && !e.throttled()
}

// throttled reports a rate limit or an exhausted quota. The service's exact
// codes are unconfirmed, so 429 and any body saying so count.
func (e *APIError) throttled() bool {
	return e.StatusCode == http.StatusTooManyRequests ||
		strings.Contains(e.Message, "Limit") ||
		strings.Contains(e.Message, "Too Many")
}

// transient reports whether trying again later may succeed.
func (e *APIError) transient() bool {
	return e.throttled() || e.StatusCode >= 500
}

// transportError marks a failure to get an answer at all: connection,
// per-attempt timeout, or a body cut short.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// gaveUpError is what Command returns when it stops retrying.
type gaveUpError struct {
	uuid     string
	attempts int
	last     error  // the last attempt's error
	cause    error  // ctx.Err() when the caller's context ended the retries, else nil
	reason   string // why no further attempt was made, when not cause
}

func (e *gaveUpError) Error() string {
	last := e.last.Error()
	var ae *APIError
	if errors.As(e.last, &ae) {
		last = ae.detail()
	}
	prefix := fmt.Sprintf("sesame command %s: gave up after %s", e.uuid, plural(e.attempts, "attempt"))
	switch {
	case e.cause != nil && !errors.Is(e.last, e.cause):
		return fmt.Sprintf("%s: %v (last error: %s)", prefix, e.cause, last)
	case e.reason != "":
		return fmt.Sprintf("%s (%s): %s", prefix, e.reason, last)
	default:
		return prefix + ": " + last
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func (e *gaveUpError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.last, e.cause}
	}
	return []error{e.last}
}

// IsTransient reports whether err may go away by itself: network errors,
// timeouts, throttling (429 or a body saying so) and 5xx answers. It is false
// for nil, for the caller's own cancellation, for 403 and the other 4xx, and
// for errors that no answer can fix (a bad secret, an unsupported command).
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if ae, ok := errors.AsType[*APIError](err); ok {
		return ae.transient()
	}
	if _, ok := errors.AsType[*transportError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*url.Error](err); ok {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// RetryAfterOf returns the Retry-After the service sent with err, if any.
func RetryAfterOf(err error) (time.Duration, bool) {
	if ae, ok := errors.AsType[*APIError](err); ok && ae.RetryAfter > 0 {
		return ae.RetryAfter, true
	}
	return 0, false
}
