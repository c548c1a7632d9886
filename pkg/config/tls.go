package config

// TLS for the MQTT connection: MQTT_CA_FILE, MQTT_CLIENT_CERT and
// MQTT_CLIENT_KEY. The files are read and checked here, at start-up, so that
// a missing file, a file that is not PEM or a key that does not belong to
// its certificate is a configuration error naming the variable (exit 2), not
// a connect loop failing forever. They concern MQTT only: the Sesame cloud's
// HTTPS keeps the system roots whatever is set here.

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxPEMFile bounds what is read of a certificate or key file; a CA bundle
// is a few hundred KiB.
const maxPEMFile = 4 << 20

// MQTTTLS is the TLS material for the broker connection. The zero value
// means none is configured: an ssl:// or wss:// broker is then verified
// against the system roots.
type MQTTTLS struct {
	CAFile   string // MQTT_CA_FILE: PEM certificates trusted in addition to the system roots
	CertFile string // MQTT_CLIENT_CERT: the client certificate, PEM
	KeyFile  string // MQTT_CLIENT_KEY: its private key, PEM, unencrypted

	roots *x509.CertPool   // system roots plus CAFile; nil without CAFile
	cert  *tls.Certificate // nil without CertFile
}

// Enabled reports whether any TLS variable is set.
func (t MQTTTLS) Enabled() bool { return t.CAFile != "" || t.CertFile != "" }

// Config returns the tls.Config for the MQTT connection, or nil when
// nothing is configured (the client's default: the system roots). Each call
// returns a new value; the server name comes from the broker URL.
func (t MQTTTLS) Config() *tls.Config {
	if !t.Enabled() {
		return nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: t.roots}
	if t.cert != nil {
		cfg.Certificates = []tls.Certificate{*t.cert}
	}
	return cfg
}

// parseMQTTTLS checks the TLS variables against each other and against the
// broker URL (mqttURL, already normalised; "" when it was invalid) and loads
// the files.
func parseMQTTTLS(r raw, mqttURL string) (MQTTTLS, []error) {
	t := MQTTTLS{CAFile: r.MQTTCAFile, CertFile: r.MQTTClientCert, KeyFile: r.MQTTClientKey}
	var errs []error
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		errs = append(errs, errors.New("MQTT_CLIENT_KEY: required with MQTT_CLIENT_CERT (both or neither)"))
	case t.CertFile == "" && t.KeyFile != "":
		errs = append(errs, errors.New("MQTT_CLIENT_CERT: required with MQTT_CLIENT_KEY (both or neither)"))
	}
	if set := firstSet(t); set != "" && mqttURL != "" {
		if scheme, _, _ := strings.Cut(mqttURL, "://"); scheme != "ssl" && scheme != "wss" {
			errs = append(errs, fmt.Errorf("%s: set, but MQTT_URL is %s:// without TLS; use ssl:// (or wss://)", set, scheme))
		}
	}
	if t.CAFile != "" {
		roots, err := loadRoots(t.CAFile)
		if err != nil {
			errs = append(errs, err)
		}
		t.roots = roots
	}
	if t.CertFile != "" && t.KeyFile != "" {
		cert, more := loadKeyPair(t.CertFile, t.KeyFile)
		errs = append(errs, more...)
		t.cert = cert
	}
	if len(errs) > 0 {
		return MQTTTLS{}, errs
	}
	return t, nil
}

func firstSet(t MQTTTLS) string {
	switch {
	case t.CAFile != "":
		return "MQTT_CA_FILE"
	case t.CertFile != "":
		return "MQTT_CLIENT_CERT"
	case t.KeyFile != "":
		return "MQTT_CLIENT_KEY"
	}
	return ""
}

// readPEMFile reads a file of at most maxPEMFile bytes. Its errors name key
// and path, never the content.
func readPEMFile(key, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read %s: %w", key, path, unwrapPath(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read %s: %w", key, path, unwrapPath(err))
	}
	if len(data) > maxPEMFile {
		return nil, fmt.Errorf("%s: %s is larger than %d MiB; not a certificate file", key, path, maxPEMFile>>20)
	}
	return data, nil
}

// unwrapPath drops the *PathError wrapper, whose text repeats the path.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// loadRoots returns the system roots plus every certificate in path.
func loadRoots(path string) (*x509.CertPool, error) {
	const key = "MQTT_CA_FILE"
	data, err := readPEMFile(key, path)
	if err != nil {
		return nil, err
	}
	certs, err := pemCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", key, path, err)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", key, path)
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool() // no system roots on this machine: the CA file alone
	}
	for _, c := range certs {
		roots.AddCert(c)
	}
	return roots, nil
}

// pemCertificates parses every CERTIFICATE block of data.
func pemCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return certs, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d is not a valid certificate: %w", n, err)
		}
		certs = append(certs, c)
	}
}

// loadKeyPair loads the client certificate and its key and checks that they
// belong together.
func loadKeyPair(certPath, keyPath string) (*tls.Certificate, []error) {
	var errs []error
	certPEM, err := readPEMFile("MQTT_CLIENT_CERT", certPath)
	if err != nil {
		errs = append(errs, err)
	} else if certs, err := pemCertificates(certPEM); err != nil {
		errs = append(errs, fmt.Errorf("MQTT_CLIENT_CERT: %s: %w", certPath, err))
	} else if len(certs) == 0 {
		errs = append(errs, fmt.Errorf("MQTT_CLIENT_CERT: %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", certPath))
	}
	keyPEM, err := readPEMFile("MQTT_CLIENT_KEY", keyPath)
	if err != nil {
		errs = append(errs, err)
	} else if err := checkKeyPEM(keyPEM); err != nil {
		errs = append(errs, fmt.Errorf("MQTT_CLIENT_KEY: %s %w", keyPath, err))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The certificate parsed above, so what is left is the key: not
		// parsable, or not the certificate's.
		msg := "is not a usable private key"
		if strings.Contains(err.Error(), "does not match") {
			msg = "does not belong to the certificate in MQTT_CLIENT_CERT"
		}
		return nil, []error{fmt.Errorf("MQTT_CLIENT_KEY: %s %s: %w", keyPath, msg, err)}
	}
	return &pair, nil
}

// checkKeyPEM finds the private key block; an encrypted key is refused
// with a reason, since there is no variable for a passphrase.
func checkKeyPEM(data []byte) error {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return errors.New("holds no PEM private key (-----BEGIN PRIVATE KEY-----)")
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return errors.New("is encrypted; give the key without a passphrase (openssl pkey -in KEY -out KEY.plain)")
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			return nil
		}
	}
}
