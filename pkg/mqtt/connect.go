package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// The connection loop.
//
// paho's auto-reconnect waits 1 s, then 2, 4, 8 s ... before its attempts,
// and cannot be cancelled: a broker that is back after 3 s was found after 7.
// Commands sent meanwhile by Home Assistant are lost (a clean session keeps
// nothing for us). So every connect is ours, on this schedule:
//
//   - the first attempt comes 0-100 ms after the loss, the next fastTries
//     100-250 ms apart (a restarted broker usually accepts within a second
//     or two);
//   - then one every 500-800 ms until the outage is a minute old: whenever
//     the broker comes back in that minute, the bridge is connected and
//     subscribed again within a second of it accepting connections;
//   - then a backoff from 2 s doubling to 30 s, so that a broker gone for
//     good costs an attempt every 30 s, not two a second.
//
// Every delay has jitter, so that clients restarted together do not hit the
// broker in lockstep. A refusal that retrying cannot fix (a wrong login, a
// certificate the broker or we refuse) switches the rest of the outage to the
// slow backoff, and each such refusal is logged as an error.
const (
	firstRetryMax  = 100 * time.Millisecond
	fastTries      = 4
	fastMin        = 100 * time.Millisecond
	fastMax        = 250 * time.Millisecond
	steadyMin      = 500 * time.Millisecond
	steadyMax      = 800 * time.Millisecond
	steadyFor      = time.Minute
	slowMin        = 2 * time.Second
	slowMax        = 30 * time.Second
	connectBoundBy = 2 // an attempt is given up after connectBoundBy * Timeout

	// echoTimeout bounds the wait for our own birth message to come back
	// (see watchEcho).
	echoTimeout = 5 * time.Second

	subackFailure = 0x80 // SUBACK return code: the broker refused the filter
)

// schedule hands out the delays between the attempts of one outage.
type schedule struct {
	tries   int
	refused bool // a permanent refusal was seen: the broker is up and says no
	slow    backoff
}

// next returns the wait before the next attempt, given how long the outage
// has lasted and whether the last refusal was permanent. slow reports that
// the delay came from the slow backoff.
func (s *schedule) next(outage time.Duration, permanent bool) (d time.Duration, slow bool) {
	s.tries++
	s.refused = s.refused || permanent
	switch {
	case s.refused || outage >= steadyFor:
		if s.slow.min == 0 {
			s.slow = backoff{min: slowMin, max: slowMax}
		}
		return s.slow.delay(), true
	case s.tries <= fastTries:
		return jitter(fastMin, fastMax), false
	default:
		return jitter(steadyMin, steadyMax), false
	}
}

// jitter returns a uniformly random duration in [lo, hi].
func jitter(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rand.Int64N(int64(hi-lo)+1))
}

// keepConnected connects, and reconnects after every loss, until ctx is
// done. It is the only caller of paho's Connect.
func (c *Client) keepConnected(ctx context.Context) {
	c.connectLoop(ctx, c.attempt)
}

// connectLoop is keepConnected with the attempt injectable, for tests of
// the schedule on a fake clock.
func (c *Client) connectLoop(ctx context.Context, attempt func(context.Context) error) {
	var lostAt time.Time // zero until the first connection
	for {
		if !c.connectUntilUp(ctx, attempt, lostAt) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-c.lost:
			lostAt = time.Now()
		}
		// Clients dropped together by one broker do not all knock in the
		// same millisecond.
		if !sleep(ctx, jitter(0, firstRetryMax)) {
			return
		}
	}
}

// connectUntilUp makes attempts on the schedule until one succeeds (true) or
// ctx is done (false). lostAt is when the previous connection dropped, zero
// for the first connect.
func (c *Client) connectUntilUp(ctx context.Context, attempt func(context.Context) error, lostAt time.Time) bool {
	start := time.Now()
	var s schedule
	for n := 1; ; n++ {
		err := attempt(ctx)
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			switch {
			case !lostAt.IsZero():
				c.log.Info("mqtt reconnected", "broker", c.broker, "down_for", time.Since(lostAt).Round(time.Millisecond), "attempts", n)
			case n > 1:
				c.log.Info("mqtt broker reachable", "broker", c.broker, "after", time.Since(start).Round(time.Millisecond), "attempts", n)
			}
			return true
		}
		permanent := isPermanent(err)
		d, slow := s.next(time.Since(start), permanent)
		// The first failure of an outage and every slow retry are worth a
		// warning; the fast ones in between only at debug, or a broker
		// restart would write a dozen lines.
		level := slog.LevelDebug
		switch {
		case permanent:
			level = slog.LevelError // fixable only outside: keep retrying, but say it loudly
		case n == 1 || slow:
			level = slog.LevelWarn
		}
		c.log.Log(ctx, level, "mqtt connect failed", "broker", c.broker, "attempt", n, "retry_in", d.Round(time.Millisecond), "err", err)
		if !sleep(ctx, d) {
			return false
		}
	}
}

// attempt is one connect, bounded: paho bounds dial plus handshake by
// ConnectTimeout, and we allow one Timeout more.
func (c *Client) attempt(ctx context.Context) error {
	err := waitCtx(ctx, c.pc.Connect(), connectBoundBy*c.opts.Timeout)
	if err != nil && c.isOpen() {
		// An earlier attempt we stopped waiting for got through after all
		// (paho then refuses a second Connect): we are connected, and its
		// connect event subscribes.
		return nil
	}
	return err
}

// connectionLost is paho's connection-lost handler; paho calls it once the
// connection is down and a new Connect may start.
func (c *Client) connectionLost(_ paho.Client, err error) {
	c.notify(event{lost: true, err: err})
	select {
	case c.lost <- struct{}{}:
	default: // already signalled
	}
}

// isPermanent reports a refusal that retrying cannot fix: the broker refused
// the login, we refused the broker's certificate, or the broker refused ours
// (a TLS alert such as "certificate required" or "bad certificate"). With
// TLS 1.3 the broker's refusal of our certificate often shows only as a reset
// connection, which is not told apart from a broker going down.
func isPermanent(err error) bool {
	if isAuthError(err) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" { // crypto/tls: an alert from the peer
		return true
	}
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		alert    tls.AlertError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &alert)
}

// route is paho's message handler (it runs on paho's router goroutine and
// must not block). A message on WillTopic is the echo check's: a live copy is
// our own birth (or will) coming back, a retained one what the broker held
// before we connected. It reaches OnMessage only when Subscriptions match
// it; every other message goes to handleMessage.
func (c *Client) route(pc paho.Client, m paho.Message) {
	if c.opts.WillTopic != "" && m.Topic() == c.opts.WillTopic {
		if !m.Retained() {
			select {
			case c.echo <- time.Now():
			default:
			}
		}
		if !c.appWantsWill {
			return
		}
	}
	c.handleMessage(pc, m)
}

// matchFilter reports whether topic matches the MQTT topic filter f
// (MQTT 3.1.1 §4.7; topics starting with '$' are not matched by wildcards
// at the first level).
func matchFilter(f, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(f, "+") || strings.HasPrefix(f, "#")) {
		return false
	}
	fl := strings.Split(f, "/")
	tl := strings.Split(topic, "/")
	for i, l := range fl {
		if l == "#" {
			return true
		}
		if i >= len(tl) {
			return false
		}
		if l != "+" && l != tl[i] {
			return false
		}
	}
	return len(fl) == len(tl)
}
