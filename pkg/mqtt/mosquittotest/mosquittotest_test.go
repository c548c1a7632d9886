package mosquittotest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

func TestStartPublishSubscribe(t *testing.T) {
	t.Parallel()
	b := Start(t)
	if !strings.HasPrefix(b.URL(), "tcp://127.0.0.1:") || b.URL() != "tcp://"+b.Addr() {
		t.Fatalf("URL %q / Addr %q", b.URL(), b.Addr())
	}
	b.Publish(t, "mt/retained", "kept", true)

	r := b.Subscribe(t, "mt/#")
	got := r.WaitFor(t, "mt/retained", nil, 5*time.Second)
	if got.Payload != "kept" || !got.Retained {
		t.Errorf("retained message = %+v, want payload kept, retained", got)
	}

	since := time.Now()
	b.Publish(t, "mt/live", "one", false)
	b.Publish(t, "mt/live", "two", false)
	got = r.WaitForAfter(t, since, "mt/live", func(p string) bool { return p == "two" }, 5*time.Second)
	if got.Retained || got.At.Before(since) {
		t.Errorf("live message = %+v, want not retained, after %v", got, since)
	}
	var live []string
	for _, m := range r.Messages() {
		if m.Topic == "mt/live" {
			live = append(live, m.Payload)
		}
	}
	if strings.Join(live, ",") != "one,two" {
		t.Errorf("live messages = %q, want one,two in order", live)
	}

	logs := b.Logs()
	if !strings.Contains(logs, "mosquitto version") {
		t.Errorf("Logs() has no mosquitto start-up line:\n%s", logs)
	}
}

func TestStopRestartKeepsRecorder(t *testing.T) {
	t.Parallel()
	b := Start(t)
	r := b.Subscribe(t, "rs/#")

	b.Stop()
	if c, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("broker still accepts connections after Stop")
	}
	b.Stop() // a second stop is harmless
	b.Restart()

	// The recorder reconnects on its own and subscribes again.
	since := time.Now()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.Publish(t, "rs/after", "hello", false)
		msgs := r.Messages()
		if len(msgs) > 0 && msgs[len(msgs)-1].Payload == "hello" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recorder did not receive after restart; got %+v", msgs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := r.WaitForAfter(t, since, "rs/after", nil, time.Second)
	if got.Payload != "hello" {
		t.Errorf("got %+v", got)
	}

	b.Kill()
	b.Restart()
	b.Publish(t, "rs/k", "after-kill", false) // accepts again after a kill
}

func TestWithLoginRefusesAnonymous(t *testing.T) {
	t.Parallel()
	b := Start(t, WithLogin("bridge", "pw-123"))

	anon := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("anon").
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(2 * time.Second))
	err := wait(anon.Connect(), 5*time.Second)
	if !errors.Is(err, packets.ErrorRefusedNotAuthorised) && !errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) {
		t.Fatalf("anonymous connect: err = %v, want refused", err)
	}

	// The broker's own helpers log in.
	r := b.Subscribe(t, "login/#")
	b.Publish(t, "login/x", "ok", false)
	r.WaitFor(t, "login/x", func(p string) bool { return p == "ok" }, 5*time.Second)
}

// fakeTB records Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
}

func TestWaitForTimeoutListsArrivals(t *testing.T) {
	t.Parallel()
	b := Start(t)
	r := b.Subscribe(t, "wf/#")
	b.Publish(t, "wf/other", "unrelated", false)
	r.WaitFor(t, "wf/other", nil, 5*time.Second)

	f := &fakeTB{TB: t}
	start := time.Now()
	got := r.WaitFor(f, "wf/wanted", nil, 100*time.Millisecond)
	if el := time.Since(start); el < 100*time.Millisecond || el > 2*time.Second {
		t.Errorf("WaitFor returned after %s, want about 100ms", el)
	}
	if got != (Received{}) {
		t.Errorf("WaitFor on timeout returned %+v", got)
	}
	if !strings.Contains(f.failed, `"wf/wanted"`) || !strings.Contains(f.failed, `wf/other "unrelated"`) {
		t.Errorf("failure message does not name the topic and arrivals:\n%s", f.failed)
	}

	// A matcher that rejects everything also times out.
	f = &fakeTB{TB: t}
	r.WaitFor(f, "wf/other", func(p string) bool { return p == "nope" }, 50*time.Millisecond)
	if f.failed == "" {
		t.Error("WaitFor with a rejecting matcher did not fail")
	}
}

func TestTLSListenerAndClientCertificate(t *testing.T) {
	t.Parallel()
	pki := NewPKI(t)
	cert, key := pki.Server("broker", "127.0.0.1", "localhost")
	b := Start(t, WithTLS(TLS{CAFile: pki.CAFile, CertFile: cert, KeyFile: key, RequireCertificate: true}))
	if !strings.HasPrefix(b.TLSURL(), "ssl://127.0.0.1:") || b.TLSAddr() == b.Addr() {
		t.Fatalf("TLSURL %q, Addr %q", b.TLSURL(), b.Addr())
	}
	roots := x509.NewCertPool()
	pemCA, err := os.ReadFile(pki.CAFile)
	if err != nil || !roots.AppendCertsFromPEM(pemCA) {
		t.Fatalf("CA file: %v", err)
	}
	connect := func(cfg *tls.Config) error {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(b.TLSURL()).SetClientID(randomID("tls")).
			SetProtocolVersion(4).SetTLSConfig(cfg).SetConnectTimeout(opTimeout))
		err := wait(c.Connect(), 2*opTimeout)
		if err == nil {
			c.Disconnect(50)
		}
		return err
	}
	if err := connect(&tls.Config{RootCAs: roots}); err == nil {
		t.Error("connected without a client certificate to a listener that requires one")
	}
	ccert, ckey := pki.Client("client", "bridge")
	pair, err := tls.LoadX509KeyPair(ccert, ckey)
	if err != nil {
		t.Fatal(err)
	}
	if err := connect(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}); err != nil {
		t.Errorf("with the CA and a client certificate: %v\n%s", err, b.Logs())
	}
	if err := connect(&tls.Config{Certificates: []tls.Certificate{pair}}); err == nil {
		t.Error("connected without the CA: the broker's certificate was not verified")
	}
	// The plain listener stays for the helpers.
	b.Publish(t, "tls/plain", "ok", false)
}

func TestACLAndSecondUser(t *testing.T) {
	t.Parallel()
	b := Start(t, WithLogin("admin", "admin-pw"), WithUser("limited", "limited-pw"),
		WithACL("user admin\ntopic readwrite #\n\nuser limited\ntopic readwrite ok/#\n"))
	rec := b.Subscribe(t, "#")
	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID(randomID("acl")).
		SetProtocolVersion(4).SetUsername("limited").SetPassword("limited-pw"))
	if err := wait(c.Connect(), opTimeout); err != nil {
		t.Fatalf("limited user: %v", err)
	}
	defer c.Disconnect(50)
	// A denied publish is acknowledged and dropped: nothing tells the client.
	if err := wait(c.Publish("no/x", 1, false, "denied"), opTimeout); err != nil {
		t.Fatalf("denied publish: %v", err)
	}
	if err := wait(c.Publish("ok/x", 1, false, "allowed"), opTimeout); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, "ok/x", func(p string) bool { return p == "allowed" }, 5*time.Second)
	for _, m := range rec.Messages() {
		if m.Topic == "no/x" {
			t.Errorf("the ACL let a denied publish through: %+v", m)
		}
	}
	// Mosquitto 2.0 acknowledges a subscription its ACL does not allow
	// (other brokers answer 0x80) and then delivers nothing on it.
	got := make(chan string, 4)
	tok := c.SubscribeMultiple(map[string]byte{"no/#": 1, "ok/#": 1}, func(_ paho.Client, m paho.Message) { got <- m.Topic() })
	if err := wait(tok, opTimeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("SUBACK codes %v", tok.(*paho.SubscribeToken).Result())
	b.Publish(t, "no/y", "secret", false)
	b.Publish(t, "ok/y", "marker", false)
	select {
	case topic := <-got:
		if topic != "ok/y" {
			t.Errorf("limited user received %s, which its ACL does not allow", topic)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("limited user received nothing on ok/#")
	}
}
