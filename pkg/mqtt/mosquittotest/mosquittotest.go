// Package mosquittotest runs a real Mosquitto broker for tests, on a free
// 127.0.0.1 port with its config, persistence and log in t.TempDir(), and
// offers a recording test client.
//
// It uses paho directly (not package mqtt), so that package mqtt's own tests
// can use it.
package mosquittotest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

const (
	startTimeout = 5 * time.Second // until the port accepts
	stopTimeout  = 5 * time.Second // SIGTERM grace before SIGKILL
	opTimeout    = 5 * time.Second // bound on every paho token wait
	startTries   = 3               // fresh ports tried if another process grabs ours
)

type config struct {
	user, pass string
	users      [][2]string // further accounts: user, password
	noDelay    bool
	tls        *TLS
	acl        string
	aclSet     bool
}

// TLS describes a second listener, on its own port (TLSURL), that speaks
// MQTT over TLS. The plain listener stays, for the test helpers (Publish,
// Connect, Subscribe). Files are PEM; NewPKI makes them.
type TLS struct {
	CAFile   string // cafile: the CA that signs client certificates
	CertFile string // certfile: the broker's certificate
	KeyFile  string // keyfile: its key
	// RequireCertificate sets require_certificate true: the broker refuses
	// a client without a certificate signed by CAFile.
	RequireCertificate bool
}

// Option configures Start.
type Option func(*config)

// WithLogin makes the broker refuse anonymous clients (allow_anonymous false)
// and accept user/pass from a password file written with mosquitto_passwd.
// The broker's own Subscribe and Publish helpers log in with it.
func WithLogin(user, pass string) Option {
	return func(c *config) { c.user, c.pass = user, pass }
}

// WithUser adds an account besides the one of WithLogin (which it needs:
// without WithLogin the broker is anonymous and ignores passwords).
func WithUser(user, pass string) Option {
	return func(c *config) { c.users = append(c.users, [2]string{user, pass}) }
}

// WithTLS adds a TLS listener (see TLS and Broker.TLSURL).
func WithTLS(o TLS) Option {
	return func(c *config) { c.tls = &o }
}

// WithACL makes the broker enforce acl as its acl_file (Mosquitto's
// syntax: "user NAME" then "topic read|write|readwrite FILTER" lines).
// Everything the file does not grant is denied, to the helpers' login too.
// The broker then logs everything (log_type all), denials included.
func WithACL(acl string) Option {
	return func(c *config) { c.acl, c.aclSet = acl, true }
}

// WithNoDelay sets set_tcp_nodelay, which Mosquitto leaves off by default and
// Home Assistant's Mosquitto add-on does not set. Tests and benchmarks run
// against the defaults, as users do; this is for comparing the two.
func WithNoDelay() Option {
	return func(c *config) { c.noDelay = true }
}

// Broker is a running (or stopped) Mosquitto process.
type Broker struct {
	t       testing.TB
	cfg     config
	bin     string
	dir     string
	conf    string
	logPath string // mosquitto's log_dest file
	outPath string // its stdout and stderr (start-up errors land here)
	port    int
	tlsPort int

	acceptedAt atomicTime // when the last (re)start first accepted a connection

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// Start starts a broker and registers t.Cleanup to kill it. Without a
// mosquitto binary it fails the test when $CI is set and skips it otherwise.
func Start(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	bin := lookup("mosquitto", "/usr/sbin/mosquitto")
	if bin == "" {
		missing(t, "mosquitto")
	}
	dir := t.TempDir()
	b := &Broker{
		t:       t,
		cfg:     cfg,
		bin:     bin,
		dir:     dir,
		conf:    filepath.Join(dir, "mosquitto.conf"),
		logPath: filepath.Join(dir, "mosquitto.log"),
		outPath: filepath.Join(dir, "mosquitto.out"),
	}
	if cfg.user == "" && len(cfg.users) > 0 {
		t.Fatal("mosquittotest: WithUser needs WithLogin (an anonymous broker ignores passwords)")
	}
	if cfg.user != "" {
		if err := b.writePasswords(t); err != nil {
			t.Fatalf("mosquittotest: %v", err)
		}
	}
	if cfg.aclSet {
		if err := os.WriteFile(filepath.Join(dir, "acl"), []byte(cfg.acl), 0o600); err != nil {
			t.Fatalf("mosquittotest: write ACL: %v", err)
		}
	}
	t.Cleanup(b.Kill)

	var err error
	for range startTries {
		if b.port, err = freePort(); err != nil {
			t.Fatalf("mosquittotest: %v", err)
		}
		if cfg.tls != nil {
			if b.tlsPort, err = freePort(); err != nil {
				t.Fatalf("mosquittotest: %v", err)
			}
		}
		if err = b.writeConfig(); err != nil {
			t.Fatalf("mosquittotest: %v", err)
		}
		var exited bool
		if exited, err = b.start(); err == nil || !exited {
			break // started, or failed for a reason a new port will not fix
		}
	}
	if err != nil {
		t.Fatalf("mosquittotest: %v\n%s", err, b.Logs())
	}
	return b
}

func missing(t testing.TB, what string) {
	t.Helper()
	msg := fmt.Sprintf("mosquittotest: %s not found in $PATH or /usr/sbin, /usr/bin (apt-get install mosquitto)", what)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// lookup finds a program in $PATH, then at fallback.
func lookup(name, fallback string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if fi, err := os.Stat(fallback); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return fallback
	}
	return ""
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (b *Broker) writePasswords(t testing.TB) error {
	t.Helper()
	bin := lookup("mosquitto_passwd", "/usr/bin/mosquitto_passwd")
	if bin == "" {
		missing(t, "mosquitto_passwd")
	}
	file := filepath.Join(b.dir, "passwd")
	out, err := exec.Command(bin, "-c", "-b", file, b.cfg.user, b.cfg.pass).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mosquitto_passwd: %w: %s", err, out)
	}
	for _, u := range b.cfg.users {
		if out, err := exec.Command(bin, "-b", file, u[0], u[1]).CombinedOutput(); err != nil {
			return fmt.Errorf("mosquitto_passwd %s: %w: %s", u[0], err, out)
		}
	}
	return nil
}

func (b *Broker) writeConfig() error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "listener %d 127.0.0.1\n", b.port)
	// Started as root, mosquitto 2 drops to user "mosquitto", which cannot
	// read files in our private temp dir.
	sb.WriteString("user root\n")
	if b.cfg.user != "" {
		sb.WriteString("allow_anonymous false\n")
		fmt.Fprintf(&sb, "password_file %s\n", filepath.Join(b.dir, "passwd"))
	} else {
		sb.WriteString("allow_anonymous true\n")
	}
	sb.WriteString("persistence true\n")
	fmt.Fprintf(&sb, "persistence_location %s%c\n", b.dir, filepath.Separator)
	// No set_tcp_nodelay: Mosquitto's default, and what Home Assistant's
	// Mosquitto add-on ships. Its Nagle algorithm then holds a small packet
	// while an earlier one is unacknowledged; package mqtt acknowledges at
	// once so that this costs nothing (see its quickack).
	if b.cfg.noDelay {
		sb.WriteString("set_tcp_nodelay true\n")
	}
	if b.cfg.aclSet {
		fmt.Fprintf(&sb, "acl_file %s\n", filepath.Join(b.dir, "acl"))
		// Denials ("Denied PUBLISH from ...") are logged at debug level.
		sb.WriteString("log_type all\n")
	}
	// Listener options follow their listener line; the ones above are
	// global (per_listener_settings false), so the ACL and the logins hold
	// on both listeners.
	if t := b.cfg.tls; t != nil {
		fmt.Fprintf(&sb, "listener %d 127.0.0.1\n", b.tlsPort)
		if t.CAFile != "" {
			fmt.Fprintf(&sb, "cafile %s\n", t.CAFile)
		}
		fmt.Fprintf(&sb, "certfile %s\nkeyfile %s\n", t.CertFile, t.KeyFile)
		fmt.Fprintf(&sb, "require_certificate %t\n", t.RequireCertificate)
	}
	fmt.Fprintf(&sb, "log_dest file %s\n", b.logPath)
	sb.WriteString("log_timestamp_format %H:%M:%S\n")
	if err := os.WriteFile(b.conf, []byte(sb.String()), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// start runs mosquitto and waits until its port accepts. exited reports
// whether the process died during start-up (e.g. port taken).
func (b *Broker) start() (exited bool, err error) {
	out, err := os.OpenFile(b.outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return false, fmt.Errorf("open output file: %w", err)
	}
	defer out.Close() // the child keeps its own descriptor
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("start %s: %w", b.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the exit status is read from cmd.ProcessState
		close(done)
	}()
	b.mu.Lock()
	b.cmd, b.exited = cmd, done
	b.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		err := b.accepts()
		if err == nil {
			b.acceptedAt.Store(time.Now())
			return false, nil
		}
		select {
		case <-done:
			return true, fmt.Errorf("mosquitto exited during start-up (%s)", cmd.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.signal(syscall.SIGKILL, stopTimeout)
			return false, fmt.Errorf("mosquitto did not accept connections on %s within %s: %w", b.Addr(), startTimeout, err)
		}
	}
}

// accepts reports whether every listener accepts a TCP connection.
func (b *Broker) accepts() error {
	addrs := []string{b.Addr()}
	if b.cfg.tls != nil {
		addrs = append(addrs, b.TLSAddr())
	}
	for _, a := range addrs {
		conn, err := net.DialTimeout("tcp", a, 250*time.Millisecond)
		if err != nil {
			return err
		}
		_ = conn.Close()
	}
	return nil
}

// AcceptedAt is when the broker, after its last Start or Restart, first
// accepted a connection (within the 20 ms the start-up poll waits between
// tries): the moment a client could have been connected again.
func (b *Broker) AcceptedAt() time.Time { return b.acceptedAt.Load() }

// TLSURL is the TLS listener's address as ssl://127.0.0.1:PORT (WithTLS).
func (b *Broker) TLSURL() string { return "ssl://" + b.TLSAddr() }

// TLSAddr is the TLS listener's address as 127.0.0.1:PORT (WithTLS).
func (b *Broker) TLSAddr() string {
	if b.cfg.tls == nil {
		b.t.Fatal("mosquittotest: TLSAddr without WithTLS")
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.tlsPort))
}

// URL is the broker's address as tcp://127.0.0.1:PORT.
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// Addr is the broker's address as 127.0.0.1:PORT.
func (b *Broker) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

// Logs returns the broker's log file and anything it wrote to stdout/stderr.
func (b *Broker) Logs() string {
	var sb strings.Builder
	for _, p := range []string{b.outPath, b.logPath} {
		data, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(&sb, "(%s: %v)\n", filepath.Base(p), err)
		}
		if len(data) > 0 {
			fmt.Fprintf(&sb, "--- %s ---\n%s", filepath.Base(p), data)
		}
	}
	return sb.String()
}

// Stop sends SIGTERM and waits for the broker to exit (SIGKILL after 5 s).
// Stopping a stopped broker does nothing.
func (b *Broker) Stop() {
	if !b.signal(syscall.SIGTERM, stopTimeout) {
		b.signal(syscall.SIGKILL, stopTimeout)
	}
}

// Kill sends SIGKILL and waits for the broker to exit. Killing a stopped
// broker does nothing.
func (b *Broker) Kill() { b.signal(syscall.SIGKILL, stopTimeout) }

// signal sends sig if the broker runs and waits up to d for it to exit. It
// reports whether the broker is not running afterwards.
func (b *Broker) signal(sig syscall.Signal, d time.Duration) bool {
	b.mu.Lock()
	cmd, done := b.cmd, b.exited
	b.mu.Unlock()
	if cmd == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
	}
	_ = cmd.Process.Signal(sig) // fails only if it already exited, which done reports
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// Restart starts the broker again on the same port (stopping it first if it
// still runs) and waits until it accepts connections.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	var err error
	// The old listening socket may linger for a moment; try a few times.
	for range startTries {
		var exited bool
		if exited, err = b.start(); err == nil || !exited {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatalf("mosquittotest: restart: %v\n%s", err, b.Logs())
	}
}

// atomicTime is a time.Time safe for concurrent use.
type atomicTime struct {
	mu sync.Mutex
	t  time.Time
}

func (a *atomicTime) Store(t time.Time) { a.mu.Lock(); a.t = t; a.mu.Unlock() }

func (a *atomicTime) Load() time.Time { a.mu.Lock(); defer a.mu.Unlock(); return a.t }

func randomID(prefix string) string {
	var p [6]byte
	_, _ = rand.Read(p[:]) // crypto/rand.Read does not fail
	return prefix + "-" + hex.EncodeToString(p[:])
}

func (b *Broker) clientOptions(prefix string) *paho.ClientOptions {
	o := paho.NewClientOptions().
		AddBroker(b.URL()).
		SetClientID(randomID(prefix)).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetConnectTimeout(opTimeout).
		SetWriteTimeout(opTimeout).
		SetConnectionLostHandler(nil)
	if b.cfg.user != "" {
		o.SetUsername(b.cfg.user).SetPassword(b.cfg.pass)
	}
	return o
}

// wait waits for tok at most d and returns its error (paho's Wait is unbounded).
func wait(tok paho.Token, d time.Duration) error {
	if !tok.WaitTimeout(d) {
		return fmt.Errorf("timed out after %s", d)
	}
	return tok.Error()
}

// Publish publishes one message at QoS 1 from a short-lived client and waits
// for the broker's acknowledgement.
func (b *Broker) Publish(t testing.TB, topic string, payload string, retained bool) {
	t.Helper()
	c := paho.NewClient(b.clientOptions("mosquittotest-pub").SetAutoReconnect(false))
	if err := wait(c.Connect(), opTimeout); err != nil {
		t.Fatalf("mosquittotest: publish %s: connect: %v", topic, err)
	}
	defer c.Disconnect(100)
	if err := wait(c.Publish(topic, 1, retained, payload), opTimeout); err != nil {
		t.Fatalf("mosquittotest: publish %s: %v", topic, err)
	}
}

// Client is a long-lived publishing client, as Home Assistant keeps one
// connection to its broker.
type Client struct {
	c paho.Client
}

// Connect connects a publishing client; it is closed in t.Cleanup.
func (b *Broker) Connect(t testing.TB) *Client {
	t.Helper()
	c := paho.NewClient(b.clientOptions("mosquittotest-client").SetAutoReconnect(false))
	if err := wait(c.Connect(), opTimeout); err != nil {
		t.Fatalf("mosquittotest: connect: %v", err)
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return &Client{c: c}
}

// Publish publishes at QoS 1 (as Home Assistant sends lock commands) and
// waits for the broker's acknowledgement.
func (c *Client) Publish(t testing.TB, topic, payload string, retained bool) {
	t.Helper()
	if err := wait(c.c.Publish(topic, 1, retained, payload), opTimeout); err != nil {
		t.Fatalf("mosquittotest: publish %s: %v", topic, err)
	}
}

// Received is one message a Recorder got.
type Received struct {
	Topic    string
	Payload  string
	Retained bool
	At       time.Time
}

// Recorder is a subscribed test client that records every message. It
// reconnects and subscribes again after a broker restart.
type Recorder struct {
	filter string
	client paho.Client

	mu      sync.Mutex
	msgs    []Received
	changed chan struct{} // closed and replaced whenever a message arrives
}

// Subscribe connects a recording client, subscribes it to filter at QoS 1
// and returns once the broker has acknowledged the subscription. The client
// is closed in t.Cleanup.
func (b *Broker) Subscribe(t testing.TB, filter string) *Recorder {
	t.Helper()
	r := &Recorder{filter: filter, changed: make(chan struct{})}
	subscribed := make(chan error, 1)
	o := b.clientOptions("mosquittotest-rec").
		SetAutoReconnect(true).
		SetMaxReconnectInterval(500 * time.Millisecond).
		// Subscribe on every connect, so a broker restart is survived. It
		// runs on paho's OnConnect goroutine; the wait is bounded.
		SetOnConnectHandler(func(c paho.Client) {
			err := wait(c.Subscribe(filter, 1, r.record), opTimeout)
			select {
			case subscribed <- err:
			default: // only the first result is awaited
			}
		})
	c := paho.NewClient(o)
	r.client = c
	if err := wait(c.Connect(), opTimeout); err != nil {
		t.Fatalf("mosquittotest: subscribe %s: connect: %v", filter, err)
	}
	t.Cleanup(func() { c.Disconnect(100) })
	select {
	case err := <-subscribed:
		if err != nil {
			t.Fatalf("mosquittotest: subscribe %s: %v", filter, err)
		}
	case <-time.After(opTimeout):
		t.Fatalf("mosquittotest: subscribe %s: no SUBACK within %s", filter, opTimeout)
	}
	return r
}

// record is the paho message handler: it only appends, never blocks.
func (r *Recorder) record(_ paho.Client, m paho.Message) {
	rec := Received{Topic: m.Topic(), Payload: string(m.Payload()), Retained: m.Retained(), At: time.Now()}
	r.mu.Lock()
	r.msgs = append(r.msgs, rec)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// Messages returns a copy of everything received so far, in arrival order.
func (r *Recorder) Messages() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.msgs...)
}

// WaitFor returns the first message on topic (exact topic, not a filter)
// whose payload satisfies match (nil matches any), already received or
// arriving within timeout. On timeout it fails the test with t.Fatalf, listing
// what did arrive. Call it from the test's goroutine.
func (r *Recorder) WaitFor(t testing.TB, topic string, match func(payload string) bool, timeout time.Duration) Received {
	t.Helper()
	return r.WaitForAfter(t, time.Time{}, topic, match, timeout)
}

// WaitForAfter is WaitFor considering only messages received at or after
// since.
func (r *Recorder) WaitForAfter(t testing.TB, since time.Time, topic string, match func(string) bool, timeout time.Duration) Received {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	seen := 0
	for {
		r.mu.Lock()
		fresh := append([]Received(nil), r.msgs[seen:]...)
		seen = len(r.msgs)
		changed := r.changed
		r.mu.Unlock()
		for _, m := range fresh {
			if m.Topic == topic && !m.At.Before(since) && (match == nil || match(m.Payload)) {
				return m
			}
		}
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("mosquittotest: no matching message on %q (filter %q) within %s; received:\n%s",
				topic, r.filter, timeout, describe(r.Messages(), since))
			return Received{}
		}
	}
}

func describe(msgs []Received, since time.Time) string {
	if len(msgs) == 0 {
		return "  (nothing)"
	}
	var sb strings.Builder
	for _, m := range msgs {
		when := "after"
		if m.At.Before(since) {
			when = "before"
		}
		fmt.Fprintf(&sb, "  %s %q retained=%t (%s since)\n", m.Topic, m.Payload, m.Retained, when)
	}
	return sb.String()
}
