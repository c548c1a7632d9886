package config

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
)

func TestMQTTTLSUnsetIsNil(t *testing.T) {
	cleanEnv(t)
	setEnv(t, with(minimal(), "MQTT_URL", "ssl://broker.example"))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.MQTTTLS.Enabled() || c.MQTTTLS.Config() != nil {
		t.Errorf("no TLS variable set, but TLS config %+v", c.MQTTTLS.Config())
	}
}

func serverCert(t *testing.T, certFile string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMQTTTLSLoadsCAAndClientCertificate(t *testing.T) {
	cleanEnv(t)
	pki := mosquittotest.NewPKI(t)
	srv, _ := pki.Server("broker", "broker.example")
	cert, key := pki.Client("client", "bridge")
	setEnv(t, with(minimal(), "MQTT_URL", "mqtts://broker.example", "MQTT_CA_FILE", pki.CAFile,
		"MQTT_CLIENT_CERT", cert, "MQTT_CLIENT_KEY", key))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.MQTTTLS.Config()
	if cfg == nil || len(cfg.Certificates) != 1 || cfg.RootCAs == nil {
		t.Fatalf("TLS config %+v, want the CA's roots and one client certificate", cfg)
	}
	if _, err := serverCert(t, srv).Verify(x509.VerifyOptions{Roots: cfg.RootCAs, DNSName: "broker.example"}); err != nil {
		t.Errorf("the broker's certificate does not verify against the MQTT roots: %v", err)
	}
	// The CA is added for MQTT only: the system pool, which the Sesame
	// client's HTTPS uses, does not know it.
	if sys, err := x509.SystemCertPool(); err == nil {
		if _, err := serverCert(t, srv).Verify(x509.VerifyOptions{Roots: sys, DNSName: "broker.example"}); err == nil {
			t.Error("the system roots trust the test CA: MQTT_CA_FILE leaked beyond MQTT")
		}
	}
	red := c.Redacted()["mqtt_tls"].(map[string]any)
	if red["ca_file"] != pki.CAFile || red["client_key"] != key {
		t.Errorf("redacted summary %v", red)
	}
	// Config returns a fresh value each time.
	c.MQTTTLS.Config().ServerName = "changed"
	if c.MQTTTLS.Config().ServerName != "" {
		t.Error("Config shares its tls.Config between calls")
	}
}

func TestMQTTTLSClientCertWithoutCA(t *testing.T) {
	cleanEnv(t)
	pki := mosquittotest.NewPKI(t)
	cert, key := pki.Client("client", "bridge")
	setEnv(t, with(minimal(), "MQTT_URL", "wss://broker.example/mqtt", "MQTT_CLIENT_CERT", cert, "MQTT_CLIENT_KEY", key))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg := c.MQTTTLS.Config(); cfg == nil || cfg.RootCAs != nil || len(cfg.Certificates) != 1 {
		t.Errorf("TLS config %+v, want the system roots (nil) and the client certificate", cfg)
	}
}

func TestMQTTTLSErrors(t *testing.T) {
	pki := mosquittotest.NewPKI(t)
	cert, key := pki.Client("client", "bridge")
	_, otherKey := pki.Client("other", "someone")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyPEM, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	notPEM := write("not.pem", "hello, I am not a certificate\n")
	badCert := write("bad.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	encrypted := write("enc.key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
	missing := filepath.Join(dir, "missing.crt")

	for _, tc := range []struct {
		name string
		env  []string
		want []string // one line each, in any order
	}{
		{"missing CA file", []string{"MQTT_CA_FILE", missing},
			[]string{"MQTT_CA_FILE: cannot read " + missing + ": no such file or directory"}},
		{"CA file not PEM", []string{"MQTT_CA_FILE", notPEM},
			[]string{"MQTT_CA_FILE: " + notPEM + " holds no PEM certificate"}},
		{"CA file with a broken certificate", []string{"MQTT_CA_FILE", badCert},
			[]string{"MQTT_CA_FILE: " + badCert + ": PEM block 1 is not a valid certificate"}},
		{"cert without key", []string{"MQTT_CLIENT_CERT", cert},
			[]string{"MQTT_CLIENT_KEY: required with MQTT_CLIENT_CERT"}},
		{"key without cert", []string{"MQTT_CLIENT_KEY", key},
			[]string{"MQTT_CLIENT_CERT: required with MQTT_CLIENT_KEY"}},
		{"key of another certificate", []string{"MQTT_CLIENT_CERT", cert, "MQTT_CLIENT_KEY", otherKey},
			[]string{"MQTT_CLIENT_KEY: " + otherKey + " does not belong to the certificate in MQTT_CLIENT_CERT"}},
		{"files swapped", []string{"MQTT_CLIENT_CERT", key, "MQTT_CLIENT_KEY", cert},
			[]string{"MQTT_CLIENT_CERT: " + key + " holds no PEM certificate", "MQTT_CLIENT_KEY: " + cert + " holds no PEM private key"}},
		{"encrypted key", []string{"MQTT_CLIENT_CERT", cert, "MQTT_CLIENT_KEY", encrypted},
			[]string{"MQTT_CLIENT_KEY: " + encrypted + " is encrypted"}},
		{"plain tcp broker", []string{"MQTT_URL", "tcp://broker:1883", "MQTT_CA_FILE", pki.CAFile},
			[]string{"MQTT_CA_FILE: set, but MQTT_URL is tcp:// without TLS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			env := with(minimal(), "MQTT_URL", "ssl://broker.example")
			setEnv(t, with(env, tc.env...))
			_, err := Load()
			lines := errLines(err)
			if len(lines) != len(tc.want) {
				t.Fatalf("errors:\n%s\nwant %d line(s)", strings.Join(lines, "\n"), len(tc.want))
			}
			for _, w := range tc.want {
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, w)
				}
				if !found {
					t.Errorf("no line starting %q in:\n%s", w, strings.Join(lines, "\n"))
				}
			}
			for _, l := range lines {
				if strings.Contains(l, strings.Split(string(keyPEM), "\n")[1]) {
					t.Errorf("a key's content appears in an error: %s", l)
				}
			}
		})
	}
}
