package addon

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
)

// fakeEnv is a process environment in a map.
type fakeEnv struct {
	mu   sync.Mutex
	vars map[string]string
}

func newFakeEnv(kv map[string]string) *fakeEnv {
	e := &fakeEnv{vars: map[string]string{}}
	for k, v := range kv {
		e.vars[k] = v
	}
	return e
}

func (e *fakeEnv) env(c *http.Client) Env {
	return Env{
		Lookup: func(k string) (string, bool) {
			e.mu.Lock()
			defer e.mu.Unlock()
			v, ok := e.vars[k]
			return v, ok
		},
		Set: func(k, v string) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.vars[k] = v
			return nil
		},
		HTTP: c,
	}
}

func (e *fakeEnv) snapshot() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := map[string]string{}
	for k, v := range e.vars {
		m[k] = v
	}
	return m
}

const mosquittoAnswer = `{"result":"ok","data":{"addon":"core_mosquitto","host":"core-mosquitto","port":1883,"ssl":false,"protocol":"3.1.1","username":"addons","password":"` + testMQTTPass + `"}}`

const minimalOptions = `{"api_key": "` + testAPIKey + `",
  "locks": [{"name": "Front door", "uuid": "` + testUUID1 + `", "secret": "` + testSecret1 + `"}],
  "cards": [], "nfc_action": "toggle", "nfc_tag_scanner": "all",
  "led_active_low": false, "monthly_api_budget": 3000, "log_level": "info"}`

func TestPrepareAddon(t *testing.T) {
	srv, calls := fakeSupervisor(t, http.StatusOK, mosquittoAnswer)
	path := writeOptions(t, minimalOptions)
	env := newFakeEnv(map[string]string{
		"OPTIONS_FILE":     path,
		"SUPERVISOR_TOKEN": testToken,
		"SUPERVISOR_URL":   srv.URL,
		"LOG_LEVEL":        "warn", // the environment wins over log_level
	})
	log, buf := logcapture.New()
	if err := Prepare(context.Background(), log, env.env(srv.Client())); err != nil {
		t.Fatal(err)
	}
	got := env.snapshot()
	want := map[string]string{
		"OPTIONS_FILE":       path,
		"SUPERVISOR_TOKEN":   testToken,
		"SUPERVISOR_URL":     srv.URL,
		"LOG_LEVEL":          "warn",
		"SESAME_API_KEY":     testAPIKey,
		"SESAME_LOCKS":       testUUID1 + ":" + testSecret1 + ":Front door",
		"NFC_ACTION":         "toggle",
		"NFC_TAG_SCANNER":    "all",
		"LED_ACTIVE_LOW":     "false",
		"API_MONTHLY_BUDGET": "3000",
		"STATE_DIR":          filepath.Dir(path),
		"MQTT_URL":           "tcp://core-mosquitto:1883",
		"MQTT_USERNAME":      "addons",
		"MQTT_PASSWORD":      testMQTTPass,
		"INGRESS_LISTEN":     ":8099",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("env:\n got  %v\n want %v", got, want)
	}
	if calls.Load() != 1 {
		t.Errorf("%d requests to the Supervisor, want 1", calls.Load())
	}
	logs := buf.String()
	for _, s := range []string{"running as a Home Assistant add-on", "source=\"Supervisor (Mosquitto add-on)\"", "url=tcp://core-mosquitto:1883", "login=\"from the Supervisor\""} {
		if !strings.Contains(logs, s) {
			t.Errorf("log lacks %q:\n%s", s, logs)
		}
	}
	assertNoSecrets(t, "log", logs)
	if strings.Contains(logs, testToken) {
		t.Errorf("log contains the token:\n%s", logs)
	}
}

func TestPrepareMQTTURLFromEnvironment(t *testing.T) {
	srv, calls := fakeSupervisor(t, http.StatusOK, mosquittoAnswer)
	env := newFakeEnv(map[string]string{
		"OPTIONS_FILE":     writeOptions(t, `{"mqtt_url": "tcp://other:1883"}`),
		"SUPERVISOR_TOKEN": testToken,
		"SUPERVISOR_URL":   srv.URL,
		"MQTT_URL":         "tcp://user:" + testMQTTPass + "@env-broker:1883",
	})
	log, buf := logcapture.New()
	if err := Prepare(context.Background(), log, env.env(srv.Client())); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 0 {
		t.Errorf("asked the Supervisor although MQTT_URL was set")
	}
	got := env.snapshot()
	if got["MQTT_URL"] != "tcp://user:"+testMQTTPass+"@env-broker:1883" {
		t.Errorf("MQTT_URL = %q, want the environment's", got["MQTT_URL"])
	}
	if _, ok := got["MQTT_USERNAME"]; ok {
		t.Errorf("MQTT_USERNAME set: %v", got)
	}
	logs := buf.String()
	if !strings.Contains(logs, "source=environment") || !strings.Contains(logs, "env-broker:1883") {
		t.Errorf("log does not name the environment's broker:\n%s", logs)
	}
	assertNoSecrets(t, "log", logs)
}

func TestPrepareMQTTURLFromOptions(t *testing.T) {
	srv, calls := fakeSupervisor(t, http.StatusOK, mosquittoAnswer)
	env := newFakeEnv(map[string]string{
		"OPTIONS_FILE":     writeOptions(t, `{"mqtt_url": "ssl://broker.example:8883", "mqtt_username": "me", "mqtt_password": "`+testMQTTPass+`"}`),
		"SUPERVISOR_TOKEN": testToken,
		"SUPERVISOR_URL":   srv.URL,
	})
	log, buf := logcapture.New()
	if err := Prepare(context.Background(), log, env.env(srv.Client())); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 0 {
		t.Errorf("asked the Supervisor although the mqtt_url option was set")
	}
	got := env.snapshot()
	if got["MQTT_URL"] != "ssl://broker.example:8883" || got["MQTT_USERNAME"] != "me" || got["MQTT_PASSWORD"] != testMQTTPass {
		t.Errorf("env = %v", got)
	}
	if !strings.Contains(buf.String(), `source="add-on option mqtt_url"`) {
		t.Errorf("log does not name the option:\n%s", buf)
	}
	assertNoSecrets(t, "log", buf.String())
}

// A login given by the user is never mixed with the Supervisor's.
func TestPrepareKeepsTheUsersLogin(t *testing.T) {
	srv, _ := fakeSupervisor(t, http.StatusOK, mosquittoAnswer)
	env := newFakeEnv(map[string]string{
		"OPTIONS_FILE":     writeOptions(t, `{"mqtt_username": "sesame"}`),
		"SUPERVISOR_TOKEN": testToken,
		"SUPERVISOR_URL":   srv.URL,
	})
	log, buf := logcapture.New()
	if err := Prepare(context.Background(), log, env.env(srv.Client())); err != nil {
		t.Fatal(err)
	}
	got := env.snapshot()
	if got["MQTT_URL"] != "tcp://core-mosquitto:1883" || got["MQTT_USERNAME"] != "sesame" {
		t.Errorf("env = %v", got)
	}
	if _, ok := got["MQTT_PASSWORD"]; ok {
		t.Errorf("the Supervisor's password was paired with the user's name: %v", got)
	}
	if !strings.Contains(buf.String(), `login="from the add-on options or the environment"`) {
		t.Errorf("log:\n%s", buf)
	}
}

func TestPrepareOutsideHomeAssistant(t *testing.T) {
	env := newFakeEnv(map[string]string{
		"OPTIONS_FILE":   filepath.Join(t.TempDir(), "options.json"),
		"SESAME_API_KEY": "k",
	})
	log, buf := logcapture.New()
	if err := Prepare(context.Background(), log, env.env(nil)); err != nil {
		t.Fatal(err)
	}
	if got := env.snapshot(); len(got) != 2 {
		t.Errorf("env changed: %v", got)
	}
	if strings.Contains(buf.String(), "add-on") {
		t.Errorf("logged as an add-on:\n%s", buf)
	}
}

func TestPrepareSupervisorError(t *testing.T) {
	srv, _ := fakeSupervisor(t, http.StatusBadRequest, `{"result":"error","message":"Service not enabled"}`)
	env := newFakeEnv(map[string]string{
		"OPTIONS_FILE":     writeOptions(t, minimalOptions),
		"SUPERVISOR_TOKEN": testToken,
		"SUPERVISOR_URL":   srv.URL,
	})
	log, _ := logcapture.New()
	err := Prepare(context.Background(), log, env.env(srv.Client()))
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{"MQTT broker: supervisor: GET /services/mqtt: HTTP 400: Service not enabled", "install and start the Mosquitto broker add-on, or set the mqtt_url option"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("err = %q, want %q in it", err, s)
		}
	}
	if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), testToken) {
		t.Errorf("err = %q: one line, no token", err)
	}
	if _, ok := env.snapshot()["MQTT_URL"]; ok {
		t.Error("MQTT_URL set despite the error")
	}
}

func TestPrepareInvalidOptionsSetNothing(t *testing.T) {
	srv, calls := fakeSupervisor(t, http.StatusOK, mosquittoAnswer)
	env := newFakeEnv(map[string]string{
		"OPTIONS_FILE":     writeOptions(t, `{"api_key": "`+testAPIKey+`", "locks": [{"name": "A", "uuid": "", "secret": "`+testSecret1+`"}], "typo": 1}`),
		"SUPERVISOR_TOKEN": testToken,
		"SUPERVISOR_URL":   srv.URL,
	})
	log, _ := logcapture.New()
	err := Prepare(context.Background(), log, env.env(srv.Client()))
	want := []string{"options: locks[1].uuid: required", "options: typo: unknown option"}
	if !reflect.DeepEqual(errLines(err), want) {
		t.Errorf("errors = %q, want %q", errLines(err), want)
	}
	if got := env.snapshot(); len(got) != 3 {
		t.Errorf("env changed: %v", got)
	}
	if calls.Load() != 0 {
		t.Error("asked the Supervisor with invalid options")
	}
}

func TestPrepareSetFailure(t *testing.T) {
	env := newFakeEnv(map[string]string{"OPTIONS_FILE": writeOptions(t, minimalOptions)})
	e := env.env(nil)
	boom := errors.New("refused")
	e.Set = func(string, string) error { return boom }
	log, _ := logcapture.New()
	if err := Prepare(context.Background(), log, e); !errors.Is(err, boom) {
		t.Errorf("err = %v, want the refusal", err)
	}
}
