// Package config reads and validates the bridge's environment.
//
// The environment is a documented contract (see Usage and the README):
// every variable is read through envconfig into strings first, then each
// one is converted and checked here, so that a bad deployment gets one
// line per problem instead of a fix-one-rerun-repeat loop. Error text
// never contains the API key, the MQTT password or a device secret.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/kelseyhightower/envconfig"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// DefaultAPIURL is the Sesame Web API base URL.
const DefaultAPIURL = "https://app.candyhouse.co/api/sesame2"

// dataDir is the preferred STATE_DIR when it exists (the conventional
// volume of a container). A variable so tests can point it elsewhere.
var dataDir = "/data"

// stateSubdir is the folder created under the user's state directory.
const stateSubdir = "sesame2mqtt"

// raw is the environment exactly as envconfig reads it. Every field is a
// string so that Process cannot stop at the first bad value; validate
// converts and checks them all. A variable set to the empty string counts
// as unset (so `MQTT_URL=` in a compose file means the default).
type raw struct {
	APIKey          string `envconfig:"SESAME_API_KEY" desc:"required: the account's Web API key (CANDY HOUSE biz portal)"`
	APIURL          string `envconfig:"SESAME_API_URL" default:"https://app.candyhouse.co/api/sesame2" desc:"Web API base URL, absolute http(s)"`
	Locks           string `envconfig:"SESAME_LOCKS" desc:"required: comma-separated UUID:SECRET[:NAME], one per lock; SECRET is 32 hex characters"`
	MonthlyBudget   string `envconfig:"API_MONTHLY_BUDGET" default:"3000" desc:"Web API requests allowed per calendar month (UTC), all calls counted; integer >= 1"`
	StateDir        string `envconfig:"STATE_DIR" desc:"where the monthly request count survives restarts; default /data if it exists, else $XDG_STATE_HOME/sesame2mqtt or $HOME/.local/state/sesame2mqtt"`
	MQTTURL         string `envconfig:"MQTT_URL" default:"tcp://localhost:1883" desc:"broker URL: tcp://, ssl://, ws://, wss:// (also mqtt://, mqtts://, tls://)"`
	MQTTUsername    string `envconfig:"MQTT_USERNAME" desc:"broker user name"`
	MQTTPassword    string `envconfig:"MQTT_PASSWORD" desc:"broker password"`
	DiscoveryPrefix string `envconfig:"MQTT_DISCOVERY_PREFIX" default:"homeassistant" desc:"Home Assistant discovery prefix"`
	BaseTopic       string `envconfig:"MQTT_BASE_TOPIC" default:"sesame2mqtt" desc:"root of every topic the bridge owns"`
	LogLevel        string `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`

	NFCDevice     string `envconfig:"NFC_DEVICE" desc:"card reader: a libnfc connstring (pn532_uart:/dev/ttyAMA0, pn532_i2c:/dev/i2c-1, acr122_usb, pn53x_usb), rcs380 or rcs380:BBB:DDD for a Sony RC-S380, or auto for the first reader found; empty = no reader"`
	NFCCards      string `envconfig:"NFC_CARDS" desc:"allowlist: comma-separated UID:NAME, UID in hex (canonical: uppercase, no separators, like 04112233445566)"`
	NFCAction     string `envconfig:"NFC_ACTION" default:"toggle" desc:"what an allowlisted card does: toggle, unlock, lock or none (Home Assistant decides)"`
	NFCLock       string `envconfig:"NFC_LOCK" desc:"UUID or name of the lock the reader drives; default the first lock"`
	NFCTagScanner string `envconfig:"NFC_TAG_SCANNER" default:"all" desc:"which cards go to Home Assistant's tag registry: all or known"`
	NFCHoldOff    string `envconfig:"NFC_HOLD_OFF" default:"3s" desc:"the same card counts as a new tap only after it left the reader and was not seen for this long (0s-1m)"`
	LEDGreenPin   string `envconfig:"LED_GREEN_PIN" desc:"GPIO pin of the green LED (periph.io name, like GPIO23); empty = none"`
	LEDRedPin     string `envconfig:"LED_RED_PIN" desc:"GPIO pin of the red LED, like GPIO22; empty = none"`
	BuzzerPin     string `envconfig:"BUZZER_PIN" desc:"GPIO pin of an active buzzer; empty = none"`
	LEDActiveLow  string `envconfig:"LED_ACTIVE_LOW" default:"false" desc:"true when the pins sink current (LED on = pin low)"`

	// --- MQTT over TLS (tls.go) ---
	MQTTCAFile     string `envconfig:"MQTT_CA_FILE" desc:"PEM file of CA certificates the broker's certificate may chain to, added to the system roots (MQTT only); needs an ssl:// or wss:// MQTT_URL"`
	MQTTClientCert string `envconfig:"MQTT_CLIENT_CERT" desc:"PEM file of the client certificate for brokers that require one; with MQTT_CLIENT_KEY"`
	MQTTClientKey  string `envconfig:"MQTT_CLIENT_KEY" desc:"PEM file of the client certificate's private key (unencrypted); with MQTT_CLIENT_CERT"`
	// --- end MQTT over TLS ---

	// --- the access page (web.go) ---
	WebListen         string `envconfig:"WEB_LISTEN" desc:"host:port of the access page outside Home Assistant (127.0.0.1:8099, :8099); empty = no page"`
	WebPassword       string `envconfig:"WEB_PASSWORD" desc:"password of the access page; required unless WEB_LISTEN is a loopback address; at least 8 characters"`
	IngressListen     string `envconfig:"INGRESS_LISTEN" desc:"host:port of Home Assistant's ingress listener (the add-on sets :8099); empty = off"`
	IngressSupervisor string `envconfig:"INGRESS_SUPERVISOR" default:"172.30.32.2" desc:"the only address the ingress listener serves (Home Assistant's Supervisor)"`
	// --- end access page ---
	// --- push feed (push.go) ---
	Push           string `envconfig:"SESAME_PUSH" default:"on" desc:"live lock state from the Sesame cloud's push feed (unofficial: AWS IoT shadows), with the Web API polling as the fallback: on or off (polling only)"`
	PushPoolID     string `envconfig:"SESAME_PUSH_POOL_ID" default:"ap-northeast-1:0a1820f1-dbb3-4bca-9227-2a92f6abf0ae" desc:"Cognito identity pool of the push feed's anonymous credentials, REGION:ID"`
	PushRegion     string `envconfig:"SESAME_PUSH_REGION" desc:"AWS region of the push feed; default the part of SESAME_PUSH_POOL_ID before the colon"`
	PushEndpoint   string `envconfig:"SESAME_PUSH_ENDPOINT" default:"d06107753ay3c67v7y9pa-ats.iot.ap-northeast-1.amazonaws.com" desc:"AWS IoT endpoint of the push feed: a host name or a wss:// (ws:// for tests) URL; the older a3i4hui4gxwoo8-ats.iot.ap-northeast-1.amazonaws.com works too"`
	PushCognitoURL string `envconfig:"SESAME_PUSH_COGNITO_URL" desc:"overrides the Cognito endpoint, for tests; absolute http(s) URL"`
	PushShadowURL  string `envconfig:"SESAME_PUSH_SHADOW_URL" desc:"overrides the base of the shadow GET, for tests; absolute http(s) URL; default https:// and the endpoint's host"`
	// --- end push feed ---
	// --- Door access (access.go) ---
	AccessShared      string `envconfig:"ACCESS_SHARED" default:"false" desc:"true: share the access list with the other bridges on the broker (retained, versioned, under ACCESS_SHARED_TOPIC); protect that topic with broker ACLs, it carries card UIDs"`
	AccessSharedTopic string `envconfig:"ACCESS_SHARED_TOPIC" default:"sesame2mqtt-access" desc:"topic prefix of the shared access list, the same on every bridge; outside MQTT_BASE_TOPIC"`
	// --- end door access ---
}

// host holds the variables that only locate the default STATE_DIR. They
// are not part of the contract and not shown by Usage.
type host struct {
	XDGStateHome string `envconfig:"XDG_STATE_HOME"`
	Home         string `envconfig:"HOME"`
}

// Lock is one configured Sesame.
type Lock struct {
	UUID   string        // canonicalised to UPPERCASE, as the Sesame app shows it
	Secret sesame.Secret // the device secret: 32 hex characters, lowercased
	Name   string        // display name; default "Sesame " + first 4 UUID characters
}

// ID is the stable id used in MQTT topics and Home Assistant unique ids:
// the UUID lowercased, without dashes.
func (l Lock) ID() string {
	return strings.ToLower(strings.ReplaceAll(l.UUID, "-", ""))
}

// Config is the validated configuration.
type Config struct {
	APIKey        sesame.Secret
	APIURL        string // absolute http(s) URL without user info or trailing slash
	Locks         []Lock // in the order given, at least one
	MonthlyBudget int    // >= 1
	StateDir      string // not created by Load; see EnsureStateDir
	// MQTTURL is normalised: scheme one of tcp, ssl, ws, wss (mqtt -> tcp,
	// mqtts and tls -> ssl), and tcp/ssl URLs always carry a port (1883 and
	// 8883 by default), since the MQTT client dials host:port as given.
	// It never carries credentials: user info given in MQTT_URL is moved
	// to MQTTUsername and MQTTPassword.
	MQTTURL         string
	MQTTUsername    string
	MQTTPassword    sesame.Secret
	DiscoveryPrefix string
	BaseTopic       string
	LogLevel        slog.Level
	NFC             NFC
	LED             LED

	// Warnings are settings that have no effect as configured (NFC_CARDS
	// without NFC_DEVICE, ...): one line each, naming the variable and
	// what is missing, for the caller to log. They do not stop the bridge.
	Warnings []string

	MQTTTLS MQTTTLS // TLS material for the broker; zero: system roots, no client certificate

	Web Web // the access page (web.go)

	Push Push // the push feed (push.go)

	Access Access // the access list: shared or not
}

// Load reads the process environment through envconfig and validates it.
// The error, if any, joins one single-line error per problem found.
// Load creates nothing; it only checks whether /data exists.
func Load() (Config, error) {
	var r raw
	if err := envconfig.Process("", &r); err != nil {
		return Config{}, fmt.Errorf("read environment: %w", err)
	}
	var h host
	if err := envconfig.Process("", &h); err != nil {
		return Config{}, fmt.Errorf("read environment: %w", err)
	}
	return validate(r, h)
}

// Usage writes the table of variables, defaults and descriptions (for -help).
func Usage(w io.Writer) error {
	const format = "KEY\tDEFAULT\tDESCRIPTION\n" +
		"{{range .}}{{usage_key .}}\t{{usage_default .}}\t{{usage_description .}}\n{{end}}"
	tw := tabwriter.NewWriter(w, 1, 0, 2, ' ', 0)
	if err := envconfig.Usagef("", &raw{}, tw, format); err != nil {
		return fmt.Errorf("config usage: %w", err)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("config usage: %w", err)
	}
	return nil
}

// EnsureStateDir creates dir (and its parents) with mode 0700 if missing.
func EnsureStateDir(dir string) error {
	if dir == "" {
		return errors.New("create state dir: empty path")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state dir %s: %w", dir, err)
	}
	return nil
}

// Redacted returns a summary that is safe to log: secrets appear as
// REDACTED (or "" when unset). The URLs carry no credentials (Load moves
// or rejects them); user info is masked anyway for hand-built Configs.
func (c Config) Redacted() map[string]any {
	locks := make([]map[string]string, 0, len(c.Locks))
	for _, l := range c.Locks {
		locks = append(locks, map[string]string{
			"uuid":   l.UUID,
			"id":     l.ID(),
			"name":   l.Name,
			"secret": redact(l.Secret),
		})
	}
	return map[string]any{
		"api_key":               redact(c.APIKey),
		"api_url":               redactURL(c.APIURL),
		"locks":                 locks,
		"monthly_budget":        c.MonthlyBudget,
		"state_dir":             c.StateDir,
		"mqtt_url":              redactURL(c.MQTTURL),
		"mqtt_username":         c.MQTTUsername,
		"mqtt_password":         redact(c.MQTTPassword),
		"mqtt_discovery_prefix": c.DiscoveryPrefix,
		"mqtt_base_topic":       c.BaseTopic,
		"log_level":             c.LogLevel.String(),
		"nfc": map[string]any{
			"device":      c.NFC.Device,
			"cards":       len(c.NFC.Cards), // UIDs stay out of logs
			"action":      c.NFC.Action,
			"lock":        c.NFC.LockID,
			"tag_scanner": c.NFC.TagScanner,
			"hold_off":    c.NFC.HoldOff.String(),
		},
		"led": map[string]any{
			"green":      c.LED.Green,
			"red":        c.LED.Red,
			"buzzer":     c.LED.Buzzer,
			"active_low": c.LED.ActiveLow,
		},
		"access": map[string]any{
			"shared":       c.Access.Shared,
			"shared_topic": c.Access.SharedTopic,
		},
		"mqtt_tls": map[string]any{ // paths only; a key file's content is never read into a log
			"ca_file":     c.MQTTTLS.CAFile,
			"client_cert": c.MQTTTLS.CertFile,
			"client_key":  c.MQTTTLS.KeyFile,
		},
		"web":  c.Web.redacted(),
		"push": c.Push.redacted(),
	}
}

// LogValue logs the Redacted summary, so a Config can be logged as is.
func (c Config) LogValue() slog.Value { return slog.AnyValue(c.Redacted()) }

func redact(s sesame.Secret) string {
	if s.IsZero() {
		return ""
	}
	return "REDACTED"
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "REDACTED"
	}
	return u.Redacted()
}

// validate converts and checks every field of r, collecting all problems.
func validate(r raw, h host) (Config, error) {
	trimAndDefault(&r)
	var c Config
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	if r.APIKey == "" {
		add(errors.New("SESAME_API_KEY: required, not set"))
	}
	c.APIKey = sesame.NewSecret(r.APIKey)

	var err error
	c.APIURL, err = parseAPIURL(r.APIURL)
	add(err)

	var lockErrs []error
	c.Locks, lockErrs = parseLocks(r.Locks)
	errs = append(errs, capErrors("SESAME_LOCKS", lockErrs)...)

	c.MonthlyBudget, err = parseBudget(r.MonthlyBudget)
	add(err)

	c.StateDir, err = stateDir(r.StateDir, h)
	add(err)

	c.MQTTURL, c.MQTTUsername, c.MQTTPassword, err = parseMQTTURL(r.MQTTURL, r.MQTTUsername, r.MQTTPassword)
	add(err)

	prefixErr, baseErr := checkTopic("MQTT_DISCOVERY_PREFIX", r.DiscoveryPrefix), checkTopic("MQTT_BASE_TOPIC", r.BaseTopic)
	add(prefixErr)
	add(baseErr)
	if prefixErr == nil && baseErr == nil {
		add(checkTopicLimits(r.BaseTopic, r.DiscoveryPrefix, c.Locks))
	}
	c.DiscoveryPrefix = r.DiscoveryPrefix
	c.BaseTopic = r.BaseTopic

	c.LogLevel, err = parseLevel(r.LogLevel)
	add(err)

	var more []error
	c.NFC, more = parseNFC(r, c.Locks)
	errs = append(errs, more...)
	c.LED, more = parseLED(r)
	errs = append(errs, more...)
	c.MQTTTLS, more = parseMQTTTLS(r, c.MQTTURL) // MQTT over TLS (tls.go)
	errs = append(errs, more...)
	c.Web, more = parseWeb(r) // the access page (web.go)
	errs = append(errs, more...)
	c.Push, more = parsePush(r) // push feed (push.go)
	errs = append(errs, more...)
	c.Access, more = parseAccess(r) // door access (access.go)
	errs = append(errs, more...)

	if len(errs) > 0 {
		return Config{}, errors.Join(capTotal(errs)...)
	}
	c.Warnings = append(append(append(warnings(r), webWarnings(r)...), pushWarnings(r)...), accessWarnings(r)...)
	return c, nil
}

// trimAndDefault trims every field and gives fields that are empty after
// trimming their `default` tag, so an explicitly empty variable behaves
// like an unset one. The tags stay the single source of the defaults.
func trimAndDefault(r *raw) {
	v := reflect.ValueOf(r).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := v.Field(i)
		s := strings.TrimSpace(f.String())
		if s == "" {
			s = t.Field(i).Tag.Get("default")
		}
		f.SetString(s)
	}
}

func parseAPIURL(s string) (string, error) {
	u, err := parseURL("SESAME_API_URL", s)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("SESAME_API_URL: scheme must be http or https, got %s", quote(u.Scheme))
	}
	if u.User != nil {
		return "", errors.New("SESAME_API_URL: must not contain user info (the API key goes in SESAME_API_KEY)")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// mqttSchemes maps every accepted MQTT_URL scheme to the canonical one.
var mqttSchemes = map[string]string{
	"tcp": "tcp", "mqtt": "tcp",
	"ssl": "ssl", "mqtts": "ssl", "tls": "ssl",
	"ws": "ws", "wss": "wss",
}

var mqttDefaultPorts = map[string]string{"tcp": "1883", "ssl": "8883"}

// parseMQTTURL checks and normalises MQTT_URL. Credentials given in the
// URL (tcp://user:pass@host) move to the username and password, so that
// MQTTURL itself is safe to print; giving them both ways is an error.
func parseMQTTURL(s, user, pass string) (string, string, sesame.Secret, error) {
	u, err := parseURL("MQTT_URL", s)
	if err != nil {
		return "", user, sesame.NewSecret(pass), err
	}
	if u.User != nil {
		if user != "" || pass != "" {
			return "", user, sesame.NewSecret(pass), errors.New("MQTT_URL: has user info and MQTT_USERNAME or MQTT_PASSWORD is set too; use one or the other")
		}
		user = u.User.Username()
		pass, _ = u.User.Password()
		u.User = nil
	}
	scheme, ok := mqttSchemes[u.Scheme]
	if !ok {
		return "", user, sesame.NewSecret(pass), fmt.Errorf("MQTT_URL: scheme must be tcp, ssl, ws or wss (or mqtt, mqtts, tls), got %s", quote(u.Scheme))
	}
	u.Scheme = scheme
	if port, ok := mqttDefaultPorts[scheme]; ok && u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	return u.String(), user, sesame.NewSecret(pass), nil
}

// parseURL parses an absolute URL with a host. Its errors never repeat the
// URL itself, which may carry a password in its user info.
func parseURL(key, s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s: not a valid URL: %v", key, err)
	}
	if u.Scheme == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%s: must be an absolute URL with a host, like scheme://host", key)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%s: port must be 1-65535", key)
		}
	}
	return u, nil
}

func parseBudget(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("API_MONTHLY_BUDGET: must be an integer >= 1, got %s", quote(s))
	}
	return n, nil
}

// stateDir picks STATE_DIR, or the default: /data if it is a directory,
// else sesame2mqtt under $XDG_STATE_HOME (when absolute, as the XDG spec
// requires) or $HOME/.local/state.
func stateDir(s string, h host) (string, error) {
	if s != "" {
		return filepath.Clean(s), nil
	}
	if fi, err := os.Stat(dataDir); err == nil && fi.IsDir() {
		return dataDir, nil
	}
	if x := strings.TrimSpace(h.XDGStateHome); filepath.IsAbs(x) {
		return filepath.Join(x, stateSubdir), nil
	}
	if home := strings.TrimSpace(h.Home); home != "" {
		return filepath.Join(home, ".local", "state", stateSubdir), nil
	}
	return "", fmt.Errorf("STATE_DIR: not set, %s does not exist and neither XDG_STATE_HOME nor HOME is set", dataDir)
}

// topicRe: one or more levels of [a-zA-Z0-9_-], separated by single
// slashes. This excludes the wildcards + and #, leading and trailing
// slashes and empty levels.
var topicRe = regexp.MustCompile(`^[a-zA-Z0-9_-]+(/[a-zA-Z0-9_-]+)*$`)

func checkTopic(key, s string) error {
	if !topicRe.MatchString(s) {
		return fmt.Errorf("%s: %s must be letters, digits, _, - and / between levels (no wildcards, no leading, trailing or double slash)", key, quote(s))
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("LOG_LEVEL: must be debug, info, warn or error, got %s", quote(s))
}
