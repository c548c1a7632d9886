package addon

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	testAPIKey   = "kEy0123456789abcdefghijklmnopqrstuvwxyzAB"
	testUUID1    = "0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9"
	testUUID2    = "11111111-2222-3333-4444-555555555555"
	testSecret1  = "a13d4b890111676ba8fb36ece7e94f7d"
	testSecret2  = "00112233445566778899aabbccddeeff"
	testMQTTPass = "mqtt-pa55word-do-not-print"
)

// secrets are the values no error or log line may contain.
var secrets = []string{testAPIKey, testSecret1, testSecret2, testMQTTPass}

func writeOptions(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "options.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func assertNoSecrets(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s contains a secret: %s", what, text)
		}
	}
}

const fullOptions = `{
  "api_key": "` + testAPIKey + `",
  "api_url": "https://sesame.example/api/sesame2",
  "locks": [
    {"name": "Front door", "uuid": "` + testUUID1 + `", "secret": "` + testSecret1 + `"},
    {"name": "Back: garden", "uuid": "` + testUUID2 + `", "secret": "` + testSecret2 + `"}
  ],
  "cards": [
    {"uid": "04A23BC4D58080", "name": "Alice"},
    {"uid": "04:a2:3b:c4", "name": "Bob: spare"}
  ],
  "nfc_device": "pn532_uart:/dev/ttyAMA0",
  "nfc_action": "unlock",
  "nfc_lock": "Front door",
  "nfc_tag_scanner": "known",
  "nfc_hold_off": "2s",
  "led_green_pin": "GPIO23",
  "led_red_pin": "GPIO24",
  "buzzer_pin": "GPIO25",
  "led_active_low": true,
  "monthly_api_budget": 2500,
  "push": false,
  "push_endpoint": "a3i4hui4gxwoo8-ats.iot.ap-northeast-1.amazonaws.com",
  "push_pool_id": "ap-northeast-1:11111111-2222-4333-8444-555555555555",
  "log_level": "debug",
  "mqtt_url": "ssl://broker.example:8883",
  "mqtt_username": "sesame",
  "mqtt_password": "` + testMQTTPass + `",
  "mqtt_ca_file": "ca.crt",
  "mqtt_client_cert": " client.crt ",
  "mqtt_client_key": "client.key",
  "mqtt_discovery_prefix": "ha",
  "mqtt_base_topic": "locks/sesame"
}`

var fullVars = map[string]string{
	"SESAME_API_KEY":        testAPIKey,
	"SESAME_API_URL":        "https://sesame.example/api/sesame2",
	"SESAME_LOCKS":          testUUID1 + ":" + testSecret1 + ":Front door," + testUUID2 + ":" + testSecret2 + ":Back: garden",
	"NFC_CARDS":             "04A23BC4D58080:Alice,04A23BC4:Bob: spare",
	"NFC_DEVICE":            "pn532_uart:/dev/ttyAMA0",
	"NFC_ACTION":            "unlock",
	"NFC_LOCK":              "Front door",
	"NFC_TAG_SCANNER":       "known",
	"NFC_HOLD_OFF":          "2s",
	"LED_GREEN_PIN":         "GPIO23",
	"LED_RED_PIN":           "GPIO24",
	"BUZZER_PIN":            "GPIO25",
	"LED_ACTIVE_LOW":        "true",
	"API_MONTHLY_BUDGET":    "2500",
	"SESAME_PUSH":           "false",
	"SESAME_PUSH_ENDPOINT":  "a3i4hui4gxwoo8-ats.iot.ap-northeast-1.amazonaws.com",
	"SESAME_PUSH_POOL_ID":   "ap-northeast-1:11111111-2222-4333-8444-555555555555",
	"LOG_LEVEL":             "debug",
	"MQTT_URL":              "ssl://broker.example:8883",
	"MQTT_USERNAME":         "sesame",
	"MQTT_PASSWORD":         testMQTTPass,
	"MQTT_CA_FILE":          "/ssl/ca.crt",
	"MQTT_CLIENT_CERT":      "/ssl/client.crt",
	"MQTT_CLIENT_KEY":       "/ssl/client.key",
	"MQTT_DISCOVERY_PREFIX": "ha",
	"MQTT_BASE_TOPIC":       "locks/sesame",
}

func TestLoadOptionsFull(t *testing.T) {
	got, err := LoadOptions(writeOptions(t, fullOptions))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, fullVars) {
		t.Errorf("got  %v\nwant %v", got, fullVars)
	}
	// Every option of the table is exercised by the full file.
	for _, o := range options {
		if _, ok := got[o.env]; !ok {
			t.Errorf("fullOptions does not set %s (option %s)", o.env, o.key)
		}
	}
}

// What the Supervisor writes after the user filled in the key and one lock
// and left every default alone.
func TestLoadOptionsMinimal(t *testing.T) {
	path := writeOptions(t, `{"api_key": "`+testAPIKey+`",
	  "locks": [{"name": "", "uuid": " `+testUUID1+` ", "secret": "`+testSecret1+`"}],
	  "cards": [], "nfc_action": "toggle", "nfc_tag_scanner": "all",
	  "led_active_low": false, "monthly_api_budget": 3000, "log_level": "info"}`)
	got, err := LoadOptions(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"SESAME_API_KEY":     testAPIKey,
		"SESAME_LOCKS":       testUUID1 + ":" + testSecret1, // no name: pkg/config gives one
		"NFC_ACTION":         "toggle",
		"NFC_TAG_SCANNER":    "all",
		"LED_ACTIVE_LOW":     "false",
		"API_MONTHLY_BUDGET": "3000",
		"LOG_LEVEL":          "info",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

func TestLoadOptionsUnsetValues(t *testing.T) {
	got, err := LoadOptions(writeOptions(t, `{"api_key": null, "api_url": "  ", "locks": [], "nfc_lock": ""}`))
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || len(got) != 0 {
		t.Errorf("got %#v, want an empty non-nil map (an add-on with nothing set)", got)
	}
}

func TestLoadOptionsAbsentFile(t *testing.T) {
	got, err := LoadOptions(filepath.Join(t.TempDir(), "no-such", "options.json"))
	if err != nil || got != nil {
		t.Errorf("got (%v, %v), want (nil, nil): no file means not an add-on", got, err)
	}
}

func TestLoadOptionsUnreadable(t *testing.T) {
	dir := t.TempDir() // a directory where the file should be
	_, err := LoadOptions(dir)
	if err == nil || !strings.HasPrefix(err.Error(), "options: read "+dir) {
		t.Errorf("err = %v, want a read error naming %s", err, dir)
	}
}

func TestLoadOptionsInvalid(t *testing.T) {
	lock := func(fields string) string { return `{"api_key": "k", "locks": [` + fields + `]}` }
	good := `{"name": "Door", "uuid": "` + testUUID1 + `", "secret": "` + testSecret1 + `"}`
	tests := []struct {
		name, json string
		want       []string // every line, in order, without the path prefix for file-level errors
	}{
		{"syntax", `{"api_key": "` + testAPIKey + `" "locks": []}`, []string{"options: FILE: invalid JSON at byte 57"}},
		{"empty file", ``, []string{"options: FILE: invalid JSON: unexpected end of file"}},
		{"truncated", `{"api_key": "` + testAPIKey, []string{"options: FILE: invalid JSON: unexpected end of file"}},
		{"two documents", `{} {}`, []string{"options: FILE: invalid JSON: more than one value"}},
		{"not an object", `[1, 2]`, []string{"options: FILE: must be a JSON object"}},
		{"string as secret", `{"api_key": 42}`, []string{"options: api_key: must be a string"}},
		{"string as bool", `{"led_active_low": "yes"}`, []string{"options: led_active_low: must be true or false"}},
		{"string as int", `{"monthly_api_budget": "3000"}`, []string{"options: monthly_api_budget: must be a whole number"}},
		{"fraction as int", `{"monthly_api_budget": 3000.5}`, []string{"options: monthly_api_budget: must be a whole number"}},
		{"number as string", `{"nfc_device": 1}`, []string{"options: nfc_device: must be a string"}},
		{"list as string", `{"log_level": ["info"]}`, []string{"options: log_level: must be a string"}},
		{"NUL in a value", `{"nfc_lock": "Door\u0000"}`, []string{"options: nfc_lock: must not contain a NUL character"}},
		{"locks not a list", `{"locks": {"name": "Door"}}`, []string{"options: locks: must be a list"}},
		{"lock not an object", lock(`"` + testUUID1 + `"`), []string{"options: locks[1]: must be an object with name, uuid, secret"}},
		{"lock without uuid", lock(good + `, {"name": "Back", "secret": "` + testSecret2 + `"}`), []string{"options: locks[2].uuid: required"}},
		{"lock with null secret", lock(`{"name": "Door", "uuid": "` + testUUID1 + `", "secret": null}`), []string{"options: locks[1].secret: required"}},
		{"lock with empty uuid and secret", lock(`{"name": "Door", "uuid": " ", "secret": ""}`), []string{"options: locks[1].uuid: required", "options: locks[1].secret: required"}},
		{"lock without name", lock(`{"uuid": "` + testUUID1 + `", "secret": "` + testSecret1 + `"}`), []string{"options: locks[1].name: required"}},
		{"lock field of wrong type", lock(`{"name": "Door", "uuid": "` + testUUID1 + `", "secret": 7}`), []string{"options: locks[1].secret: must be a string"}},
		{"lock with unknown field", lock(`{"name": "Door", "uuid": "` + testUUID1 + `", "secret": "` + testSecret1 + `", "pin": "1234"}`), []string{"options: locks[1].pin: unknown field"}},
		{"comma in lock name", lock(`{"name": "Front, main", "uuid": "` + testUUID1 + `", "secret": "` + testSecret1 + `"}`), []string{"options: locks[1].name: must not contain ',' (SESAME_LOCKS separates locks with commas)"}},
		{"separator in secret", lock(`{"name": "Door", "uuid": "` + testUUID1 + `", "secret": "` + testSecret1[:16] + `:` + testSecret1[16:] + `"}`), []string{"options: locks[1].secret: must not contain ',' or ':'"}},
		{"comma in uuid", lock(`{"name": "Door", "uuid": "` + testUUID1 + `,x", "secret": "` + testSecret1 + `"}`), []string{"options: locks[1].uuid: must not contain ',' or ':'"}},
		{"cards not a list", `{"cards": "04A23BC4:Alice"}`, []string{"options: cards: must be a list"}},
		{"card without uid", `{"cards": [{"name": "Alice"}]}`, []string{"options: cards[1].uid: required"}},
		{"card with separators only", `{"cards": [{"uid": " : ", "name": "Alice"}]}`, []string{"options: cards[1].uid: required"}},
		{"card with empty name", `{"cards": [{"uid": "04A23BC4", "name": ""}]}`, []string{"options: cards[1].name: required"}},
		{"comma in card name", `{"cards": [{"uid": "04A23BC4", "name": "Smith, Alice"}]}`, []string{"options: cards[1].name: must not contain ',' (NFC_CARDS separates cards with commas)"}},
		{"comma in card uid", `{"cards": [{"uid": "04A2,3BC4", "name": "Alice"}]}`, []string{"options: cards[1].uid: must not contain ','"}},
		{"unknown option", `{"api_key": "k", "mqtt_host": "core-mosquitto"}`, []string{"options: mqtt_host: unknown option"}},
		{"unknown option with a space", `{"log level": "info"}`, []string{`options: "log level": unknown option`}},
		{"every problem at once", `{"api_key": 1, "locks": [{"name": "A,B", "uuid": "", "secret": "` + testSecret1 + `"}], "led_active_low": 0, "zz": 1, "aa": 2}`, []string{
			"options: api_key: must be a string",
			"options: locks[1].uuid: required",
			"options: locks[1].name: must not contain ',' (SESAME_LOCKS separates locks with commas)",
			"options: led_active_low: must be true or false",
			"options: aa: unknown option",
			"options: zz: unknown option",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeOptions(t, tc.json)
			got, err := LoadOptions(path)
			if err == nil {
				t.Fatalf("no error; got %v", got)
			}
			if got != nil {
				t.Errorf("vars %v returned with an error", got)
			}
			lines := errLines(err)
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = strings.ReplaceAll(w, "FILE", path)
			}
			if !reflect.DeepEqual(lines, want) {
				t.Errorf("errors:\n got  %q\n want %q", lines, want)
			}
			assertNoSecrets(t, "error", err.Error())
			if strings.Contains(err.Error(), testSecret1[:16]) {
				t.Errorf("error repeats part of a secret: %v", err)
			}
		})
	}
}

func TestApplyEnvironmentWins(t *testing.T) {
	env := map[string]string{
		"SESAME_API_KEY": "from-env",
		"MQTT_URL":       "   ", // blank counts as unset, as in pkg/config
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	set := func(k, v string) error { env[k] = v; return nil }
	vars := map[string]string{
		"SESAME_API_KEY": "from-options",
		"MQTT_URL":       "tcp://broker:1883",
		"LOG_LEVEL":      "debug",
	}
	names, err := Apply(vars, lookup, set)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"LOG_LEVEL", "MQTT_URL"}; !reflect.DeepEqual(names, want) {
		t.Errorf("names = %v, want %v", names, want)
	}
	want := map[string]string{"SESAME_API_KEY": "from-env", "MQTT_URL": "tcp://broker:1883", "LOG_LEVEL": "debug"}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("env = %v, want %v", env, want)
	}
}

func TestApplyStopsWhenSetFails(t *testing.T) {
	var set []string
	boom := errors.New("refused")
	names, err := Apply(
		map[string]string{"A": "1", "B": "2", "C": "3"},
		func(string) (string, bool) { return "", false },
		func(k, _ string) error {
			if k == "B" {
				return boom
			}
			set = append(set, k)
			return nil
		})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "set B") {
		t.Errorf("err = %v, want the refusal for B", err)
	}
	if !reflect.DeepEqual(names, []string{"A"}) || !reflect.DeepEqual(set, []string{"A"}) {
		t.Errorf("names = %v, set = %v; want only A", names, set)
	}
}

func TestOptionFor(t *testing.T) {
	if k, ok := OptionFor("SESAME_LOCKS"); !ok || k != "locks" {
		t.Errorf("OptionFor(SESAME_LOCKS) = %q, %v", k, ok)
	}
	if k, ok := OptionFor("STATE_DIR"); ok {
		t.Errorf("OptionFor(STATE_DIR) = %q, want none", k)
	}
}

// main prints Unwrap() []error one element per line: each element must be
// exactly one line, also for problems inside list items.
func TestLoadOptionsErrorIsFlat(t *testing.T) {
	_, err := LoadOptions(writeOptions(t, `{"locks": [{"name": "A,B", "uuid": ""}], "cards": [{"uid": ""}], "x": 1}`))
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("err %T is not a joined error", err)
	}
	var lines []string
	for _, e := range joined.Unwrap() {
		if strings.Contains(e.Error(), "\n") {
			t.Errorf("element spans lines: %q", e)
		}
		lines = append(lines, e.Error())
	}
	want := []string{
		"options: locks[1].secret: required", // missing fields first,
		"options: locks[1].uuid: required",   // then what the present ones hold
		"options: locks[1].name: must not contain ',' (SESAME_LOCKS separates locks with commas)",
		"options: cards[1].name: required",
		"options: cards[1].uid: required",
		"options: x: unknown option",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("got %q\nwant %q", lines, want)
	}
}

// TLS file options name a file in /ssl, as HA's own add-ons do, or give an
// absolute path; empty stays unset.
func TestSSLPathOptions(t *testing.T) {
	got, err := loadOptions(writeOptions(t, `{"mqtt_ca_file": "certs/ca.pem", "mqtt_client_cert": "/config/mine.crt", "mqtt_client_key": ""}`), "/ssl")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"MQTT_CA_FILE": "/ssl/certs/ca.pem", "MQTT_CLIENT_CERT": "/config/mine.crt"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := LoadOptions(writeOptions(t, `{"mqtt_ca_file": 3}`)); err == nil || !strings.Contains(err.Error(), "options: mqtt_ca_file: must be a string") {
		t.Errorf("a number as a file name: %v", err)
	}
}
