// Package mqtt is a small wrapper around the Eclipse paho MQTT v3.1.1 client
// that enforces the rules a long-running bridge needs:
//
//   - every wait on a paho token is bounded (paho's Token.Wait can block
//     forever);
//   - subscriptions are made after every (re)connect, so they survive a broker
//     restart even with a clean session;
//   - the connection is kept up by our own loop (connect.go), not paho's
//     auto-reconnect: back within a second of a broker restart, then a capped
//     backoff, every attempt cancellable and logged;
//   - paho's message handler only enqueues: messages are handed to a bounded
//     queue (waiting at most a quarter of a second for room in a burst) and
//     OnMessage runs on a goroutine owned by Run;
//   - the last will (retained, QoS 1) is also published explicitly on a clean
//     shutdown, because a broker discards the will when a client disconnects
//     properly;
//   - Publish never blocks the caller and never waits for a PUBACK in the
//     caller's path (Mosquitto without TCP_NODELAY adds ~40 ms to every
//     waited QoS 1 publish); Deliver waits, bounded, for room in the outbox
//     instead of dropping, and reports whether the broker acknowledged;
//   - TCP connections acknowledge every read at once, so that the broker's
//     Nagle algorithm never holds a command behind its last PUBACK
//     (dial.go);
//   - queues are bounded and every goroutine Run starts stops with its context.
package mqtt

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logthrottle"
)

// Defaults and fixed bounds.
const (
	DefaultTimeout    = 5 * time.Second
	DefaultOutboxSize = 512

	inboxSize           = 256                    // messages waiting for OnMessage
	inboxWait           = 250 * time.Millisecond // how long a full inbox holds paho's router before a message is dropped
	eventQueueSize      = 16                     // connect / connection-lost notifications
	drainTimeout        = time.Second            // how long shutdown keeps handing queued publishes to paho
	disconnectQuiesceMS = 250                    // paho Disconnect quiesce, milliseconds
	keepAlive           = 30 * time.Second       // MQTT keep-alive
	subscribeRetryMin   = 500 * time.Millisecond
	subscribeRetryMax   = 5 * time.Second
)

// ErrNotConnected is returned by PublishWait when there is no open connection
// to the broker (or the client is shutting down).
var ErrNotConnected = errors.New("mqtt: not connected")

var errTimeout = errors.New("timed out")

// Message is one message received on a subscribed topic filter.
type Message struct {
	Topic     string
	Payload   []byte
	QoS       byte
	Retained  bool
	Duplicate bool
	// Received is when paho handed the message over, before any queue of
	// ours: consumers measure a command's age from here.
	Received time.Time
}

// Options configure a Client. URL is required; everything else has a usable
// zero value.
type Options struct {
	URL      string // tcp://, ssl://, ws://, wss:// (also mqtt://, mqtts://, tls://)
	Username string
	Password string // never logged
	ClientID string // "" -> "sesame2mqtt-" + 8 random hex

	// WillTopic is the retained QoS 1 last will, also published on a clean
	// shutdown. The client subscribes to it too, and expects OnConnect to
	// publish the birth ("online") there: when that does not come back
	// within 5 s, the broker probably denies it (an MQTT 3.1.1 broker drops
	// a denied publish silently) and Run logs a warning. Messages on it
	// reach OnMessage only if Subscriptions match it.
	WillTopic   string
	WillPayload string // e.g. "offline"

	// Subscriptions are topic filters, subscribed at QoS 1 after every
	// (re)connect.
	Subscriptions []string
	// OnMessage is called for every message on those filters, one at a time
	// and in arrival order, on a goroutine owned by Run. It should return
	// quickly: while it runs, further messages wait in a bounded queue and are
	// dropped (with a rate-limited log line) when that queue stays full for
	// a quarter of a second.
	OnMessage func(Message)
	// OnConnect is called after each successful (re)connect, once the
	// subscriptions are acknowledged, on a goroutine owned by Run. Run waits
	// for it to return before it publishes the will at shutdown.
	OnConnect func()
	// OnConnectionLost is called (on the same goroutine as OnConnect) when an
	// established connection drops. Optional.
	OnConnectionLost func(error)

	Timeout    time.Duration // bound on every token wait; default 5s
	OutboxSize int           // bound on queued publishes; default 512
	Logger     *slog.Logger  // nil -> discard
	// TLSConfig is for ssl/tls/mqtts/wss brokers; nil: the system roots
	// and the host name of URL. RootCAs, Certificates and ServerName are
	// honoured; the config is cloned per connection.
	TLSConfig *tls.Config
}

// Client is a connection to one MQTT broker. Create it with New, then call Run
// once. Publish, PublishWait and Connected are safe for concurrent use, also
// before Run and after it returned.
type Client struct {
	opts   Options
	broker string // URL with any password redacted, for logs
	log    *slog.Logger
	warn   *logthrottle.Limiter // for drops a flood of messages can cause
	pc     paho.Client
	isOpen func() bool // reports an open connection; pc.IsConnectionOpen except in tests

	outbox chan outMsg
	room   chan struct{} // a slot in the outbox came free (for Deliver)
	inbox  chan Message
	events chan event
	done   chan struct{} // closed when Run returns
	// stopping is closed when shutdown begins: waits for room in the
	// inbox or the outbox end then, not a Timeout later.
	stopping chan struct{}

	// pubMu orders PublishWait and the outbox against shutdown: once closing
	// is set under the write lock, nothing new reaches paho ahead of the will.
	pubMu   sync.RWMutex
	closing atomic.Bool
	started atomic.Bool

	// lost is signalled when an established connection drops; the
	// connection loop (connect.go) waits on it to reconnect.
	lost chan struct{}
	// echo is signalled when the broker sends back a live (not retained)
	// message on WillTopic: our own birth made the round trip (connect.go).
	echo chan time.Time
	// appWantsWill: one of Subscriptions matches WillTopic, so messages on
	// it also go to OnMessage.
	appWantsWill bool
}

type outMsg struct {
	topic    string
	qos      byte
	retained bool
	payload  []byte
	done     func(delivered bool) // Deliver's receipt; nil for Publish
}

// report calls the receipt, if any.
func (m outMsg) report(delivered bool) {
	if m.done != nil {
		m.done(delivered)
	}
}

type inflight struct {
	topic    string
	tok      paho.Token
	deadline time.Time
	done     func(delivered bool)
}

// event is a connection state change reported by paho's callbacks.
type event struct {
	lost bool
	err  error
}

// New checks o and builds a Client. It does not connect.
func New(o Options) (*Client, error) {
	u, err := parseBrokerURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("mqtt options: %w", err)
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("mqtt options: negative timeout %s", o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.OutboxSize < 0 {
		return nil, fmt.Errorf("mqtt options: negative outbox size %d", o.OutboxSize)
	}
	if o.OutboxSize == 0 {
		o.OutboxSize = DefaultOutboxSize
	}
	if o.WillTopic != "" {
		if err := validateTopicName(o.WillTopic); err != nil {
			return nil, fmt.Errorf("mqtt options: will topic %q: %w", o.WillTopic, err)
		}
	}
	o.Subscriptions = append([]string(nil), o.Subscriptions...)
	for _, f := range o.Subscriptions {
		if err := validateTopicFilter(f); err != nil {
			return nil, fmt.Errorf("mqtt options: subscription: %w", err)
		}
	}
	if o.ClientID == "" {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("mqtt options: random client id: %w", err)
		}
		o.ClientID = "sesame2mqtt-" + hex.EncodeToString(b[:])
	}
	if len(o.ClientID) > 65535 {
		return nil, errors.New("mqtt options: client id too long")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}

	c := &Client{
		opts:   o,
		broker: u.Redacted(),
		log:    o.Logger,
		warn:   logthrottle.New(o.Logger, logthrottle.DefaultBurst, logthrottle.DefaultWindow),
		outbox: make(chan outMsg, o.OutboxSize),
		room:   make(chan struct{}, 1),
		inbox:  make(chan Message, inboxSize),
		events: make(chan event, eventQueueSize),
		done:   make(chan struct{}),

		stopping: make(chan struct{}),
		lost:     make(chan struct{}, 1),
		echo:     make(chan time.Time, 1),
	}
	for _, f := range o.Subscriptions {
		if o.WillTopic != "" && matchFilter(f, o.WillTopic) {
			c.appWantsWill = true
		}
	}

	po := paho.NewClientOptions().
		AddBroker(u.String()).
		SetClientID(o.ClientID).
		SetUsername(o.Username).
		SetPassword(o.Password).
		SetProtocolVersion(4). // no silent second attempt with MQTT 3.1 after a refusal
		// A clean session: after a reconnect the broker holds no stale
		// commands for us, and OnConnect re-publishes the current state.
		SetCleanSession(true).
		SetResumeSubs(false).
		// Every (re)connect is ours (connect.go): paho's auto-reconnect
		// waits 1, 2, 4 s and more, and cannot be cancelled.
		SetConnectRetry(false).
		SetAutoReconnect(false).
		SetConnectTimeout(o.Timeout).
		SetWriteTimeout(o.Timeout). // bounds paho's hand-over of a publish/subscribe to its writer
		SetKeepAlive(keepAlive).
		SetPingTimeout(o.Timeout).
		// Ordered delivery is kept (the paho default): our handler only
		// copies the message into a bounded queue and never blocks, so
		// ordering costs nothing, and commands such as LOCK then UNLOCK
		// reach OnMessage in the order the broker sent them. With
		// OrderMatters(false) paho would start a goroutine per message and
		// lose that order.
		SetOrderMatters(true).
		// Subscriptions are made with a nil callback, so every message goes
		// to this one handler exactly once, even if filters overlap.
		SetDefaultPublishHandler(c.route).
		SetOnConnectHandler(func(paho.Client) { c.notify(event{}) }).
		SetConnectionLostHandler(c.connectionLost)
	if o.WillTopic != "" {
		po.SetWill(o.WillTopic, o.WillPayload, 1, true)
	}
	if o.TLSConfig != nil {
		po.SetTLSConfig(o.TLSConfig.Clone())
	}
	if usesOwnDialer(u.Scheme) {
		// TCP and TLS connections acknowledge every read at once (dial.go).
		po.SetCustomOpenConnectionFn(dialer{tls: o.TLSConfig.Clone(), timeout: o.Timeout}.open)
	}
	c.pc = paho.NewClient(po)
	c.isOpen = c.pc.IsConnectionOpen
	return c, nil
}

// Connected reports whether a connection to the broker is open right now.
func (c *Client) Connected() bool {
	return !c.closing.Load() && c.isOpen()
}

// Publish queues a message and returns at once. When the client is not
// connected, is shutting down, or the outbox is full, the message is dropped
// with a log line naming the topic (never the payload): the application
// re-publishes its state from OnConnect. Drops while disconnected are logged
// at debug level, since the lost connection itself was logged as a warning. Queued messages go to the broker in
// the order of the Publish calls. Delivery failures are logged, not returned.
// The payload is copied.
func (c *Client) Publish(topic string, qos byte, retained bool, payload []byte) {
	if err := checkPublish(topic, qos); err != nil {
		c.log.Warn("mqtt publish dropped: invalid", "topic", topic, "err", err)
		return
	}
	c.pubMu.RLock()
	defer c.pubMu.RUnlock()
	if c.closing.Load() {
		c.log.Warn("mqtt publish dropped: shutting down", "topic", topic)
		return
	}
	if !c.isOpen() {
		c.log.Debug("mqtt publish dropped: not connected", "topic", topic)
		return
	}
	select {
	case c.outbox <- outMsg{topic: topic, qos: qos, retained: retained, payload: bytes.Clone(payload)}:
	default:
		c.log.Warn("mqtt publish dropped: outbox full", "topic", topic, "outbox_size", cap(c.outbox))
	}
}

// PublishWait publishes directly (bypassing the outbox, so it is not ordered
// with respect to queued Publish calls) and waits until the broker has
// acknowledged it (QoS 1/2) or paho has written it (QoS 0), bounded by ctx and
// Timeout. It returns an error wrapping ErrNotConnected when there is no open
// connection. Do not use it between receiving a command and acting on it.
func (c *Client) PublishWait(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	if err := checkPublish(topic, qos); err != nil {
		return fmt.Errorf("mqtt publish %q: %w", topic, err)
	}
	c.pubMu.RLock()
	if c.closing.Load() || !c.isOpen() {
		c.pubMu.RUnlock()
		return fmt.Errorf("mqtt publish %q: %w", topic, ErrNotConnected)
	}
	tok := c.pc.Publish(topic, qos, retained, bytes.Clone(payload))
	c.pubMu.RUnlock()
	if err := waitCtx(ctx, tok, c.opts.Timeout); err != nil {
		return fmt.Errorf("mqtt publish %q: %w", topic, err)
	}
	return nil
}

// Deliver is Publish with flow control and a receipt. When the outbox is
// full it waits for room, at most Timeout and no longer than ctx, instead of
// dropping the message (it never waits for a PUBACK). done, when not nil, is
// called exactly once: delivered is true when the broker acknowledged the
// message (QoS 1/2) or paho wrote it (QoS 0), false when it was dropped (not
// connected, shutting down, no room in time, invalid) or not acknowledged
// within Timeout of its hand-over to paho (a connection lost meanwhile). It
// runs on the caller's goroutine for a message dropped at once, else on a
// goroutine owned by Run, and must not block. A false receipt does not prove
// the broker lacks the message: a PUBACK lost with the connection looks the
// same.
func (c *Client) Deliver(ctx context.Context, topic string, qos byte, retained bool, payload []byte, done func(delivered bool)) {
	m := outMsg{topic: topic, qos: qos, retained: retained, done: done}
	if err := checkPublish(topic, qos); err != nil {
		c.log.Warn("mqtt publish dropped: invalid", "topic", topic, "err", err)
		m.report(false)
		return
	}
	m.payload = bytes.Clone(payload)
	var t *time.Timer
	for {
		// The lock is held only to enqueue, never while waiting, so that
		// shutdown (which takes it to stop publishes ahead of the will) and
		// Publish never wait behind a full outbox.
		c.pubMu.RLock()
		switch {
		case c.closing.Load():
			c.pubMu.RUnlock()
			c.log.Warn("mqtt publish dropped: shutting down", "topic", topic)
			m.report(false)
			return
		case !c.isOpen():
			c.pubMu.RUnlock()
			c.log.Debug("mqtt publish dropped: not connected", "topic", topic)
			m.report(false)
			return
		}
		select {
		case c.outbox <- m:
			c.pubMu.RUnlock()
			return
		default:
		}
		c.pubMu.RUnlock()
		if t == nil {
			t = time.NewTimer(c.opts.Timeout)
			defer t.Stop()
		}
		select {
		case <-c.room:
		case <-t.C:
			c.log.Warn("mqtt publish dropped: outbox full", "topic", topic, "outbox_size", cap(c.outbox), "waited", c.opts.Timeout)
			m.report(false)
			return
		case <-ctx.Done():
			c.log.Warn("mqtt publish dropped: outbox full", "topic", topic, "outbox_size", cap(c.outbox), "err", ctx.Err())
			m.report(false)
			return
		case <-c.stopping:
			c.log.Warn("mqtt publish dropped: shutting down", "topic", topic)
			m.report(false)
			return
		}
	}
}

func checkPublish(topic string, qos byte) error {
	if err := validateTopicName(topic); err != nil {
		return err
	}
	if qos > 2 {
		return fmt.Errorf("invalid QoS %d", qos)
	}
	return nil
}

// Run connects to the broker and keeps the connection up until ctx is done
// (retrying fast at first, then with a capped backoff: see connect.go), serves
// the outbox, subscriptions and callbacks, and blocks until ctx is done. Then
// it hands what is still queued to paho (for at most about a second),
// publishes WillPayload retained at QoS 1 on WillTopic and waits for it
// (bounded by Timeout), disconnects and returns nil. It returns an error only
// when it can never work, such as a second call.
func (c *Client) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("mqtt: Run called more than once")
	}
	defer close(c.done)

	// Token waits must outlive ctx during shutdown; they are cut short by
	// stopAcks after the final Disconnect.
	ackCtx, stopAcks := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAcks()
	pending := make(chan inflight, c.opts.OutboxSize)
	stopOutbox := make(chan struct{})
	outboxDone := make(chan struct{})
	acksDone := make(chan struct{})
	eventsDone := make(chan struct{})
	connDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { defer close(outboxDone); c.runOutbox(stopOutbox, pending) })
	wg.Go(func() { defer close(acksDone); c.runAcks(ackCtx, pending) })
	wg.Go(func() { defer close(eventsDone); c.runEvents(ctx) })
	wg.Go(func() { c.runInbox(ctx) })
	wg.Go(func() { c.warn.Run(ctx) })

	c.log.Info("mqtt connecting", "broker", c.broker, "client_id", c.opts.ClientID)
	wg.Go(func() { defer close(connDone); c.keepConnected(ctx) })
	<-ctx.Done()

	c.log.Info("mqtt shutting down", "broker", c.broker)
	c.pubMu.Lock()
	c.closing.Store(true)
	c.pubMu.Unlock()
	close(c.stopping)
	close(stopOutbox)
	<-outboxDone // drains for at most drainTimeout (+ one paho hand-over)

	// OnConnect may still be publishing "online"; let it finish so that the
	// will is the last word.
	waitLogged(c.log, eventsDone, c.opts.Timeout, "mqtt shutdown waiting for OnConnect/OnConnectionLost to return")
	// No new connection attempt may start after the Disconnect below; the
	// loop returns as soon as it sees ctx done (an attempt in flight is
	// left to paho, whose Disconnect waits for it).
	<-connDone

	c.publishWill()
	c.pc.Disconnect(disconnectQuiesceMS)
	stopAcks()
	wg.Wait()
	c.log.Info("mqtt stopped", "broker", c.broker)
	return nil
}

func isAuthError(err error) bool {
	return errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) || errors.Is(err, packets.ErrorRefusedNotAuthorised)
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
	watch = c.opts.WillTopic != "" && !slices.Contains(refused, c.opts.WillTopic)
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
			switch {
			case code != subackFailure:
			case f == c.opts.WillTopic:
				// Ours only for the echo check: an ACL may let us write it
				// and not read it, which is fine.
				refused = append(refused, f)
				c.log.Debug("mqtt broker refused the will topic's subscription: no echo check", "filter", f)
			default:
				refused = append(refused, f)
				c.log.Error("mqtt broker refused subscription", "filter", f,
					"hint", "the broker's ACL denies this login reading it (README: Broker access)")
			}
		}
	}
	return refused, nil
}

// handleMessage is paho's message handler. It runs on paho's router goroutine
// and only enqueues. When the queue is full (a burst: the retained messages
// a broker sends at subscribe time, a flood) it waits at most inboxWait for
// room, which slows the broker down instead of dropping, and then drops with
// a rate-limited log line.
func (c *Client) handleMessage(_ paho.Client, m paho.Message) {
	msg := Message{
		Topic:     m.Topic(),
		Payload:   m.Payload(),
		QoS:       m.Qos(),
		Retained:  m.Retained(),
		Duplicate: m.Duplicate(),
		Received:  time.Now(),
	}
	select {
	case c.inbox <- msg:
		return
	default:
	}
	t := time.NewTimer(inboxWait)
	defer t.Stop()
	select {
	case c.inbox <- msg:
	case <-t.C:
		c.warn.Warn("inbox full", "mqtt message dropped: handler queue full", "topic", msg.Topic, "queue_size", cap(c.inbox), "waited", inboxWait)
	case <-c.stopping: // OnMessage has stopped: nothing will take it; paho's router must not wait
	}
}

func (c *Client) runInbox(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-c.inbox:
			if c.opts.OnMessage != nil {
				c.opts.OnMessage(m)
			}
		}
	}
}

// runOutbox hands queued publishes to paho, one at a time and in order, and
// passes their tokens to runAcks, so that a slow PUBACK never holds up the
// next publish. When stop is closed it drains the queue for at most
// drainTimeout and returns, closing pending.
func (c *Client) runOutbox(stop <-chan struct{}, pending chan<- inflight) {
	defer close(pending)
	for {
		select {
		case m := <-c.outbox:
			select {
			case c.room <- struct{}{}:
			default:
			}
			c.send(m, pending)
		case <-stop:
			c.drain(pending)
			return
		}
	}
}

func (c *Client) drain(pending chan<- inflight) {
	deadline := time.Now().Add(drainTimeout)
	for {
		select {
		case m := <-c.outbox:
			if time.Now().After(deadline) {
				m.report(false)
				dropped := 1
				for len(c.outbox) > 0 {
					(<-c.outbox).report(false)
					dropped++
				}
				c.log.Warn("mqtt publishes dropped at shutdown: drain took too long", "dropped", dropped)
				return
			}
			c.send(m, pending)
		default:
			return
		}
	}
}

func (c *Client) send(m outMsg, pending chan<- inflight) {
	// paho would otherwise complete a QoS 0 token without sending while it
	// reconnects, and store QoS 1/2 publishes to replay them after a
	// reconnect: stale state we do not want, since OnConnect re-publishes.
	if !c.isOpen() {
		c.log.Debug("mqtt publish dropped: not connected", "topic", m.topic)
		m.report(false)
		return
	}
	// paho's Publish blocks at most WriteTimeout (= Timeout) handing the
	// packet to its writer; it does not wait for the PUBACK.
	tok := c.pc.Publish(m.topic, m.qos, m.retained, m.payload)
	pending <- inflight{topic: m.topic, tok: tok, deadline: time.Now().Add(c.opts.Timeout), done: m.done}
}

// runAcks checks publish tokens in the order they were issued and logs
// failures. Each wait ends at the publish's own deadline (Timeout after the
// hand-over), so a backlog waits at most about Timeout in all.
func (c *Client) runAcks(ctx context.Context, pending <-chan inflight) {
	for p := range pending {
		err := waitCtx(ctx, p.tok, time.Until(p.deadline))
		if p.done != nil {
			p.done(err == nil)
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			c.log.Debug("mqtt publish unconfirmed at shutdown", "topic", p.topic)
		default:
			c.log.Warn("mqtt publish failed", "topic", p.topic, "err", err)
		}
	}
}

// publishWill publishes the will explicitly: a broker discards the will of a
// client that disconnects cleanly.
func (c *Client) publishWill() {
	if c.opts.WillTopic == "" {
		return
	}
	if !c.isOpen() {
		c.log.Info("mqtt not connected at shutdown; will not published explicitly", "topic", c.opts.WillTopic)
		return
	}
	tok := c.pc.Publish(c.opts.WillTopic, 1, true, []byte(c.opts.WillPayload))
	if err := wait(tok, c.opts.Timeout); err != nil {
		c.log.Warn("mqtt will publish at shutdown failed", "topic", c.opts.WillTopic, "err", err)
		return
	}
	c.log.Debug("mqtt will published at shutdown", "topic", c.opts.WillTopic)
}

// wait waits for tok at most d and returns its error. paho's Token.Wait has
// no bound; WaitTimeout's false result carries no error, so both are checked.
func wait(tok paho.Token, d time.Duration) error {
	if !tok.WaitTimeout(d) {
		return fmt.Errorf("%w after %s", errTimeout, d)
	}
	return tok.Error()
}

// waitCtx is wait that also returns when ctx is done.
func waitCtx(ctx context.Context, tok paho.Token, d time.Duration) error {
	select {
	case <-tok.Done():
		return tok.Error()
	default:
	}
	if d <= 0 {
		return fmt.Errorf("%w (deadline passed)", errTimeout)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return fmt.Errorf("%w after %s", errTimeout, d)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitLogged waits for done and logs msg every d while it has not happened.
func waitLogged(log *slog.Logger, done <-chan struct{}, d time.Duration, msg string) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			log.Warn(msg)
		}
	}
}
