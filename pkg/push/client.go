// Package push follows the Sesame locks' AWS IoT device shadows, the
// unofficial feed CANDY HOUSE's own apps take lock states from: an
// anonymous Cognito identity's temporary credentials, MQTT over a
// SigV4-presigned WebSocket (paho.mqtt.golang), and the free one-shot
// shadow GET. No Web API request is spent.
//
// One owner goroutine (Run) holds the connection, renews the credentials
// before they expire and replaces the connection before AWS's 24 h limit
// without a gap (the new one is subscribed before the old one is dropped),
// reconnects with capped backoff and jitter, and calls OnDocument in
// arrival order.
package push

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentity"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logthrottle"
)

// Defaults: the official iOS SDK's values as of 2025-12.
const (
	DefaultPoolID   = "ap-northeast-1:0a1820f1-dbb3-4bca-9227-2a92f6abf0ae"
	DefaultEndpoint = "d06107753ay3c67v7y9pa-ats.iot.ap-northeast-1.amazonaws.com"
	// OldEndpoint is the endpoint pysesame3 and homebridge-open-sesame use.
	OldEndpoint = "a3i4hui4gxwoo8-ats.iot.ap-northeast-1.amazonaws.com"
)

// Topic suffixes of a lock's named shadow.
const (
	topicPrefix     = "$aws/things/sesame2/shadow/name/"
	suffixDocuments = "/update/documents" // official SDK since 2025-12: current.state.reported
	suffixAccepted  = "/update/accepted"  // both peers: state.reported
)

// Timings.
const (
	maxConnAge      = 23 * time.Hour // AWS IoT closes a WebSocket after 24 h
	stableAfter     = time.Minute    // a connection lost sooner counts as a failed attempt
	dialTimeout     = 30 * time.Second
	connectTimeout  = 15 * time.Second
	subscribeWait   = 10 * time.Second
	disconnectQuiet = 250 // ms paho may spend sending DISCONNECT
	shadowTimeout   = 10 * time.Second
	keepAlive       = 60 * time.Second
	backoffFirst    = 500 * time.Millisecond
	backoffCap      = 60 * time.Second
	inboxSize       = 256
	topicsPerSub    = 8 // AWS IoT takes at most 8 filters in one SUBSCRIBE
	maxShadowBody   = 256 << 10
)

// Health is the feed's state.
type Health struct {
	Connected bool
	Reason    string    // why not connected, in words for a log line / HA attribute ("" when connected)
	Since     time.Time // when Connected last changed
}

// Options configure a Client.
type Options struct {
	Locks      []string // lock UUIDs
	PoolID     string   // Cognito identity pool; default DefaultPoolID
	Region     string   // default: the pool id's part before ':'
	Endpoint   string   // an IoT host name or a ws:// / wss:// URL; default DefaultEndpoint
	CognitoURL string   // overrides the Cognito endpoint (tests); default the region's
	ShadowURL  string   // base of the shadow GET (tests); default https://<endpoint host>
	HTTPClient *http.Client
	OnDocument func(Document) // on the client's goroutine, in arrival order; returns quickly
	OnHealth   func(Health)   // on every change
	Logger     *slog.Logger
}

// Client is the push feed of a set of locks.
type Client struct {
	locks      map[string]string // upper-case UUID -> itself
	topics     []string
	region     string
	endpoint   *url.URL
	shadowBase string
	hc         *http.Client
	signer     *v4.Signer
	creds      *credSource
	secrets    *secretList
	onDoc      func(Document)
	onHealth   func(Health)
	log        *slog.Logger
	warn       *logthrottle.Limiter
	now        func() time.Time

	inbox    chan inMsg
	overflow chan struct{}

	// owned by Run's goroutine
	health Health
	mem    map[string]*lockMem
}

// inMsg is one document waiting for the owner goroutine.
type inMsg struct {
	uuid     string // set for shadow reads; from the topic for push
	topic    string
	payload  []byte
	source   string
	received time.Time
	started  time.Time // shadow reads: when the GET was sent
}

// lockMem is what the owner remembers of a lock's shadow, so that partial
// update/accepted documents and duplicates (both topics, two connections
// during a handover) are handled.
type lockMem struct {
	mechst      *mechst
	hubs        *bool
	version     int64
	deliveredAt time.Time
}

// New checks the options and returns a Client; nothing is sent until Run.
func New(o Options) (*Client, error) {
	if len(o.Locks) == 0 {
		return nil, errors.New("push: no locks")
	}
	c := &Client{
		locks:    map[string]string{},
		onDoc:    o.OnDocument,
		onHealth: o.OnHealth,
		log:      o.Logger,
		now:      time.Now,
		inbox:    make(chan inMsg, inboxSize),
		overflow: make(chan struct{}, 1),
		mem:      map[string]*lockMem{},
		secrets:  &secretList{},
		signer:   v4.NewSigner(),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.warn = logthrottle.New(c.log, 0, 0)
	if c.onDoc == nil {
		c.onDoc = func(Document) {}
	}
	if c.onHealth == nil {
		c.onHealth = func(Health) {}
	}
	for _, u := range o.Locks {
		u = strings.ToUpper(strings.TrimSpace(u))
		if u == "" || strings.ContainsAny(u, "/+#") {
			return nil, fmt.Errorf("push: lock %q is not a UUID", u)
		}
		if _, dup := c.locks[u]; dup {
			continue
		}
		c.locks[u] = u
		c.topics = append(c.topics, topicPrefix+u+suffixDocuments, topicPrefix+u+suffixAccepted)
	}

	pool := o.PoolID
	if pool == "" {
		pool = DefaultPoolID
	}
	c.region = o.Region
	if c.region == "" {
		var err error
		if c.region, err = RegionOf(pool); err != nil {
			return nil, fmt.Errorf("push: %w", err)
		}
	}
	ep, err := ParseEndpoint(o.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	c.endpoint = ep
	c.shadowBase = strings.TrimRight(o.ShadowURL, "/")
	if c.shadowBase == "" {
		c.shadowBase = ShadowBaseFor(ep)
	}

	c.hc = o.HTTPClient
	if c.hc == nil {
		c.hc = &http.Client{
			Timeout: 20 * time.Second,
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				TLSHandshakeTimeout:   10 * time.Second,
				ResponseHeaderTimeout: 15 * time.Second,
				IdleConnTimeout:       90 * time.Second,
				MaxIdleConns:          4,
				ForceAttemptHTTP2:     true,
			},
		}
	}
	co := cognitoidentity.Options{Region: c.region, HTTPClient: c.hc}
	if o.CognitoURL != "" {
		co.BaseEndpoint = aws.String(strings.TrimRight(o.CognitoURL, "/"))
	}
	c.creds = &credSource{api: cognitoidentity.New(co), pool: pool, now: c.now, secrets: c.secrets}
	return c, nil
}

// RegionOf returns the AWS region of a Cognito identity pool id (the part
// before ':').
func RegionOf(pool string) (string, error) {
	region, id, ok := strings.Cut(pool, ":")
	if !ok || region == "" || id == "" || strings.ContainsAny(region, "/:?# ") {
		return "", fmt.Errorf("identity pool id %q is not REGION:ID", pool)
	}
	return region, nil
}

// ParseEndpoint turns a host name, or a ws:// or wss:// URL, into the
// WebSocket URL to presign (path /mqtt when none is given). Empty means
// DefaultEndpoint.
func ParseEndpoint(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		s = DefaultEndpoint
	}
	if !strings.Contains(s, "://") {
		if strings.ContainsAny(s, "/?#@ ") {
			return nil, fmt.Errorf("endpoint %q is neither a host name nor a ws:// or wss:// URL", s)
		}
		s = "wss://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("endpoint: not a valid URL")
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("endpoint: scheme must be ws or wss, got %q", u.Scheme)
	}
	if u.Hostname() == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("endpoint: must be a host with an optional port and path, without user info or query")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/mqtt"
	}
	return u, nil
}

// ShadowBaseFor is the default base of the shadow GET for an endpoint:
// https (http for ws://) on the same host.
func ShadowBaseFor(ep *url.URL) string {
	scheme := "https"
	if ep.Scheme == "ws" {
		scheme = "http"
	}
	return scheme + "://" + ep.Host
}

// ReadShadow reads a lock's whole shadow once over HTTPS (the free SigV4
// iotdata GET) and returns it as a Document with Source SourceShadow.
func (c *Client) ReadShadow(ctx context.Context, uuid string) (Document, error) {
	uuid = strings.ToUpper(strings.TrimSpace(uuid))
	body, received, err := c.getShadow(ctx, uuid)
	if err != nil {
		return Document{}, err
	}
	d, err := Decode(uuid, body)
	if err != nil {
		return Document{}, fmt.Errorf("push shadow %s: %w", uuid, err)
	}
	d.Source, d.Received = SourceShadow, received
	return d, nil
}

// getShadow sends the signed GET and returns the body of a 200 answer.
func (c *Client) getShadow(ctx context.Context, uuid string) ([]byte, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, shadowTimeout)
	defer cancel()
	cr, err := c.creds.get(ctx)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("push shadow %s: %s", uuid, c.secrets.scrub(err.Error()))
	}
	u := c.shadowBase + "/things/sesame2/shadow?name=" + url.QueryEscape(uuid)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("push shadow %s: %w", uuid, err)
	}
	if err := c.signer.SignHTTP(ctx, cr.aws(), req, EmptyPayloadHash, ServiceData, c.region, c.now()); err != nil {
		return nil, time.Time{}, fmt.Errorf("push shadow %s: sign: %w", uuid, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("push shadow %s: %s", uuid, c.secrets.scrub(err.Error()))
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := readLimited(resp, maxShadowBody)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("push shadow %s: %w", uuid, err)
	}
	if resp.StatusCode == http.StatusForbidden {
		c.creds.invalidate(cr) // the next call asks for new credentials
	}
	if resp.StatusCode != http.StatusOK {
		return nil, time.Time{}, fmt.Errorf("push shadow %s: HTTP %d", uuid, resp.StatusCode)
	}
	return body, c.now(), nil
}

// conn is one MQTT connection to the endpoint.
type conn struct {
	cl      paho.Client
	id      string
	started time.Time
	creds   creds
	lost    chan error
}

func (cn *conn) close() {
	if cn != nil && cn.cl != nil {
		cn.cl.Disconnect(disconnectQuiet)
	}
}

// replaceAt is when cn must give way to a new connection: before its
// credentials expire and before AWS's 24 h limit.
func (cn *conn) replaceAt() time.Time {
	t := cn.creds.renewAt()
	if age := cn.started.Add(maxConnAge); age.Before(t) {
		t = age
	}
	return t
}

// dial fetches credentials (when due), opens a connection and subscribes
// every lock's topics. Every step is bounded.
func (c *Client) dial(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	cr, err := c.creds.get(ctx)
	if err != nil {
		return nil, err
	}
	signed, err := presignURL(ctx, c.signer, c.endpoint, cr, c.region, c.now())
	if err != nil {
		return nil, err
	}
	if i := strings.Index(signed, "X-Amz-Signature="); i >= 0 {
		sig := signed[i+len("X-Amz-Signature="):]
		if j := strings.IndexByte(sig, '&'); j >= 0 {
			sig = sig[:j]
		}
		c.secrets.add(sig)
	}
	// A random UUID, as the official SDK and both peers use: the pool's
	// policy may expect nothing else.
	cn := &conn{id: randomUUID(), started: c.now(), creds: cr, lost: make(chan error, 1)}
	opts := paho.NewClientOptions().
		AddBroker(signed).
		SetClientID(cn.id).
		SetProtocolVersion(4). // no silent second dial with MQTT 3.1, which AWS IoT refuses
		SetCleanSession(true).
		SetKeepAlive(keepAlive).
		SetPingTimeout(10 * time.Second).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(10 * time.Second).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetTLSConfig(c.tlsConfig()).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case cn.lost <- err:
			default:
			}
		})
	cn.cl = paho.NewClient(opts)
	if err := wait(ctx, cn.cl.Connect(), connectTimeout+time.Second); err != nil {
		cn.cl.Disconnect(0)
		if errors.Is(err, websocket.ErrBadHandshake) {
			// The endpoint answered but refused the upgrade (403 for a
			// signature or credentials it does not accept): the next
			// attempt asks for new credentials.
			c.creds.invalidate(cr)
		}
		return nil, fmt.Errorf("connect to %s: %s", c.endpoint.Host, c.secrets.scrub(err.Error()))
	}
	handler := func(_ paho.Client, m paho.Message) {
		msg := inMsg{topic: m.Topic(), payload: m.Payload(), source: SourcePush, received: time.Now()}
		select {
		case c.inbox <- msg:
		default:
			select {
			case c.overflow <- struct{}{}:
			default:
			}
		}
	}
	for i := 0; i < len(c.topics); i += topicsPerSub {
		filters := map[string]byte{}
		for _, t := range c.topics[i:min(i+topicsPerSub, len(c.topics))] {
			filters[t] = 0
		}
		tok := cn.cl.SubscribeMultiple(filters, handler)
		if err := wait(ctx, tok, subscribeWait); err != nil {
			cn.close()
			return nil, fmt.Errorf("subscribe at %s: %s", c.endpoint.Host, c.secrets.scrub(err.Error()))
		}
		for t, code := range tok.(*paho.SubscribeToken).Result() {
			if code == 0x80 {
				cn.close()
				return nil, fmt.Errorf("subscribe at %s: %s refused", c.endpoint.Host, t)
			}
		}
	}
	return cn, nil
}

// tlsConfig is the WebSocket's TLS configuration: that of the HTTP
// client's transport when it has one (so a client built to trust a test
// CA trusts it for the endpoint too), else the system roots.
func (c *Client) tlsConfig() *tls.Config {
	if t, ok := c.hc.Transport.(*http.Transport); ok && t.TLSClientConfig != nil {
		cfg := t.TLSClientConfig.Clone()
		cfg.NextProtos = nil // the WebSocket is HTTP/1.1
		return cfg
	}
	return &tls.Config{MinVersion: tls.VersionTLS12}
}

// wait waits for a paho token, bounded by d and ctx.
func wait(ctx context.Context, tok paho.Token, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return fmt.Errorf("no answer within %s", d)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff is the delay before reconnect attempt n (1, 2, ...): 0.5 s
// doubling up to a minute, each with ±20 % jitter.
func backoff(n int) time.Duration {
	d := backoffCap
	if n < 8 {
		d = min(backoffCap, backoffFirst<<max(n-1, 0))
	}
	return time.Duration(float64(d) * (0.8 + 0.4*mrand.Float64()))
}

// randomUUID returns a version 4 UUID.
func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

type dialResult struct {
	cn  *conn
	err error
}

// Run holds the feed until ctx is done, then returns nil. It reports every
// change of Health and every document. Call it once per Client.
func (c *Client) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	var (
		cur       *conn
		dialing   bool
		attempt   int
		dialed    = make(chan dialResult)
		retry     = time.NewTimer(0)
		replace   = time.NewTimer(time.Hour)
		shadowOn  bool // a round of shadow reads is running
		shadowDue bool // another round is wanted when it ends
		shadowEnd = make(chan struct{})
	)
	replace.Stop()
	defer retry.Stop()
	defer replace.Stop()
	defer func() { cur.close() }()

	startDial := func() {
		dialing = true
		wg.Go(func() {
			cn, err := c.dial(ctx)
			select {
			case dialed <- dialResult{cn, err}:
			case <-ctx.Done():
				cn.close()
			}
		})
	}
	startShadows := func() {
		if shadowOn {
			shadowDue = true
			return
		}
		shadowOn = true
		wg.Go(func() {
			c.readShadows(ctx)
			select {
			case shadowEnd <- struct{}{}:
			case <-ctx.Done():
			}
		})
	}

	c.setHealth(false, "connecting")
	for {
		var lost chan error
		if cur != nil {
			lost = cur.lost
		}
		select {
		case <-ctx.Done():
			return nil
		case <-retry.C:
			if !dialing {
				startDial()
			}
		case <-replace.C:
			if !dialing && cur != nil {
				c.log.Debug("push replacing the connection", "conn", cur.id, "age", c.now().Sub(cur.started).Round(time.Second))
				startDial()
			}
		case r := <-dialed:
			dialing = false
			if r.err != nil {
				reason := c.secrets.scrub(r.err.Error())
				attempt++
				d := backoff(attempt)
				if cur != nil { // a replacement failed; the old connection still works
					c.warn.Warn("push replace", "push could not replace the connection; keeping the old one", "error", reason, "retry_in", d.Round(time.Millisecond))
					replace.Reset(d)
					continue
				}
				c.warn.Warn("push connect", "push feed cannot connect", "error", reason, "retry_in", d.Round(time.Millisecond))
				c.setHealth(false, reason)
				retry.Reset(d)
				continue
			}
			old := cur
			cur = r.cn // attempt is reset once the connection proved stable (see lost)
			c.setHealth(true, "")
			if old != nil {
				old.close() // after the new one is subscribed: no gap
				c.log.Info("push connection replaced", "conn", cur.id, "credentials", cur.creds)
			} else {
				c.log.Info("push connected", "endpoint", c.endpoint.Host, "conn", cur.id, "locks", len(c.locks), "credentials", cur.creds)
			}
			replace.Reset(max(cur.replaceAt().Sub(c.now()), 0))
			startShadows()
		case err := <-lost:
			reason := "connection lost"
			if err != nil {
				reason += ": " + c.secrets.scrub(err.Error())
			}
			// A connection that dies soon after it was made (the endpoint
			// drops it after the subscribe) counts as a failed attempt:
			// otherwise it is redialled at once, forever.
			short := c.now().Sub(cur.started) < stableAfter
			c.warn.Warn("push lost", "push connection lost", "conn", cur.id, "error", reason, "short_lived", short)
			cur.close()
			cur = nil
			replace.Stop()
			c.setHealth(false, reason)
			if !dialing {
				if short {
					attempt++
					retry.Reset(backoff(attempt))
				} else {
					attempt = 0
					retry.Reset(0) // at once; failures back off from 0.5 s
				}
			}
		case m := <-c.inbox:
			c.handle(m)
		case <-c.overflow:
			c.warn.Warn("push overflow", "push documents arrived faster than they were handled; some were dropped, reading the shadows again")
			startShadows()
		case <-shadowEnd:
			shadowOn = false
			if shadowDue {
				shadowDue = false
				startShadows()
			}
		}
	}
}

// readShadows reads every lock's shadow once and queues the answers for
// the owner goroutine.
func (c *Client) readShadows(ctx context.Context) {
	for u := range c.locks {
		started := c.now()
		body, received, err := c.getShadow(ctx, u)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.warn.Warn("push shadow read", "push shadow read failed", "lock", u, "error", err)
			continue
		}
		select {
		case c.inbox <- inMsg{uuid: u, payload: body, source: SourceShadow, received: received, started: started}:
		case <-ctx.Done():
			return
		}
	}
}

// setHealth reports a change of the feed's state.
func (c *Client) setHealth(connected bool, reason string) {
	if connected {
		reason = ""
	}
	h := c.health
	if !h.Since.IsZero() && h.Connected == connected && h.Reason == reason {
		return
	}
	if h.Since.IsZero() || h.Connected != connected {
		h.Since = c.now()
	}
	h.Connected, h.Reason = connected, reason
	c.health = h
	c.onHealth(h)
}

// lockOf returns the configured lock a topic belongs to, and whether the
// topic carries the full state (update/documents).
func (c *Client) lockOf(topic string) (uuid string, full, ok bool) {
	rest, found := strings.CutPrefix(topic, topicPrefix)
	if !found {
		return "", false, false
	}
	if u, found := strings.CutSuffix(rest, suffixDocuments); found {
		uuid, full = u, true
	} else if u, found := strings.CutSuffix(rest, suffixAccepted); found {
		uuid = u
	} else {
		return "", false, false
	}
	uuid, ok = c.locks[strings.ToUpper(uuid)]
	return uuid, full, ok
}

// handle decodes one queued document and delivers it unless it is
// malformed, for an unknown lock, a duplicate or older than what was
// delivered.
func (c *Client) handle(m inMsg) {
	uuid, full := m.uuid, true
	if m.source == SourcePush {
		var ok bool
		uuid, full, ok = c.lockOf(m.topic)
		if !ok {
			c.warn.Warn("push unknown lock", "push document for a lock that is not configured: ignored", "topic", truncate(m.topic, 120))
			return
		}
	}
	r, err := decodeDocument(m.payload)
	if errors.Is(err, errIgnored) {
		c.log.Debug("push document without a reported state: ignored", "lock", uuid, "source", m.source)
		return
	}
	if err != nil {
		c.warn.Warn("push bad document", "push document not understood: ignored", "lock", uuid, "source", m.source, "error", err, "bytes", len(m.payload))
		return
	}
	mem := c.mem[uuid]
	if mem == nil {
		mem = &lockMem{}
		c.mem[uuid] = mem
	}
	if r.version > 0 && mem.version > 0 && r.version <= mem.version {
		// A shadow read sent after the last delivery that still shows an
		// older version means the shadow was recreated: take it.
		recreated := m.source == SourceShadow && r.version < mem.version && m.started.After(mem.deliveredAt)
		if !recreated {
			c.log.Debug("push document already seen or older: ignored", "lock", uuid, "source", m.source, "version", r.version, "have", mem.version)
			return
		}
	}
	if r.mechst != nil {
		mem.mechst = r.mechst
	}
	if full || r.hasHubs {
		mem.hubs = r.hubs
	}
	if r.version > 0 {
		mem.version = r.version
	}
	if mem.mechst == nil {
		c.log.Debug("push partial document before any full one: kept for later", "lock", uuid)
		return
	}
	mem.deliveredAt = c.now()
	c.onDoc(Document{
		UUID:     uuid,
		Status:   mem.mechst.status(mem.hubs, r.at),
		Critical: mem.mechst.critical,
		Source:   m.source,
		Received: m.received,
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// readLimited reads at most n bytes of a body; a longer one is an error.
func readLimited(resp *http.Response, n int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, n+1))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if int64(len(b)) > n {
		return nil, fmt.Errorf("answer longer than %d bytes", n)
	}
	return b, nil
}
