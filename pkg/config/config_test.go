package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	testKey     = "kEy0123456789abcdefghijklmnopqrstuvwxyzAB"
	uuid1       = "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
	uuid2       = "11111111-2222-3333-4444-555555555555"
	uuid3       = "ABCDEF01-2345-6789-ABCD-EF0123456789"
	secret1     = "A13D4B890111676BA8FB36ECE7E94F7D"
	secret2     = "00112233445566778899aabbccddeeff"
	secret3     = "ffeeddccbbaa99887766554433221100"
	oneLockSpec = uuid1 + ":" + secret1
)

// contractVars are every variable Load reads.
var contractVars = []string{
	"SESAME_API_KEY", "SESAME_API_URL", "SESAME_LOCKS", "API_MONTHLY_BUDGET",
	"STATE_DIR", "MQTT_URL", "MQTT_USERNAME", "MQTT_PASSWORD",
	"MQTT_DISCOVERY_PREFIX", "MQTT_BASE_TOPIC", "LOG_LEVEL",
	"NFC_DEVICE", "NFC_CARDS", "NFC_ACTION", "NFC_LOCK", "NFC_TAG_SCANNER", "NFC_HOLD_OFF",
	"LED_GREEN_PIN", "LED_RED_PIN", "BUZZER_PIN", "LED_ACTIVE_LOW",
	"MQTT_CA_FILE", "MQTT_CLIENT_CERT", "MQTT_CLIENT_KEY", // tls.go
	"WEB_LISTEN", "WEB_PASSWORD", "INGRESS_LISTEN", "INGRESS_SUPERVISOR", // web.go
	"SESAME_PUSH", "SESAME_PUSH_POOL_ID", "SESAME_PUSH_REGION", "SESAME_PUSH_ENDPOINT", // push.go
	"SESAME_PUSH_COGNITO_URL", "SESAME_PUSH_SHADOW_URL",
	"XDG_STATE_HOME", "HOME",
}

// cleanEnv unsets every variable Load reads (restored after the test),
// points the /data check at a directory that does not exist, and sets
// HOME to a known value.
func cleanEnv(t *testing.T) (home string) {
	t.Helper()
	for _, k := range contractVars {
		t.Setenv(k, "") // registers the restore
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
	old := dataDir
	dataDir = filepath.Join(t.TempDir(), "no-such-data")
	t.Cleanup(func() { dataDir = old })
	home = filepath.Join(t.TempDir(), "home")
	t.Setenv("HOME", home)
	return home
}

func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
}

func minimal() map[string]string {
	return map[string]string{"SESAME_API_KEY": testKey, "SESAME_LOCKS": oneLockSpec}
}

func with(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestLoadDefaults(t *testing.T) {
	home := cleanEnv(t)
	setEnv(t, minimal())

	c, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.APIKey.Reveal() != testKey {
		t.Errorf("APIKey not carried through")
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"APIURL", c.APIURL, DefaultAPIURL},
		{"MonthlyBudget", c.MonthlyBudget, 3000},
		{"StateDir", c.StateDir, filepath.Join(home, ".local", "state", "sesame2mqtt")},
		{"MQTTURL", c.MQTTURL, "tcp://localhost:1883"},
		{"MQTTUsername", c.MQTTUsername, ""},
		{"MQTTPassword set", !c.MQTTPassword.IsZero(), false},
		{"DiscoveryPrefix", c.DiscoveryPrefix, "homeassistant"},
		{"BaseTopic", c.BaseTopic, "sesame2mqtt"},
		{"LogLevel", c.LogLevel, slog.LevelInfo},
		{"len(Locks)", len(c.Locks), 1},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

// An explicitly empty (or blank) variable means its default, as a compose
// file's `MQTT_URL=` would set it.
func TestLoadEmptyMeansDefault(t *testing.T) {
	cleanEnv(t)
	setEnv(t, with(minimal(),
		"SESAME_API_URL", "", "API_MONTHLY_BUDGET", "  ", "MQTT_URL", "",
		"MQTT_DISCOVERY_PREFIX", "", "MQTT_BASE_TOPIC", "", "LOG_LEVEL", " "))
	c, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.APIURL != DefaultAPIURL || c.MonthlyBudget != 3000 || c.MQTTURL != "tcp://localhost:1883" ||
		c.DiscoveryPrefix != "homeassistant" || c.BaseTopic != "sesame2mqtt" || c.LogLevel != slog.LevelInfo {
		t.Errorf("empty variables did not fall back to defaults: %+v", c.Redacted())
	}
}

func TestLoadEveryVariable(t *testing.T) {
	cleanEnv(t)
	state := filepath.Join(t.TempDir(), "state")
	setEnv(t, map[string]string{
		"SESAME_API_KEY":        "  " + testKey + "  ",
		"SESAME_API_URL":        "http://127.0.0.1:8080/api/sesame2/",
		"SESAME_LOCKS":          uuid1 + ":" + secret1 + ":Front door, " + uuid2 + ":" + secret2,
		"API_MONTHLY_BUDGET":    "30000",
		"STATE_DIR":             state + "/",
		"MQTT_URL":              "wss://broker.example:8443/mqtt",
		"MQTT_USERNAME":         "bridge",
		"MQTT_PASSWORD":         "hunter2",
		"MQTT_DISCOVERY_PREFIX": "ha/discovery",
		"MQTT_BASE_TOPIC":       "home/locks-1_a",
		"LOG_LEVEL":             "DeBuG",
		"NFC_DEVICE":            "pn532_uart:/dev/ttyAMA0",
		"NFC_CARDS":             "04a22b1cd35e80:Alice, 01:02:03:04:Bob:the:builder,0102030405060708:Chika",
		"NFC_ACTION":            "Unlock",
		"NFC_LOCK":              "sesame 1111",
		"NFC_TAG_SCANNER":       "KNOWN",
		"NFC_HOLD_OFF":          "1500ms",
		"LED_GREEN_PIN":         "GPIO23",
		"LED_RED_PIN":           "GPIO22",
		"BUZZER_PIN":            "GPIO24",
		"LED_ACTIVE_LOW":        "true",
		"WEB_LISTEN":            "0.0.0.0:8080",
		"WEB_PASSWORD":          "correct horse",
		"INGRESS_LISTEN":        ":8099",
		"INGRESS_SUPERVISOR":    "10.0.0.2",
		"ACCESS_SHARED":         "TRUE",
		"ACCESS_SHARED_TOPIC":   "building/access",
	})
	c, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Config{
		APIURL:          "http://127.0.0.1:8080/api/sesame2",
		MonthlyBudget:   30000,
		StateDir:        state,
		MQTTURL:         "wss://broker.example:8443/mqtt",
		MQTTUsername:    "bridge",
		DiscoveryPrefix: "ha/discovery",
		BaseTopic:       "home/locks-1_a",
		LogLevel:        slog.LevelDebug,
		NFC: NFC{
			Device: "pn532_uart:/dev/ttyAMA0",
			Cards: []Card{
				{UID: []byte{0x04, 0xa2, 0x2b, 0x1c, 0xd3, 0x5e, 0x80}, Name: "Alice"},
				{UID: []byte{1, 2, 3, 4}, Name: "Bob:the:builder"},
				{UID: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Name: "Chika"},
			},
			Action:     ActionUnlock,
			LockID:     "11111111222233334444555555555555",
			TagScanner: TagScannerKnown,
			HoldOff:    1500 * time.Millisecond,
		},
		LED:    LED{Green: "GPIO23", Red: "GPIO22", Buzzer: "GPIO24", ActiveLow: true},
		Web:    Web{Listen: "0.0.0.0:8080", Ingress: ":8099", Supervisor: "10.0.0.2"},
		Access: Access{Shared: true, SharedTopic: "building/access"},
	}
	got := c
	got.APIKey, got.MQTTPassword, got.Locks, got.Web.Password = want.APIKey, want.MQTTPassword, nil, want.Web.Password
	got.Push = Push{} // the push feed's variables: push_test.go
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load =\n%#v\nwant\n%#v", got, want)
	}
	if c.APIKey.Reveal() != testKey {
		t.Errorf("APIKey = %q, want it trimmed", c.APIKey.Reveal())
	}
	if c.Web.Password.Reveal() != "correct horse" {
		t.Errorf("WEB_PASSWORD not carried through")
	}
	if c.MQTTPassword.Reveal() != "hunter2" {
		t.Errorf("MQTTPassword not carried through")
	}
	if len(c.Locks) != 2 || c.Locks[0].Name != "Front door" || c.Locks[1].Name != "Sesame 1111" {
		t.Errorf("Locks = %+v", c.Locks)
	}
}

func TestLoadStateDirDefault(t *testing.T) {
	tests := []struct {
		name     string
		dataDir  bool   // whether the /data stand-in exists
		xdg      string // "" unset; "REL" a relative path
		home     bool
		wantSub  string // expected path relative to its base, "" when an error is expected
		wantBase string // "data", "xdg" or "home"
	}{
		{name: "data wins", dataDir: true, xdg: "abs", home: true, wantBase: "data"},
		{name: "xdg", xdg: "abs", home: true, wantBase: "xdg", wantSub: "sesame2mqtt"},
		{name: "relative xdg ignored", xdg: "REL", home: true, wantBase: "home", wantSub: ".local/state/sesame2mqtt"},
		{name: "home", home: true, wantBase: "home", wantSub: ".local/state/sesame2mqtt"},
		{name: "nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			setEnv(t, minimal())
			bases := map[string]string{"data": t.TempDir(), "xdg": t.TempDir(), "home": t.TempDir()}
			if tt.dataDir {
				dataDir = bases["data"]
			}
			switch tt.xdg {
			case "abs":
				t.Setenv("XDG_STATE_HOME", bases["xdg"])
			case "REL":
				t.Setenv("XDG_STATE_HOME", "relative/state")
			}
			if tt.home {
				t.Setenv("HOME", bases["home"])
			} else {
				os.Unsetenv("HOME")
			}
			c, err := Load()
			if tt.wantBase == "" {
				if err == nil || !strings.HasPrefix(err.Error(), "STATE_DIR: ") {
					t.Fatalf("Load error = %v, want a STATE_DIR problem", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := filepath.Join(bases[tt.wantBase], filepath.FromSlash(tt.wantSub))
			if c.StateDir != want {
				t.Errorf("StateDir = %q, want %q", c.StateDir, want)
			}
			if _, err := os.Stat(filepath.Join(bases["home"], ".local")); err == nil {
				t.Errorf("Load created the state directory")
			}
		})
	}
}

func TestLoadURLs(t *testing.T) {
	tests := []struct{ key, in, want string }{
		{"SESAME_API_URL", "https://app.candyhouse.co/api/sesame2", "https://app.candyhouse.co/api/sesame2"},
		{"SESAME_API_URL", "http://127.0.0.1:34567", "http://127.0.0.1:34567"},
		{"SESAME_API_URL", "HTTPS://example.com/x//", "https://example.com/x"},
		{"MQTT_URL", "tcp://broker", "tcp://broker:1883"},
		{"MQTT_URL", "mqtt://broker:1884", "tcp://broker:1884"},
		{"MQTT_URL", "ssl://broker", "ssl://broker:8883"},
		{"MQTT_URL", "mqtts://broker", "ssl://broker:8883"},
		{"MQTT_URL", "TLS://broker:9999", "ssl://broker:9999"},
		{"MQTT_URL", "ws://broker/mqtt", "ws://broker/mqtt"},
		{"MQTT_URL", "wss://broker:443/mqtt", "wss://broker:443/mqtt"},
		{"MQTT_URL", "tcp://[::1]", "tcp://[::1]:1883"},
	}
	for _, tt := range tests {
		t.Run(tt.key+" "+tt.in, func(t *testing.T) {
			cleanEnv(t)
			setEnv(t, with(minimal(), tt.key, tt.in))
			c, err := Load()
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := c.MQTTURL
			if tt.key == "SESAME_API_URL" {
				got = c.APIURL
			}
			if got != tt.want {
				t.Errorf("%s=%q -> %q, want %q", tt.key, tt.in, got, tt.want)
			}
		})
	}
}

func TestLoadLogLevels(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "Warn": slog.LevelWarn, "error": slog.LevelError,
	} {
		t.Run(in, func(t *testing.T) {
			cleanEnv(t)
			setEnv(t, with(minimal(), "LOG_LEVEL", in))
			c, err := Load()
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.LogLevel != want {
				t.Errorf("LOG_LEVEL=%s -> %v, want %v", in, c.LogLevel, want)
			}
		})
	}
}

func TestLoadLocks(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Lock // secrets compared by Reveal
	}{
		{
			name: "one, default name, canonical case",
			in:   uuid1 + ":" + secret1,
			want: []Lock{{UUID: strings.ToUpper(uuid1), Name: "Sesame 0A1B"}},
		},
		{
			name: "name with colons and spaces",
			in:   " " + uuid1 + " : " + secret1 + " :  Garage: side door  ",
			want: []Lock{{UUID: strings.ToUpper(uuid1), Name: "Garage: side door"}},
		},
		{
			name: "trailing comma and empty name",
			in:   uuid1 + ":" + secret1 + ":," + uuid3 + ":" + secret3 + ":Back,",
			want: []Lock{
				{UUID: strings.ToUpper(uuid1), Name: "Sesame 0A1B"},
				{UUID: uuid3, Name: "Back"},
			},
		},
		{
			name: "three in order",
			in:   uuid2 + ":" + secret2 + ":B, " + uuid1 + ":" + secret1 + ":A ," + uuid3 + ":" + secret3,
			want: []Lock{
				{UUID: uuid2, Name: "B"},
				{UUID: strings.ToUpper(uuid1), Name: "A"},
				{UUID: uuid3, Name: "Sesame ABCD"},
			},
		},
	}
	secrets := map[string]string{
		strings.ToUpper(uuid1): strings.ToLower(secret1),
		uuid2:                  secret2,
		uuid3:                  secret3,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			setEnv(t, with(minimal(), "SESAME_LOCKS", tt.in))
			c, err := Load()
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if len(c.Locks) != len(tt.want) {
				t.Fatalf("got %d locks, want %d: %+v", len(c.Locks), len(tt.want), c.Locks)
			}
			for i, l := range c.Locks {
				w := tt.want[i]
				if l.UUID != w.UUID || l.Name != w.Name {
					t.Errorf("lock %d = {%s %q}, want {%s %q}", i, l.UUID, l.Name, w.UUID, w.Name)
				}
				if l.Secret.Reveal() != secrets[w.UUID] {
					t.Errorf("lock %d secret not the lowercased input", i)
				}
			}
		})
	}
}

func TestLockID(t *testing.T) {
	l := Lock{UUID: strings.ToUpper(uuid1)}
	if got, want := l.ID(), "0a1b2c3d4e5f60718293a4b5c6d7e8f9"; got != want {
		t.Errorf("ID() = %q, want %q", got, want)
	}
}

func TestLoadInvalid(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		wants []string // one expected substring per error line, in order
	}{
		{"missing key", map[string]string{"SESAME_LOCKS": oneLockSpec},
			[]string{"SESAME_API_KEY: required"}},
		{"blank key", with(minimal(), "SESAME_API_KEY", "   "),
			[]string{"SESAME_API_KEY: required"}},
		{"missing locks", map[string]string{"SESAME_API_KEY": testKey},
			[]string{"SESAME_LOCKS: required"}},
		{"only commas", with(minimal(), "SESAME_LOCKS", " , ,"),
			[]string{"SESAME_LOCKS: no locks given"}},
		{"entry without secret", with(minimal(), "SESAME_LOCKS", oneLockSpec+","+uuid2),
			[]string{"SESAME_LOCKS entry 2: missing secret"}},
		{"entry with empty secret", with(minimal(), "SESAME_LOCKS", uuid2+"::Name"),
			[]string{"SESAME_LOCKS entry 1: missing secret"}},
		{"short secret", with(minimal(), "SESAME_LOCKS", oneLockSpec+","+uuid2+":"+secret2[:31]),
			[]string{"SESAME_LOCKS entry 2: secret must be 32 hex characters"}},
		{"long secret", with(minimal(), "SESAME_LOCKS", uuid2+":"+secret2+"0"),
			[]string{"SESAME_LOCKS entry 1: secret must be 32 hex characters"}},
		{"non-hex secret", with(minimal(), "SESAME_LOCKS", uuid2+":"+"g"+secret2[1:]),
			[]string{"SESAME_LOCKS entry 1: secret must be 32 hex characters"}},
		{"bad uuid groups", with(minimal(), "SESAME_LOCKS", "0a1b2c3d4e5f-6071-8293-a4b5c6d7e8f9:"+secret1),
			[]string{"SESAME_LOCKS entry 1: UUID must be 8-4-4-4-12"}},
		{"non-hex uuid", with(minimal(), "SESAME_LOCKS", "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8fz:"+secret1),
			[]string{"SESAME_LOCKS entry 1: UUID must be 8-4-4-4-12"}},
		{"bad uuid and secret", with(minimal(), "SESAME_LOCKS", "nope:short"),
			[]string{"entry 1: UUID must", "entry 1: secret must"}},
		{"duplicate uuid any case", with(minimal(), "SESAME_LOCKS",
			strings.ToLower(uuid3)+":"+secret1+":A,"+uuid3+":"+secret2+":B"),
			[]string{"SESAME_LOCKS entry 2: UUID " + uuid3 + " is already used by entry 1"}},
		{"duplicate name any case", with(minimal(), "SESAME_LOCKS",
			uuid1+":"+secret1+":Front Door,"+uuid2+":"+secret2+":front door "),
			[]string{`SESAME_LOCKS entry 2: name "front door" is already used by entry 1`}},
		{"duplicate default name", with(minimal(), "SESAME_LOCKS",
			uuid3+":"+secret1+","+"abcd0000-0000-0000-0000-000000000000:"+secret2),
			[]string{`entry 2: name "Sesame ABCD" is already used by entry 1`}},
		{"budget not integer", with(minimal(), "API_MONTHLY_BUDGET", "lots"),
			[]string{`API_MONTHLY_BUDGET: must be an integer >= 1, got "lots"`}},
		{"budget float", with(minimal(), "API_MONTHLY_BUDGET", "1.5"),
			[]string{"API_MONTHLY_BUDGET: must be an integer >= 1"}},
		{"budget zero", with(minimal(), "API_MONTHLY_BUDGET", "0"),
			[]string{"API_MONTHLY_BUDGET: must be an integer >= 1"}},
		{"budget negative", with(minimal(), "API_MONTHLY_BUDGET", "-5"),
			[]string{"API_MONTHLY_BUDGET: must be an integer >= 1"}},
		{"api url relative", with(minimal(), "SESAME_API_URL", "/api/sesame2"),
			[]string{"SESAME_API_URL: must be an absolute URL"}},
		{"api url no host", with(minimal(), "SESAME_API_URL", "https:///x"),
			[]string{"SESAME_API_URL: must be an absolute URL"}},
		{"api url scheme", with(minimal(), "SESAME_API_URL", "ftp://example.com"),
			[]string{`SESAME_API_URL: scheme must be http or https, got "ftp"`}},
		{"api url unparsable", with(minimal(), "SESAME_API_URL", "http://exa mple.com:x"),
			[]string{"SESAME_API_URL: not a valid URL"}},
		{"mqtt url scheme", with(minimal(), "MQTT_URL", "http://broker:1883"),
			[]string{`MQTT_URL: scheme must be tcp, ssl, ws or wss`}},
		{"mqtt url no scheme", with(minimal(), "MQTT_URL", "localhost:1883"),
			[]string{"MQTT_URL: "}},
		{"mqtt url no host", with(minimal(), "MQTT_URL", "tcp://:1883"),
			[]string{"MQTT_URL: must be an absolute URL with a host"}},
		{"mqtt url bad port", with(minimal(), "MQTT_URL", "tcp://broker:70000"),
			[]string{"MQTT_URL: port must be 1-65535"}},
		{"mqtt url and username", with(minimal(), "MQTT_URL", "tcp://u:p@broker", "MQTT_USERNAME", "v"),
			[]string{"MQTT_URL: has user info and MQTT_USERNAME or MQTT_PASSWORD is set too"}},
		{"api url user info", with(minimal(), "SESAME_API_URL", "https://u:p@example.com"),
			[]string{"SESAME_API_URL: must not contain user info"}},
		{"log level", with(minimal(), "LOG_LEVEL", "verbose"),
			[]string{`LOG_LEVEL: must be debug, info, warn or error, got "verbose"`}},
	}
	for _, topicVar := range []string{"MQTT_DISCOVERY_PREFIX", "MQTT_BASE_TOPIC"} {
		for _, bad := range []string{"/ha", "ha/", "a//b", "ha/#", "ha/+/x", "h a", "hä", "/"} {
			tests = append(tests, struct {
				name  string
				env   map[string]string
				wants []string
			}{topicVar + " " + bad, with(minimal(), topicVar, bad), []string{fmt.Sprintf("%s: %q must be", topicVar, bad)}})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			setEnv(t, tt.env)
			c, err := Load()
			if err == nil {
				t.Fatalf("Load succeeded: %+v", c.Redacted())
			}
			lines := errLines(err)
			if len(lines) != len(tt.wants) {
				t.Fatalf("got %d error lines, want %d:\n%v", len(lines), len(tt.wants), err)
			}
			for i, w := range tt.wants {
				if !strings.Contains(lines[i], w) {
					t.Errorf("line %d = %q, want it to contain %q", i+1, lines[i], w)
				}
			}
			if !reflect.DeepEqual(c, Config{}) {
				t.Errorf("Load returned a non-zero Config with an error")
			}
		})
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	cleanEnv(t)
	setEnv(t, map[string]string{
		// SESAME_API_KEY missing: 1
		"SESAME_API_URL": "ftp://x", // 2
		"SESAME_LOCKS": "bad:" + secret1 + "," + // 3: uuid
			uuid1 + "," + // 4: no secret
			uuid2 + ":" + secret2 + ":Door," +
			strings.ToLower(uuid2) + ":" + secret3 + "," + // 5: duplicate uuid
			uuid3 + ":" + secret1 + ":DOOR", // 6: duplicate name
		"API_MONTHLY_BUDGET":    "0",         // 7
		"MQTT_URL":              "gopher://", // 8
		"MQTT_DISCOVERY_PREFIX": "#",         // 9
		"MQTT_BASE_TOPIC":       "a/",        // 10
		"LOG_LEVEL":             "loud",      // 11
	})
	_, err := Load()
	lines := errLines(err)
	if len(lines) != 11 {
		t.Fatalf("got %d error lines, want 11:\n%v", len(lines), err)
	}
	prefixes := []string{
		"SESAME_API_KEY:", "SESAME_API_URL:", "SESAME_LOCKS entry 1:", "SESAME_LOCKS entry 2:",
		"SESAME_LOCKS entry 4:", "SESAME_LOCKS entry 5:", "API_MONTHLY_BUDGET:", "MQTT_URL:",
		"MQTT_DISCOVERY_PREFIX:", "MQTT_BASE_TOPIC:", "LOG_LEVEL:",
	}
	for i, p := range prefixes {
		if !strings.HasPrefix(lines[i], p) {
			t.Errorf("line %d = %q, want prefix %q", i+1, lines[i], p)
		}
	}
}

// No error text may repeat the API key, the MQTT password or any secret,
// even when a user swaps UUID and SECRET or puts them in odd places.
func TestLoadErrorsHideSecrets(t *testing.T) {
	const password = "s3cr3t-pa55word"
	cleanEnv(t)
	setEnv(t, map[string]string{
		"SESAME_API_KEY": testKey,
		"SESAME_LOCKS": secret1 + ":" + uuid1 + "," + // swapped
			uuid2 + ":" + secret2[:30] + "," + // too short
			uuid2 + ":" + secret3 + "," + // duplicate uuid
			uuid3 + ":" + secret2 + "z", // too long
		"SESAME_API_URL":     "ftp://user:" + testKey + "@host",
		"MQTT_URL":           "gopher://user:" + password + "@broker",
		"MQTT_PASSWORD":      password,
		"API_MONTHLY_BUDGET": "x",
	})
	_, err := Load()
	if err == nil {
		t.Fatal("Load succeeded")
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{testKey, password, secret1, secret2, secret2[:30], secret3} {
		if strings.Contains(msg, strings.ToLower(s)) {
			t.Errorf("error text contains a secret value %q:\n%v", s, err)
		}
	}
	if len(errLines(err)) < 6 {
		t.Errorf("expected every problem reported, got:\n%v", err)
	}

	// And an unparsable URL carrying a password.
	cleanEnv(t)
	setEnv(t, with(minimal(), "MQTT_URL", "tcp://user:"+password+"@bro ker:x"))
	_, err = Load()
	if err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("unparsable MQTT_URL: error %v", err)
	}
}

func TestRedacted(t *testing.T) {
	const password = "pa55"
	cleanEnv(t)
	setEnv(t, with(minimal(),
		"SESAME_LOCKS", oneLockSpec+":Front,"+uuid2+":"+secret2,
		"MQTT_URL", "tcp://user:"+password+"@broker:1883"))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.MQTTURL != "tcp://broker:1883" || c.MQTTUsername != "user" || c.MQTTPassword.Reveal() != password {
		t.Errorf("credentials not moved out of MQTT_URL: url %q user %q", c.MQTTURL, c.MQTTUsername)
	}
	r := c.Redacted()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.ToLower(string(b))
	for _, s := range []string{testKey, secret1, secret2, password} {
		if strings.Contains(out, strings.ToLower(s)) {
			t.Errorf("Redacted contains secret %q: %s", s, b)
		}
	}
	if r["api_key"] != "REDACTED" || r["mqtt_password"] != "REDACTED" {
		t.Errorf("secrets not marked REDACTED: %s", b)
	}
	for _, s := range []string{strings.ToLower(uuid1), strings.ToLower(uuid2), `"front"`, "broker:1883", "homeassistant"} {
		if !strings.Contains(out, s) {
			t.Errorf("Redacted lacks %q: %s", s, b)
		}
	}
	// A slog line of the summary is also clean.
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", r, "full", c)
	for _, s := range []string{testKey, strings.ToLower(secret1), secret2, password} {
		if strings.Contains(buf.String(), s) {
			t.Errorf("log line contains secret %q: %s", s, buf.String())
		}
	}
}

func TestUsage(t *testing.T) {
	var buf bytes.Buffer
	if err := Usage(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	rt := reflect.TypeFor[raw]()
	for i := range rt.NumField() {
		f := rt.Field(i)
		key := f.Tag.Get("envconfig")
		var line string
		for l := range strings.Lines(out) {
			if strings.HasPrefix(l, key+" ") {
				line = l
			}
		}
		if line == "" {
			t.Errorf("usage lacks %s:\n%s", key, out)
			continue
		}
		if !strings.Contains(line, f.Tag.Get("default")) || !strings.Contains(line, f.Tag.Get("desc")) {
			t.Errorf("usage line for %s lacks its default or description: %q", key, line)
		}
	}
	for _, hidden := range []string{"HOME", "XDG_STATE_HOME"} {
		for l := range strings.Lines(out) {
			if strings.HasPrefix(l, hidden+" ") {
				t.Errorf("usage shows internal variable %s", hidden)
			}
		}
	}
}

func TestEnsureStateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := EnsureStateDir(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		t.Fatalf("stat %s: %v", dir, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("mode %v, want no group/other access", perm)
	}
	if err := EnsureStateDir(dir); err != nil {
		t.Errorf("second call: %v", err)
	}

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err = EnsureStateDir(filepath.Join(file, "sub"))
	if err == nil || !strings.Contains(err.Error(), "create state dir") {
		t.Errorf("under a file: err = %v, want a wrapped error", err)
	}
	if err := EnsureStateDir(""); err == nil {
		t.Errorf("empty path: no error")
	}
}
