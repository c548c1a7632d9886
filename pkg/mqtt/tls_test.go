package mqtt_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
)

func roots(t *testing.T, caFile string) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(data) {
		t.Fatal("CA file holds no certificate")
	}
	return p
}

// tlsOutcome runs a client against url with cfg and reports whether it
// connected (OnConnect ran) within 5 s, and the log.
func tlsOutcome(t *testing.T, url string, cfg *tls.Config) (bool, string) {
	t.Helper()
	log, logs := newLogger(t)
	onConnect, connected := signalChan()
	c, err := mqtt.New(mqtt.Options{URL: url, TLSConfig: cfg, OnConnect: onConnect, Logger: log, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	run(t, c)
	select {
	case <-connected:
		return true, logs.String()
	case <-time.After(5 * time.Second):
		return false, logs.String()
	}
}

// TestTLSAgainstMosquitto: a real Mosquitto TLS listener with a CA made in
// the test. The broker's certificate verifies against the CA; a certificate
// for another host name is refused; a listener that requires a client
// certificate refuses a client without one and accepts ours.
func TestTLSAgainstMosquitto(t *testing.T) {
	t.Parallel()
	pki := mosquittotest.NewPKI(t)
	pool := roots(t, pki.CAFile)
	clientCert, clientKey := pki.Client("bridge", "sesame2mqtt")
	pair, err := tls.LoadX509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("verified", func(t *testing.T) {
		t.Parallel()
		cert, key := pki.Server("broker", "127.0.0.1", "localhost")
		b := mosquittotest.Start(t, mosquittotest.WithTLS(mosquittotest.TLS{CertFile: cert, KeyFile: key}))
		rec := b.Subscribe(t, "tls/#")
		log, _ := newLogger(t)
		var c *mqtt.Client
		onConnect, connected := signalChan()
		c, err := mqtt.New(mqtt.Options{URL: b.TLSURL(), TLSConfig: &tls.Config{RootCAs: pool}, Logger: log,
			OnConnect: func() { c.Publish("tls/state", 1, false, []byte("over tls")); onConnect() }})
		if err != nil {
			t.Fatal(err)
		}
		run(t, c)
		waitSignal(t, connected, 5*time.Second, "OnConnect over TLS")
		rec.WaitFor(t, "tls/state", payloadIs("over tls"), 5*time.Second)
		if ok, out := tlsOutcome(t, b.TLSURL(), nil); ok {
			t.Errorf("connected with the system roots only, which do not know the test CA:\n%s", out)
		} else if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "certificate") {
			t.Errorf("an unknown CA is not logged as an error about the certificate:\n%s", out)
		}
	})

	t.Run("wrong host name", func(t *testing.T) {
		t.Parallel()
		cert, key := pki.Server("elsewhere", "broker.example")
		b := mosquittotest.Start(t, mosquittotest.WithTLS(mosquittotest.TLS{CertFile: cert, KeyFile: key}))
		// localhost is 127.0.0.1 here; the certificate names another host.
		ok, out := tlsOutcome(t, strings.Replace(b.TLSURL(), "127.0.0.1", "localhost", 1), &tls.Config{RootCAs: pool})
		if ok {
			t.Fatal("connected to localhost presenting a certificate for broker.example")
		}
		if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "broker.example") {
			t.Errorf("the name mismatch is not logged as an error naming the certificate's host:\n%s", out)
		}
	})

	t.Run("client certificate required", func(t *testing.T) {
		t.Parallel()
		cert, key := pki.Server("broker-mtls", "127.0.0.1")
		b := mosquittotest.Start(t, mosquittotest.WithTLS(mosquittotest.TLS{CAFile: pki.CAFile, CertFile: cert, KeyFile: key, RequireCertificate: true}))
		// With TLS 1.3 the refusal reaches the client as an alert
		// ("certificate required", logged as an error) or as a reset.
		if ok, out := tlsOutcome(t, b.TLSURL(), &tls.Config{RootCAs: pool}); ok {
			t.Errorf("connected without a client certificate:\n%s", out)
		} else if !strings.Contains(out, `msg="mqtt connect failed"`) {
			t.Errorf("the refused handshake is not logged:\n%s", out)
		}
		if ok, out := tlsOutcome(t, b.TLSURL(), &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}); !ok {
			t.Errorf("not connected with our client certificate:\n%s\n%s", out, b.Logs())
		}
	})
}
