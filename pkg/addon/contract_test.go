package addon

// The options table against pkg/config: every option reaches the
// configuration field it names, and every variable pkg/config reads is
// offered as an option or listed in notOptions with the reason.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/config"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
)

// contract is the environment of issues A-C that the options map onto.
var contract = []string{
	"SESAME_API_KEY", "SESAME_API_URL", "SESAME_LOCKS", "API_MONTHLY_BUDGET", "STATE_DIR",
	"MQTT_URL", "MQTT_USERNAME", "MQTT_PASSWORD", "MQTT_DISCOVERY_PREFIX", "MQTT_BASE_TOPIC",
	"LOG_LEVEL",
	"NFC_DEVICE", "NFC_CARDS", "NFC_ACTION", "NFC_LOCK", "NFC_TAG_SCANNER", "NFC_HOLD_OFF",
	"LED_GREEN_PIN", "LED_RED_PIN", "BUZZER_PIN", "LED_ACTIVE_LOW",
	"MQTT_CA_FILE", "MQTT_CLIENT_CERT", "MQTT_CLIENT_KEY",
	"WEB_LISTEN", "WEB_PASSWORD", "INGRESS_LISTEN", "INGRESS_SUPERVISOR",
	"ACCESS_SHARED", "ACCESS_SHARED_TOPIC",
	"SESAME_PUSH", "SESAME_PUSH_POOL_ID", "SESAME_PUSH_REGION", "SESAME_PUSH_ENDPOINT",
	"SESAME_PUSH_COGNITO_URL", "SESAME_PUSH_SHADOW_URL",
}

// notOptions are the contract's variables deliberately not offered as
// add-on options, and why.
var notOptions = map[string]string{
	"STATE_DIR":               "fixed to /data, the add-on's persistent folder that backups include (Prepare sets it); nothing for the user to choose",
	"WEB_LISTEN":              "the add-on's page is Home Assistant's ingress panel (HA logs the user in); a second, password-protected port would bypass HA's login and is for installs outside HA",
	"WEB_PASSWORD":            "only with WEB_LISTEN",
	"INGRESS_LISTEN":          "fixed to :8099, the manifest's ingress_port (Prepare sets it)",
	"INGRESS_SUPERVISOR":      "fixed: the Supervisor's address on the add-ons' network, 172.30.32.2",
	"SESAME_PUSH_REGION":      "follows from push_pool_id; a user who changes the pool changes the region with it",
	"SESAME_PUSH_COGNITO_URL": "a test override (a fake Cognito); nothing a user sets",
	"SESAME_PUSH_SHADOW_URL":  "a test override (a fake shadow GET); nothing a user sets",
}

// configVars are the variables pkg/config documents in its usage table
// (the first column of `sesame2mqtt -help`).
func configVars(t *testing.T) []string {
	t.Helper()
	var buf bytes.Buffer
	if err := config.Usage(&buf); err != nil {
		t.Fatal(err)
	}
	var vars []string
	for i, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) == 0 {
			continue // header
		}
		vars = append(vars, f[0])
	}
	if len(vars) < 5 {
		t.Fatalf("could not read pkg/config's usage table:\n%s", buf.String())
	}
	return vars
}

func TestOptionsCoverTheContract(t *testing.T) {
	mapped := map[string]string{}
	for _, o := range options {
		if prev, dup := mapped[o.env]; dup {
			t.Errorf("%s is set by both %s and %s", o.env, prev, o.key)
		}
		mapped[o.env] = o.key
		if !slices.Contains(contract, o.env) {
			t.Errorf("option %s sets %s, which is not a variable of the contract", o.key, o.env)
		}
	}
	for _, v := range contract {
		_, isMapped := mapped[v]
		why, isException := notOptions[v]
		switch {
		case isMapped && isException:
			t.Errorf("%s is both an option and listed in notOptions (%s)", v, why)
		case !isMapped && !isException:
			t.Errorf("%s: no add-on option sets it; add one or list it in notOptions with the reason", v)
		}
	}

	known := configVars(t)
	for _, v := range known {
		if !slices.Contains(contract, v) {
			t.Errorf("pkg/config reads %s, which the add-on neither offers nor lists in notOptions", v)
		}
	}
	for _, v := range contract {
		if !slices.Contains(known, v) {
			t.Errorf("%s is in the contract but pkg/config does not read it", v)
		}
	}
}

// Options go through LoadOptions and the environment into config.Load and
// come out as the configuration fields they name.
func TestOptionsReachConfig(t *testing.T) {
	clearConfigEnv(t)
	// The TLS options name files in /ssl: here a folder with a test CA's
	// ca.crt and a client's client.crt and client.key.
	pki := mosquittotest.NewPKI(t)
	pki.Client("client", "sesame2mqtt")
	ssl := filepath.Dir(pki.CAFile)
	vars, err := loadOptions(writeOptions(t, fullOptions), ssl)
	if err != nil {
		t.Fatal(err)
	}
	vars["STATE_DIR"] = t.TempDir()
	for k, v := range vars {
		t.Setenv(k, v)
	}
	cfg, err := config.Load()
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	check := func(field string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", field, got, want)
		}
	}
	check("APIKey", cfg.APIKey.Reveal(), testAPIKey)
	check("APIURL", cfg.APIURL, "https://sesame.example/api/sesame2")
	check("MonthlyBudget", cfg.MonthlyBudget, 2500)
	check("StateDir", cfg.StateDir, vars["STATE_DIR"])
	check("MQTTURL", cfg.MQTTURL, "ssl://broker.example:8883")
	check("MQTTUsername", cfg.MQTTUsername, "sesame")
	check("MQTTPassword", cfg.MQTTPassword.Reveal(), testMQTTPass)
	check("DiscoveryPrefix", cfg.DiscoveryPrefix, "ha")
	check("BaseTopic", cfg.BaseTopic, "locks/sesame")
	check("LogLevel", cfg.LogLevel.String(), "DEBUG")
	check("Push", cfg.Push, config.Push{Enabled: false, PoolID: "ap-northeast-1:11111111-2222-4333-8444-555555555555",
		Region: "ap-northeast-1", Endpoint: "a3i4hui4gxwoo8-ats.iot.ap-northeast-1.amazonaws.com"})
	if len(cfg.Locks) != 2 {
		t.Fatalf("Locks = %v", cfg.Locks)
	}
	check("Locks[0]", []string{cfg.Locks[0].UUID, cfg.Locks[0].Secret.Reveal(), cfg.Locks[0].Name}, []string{testUUID1, testSecret1, "Front door"})
	check("Locks[1]", []string{cfg.Locks[1].UUID, cfg.Locks[1].Secret.Reveal(), cfg.Locks[1].Name}, []string{testUUID2, testSecret2, "Back: garden"})

	check("NFC.Device", cfg.NFC.Device, "pn532_uart:/dev/ttyAMA0")
	check("NFC.Action", cfg.NFC.Action, "unlock")
	check("NFC.LockID", cfg.NFC.LockID, cfg.Locks[0].ID()) // nfc_lock names "Front door"
	check("NFC.TagScanner", cfg.NFC.TagScanner, "known")
	check("NFC.HoldOff", cfg.NFC.HoldOff.String(), "2s")
	if len(cfg.NFC.Cards) != 2 {
		t.Fatalf("NFC.Cards = %v", cfg.NFC.Cards)
	}
	check("NFC.Cards[0]", []string{fmt.Sprintf("%X", cfg.NFC.Cards[0].UID), cfg.NFC.Cards[0].Name}, []string{"04A23BC4D58080", "Alice"})
	check("NFC.Cards[1]", []string{fmt.Sprintf("%X", cfg.NFC.Cards[1].UID), cfg.NFC.Cards[1].Name}, []string{"04A23BC4", "Bob: spare"})
	check("LED", []any{cfg.LED.Green, cfg.LED.Red, cfg.LED.Buzzer, cfg.LED.ActiveLow}, []any{"GPIO23", "GPIO24", "GPIO25", true})
	check("MQTTTLS", []string{cfg.MQTTTLS.CAFile, cfg.MQTTTLS.CertFile, cfg.MQTTTLS.KeyFile},
		[]string{filepath.Join(ssl, "ca.crt"), filepath.Join(ssl, "client.crt"), filepath.Join(ssl, "client.key")})
	if tc := cfg.MQTTTLS.Config(); tc == nil || tc.RootCAs == nil || len(tc.Certificates) != 1 {
		t.Errorf("TLS config from the options: %+v", tc)
	}
}

// Every value a list(...) option offers in the form is one pkg/config accepts.
func TestEnumOptionsAreAccepted(t *testing.T) {
	m, _ := loadManifest(t)
	schema := m["schema"].(map[string]any)
	known := configVars(t)
	for _, o := range options {
		s, _ := schema[o.key].(string)
		if !strings.HasPrefix(s, "list(") {
			continue
		}
		values := strings.Split(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(s, "?"), "list("), ")"), "|")
		t.Run(o.key, func(t *testing.T) {
			if !slices.Contains(known, o.env) {
				t.Fatalf("pkg/config does not read %s", o.env)
			}
			for _, v := range values {
				clearConfigEnv(t)
				t.Setenv("STATE_DIR", t.TempDir())
				vars, err := LoadOptions(writeOptions(t, fmt.Sprintf(`{"api_key": %q, "locks": [{"name": "D", "uuid": %q, "secret": %q}], %q: %q}`, testAPIKey, testUUID1, testSecret1, o.key, v)))
				if err != nil {
					t.Fatal(err)
				}
				for k, val := range vars {
					t.Setenv(k, val)
				}
				if _, err := config.Load(); err != nil {
					t.Errorf("%s=%s: config.Load: %v", o.key, v, err)
				}
			}
		})
	}
}

// The defaults in config.yaml, as the Supervisor writes them once the user
// filled in the required fields, load without error.
func TestManifestDefaultsLoad(t *testing.T) {
	m, _ := loadManifest(t)
	opts := map[string]any{}
	for k, v := range m["options"].(map[string]any) {
		opts[k] = v
	}
	if opts["api_key"] != nil {
		t.Errorf("options.api_key = %v: the user's key has no default", opts["api_key"])
	}
	opts["api_key"] = testAPIKey
	opts["locks"] = []any{map[string]any{"name": "Door", "uuid": testUUID1, "secret": testSecret1}}
	data, err := json.Marshal(opts)
	if err != nil {
		t.Fatal(err)
	}
	vars, err := LoadOptions(writeOptions(t, string(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range options {
		if !o.optional && o.kind != kindLocks && o.kind != kindCards && vars[o.env] == "" {
			t.Errorf("default of %s did not reach %s", o.key, o.env)
		}
	}
}

func clearConfigEnv(t *testing.T) {
	t.Helper()
	for _, k := range append(slices.Clone(contract), "XDG_STATE_HOME") {
		t.Setenv(k, "")
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
}
