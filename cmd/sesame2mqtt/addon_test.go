package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
)

// writeOptions writes an add-on options file the way the Supervisor does.
func writeOptions(t *testing.T, opts map[string]any) string {
	t.Helper()
	dir := t.TempDir()
	b, err := json.Marshal(opts)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "options.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAddonEndToEnd runs the binary as the Supervisor would: options in a
// file, no MQTT settings, and a Supervisor that hands out the login of a
// broker refusing anonymous clients (as the Mosquitto add-on does).
func TestAddonEndToEnd(t *testing.T) {
	const user, pass, token = "addons", "Mosquitto-Password-1", "supervisor-token-secret"
	broker := mosquittotest.Start(t, mosquittotest.WithLogin(user, pass))
	fake := newFake(t)
	host, port, err := net.SplitHostPort(broker.Addr())
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	supervisor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/services/mqtt" || r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, `{"result":"error","message":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		asked.Add(1)
		// The port as a string, as some Supervisor versions send it.
		_, _ = w.Write([]byte(`{"result":"ok","data":{"host":"` + host + `","port":"` + port + `","ssl":false,"protocol":"3.1.1","username":"` + user + `","password":"` + pass + `"}}`))
	}))
	defer supervisor.Close()

	options := writeOptions(t, map[string]any{
		"api_key":            apiKey,
		"api_url":            fake.URL(),
		"locks":              []map[string]string{{"name": "Front door", "uuid": lockUUID, "secret": lockSecret}},
		"cards":              []map[string]string{},
		"nfc_action":         "toggle",
		"nfc_tag_scanner":    "all",
		"led_active_low":     false,
		"monthly_api_budget": 3000,
		"log_level":          "debug",
	})
	rec := broker.Subscribe(t, "sesame2mqtt/#")
	p := startProc(t, cleanEnv(t, "OPTIONS_FILE="+options, "SUPERVISOR_TOKEN="+token, "SUPERVISOR_URL="+supervisor.URL))
	rec.WaitFor(t, avail, is("online"), 15*time.Second)
	rec.WaitFor(t, "sesame2mqtt/"+lockID+"/state", is("LOCKED"), 10*time.Second)
	if asked.Load() != 1 {
		t.Errorf("the Supervisor was asked %d times, want once", asked.Load())
	}
	p.terminate(t, 5*time.Second)
	// The request count lives next to the options (/data in an add-on).
	if _, err := os.Stat(filepath.Join(filepath.Dir(options), "api-usage.json")); err != nil {
		t.Errorf("STATE_DIR is not the options' folder: %v", err)
	}
	logs := p.stderr.String()
	for _, secret := range []string{apiKey, lockSecret, pass, token} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret appears in the add-on log:\n%s", logs)
		}
	}
	if !strings.Contains(logs, "running as a Home Assistant add-on") || !strings.Contains(logs, "Supervisor") {
		t.Errorf("the log does not say where the configuration came from:\n%s", logs)
	}
}

// TestAddonInvalidOptions: one line per problem, naming the option, exit 2,
// no stack trace, no secret, no traffic.
func TestAddonInvalidOptions(t *testing.T) {
	var asked atomic.Int32
	supervisor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { asked.Add(1) }))
	defer supervisor.Close()
	options := writeOptions(t, map[string]any{
		"api_key":            apiKey,
		"locks":              []map[string]string{{"name": "Front, door", "uuid": lockUUID, "secret": lockSecret}, {"name": "Back", "secret": "nothex"}},
		"cards":              []map[string]string{{"uid": "08112233", "name": "Phone"}},
		"nfc_action":         "open",
		"monthly_api_budget": "lots",
	})
	p := startProc(t, cleanEnv(t, "OPTIONS_FILE="+options, "SUPERVISOR_TOKEN=t", "SUPERVISOR_URL="+supervisor.URL))
	p.waitExit(t, 2, 10*time.Second)
	out := p.stderr.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var problems []string
	for _, l := range lines {
		if strings.HasPrefix(l, "configuration: ") {
			problems = append(problems, l)
		}
	}
	if len(problems) < 3 {
		t.Errorf("want a line per problem, got:\n%s", out)
	}
	for _, want := range []string{"locks[1].name", "locks[2].uuid", "monthly_api_budget"} {
		if !strings.Contains(out, want) {
			t.Errorf("no line names %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "goroutine ") || strings.Contains(out, lockSecret) || strings.Contains(out, apiKey) {
		t.Errorf("stack trace or secret in the output:\n%s", out)
	}
	if asked.Load() != 0 {
		t.Errorf("the Supervisor was asked although the options are invalid")
	}
}
