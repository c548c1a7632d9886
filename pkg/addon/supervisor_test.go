package addon

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const testToken = "0123456789abcdef0123456789abcdef0123456789abcdef"

// fakeSupervisor answers GET /services/mqtt with body and status once the
// token is right, and 401 otherwise, like the real one. It counts requests.
func fakeSupervisor(t *testing.T, status int, body string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Method != http.MethodGet || r.URL.Path != "/services/mqtt" {
			t.Errorf("request %s %s, want GET /services/mqtt", r.Method, r.URL.Path)
			http.NotFound(w, r)
			return
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"result":"error","message":"Invalid token"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestMQTTServiceAnswers(t *testing.T) {
	tests := []struct {
		name, body string
		wantURL    string
		wantUser   string
		wantPass   string
	}{
		{
			name:    "port as number (Mosquitto add-on)",
			body:    `{"result":"ok","data":{"addon":"core_mosquitto","host":"core-mosquitto","port":1883,"ssl":false,"protocol":"3.1.1","username":"addons","password":"` + testMQTTPass + `"}}`,
			wantURL: "tcp://core-mosquitto:1883", wantUser: "addons", wantPass: testMQTTPass,
		},
		{
			name:    "port as string",
			body:    `{"result":"ok","data":{"host":"core-mosquitto","port":"1883","ssl":false,"username":"addons","password":"` + testMQTTPass + `"}}`,
			wantURL: "tcp://core-mosquitto:1883", wantUser: "addons", wantPass: testMQTTPass,
		},
		{
			name:    "TLS",
			body:    `{"result":"ok","data":{"host":"broker.example","port":8883,"ssl":true,"username":"u","password":"` + testMQTTPass + `"}}`,
			wantURL: "ssl://broker.example:8883", wantUser: "u", wantPass: testMQTTPass,
		},
		{
			name:    "IPv6 host, no login",
			body:    `{"result":"ok","data":{"host":"fd00::1","port":" 1884 ","ssl":false}}`,
			wantURL: "tcp://[fd00::1]:1884",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, calls := fakeSupervisor(t, http.StatusOK, tc.body)
			b, err := MQTTService(context.Background(), srv.Client(), srv.URL+"/", testToken)
			if err != nil {
				t.Fatal(err)
			}
			if calls.Load() != 1 {
				t.Errorf("%d requests, want 1", calls.Load())
			}
			if b.URL() != tc.wantURL || b.Username != tc.wantUser || b.Password.Reveal() != tc.wantPass {
				t.Errorf("got url %s user %q pass %q; want %s %q %q", b.URL(), b.Username, b.Password.Reveal(), tc.wantURL, tc.wantUser, tc.wantPass)
			}
		})
	}
}

func TestMQTTServiceErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string // substring of the error
	}{
		{"service not enabled", http.StatusBadRequest, `{"result":"error","message":"Service not enabled"}`,
			"supervisor: GET /services/mqtt: HTTP 400: Service not enabled (is the Mosquitto broker add-on installed and started?)"},
		{"forbidden, no body", http.StatusForbidden, ``,
			`supervisor: GET /services/mqtt: HTTP 403 (the add-on needs "services: [mqtt:need]"`},
		{"server error, HTML", http.StatusBadGateway, `<html>` + testMQTTPass + `</html>`,
			"supervisor: GET /services/mqtt: HTTP 502"},
		{"result error with 200", http.StatusOK, `{"result":"error","message":"Something\nwent wrong"}`,
			`supervisor: GET /services/mqtt: result "error": Something went wrong`},
		{"malformed JSON", http.StatusOK, `{"result":"ok","data":{"host":"core-mosquitto","password":"` + testMQTTPass + `",}}`,
			"supervisor: GET /services/mqtt: answer is not the expected JSON: invalid JSON at byte"},
		{"wrong field type", http.StatusOK, `{"result":"ok","data":{"host":"h","port":1883,"password":12345}}`,
			`answer is not the expected JSON: field "data.password" has the wrong type (number)`},
		{"no host", http.StatusOK, `{"result":"ok","data":{"port":1883,"password":"` + testMQTTPass + `"}}`,
			"supervisor: GET /services/mqtt: answer has no host"},
		{"no port", http.StatusOK, `{"result":"ok","data":{"host":"core-mosquitto"}}`,
			"supervisor: GET /services/mqtt: answer has no port"},
		{"port not numeric", http.StatusOK, `{"result":"ok","data":{"host":"core-mosquitto","port":"mqtt"}}`,
			"supervisor: GET /services/mqtt: port is not a whole number"},
		{"port out of range", http.StatusOK, `{"result":"ok","data":{"host":"core-mosquitto","port":70000}}`,
			"supervisor: GET /services/mqtt: port 70000 is not in 1-65535"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := fakeSupervisor(t, tc.status, tc.body)
			_, err := MQTTService(context.Background(), srv.Client(), srv.URL, testToken)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			assertNoSecrets(t, "error", err.Error())
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error contains the token: %v", err)
			}
		})
	}
}

func TestMQTTServiceWrongToken(t *testing.T) {
	srv, _ := fakeSupervisor(t, http.StatusOK, `{"result":"ok","data":{"host":"h","port":1883}}`)
	_, err := MQTTService(context.Background(), srv.Client(), srv.URL, "not-the-token")
	if err == nil || !strings.Contains(err.Error(), "HTTP 401: Invalid token") {
		t.Errorf("err = %v, want the Supervisor's 401", err)
	}
	if err != nil && strings.Contains(err.Error(), "not-the-token") {
		t.Errorf("error contains the token: %v", err)
	}
}

func TestMQTTServiceBadArguments(t *testing.T) {
	for _, base := range []string{"", "supervisor", "ftp://supervisor", "http://"} {
		if _, err := MQTTService(context.Background(), nil, base, testToken); err == nil ||
			!strings.Contains(err.Error(), "SUPERVISOR_URL must be an absolute http(s) URL") {
			t.Errorf("base %q: err = %v", base, err)
		}
	}
	if _, err := MQTTService(context.Background(), nil, "http://supervisor", ""); err == nil ||
		!strings.Contains(err.Error(), "no SUPERVISOR_TOKEN") {
		t.Errorf("empty token: err = %v", err)
	}
}

// hangingSupervisor accepts the request and never answers until the test
// ends.
func hangingSupervisor(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv
}

func TestMQTTServiceContextTimeout(t *testing.T) {
	srv := hangingSupervisor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := MQTTService(ctx, srv.Client(), srv.URL, testToken)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestMQTTServiceClientTimeout(t *testing.T) {
	srv := hangingSupervisor(t)
	c := srv.Client()
	c.Timeout = 100 * time.Millisecond
	start := time.Now()
	_, err := MQTTService(context.Background(), c, srv.URL, testToken)
	if err == nil || !strings.Contains(err.Error(), "Client.Timeout") {
		t.Errorf("err = %v, want the client's timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestMQTTBrokerLogValueHidesPassword(t *testing.T) {
	srv, _ := fakeSupervisor(t, http.StatusOK, `{"result":"ok","data":{"host":"core-mosquitto","port":1883,"username":"addons","password":"`+testMQTTPass+`"}}`)
	b, err := MQTTService(context.Background(), srv.Client(), srv.URL, testToken)
	if err != nil {
		t.Fatal(err)
	}
	v := b.LogValue().String()
	if strings.Contains(v, testMQTTPass) || !strings.Contains(v, "tcp://core-mosquitto:1883") {
		t.Errorf("LogValue = %s", v)
	}
}

func TestMQTTServiceEmptyData(t *testing.T) {
	srv, _ := fakeSupervisor(t, http.StatusOK, `{"result":"ok","data":{}}`)
	_, err := MQTTService(context.Background(), srv.Client(), srv.URL, testToken)
	want := "supervisor: GET /services/mqtt: answer has no host; answer has no port"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q (one line)", err, want)
	}
}
