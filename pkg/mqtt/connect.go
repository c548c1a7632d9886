package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
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

func isAuthError(err error) bool {
	return errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) || errors.Is(err, packets.ErrorRefusedNotAuthorised)
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

// notify is called on paho's goroutines. A connect event must not be lost (it
// triggers the subscriptions), so it waits for room in the queue, but no
// longer than Run lives; a connection-lost event is only a notification and
// is dropped when the queue is full.
func (c *Client) notify(ev event) {
	if ev.lost {
		select {
		case c.events <- ev:
		default:
			c.log.Warn("mqtt connection lost", "broker", c.broker, "err", ev.err, "note", "event queue full; OnConnectionLost not called")
		}
		return
	}
	select {
	case c.events <- ev:
	case <-c.done:
	}
}

// runEvents handles connects (subscribe, then OnConnect) and connection
// losses, in the order paho reported them, and watches for the echo of our
// own birth after each connect.
func (c *Client) runEvents(ctx context.Context) {
	echoTimer := time.NewTimer(echoTimeout)
	echoTimer.Stop()
	defer echoTimer.Stop()
	var (
		waiting  bool      // an echo is expected
		since    time.Time // when the subscriptions were acknowledged
		deadline <-chan time.Time
	)
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-c.events:
			if ev.lost {
				waiting, deadline = false, nil
				echoTimer.Stop()
				c.log.Warn("mqtt connection lost", "broker", c.broker, "err", ev.err)
				if c.opts.OnConnectionLost != nil {
					c.opts.OnConnectionLost(ev.err)
				}
				continue
			}
			var watch bool
			watch, since = c.onConnected(ctx)
			if watch {
				waiting, deadline = true, echoTimer.C
				echoTimer.Reset(echoTimeout)
			}
		case at := <-c.echo:
			if waiting {
				waiting, deadline = false, nil
				echoTimer.Stop()
				c.log.Debug("mqtt own publish came back: the broker lets us write and read it", "topic", c.opts.WillTopic, "after", at.Sub(since).Round(time.Millisecond))
			}
		case <-deadline:
			waiting, deadline = false, nil
			if c.isOpen() {
				c.log.Warn("mqtt own publish did not come back: the broker probably denies this client writing (or reading) it",
					"topic", c.opts.WillTopic, "waited", echoTimeout,
					"hint", "a broker drops a denied MQTT 3.1.1 publish without telling the client, so Home Assistant may not see the bridge; "+
						"check the broker's ACL for this login (README: Broker access) and its log for 'Denied PUBLISH'")
			}
		}
	}
}

// onConnected subscribes (retrying while the connection stays open) and then
// calls OnConnect. watch reports that the echo of the birth on WillTopic is
// to be expected; since is when the subscriptions were acknowledged.
func (c *Client) onConnected(ctx context.Context) (watch bool, since time.Time) {
	// An echo still queued belongs to an earlier connection.
	select {
	case <-c.echo:
	default:
	}
	bo := backoff{min: subscribeRetryMin, max: subscribeRetryMax}
	var refused []string
	for {
		var err error
		refused, err = c.subscribe(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false, time.Time{}
		}
		if !c.isOpen() {
			// The next connect event subscribes again.
			c.log.Warn("mqtt connection lost before subscriptions were acknowledged", "err", err)
			return false, time.Time{}
		}
		d := bo.delay()
		c.log.Warn("mqtt subscribe failed; retrying", "err", err, "retry_in", d.Round(time.Millisecond))
		if !sleep(ctx, d) {
			return false, time.Time{}
		}
	}
	since = time.Now()
	c.log.Info("mqtt connected", "broker", c.broker, "subscriptions", len(c.opts.Subscriptions))
	if c.opts.OnConnect != nil {
		c.opts.OnConnect()
	}
	watch = c.opts.WillTopic != "" && !contains(refused, c.opts.WillTopic)
	return watch, since
}

// subscribe subscribes to all filters at QoS 1 in one SUBSCRIBE and waits for
// the SUBACK, bounded by Timeout. The will topic is subscribed too, to see
// our own birth come back. A filter the broker refuses (return code 0x80,
// e.g. an ACL) is logged and returned, not retried: retrying cannot help.
func (c *Client) subscribe(ctx context.Context) (refused []string, err error) {
	filters := make(map[string]byte, len(c.opts.Subscriptions)+1)
	for _, f := range c.opts.Subscriptions {
		filters[f] = 1
	}
	if c.opts.WillTopic != "" {
		filters[c.opts.WillTopic] = 1
	}
	if len(filters) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(filters))
	for f := range filters {
		names = append(names, f)
	}
	tok := c.pc.SubscribeMultiple(filters, nil) // nil: messages go to the default handler
	if err := waitCtx(ctx, tok, c.opts.Timeout); err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", strings.Join(names, ","), err)
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for f, code := range st.Result() {
			if code == subackFailure {
				refused = append(refused, f)
				c.log.Error("mqtt broker refused subscription", "filter", f,
					"hint", "the broker's ACL denies this login reading it (README: Broker access)")
			}
		}
	}
	return refused, nil
}

// handleMessage is paho's message handler. It runs on paho's router goroutine
// and must never block: it only enqueues.
func (c *Client) handleMessage(_ paho.Client, m paho.Message) {
	msg := Message{
		Topic:     m.Topic(),
		Payload:   m.Payload(),
		QoS:       m.Qos(),
		Retained:  m.Retained(),
		Duplicate: m.Duplicate(),
		Received:  time.Now(),
	}
	if c.opts.WillTopic != "" && msg.Topic == c.opts.WillTopic {
		// A live copy is our own birth (or will) coming back; a retained
		// one is what the broker held before we connected.
		if !msg.Retained {
			select {
			case c.echo <- msg.Received:
			default:
			}
		}
		if !c.appWantsWill {
			return
		}
	}
	select {
	case c.inbox <- msg:
	default:
		c.log.Warn("mqtt message dropped: handler queue full", "topic", msg.Topic, "queue_size", cap(c.inbox))
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
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
