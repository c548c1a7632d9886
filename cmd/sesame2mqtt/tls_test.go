package main

import (
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
)

// tlsEnv is the bridge's environment for the broker's TLS listener.
func tlsEnv(t *testing.T, broker *mosquittotest.Broker, vars ...string) []string {
	t.Helper()
	env := bridgeEnv(t, broker, newFake(t))
	for i, v := range env {
		if strings.HasPrefix(v, "MQTT_URL=") {
			env[i] = "MQTT_URL=" + broker.TLSURL()
		}
	}
	return append(env, vars...)
}

// TestTLSBrokerWithClientCertificate: the binary, configured by
// MQTT_CA_FILE, MQTT_CLIENT_CERT and MQTT_CLIENT_KEY, reaches a Mosquitto
// TLS listener that requires client certificates, with a CA made here.
func TestTLSBrokerWithClientCertificate(t *testing.T) {
	pki := mosquittotest.NewPKI(t)
	cert, key := pki.Server("broker", "127.0.0.1")
	broker := mosquittotest.Start(t, mosquittotest.WithTLS(mosquittotest.TLS{CAFile: pki.CAFile, CertFile: cert, KeyFile: key, RequireCertificate: true}))
	rec := broker.Subscribe(t, "sesame2mqtt/#") // over the plain listener
	ccert, ckey := pki.Client("bridge", "sesame2mqtt")

	p := startProc(t, tlsEnv(t, broker, "MQTT_CA_FILE="+pki.CAFile, "MQTT_CLIENT_CERT="+ccert, "MQTT_CLIENT_KEY="+ckey))
	rec.WaitFor(t, avail, is("online"), 10*time.Second)
	rec.WaitFor(t, "sesame2mqtt/"+lockID+"/state", is("LOCKED"), 10*time.Second)
	p.terminate(t, 5*time.Second)
	if logs := p.stderr.String(); !strings.Contains(logs, "broker="+broker.TLSURL()) || strings.Contains(logs, "level=ERROR") {
		t.Errorf("log of a TLS run:\n%s", logs)
	}
}

// TestTLSFilesAreConfigurationErrors: a key that is not the certificate's,
// or a missing CA file, stops the bridge at start-up with exit status 2 and
// one line naming the variable, before any connection.
func TestTLSFilesAreConfigurationErrors(t *testing.T) {
	pki := mosquittotest.NewPKI(t)
	cert, key := pki.Server("broker", "127.0.0.1")
	broker := mosquittotest.Start(t, mosquittotest.WithTLS(mosquittotest.TLS{CertFile: cert, KeyFile: key}))
	ccert, _ := pki.Client("bridge", "sesame2mqtt")
	_, otherKey := pki.Client("other", "someone")

	// The start-up probes' connections: Mosquitto may log them a little
	// after Start returned, so wait until the count stays put.
	before := settledCount(broker, "New connection")
	p := startProc(t, tlsEnv(t, broker, "MQTT_CA_FILE="+pki.CAFile+".missing", "MQTT_CLIENT_CERT="+ccert, "MQTT_CLIENT_KEY="+otherKey))
	p.waitExit(t, 2, 10*time.Second)
	out := strings.TrimSpace(p.stderr.String())
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "configuration: ") {
			lines = append(lines, l)
		}
	}
	want := []string{
		"configuration: MQTT_CA_FILE: cannot read " + pki.CAFile + ".missing: no such file or directory",
		"configuration: MQTT_CLIENT_KEY: " + otherKey + " does not belong to the certificate in MQTT_CLIENT_CERT",
	}
	if len(lines) != len(want) {
		t.Fatalf("stderr:\n%s\nwant %d lines", out, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want it to start with %q", i+1, lines[i], w)
		}
	}
	if strings.Count(broker.Logs(), "New connection") != before {
		t.Errorf("the bridge connected although its configuration is invalid:\n%s", broker.Logs())
	}
}

// settledCount counts substr in the broker's log once the count has not
// changed for 300 ms (at most 5 s).
func settledCount(b *mosquittotest.Broker, substr string) int {
	n, since := strings.Count(b.Logs(), substr), time.Now()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := strings.Count(b.Logs(), substr); m != n {
			n, since = m, time.Now()
		} else if time.Since(since) >= 300*time.Millisecond {
			break
		}
	}
	return n
}
