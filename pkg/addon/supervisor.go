package addon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// DefaultSupervisorURL is where an add-on reaches the Supervisor's API.
const DefaultSupervisorURL = "http://supervisor"

// SupervisorTimeout bounds one question to the Supervisor when the caller
// gives no client of its own.
const SupervisorTimeout = 10 * time.Second

// maxAnswerSize bounds what is read of the Supervisor's answer.
const maxAnswerSize = 64 << 10

// MQTTBroker is the broker the Supervisor announces: the Mosquitto add-on
// answers host core-mosquitto, port 1883, no TLS, and a login made for
// add-ons (its anonymous access is off).
type MQTTBroker struct {
	Host     string
	Port     int
	SSL      bool
	Username string
	Password sesame.Secret // put Password.Reveal() into MQTT_PASSWORD
	Protocol string        // "3.1.1" or "3.1", as announced; informational
}

// URL is the broker as MQTT_URL wants it: tcp://host:port, or ssl://host:port
// when the broker announced TLS. IPv6 literals are bracketed.
func (b MQTTBroker) URL() string {
	scheme := "tcp"
	if b.SSL {
		scheme = "ssl"
	}
	return scheme + "://" + net.JoinHostPort(b.Host, strconv.Itoa(b.Port))
}

// LogValue shows everything but the password.
func (b MQTTBroker) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", b.URL()),
		slog.String("username", b.Username),
		slog.Bool("password", !b.Password.IsZero()),
		slog.String("protocol", b.Protocol),
	)
}

// serviceAnswer is the Supervisor's envelope around GET /services/mqtt.
type serviceAnswer struct {
	Result  string `json:"result"`
	Message string `json:"message"`
	Data    struct {
		Host     string          `json:"host"`
		Port     json.RawMessage `json:"port"`
		SSL      bool            `json:"ssl"`
		Username string          `json:"username"`
		Password string          `json:"password"`
		Protocol string          `json:"protocol"`
	} `json:"data"`
}

// MQTTService asks the Supervisor at baseURL (DefaultSupervisorURL in an
// add-on) for the MQTT service with the add-on's SUPERVISOR_TOKEN. The
// add-on's manifest must list mqtt under services, or the Supervisor
// answers 403. The wait is bounded by ctx and by c's timeout; a nil c is a
// client with SupervisorTimeout.
//
// Errors say what went wrong (HTTP status, the Supervisor's message, the
// field missing) and never carry the token or the password.
func MQTTService(ctx context.Context, c *http.Client, baseURL, token string) (MQTTBroker, error) {
	const op = "supervisor: GET /services/mqtt"
	if c == nil {
		c = &http.Client{Timeout: SupervisorTimeout}
	}
	base, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return MQTTBroker{}, fmt.Errorf("%s: SUPERVISOR_URL must be an absolute http(s) URL", op)
	}
	if token == "" {
		return MQTTBroker{}, fmt.Errorf("%s: no SUPERVISOR_TOKEN", op)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String()+"/services/mqtt", nil)
	if err != nil {
		return MQTTBroker{}, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")

	resp, err := c.Do(req)
	if err != nil {
		return MQTTBroker{}, fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerSize+1))
	if err != nil {
		return MQTTBroker{}, fmt.Errorf("%s: read answer: %w", op, err)
	}
	if len(body) > maxAnswerSize {
		return MQTTBroker{}, fmt.Errorf("%s: answer larger than %d bytes", op, maxAnswerSize)
	}

	var ans serviceAnswer
	decodeErr := json.Unmarshal(body, &ans)
	if resp.StatusCode != http.StatusOK {
		if decodeErr == nil && ans.Message != "" {
			return MQTTBroker{}, fmt.Errorf("%s: HTTP %d: %s%s", op, resp.StatusCode, oneLine(ans.Message), statusHint(resp.StatusCode))
		}
		return MQTTBroker{}, fmt.Errorf("%s: HTTP %d%s", op, resp.StatusCode, statusHint(resp.StatusCode))
	}
	if decodeErr != nil {
		return MQTTBroker{}, fmt.Errorf("%s: answer is not the expected JSON: %s", op, describeJSONError(decodeErr))
	}
	if ans.Result != "ok" {
		msg := "no message"
		if ans.Message != "" {
			msg = oneLine(ans.Message)
		}
		return MQTTBroker{}, fmt.Errorf("%s: result %q: %s", op, oneLine(ans.Result), msg)
	}

	b := MQTTBroker{
		Host:     strings.TrimSpace(ans.Data.Host),
		SSL:      ans.Data.SSL,
		Username: ans.Data.Username,
		Password: sesame.NewSecret(ans.Data.Password),
		Protocol: ans.Data.Protocol,
	}
	var problems []string
	if b.Host == "" {
		problems = append(problems, "answer has no host")
	}
	b.Port, err = parsePort(ans.Data.Port)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return MQTTBroker{}, fmt.Errorf("%s: %s", op, strings.Join(problems, "; "))
	}
	return b, nil
}

// parsePort accepts the port as a JSON number or a numeric string.
func parsePort(raw json.RawMessage) (int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, errors.New("answer has no port")
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, errors.New("port is not a number")
		}
		s = strings.TrimSpace(s)
	} else {
		s = string(raw)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		// A JSON number like 1883.0 is still a whole port number.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != float64(int(f)) {
			return 0, errors.New("port is not a whole number")
		}
		n = int(f)
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %d is not in 1-65535", n)
	}
	return n, nil
}

func statusHint(code int) string {
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden:
		return " (the add-on needs \"services: [mqtt:need]\" in its manifest and the token the Supervisor gave it)"
	case http.StatusBadRequest, http.StatusNotFound:
		return " (is the Mosquitto broker add-on installed and started?)"
	}
	return ""
}

// describeJSONError names the problem without quoting the answer, which
// carries a password.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has the wrong type (%s)", typ.Field, typ.Value)
	}
	return "invalid JSON"
}

// oneLine keeps a message from the Supervisor on one log line.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
