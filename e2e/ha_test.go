//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// httpTimeout bounds every REST call to Home Assistant.
const httpTimeout = 20 * time.Second

// ha talks to one Home Assistant through its REST API.
type ha struct {
	base  string // http://127.0.0.1:8123
	token string // access token; empty before onboarding
	http  *http.Client
}

func newHA(base string) *ha {
	return &ha{base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: httpTimeout}}
}

// do sends one request; body is JSON-encoded unless it is url.Values (a
// form). A status other than 2xx is an error carrying the answer's text.
func (h *ha) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode %q: %w", method, path, data, err)
		}
	}
	return nil
}

// waitUp polls the onboarding API (it answers without a login) until Home
// Assistant serves HTTP, or ctx ends.
func (h *ha) waitUp(ctx context.Context) error {
	var last error
	for {
		var steps []struct {
			Step string `json:"step"`
			Done bool   `json:"done"`
		}
		if last = h.do(ctx, http.MethodGet, "/api/onboarding", nil, &steps); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("home assistant not up: %w (last: %v)", ctx.Err(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// onboard creates the owner through the onboarding API and logs in with the
// authorization code it hands out, as the frontend does on a new install.
func (h *ha) onboard(ctx context.Context, user, pass string) error {
	clientID := h.base + "/"
	var created struct {
		AuthCode string `json:"auth_code"`
	}
	if err := h.do(ctx, http.MethodPost, "/api/onboarding/users", map[string]string{
		"client_id": clientID, "name": "E2E", "username": user, "password": pass, "language": "en",
	}, &created); err != nil {
		return fmt.Errorf("onboarding: %w", err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := h.do(ctx, http.MethodPost, "/auth/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {created.AuthCode}, "client_id": {clientID},
	}, &tok); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if tok.AccessToken == "" {
		return errors.New("login: no access token in the answer")
	}
	h.token = tok.AccessToken
	return nil
}

// flowResult is a config flow step as the REST API answers it.
type flowResult struct {
	Type       string            `json:"type"`
	FlowID     string            `json:"flow_id"`
	StepID     string            `json:"step_id"`
	Reason     string            `json:"reason"`
	Errors     map[string]string `json:"errors"`
	DataSchema []json.RawMessage `json:"data_schema"`
	Result     struct {
		EntryID string `json:"entry_id"`
		State   string `json:"state"`
	} `json:"result"`
}

// addMQTT runs the MQTT integration's config flow ("broker" step) as a user
// would in Settings → Devices & services.
func (h *ha) addMQTT(ctx context.Context, host string, port int, user, pass string) (flowResult, error) {
	var step flowResult
	if err := h.do(ctx, http.MethodPost, "/api/config/config_entries/flow",
		map[string]any{"handler": "mqtt", "show_advanced_options": false}, &step); err != nil {
		return step, fmt.Errorf("mqtt config flow: %w", err)
	}
	if step.Type != "form" || step.StepID != "broker" {
		return step, fmt.Errorf("mqtt config flow: want the broker form, got %+v", step)
	}
	input, err := formDefaults(step.DataSchema)
	if err != nil {
		return step, fmt.Errorf("mqtt config flow, broker form: %w", err)
	}
	maps.Copy(input, map[string]any{"broker": host, "port": port, "username": user, "password": pass})
	var done flowResult
	if err := h.do(ctx, http.MethodPost, "/api/config/config_entries/flow/"+step.FlowID, input, &done); err != nil {
		return done, fmt.Errorf("mqtt config flow, broker step: %w", err)
	}
	if done.Type != "create_entry" {
		return done, fmt.Errorf("mqtt config flow: want create_entry, got %+v", done)
	}
	return done, nil
}

// formDefaults fills a flow form as the frontend does when the user leaves
// a field alone: every field with a default gets it, and every section
// (type "expandable", collapsed or not) is sent as an object of its own
// defaults; a required box nobody ticked is false, a required drop-down
// without a default has its first option.
func formDefaults(schema []json.RawMessage) (map[string]any, error) {
	out := map[string]any{}
	for _, raw := range schema {
		var f struct {
			Name     string                     `json:"name"`
			Type     string                     `json:"type"`
			Required bool                       `json:"required"`
			Default  any                        `json:"default"`
			Schema   []json.RawMessage          `json:"schema"`
			Selector map[string]json.RawMessage `json:"selector"`
		}
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, fmt.Errorf("field %s: %w", raw, err)
		}
		switch {
		case f.Type == "expandable":
			sub, err := formDefaults(f.Schema)
			if err != nil {
				return nil, fmt.Errorf("section %s: %w", f.Name, err)
			}
			out[f.Name] = sub
		case f.Default != nil:
			out[f.Name] = f.Default
		case f.Required && f.Selector["boolean"] != nil:
			out[f.Name] = false // an unticked box
		case f.Required && f.Selector["select"] != nil:
			first, err := firstOption(f.Selector["select"])
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", f.Name, err)
			}
			out[f.Name] = first // the frontend preselects the first option
		}
	}
	return out, nil
}

// firstOption is the first option of a select selector's configuration;
// options are plain strings or {value, label}.
func firstOption(cfg json.RawMessage) (any, error) {
	var sel struct {
		Options []json.RawMessage `json:"options"`
	}
	if err := json.Unmarshal(cfg, &sel); err != nil || len(sel.Options) == 0 {
		return nil, fmt.Errorf("select without options: %s (%v)", cfg, err)
	}
	var s string
	if json.Unmarshal(sel.Options[0], &s) == nil {
		return s, nil
	}
	var o struct {
		Value any `json:"value"`
	}
	if err := json.Unmarshal(sel.Options[0], &o); err != nil {
		return nil, fmt.Errorf("select option %s: %w", sel.Options[0], err)
	}
	return o.Value, nil
}

// state is one entity's state as HA serves it.
type state struct {
	EntityID   string         `json:"entity_id"`
	State      string         `json:"state"`
	Attributes map[string]any `json:"attributes"`
}

func (h *ha) state(ctx context.Context, entityID string) (state, error) {
	var s state
	err := h.do(ctx, http.MethodGet, "/api/states/"+entityID, nil, &s)
	return s, err
}

// call calls a service, as an automation or the UI would.
func (h *ha) call(ctx context.Context, domain, service string, data map[string]any) error {
	return h.do(ctx, http.MethodPost, "/api/services/"+domain+"/"+service, data, nil)
}

// wsEvent is one event delivered to a subscription.
type wsEvent struct {
	EventType string          `json:"event_type"`
	Data      json.RawMessage `json:"data"`
	TimeFired string          `json:"time_fired"`
}

// ws is a WebSocket API connection. One goroutine (run) reads it; results
// go to the waiting command, events to the events channel.
type ws struct {
	conn   *websocket.Conn
	events chan wsEvent // bounded; a full channel fails the test (see dropped)

	mu      sync.Mutex
	nextID  int
	pending map[int]chan wsResult
	dropped int
	readErr error

	done chan struct{} // closed when the reader goroutine returned
}

type wsResult struct {
	Success bool            `json:"success"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type wsMessage struct {
	ID    int     `json:"id"`
	Type  string  `json:"type"`
	Event wsEvent `json:"event"`
	wsResult
}

// dialWS connects and authenticates. The reader goroutine ends when the
// connection is closed (close does that) or fails.
func (h *ha) dialWS(ctx context.Context) (*ws, error) {
	u := "ws" + strings.TrimPrefix(h.base, "http") + "/api/websocket"
	d := websocket.Dialer{HandshakeTimeout: httpTimeout}
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	conn, _, err := d.DialContext(ctx, u, nil)
	if err != nil {
		return nil, fmt.Errorf("websocket %s: %w", u, err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetReadDeadline(deadline)
	var hello struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
	if err := conn.ReadJSON(&hello); err != nil || hello.Type != "auth_required" {
		conn.Close()
		return nil, fmt.Errorf("websocket: want auth_required, got %+v (%v)", hello, err)
	}
	if err := conn.WriteJSON(map[string]string{"type": "auth", "access_token": h.token}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("websocket auth: %w", err)
	}
	if err := conn.ReadJSON(&hello); err != nil || hello.Type != "auth_ok" {
		conn.Close()
		return nil, fmt.Errorf("websocket: want auth_ok, got %+v (%v)", hello, err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	w := &ws{conn: conn, events: make(chan wsEvent, 4096), pending: map[int]chan wsResult{}, done: make(chan struct{})}
	go w.run()
	return w, nil
}

func (w *ws) run() {
	defer close(w.done)
	for {
		var m wsMessage
		if err := w.conn.ReadJSON(&m); err != nil {
			w.mu.Lock()
			w.readErr = err
			for id, ch := range w.pending {
				close(ch)
				delete(w.pending, id)
			}
			w.mu.Unlock()
			return
		}
		switch m.Type {
		case "result":
			w.mu.Lock()
			ch := w.pending[m.ID]
			delete(w.pending, m.ID)
			w.mu.Unlock()
			if ch != nil {
				ch <- m.wsResult // buffered 1
			}
		case "event":
			select {
			case w.events <- m.Event:
			default:
				w.mu.Lock()
				w.dropped++
				w.mu.Unlock()
			}
		}
	}
}

// command sends one command and waits (bounded) for its result.
func (w *ws) command(ctx context.Context, msg map[string]any, out any) error {
	ch := make(chan wsResult, 1)
	w.mu.Lock()
	if w.readErr != nil {
		err := w.readErr
		w.mu.Unlock()
		return fmt.Errorf("websocket closed: %w", err)
	}
	w.nextID++
	id := w.nextID
	w.pending[id] = ch
	msg["id"] = id
	err := w.conn.WriteJSON(msg) // writes happen only here, under mu
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("websocket %v: %w", msg["type"], err)
	}
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	select {
	case <-ctx.Done():
		return fmt.Errorf("websocket %v: no result: %w", msg["type"], ctx.Err())
	case r, ok := <-ch:
		if !ok {
			return fmt.Errorf("websocket %v: connection closed", msg["type"])
		}
		if !r.Success {
			return fmt.Errorf("websocket %v: %+v", msg["type"], r.Error)
		}
		if out != nil {
			if err := json.Unmarshal(r.Result, out); err != nil {
				return fmt.Errorf("websocket %v: decode: %w", msg["type"], err)
			}
		}
		return nil
	}
}

func (w *ws) subscribe(ctx context.Context, eventType string) error {
	return w.command(ctx, map[string]any{"type": "subscribe_events", "event_type": eventType}, nil)
}

// lost reports events dropped because the test did not read them in time.
func (w *ws) lost() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}

func (w *ws) close() {
	_ = w.conn.Close()
	<-w.done
}

// device is a device registry entry.
type device struct {
	ID           string     `json:"id"`
	Identifiers  [][]string `json:"identifiers"`
	Name         string     `json:"name"`
	Manufacturer string     `json:"manufacturer"`
	Model        string     `json:"model"`
	SerialNumber string     `json:"serial_number"`
	SWVersion    string     `json:"sw_version"`
	ViaDeviceID  string     `json:"via_device_id"`
}

// entity is an entity registry entry.
type entity struct {
	EntityID       string `json:"entity_id"`
	UniqueID       string `json:"unique_id"`
	Platform       string `json:"platform"`
	DeviceID       string `json:"device_id"`
	EntityCategory string `json:"entity_category"`
	OriginalName   string `json:"original_name"`
	DisabledBy     string `json:"disabled_by"`
}
