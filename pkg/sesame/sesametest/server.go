// Package sesametest is an in-process fake of the Sesame Web API cloud, for
// tests and for the bridge's demo mode (so it does not import "testing").
//
// It behaves like the real service where that matters to a client: it checks
// x-api-key (403 when wrong), verifies command signatures with the same
// algorithm, and answers 200 {"statusCode":200} to every well-formed command
// on a known lock — even when the signature is wrong or the hub is offline,
// in which case the lock simply does not move. An accepted lock or unlock
// reports "moved" for the move delay, then the target state.
//
// The fake cloud has its own clock (SetClockSkew): it dates its answers
// (the HTTP Date header), its status timestamps and its signature check
// with it, as the real cloud judges a signature's freshness by its own
// clock and not by the client's.
package sesametest

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// Lock describes one fake lock.
type Lock struct {
	UUID    string
	Secret  string           // the device secret, 32 hex characters
	State   sesame.LockState // initial state; "" means locked
	Battery int              // 0 means 100
	Voltage float64          // 0 means 6.0
	// HubOnline is not read: every lock starts with its hub online, because
	// the zero value could not tell "offline" from "unset". Take a hub
	// offline with Server.SetHubOnline.
	HubOnline bool
}

// Request is one request as the fake saw it.
type Request struct {
	Time      time.Time // arrival, by the host's clock (not the skewed cloud clock)
	Method    string
	Path      string
	UUID      string
	Cmd       int    // 0 for anything but a command
	History   string // the decoded history tag (as sent, if not base64)
	SignValid bool   // the signature matched the lock's secret within ±1 256-s slot of the cloud's clock
	KeyValid  bool   // x-api-key was right
	Status    int    // HTTP status answered
}

// Positions reported in status bodies (1024 = 360 degrees).
const (
	positionLocked   = -39
	positionUnlocked = 215
	positionMoved    = 90
)

const (
	defaultMoveDelay = time.Second
	signSlot         = 256 * time.Second // the signed time drops its low byte
	maxBody          = 64 << 10
	notifyBuffer     = 1024
)

// Server is the fake cloud. All methods are safe for concurrent use.
type Server struct {
	srv       *httptest.Server
	apiKey    string
	notify    chan Request
	done      chan struct{}
	closeOnce sync.Once

	mu        sync.Mutex
	locks     map[string]*lock
	moveDelay time.Duration
	latency   time.Duration
	skew      time.Duration // the cloud's clock minus the host's
	fail      failure
	requests  []Request
	onChange  func(uuid string, state sesame.LockState)
	recordID  int64
}

// HistoryRecord is one entry of a fake lock's history, as GET
// /{uuid}/history serves it.
type HistoryRecord struct {
	Type     int
	At       time.Time // the cloud's clock
	Tag      string    // the raw history tag (the command's decoded tag; "" for none)
	RecordID int64
}

// failure is the canned answer FailNext sets up.
type failure struct {
	n          int
	status     int
	body       string
	retryAfter string
}

// lock is the state of one fake lock. A move is not a goroutine: it is a
// deadline that settle compares with the clock.
type lock struct {
	key       []byte
	state     sesame.LockState // at rest, or before the current move
	moving    bool
	target    sesame.LockState
	moveUntil time.Time
	changed   time.Time
	battery   int
	voltage   float64
	hubOnline bool
	noMove    bool
	history   []HistoryRecord // oldest first
}

// maxHistory bounds what a fake lock remembers.
const maxHistory = 200

// NewServer starts a fake cloud on 127.0.0.1 (a free port) that accepts
// apiKey. It panics on a lock without a UUID, with a secret that is not 32
// hex characters, or with a UUID given twice: those are mistakes in the
// calling code, found at start-up.
func NewServer(apiKey string, locks ...Lock) *Server {
	now := time.Now()
	s := &Server{
		apiKey:    apiKey,
		notify:    make(chan Request, notifyBuffer),
		done:      make(chan struct{}),
		locks:     make(map[string]*lock, len(locks)),
		moveDelay: defaultMoveDelay,
	}
	for _, l := range locks {
		if l.UUID == "" {
			panic("sesametest: lock without UUID")
		}
		if _, dup := s.locks[l.UUID]; dup {
			panic("sesametest: lock " + l.UUID + " given twice")
		}
		key, err := sesame.DecodeDeviceSecret(sesame.NewSecret(l.Secret))
		if err != nil {
			panic(fmt.Sprintf("sesametest: lock %s: %v", l.UUID, err))
		}
		fl := &lock{
			key:       key,
			state:     l.State,
			changed:   now,
			battery:   l.Battery,
			voltage:   l.Voltage,
			hubOnline: true,
		}
		if fl.state == "" {
			fl.state = sesame.StateLocked
		}
		if fl.battery == 0 {
			fl.battery = 100
		}
		if fl.voltage == 0 {
			fl.voltage = 6.0
		}
		s.locks[l.UUID] = fl
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("sesametest: listen: %v", err))
	}
	s.srv = &httptest.Server{
		Listener: ln,
		Config: &http.Server{
			Handler:           http.HandlerFunc(s.serveHTTP),
			ReadHeaderTimeout: 10 * time.Second,
		},
	}
	s.srv.Start()
	return s
}

// URL is the base URL to give sesame.Options.BaseURL.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server, ends pending latency waits, and closes the Notify
// channel. It may be called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.srv.Close() // waits for every handler
		close(s.notify)
	})
}

// SetMoveDelay sets how long an accepted lock or unlock reports "moved"
// before it reaches its target (default 1 s; 0 moves at once).
func (s *Server) SetMoveDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.moveDelay = max(d, 0)
}

// SetNoMove jams a lock: commands are accepted and it never moves.
func (s *Server) SetNoMove(uuid string, noMove bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.locks[uuid]; l != nil {
		l.noMove = noMove
	}
}

// SetHubOnline takes a lock's hub offline or back: while offline, commands
// are accepted, nothing moves, and status reports wm2State false.
func (s *Server) SetHubOnline(uuid string, online bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.locks[uuid]; l != nil {
		l.hubOnline = online
	}
}

// FailNext makes the next n requests, of any kind, answer status with body
// (and a Retry-After header unless retryAfter is empty) instead of the normal
// answer. They are still recorded and notified, and change nothing.
func (s *Server) FailNext(n int, status int, body string, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		status = http.StatusInternalServerError
	}
	s.fail = failure{n: max(n, 0), status: status, body: body, retryAfter: retryAfter}
}

// SetClockSkew makes the cloud's clock run d ahead of the host's (behind
// when d is negative), as a client with a wrong clock sees the real cloud:
// the Date header of every answer, the status timestamps and the window in
// which a signature is accepted all follow the cloud's clock from now on.
// States already reached keep the cloud time they were reached at.
func (s *Server) SetClockSkew(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.locks {
		l.changed = l.changed.Add(d - s.skew)
		if l.moving {
			l.moveUntil = l.moveUntil.Add(d - s.skew)
		}
	}
	s.skew = d
}

// cloudNow is the cloud's clock. s.mu is held.
func (s *Server) cloudNow() time.Time { return time.Now().Add(s.skew) }

// SetLatency delays every answer by d (the request's own context and Close
// cut the wait short).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = max(d, 0)
}

// Turn sets a lock's state as if someone turned it by hand, ending any move.
// Any state is taken, so a test can make the fake report a string the
// client does not know.
//
// The lock's history gets a manualLocked (7), manualUnlocked (8) or
// manualElse (9) record without a tag, and the OnChange callback is told.
func (s *Server) Turn(uuid string, state sesame.LockState) {
	s.mu.Lock()
	l := s.locks[uuid]
	if l == nil {
		s.mu.Unlock()
		return
	}
	now := s.cloudNow()
	l.state, l.moving, l.changed = state, false, now
	typ := 9
	switch state {
	case sesame.StateLocked:
		typ = 7
	case sesame.StateUnlocked:
		typ = 8
	}
	s.record(l, typ, now, "")
	onChange := s.onChange
	s.mu.Unlock()
	if onChange != nil {
		onChange(uuid, state)
	}
}

// OnChange sets a callback told of every change of a lock's reported state
// (what a push feed would carry): a command that starts a move (moved),
// the end of the move (the target), a Turn. It runs on a goroutine of the
// server, outside its lock, and must not block for long; nil stops it.
func (s *Server) OnChange(f func(uuid string, state sesame.LockState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onChange = f
}

// changed tells f of a command's effect: now, and once the move ended.
func (s *Server) changed(f func(string, sesame.LockState), uuid string, moveDelay time.Duration) {
	f(uuid, s.State(uuid))
	if moveDelay <= 0 {
		return
	}
	time.AfterFunc(moveDelay, func() {
		select {
		case <-s.done:
			return
		default:
		}
		f(uuid, s.State(uuid))
	})
}

// History returns a copy of a lock's history, oldest first.
func (s *Server) History(uuid string) []HistoryRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.locks[uuid]
	if l == nil {
		return nil
	}
	return append([]HistoryRecord(nil), l.history...)
}

// record adds one history record. s.mu is held.
func (s *Server) record(l *lock, typ int, at time.Time, tag string) {
	s.recordID++
	l.history = append(l.history, HistoryRecord{Type: typ, At: at, Tag: tag, RecordID: s.recordID})
	if len(l.history) > maxHistory {
		l.history = l.history[len(l.history)-maxHistory:]
	}
}

// State is what a status request would report now: "moved" during a move,
// StateUnknown for a UUID the server does not have.
func (s *Server) State(uuid string) sesame.LockState {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.locks[uuid]
	if l == nil {
		return sesame.StateUnknown
	}
	return l.reported(s.cloudNow())
}

// Requests returns a copy of every request so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	copy(out, s.requests)
	return out
}

// Notify receives each request as it arrives, before any latency and before
// the answer is written; Status is the status about to be answered. The
// channel holds 1024 requests; when it is full, further ones are dropped
// rather than blocking the server. Close closes it.
func (s *Server) Notify() <-chan Request { return s.notify }

// commandBody is the JSON of POST /{uuid}/cmd.
type commandBody struct {
	Cmd     int    `json:"cmd"`
	History string `json:"history"`
	Sign    string `json:"sign"`
}

// answer is a response about to be written.
type answer struct {
	status     int
	body       string
	retryAfter string
}

func jsonAnswer(status int, message string) answer {
	b, _ := json.Marshal(map[string]string{"message": message})
	return answer{status: status, body: string(b)}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	arrival := time.Now()
	uuid, isCmd, isHistory, pathOK := splitPath(r.URL.Path)
	rec := Request{
		Time:     arrival,
		Method:   r.Method,
		Path:     r.URL.Path,
		UUID:     uuid,
		KeyValid: subtle.ConstantTimeCompare([]byte(r.Header.Get("x-api-key")), []byte(s.apiKey)) == 1,
	}
	var cmd commandBody
	bodyOK := false
	if isCmd && r.Method == http.MethodPost {
		data, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		bodyOK = err == nil && json.Unmarshal(data, &cmd) == nil
		rec.Cmd = cmd.Cmd
		rec.History = cmd.History
		if tag, err := base64.StdEncoding.DecodeString(cmd.History); err == nil {
			rec.History = string(tag)
		}
	}

	s.mu.Lock()
	now := arrival.Add(s.skew) // the cloud's clock
	ans, changed := s.answer(now, r.Method, pathOK, isCmd, isHistory, bodyOK, cmd, r.URL.Query().Get("lg"), &rec)
	rec.Status = ans.status
	s.requests = append(s.requests, rec)
	latency, skew := s.latency, s.skew
	onChange, moveDelay := s.onChange, s.moveDelay
	s.mu.Unlock()
	if changed && onChange != nil {
		s.changed(onChange, uuid, moveDelay)
	}

	select {
	case s.notify <- rec:
	default: // full: drop rather than block the server
	}

	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-s.done:
			t.Stop()
			return
		}
	}

	// net/http dates an answer by the host's clock unless Date is set.
	w.Header().Set("Date", time.Now().Add(skew).UTC().Format(http.TimeFormat))
	if ans.retryAfter != "" {
		w.Header().Set("Retry-After", ans.retryAfter)
	}
	if strings.HasPrefix(strings.TrimSpace(ans.body), "{") {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(ans.status)
	_, _ = io.WriteString(w, ans.body)
}

// answer decides the response and applies a command's effect. s.mu is held.
// changed reports a lock that started moving (or moved at once).
func (s *Server) answer(now time.Time, method string, pathOK, isCmd, isHistory, bodyOK bool, cmd commandBody, lg string, rec *Request) (answer, bool) {
	l := s.locks[rec.UUID]
	if l != nil && bodyOK {
		rec.SignValid = signValid(l.key, cmd.Sign, now)
	}

	if s.fail.n > 0 {
		s.fail.n--
		return answer{status: s.fail.status, body: s.fail.body, retryAfter: s.fail.retryAfter}, false
	}
	if !rec.KeyValid {
		return jsonAnswer(http.StatusForbidden, "Forbidden"), false
	}
	if !pathOK {
		return jsonAnswer(http.StatusNotFound, "Not Found"), false
	}
	if l == nil {
		return jsonAnswer(http.StatusInternalServerError, "Internal server error"), false
	}
	switch {
	case isHistory && method == http.MethodGet:
		n, err := strconv.Atoi(lg)
		if err != nil || n < 1 {
			return jsonAnswer(http.StatusBadRequest, "Bad Request"), false
		}
		return answer{status: http.StatusOK, body: l.historyBody(min(n, 50))}, false
	case !isCmd && !isHistory && method == http.MethodGet:
		return answer{status: http.StatusOK, body: l.statusBody(now)}, false
	case isCmd && method == http.MethodPost:
		if !bodyOK {
			return jsonAnswer(http.StatusBadGateway, "Internal server error"), false
		}
		moved := false
		if rec.SignValid {
			before := l.reported(now)
			l.command(now, cmd.Cmd, s.moveDelay)
			if l.moving || l.state != before {
				moved = true
				typ := 18 // webClick
				switch l.targetOrState() {
				case sesame.StateLocked:
					typ = 16 // webLock
				case sesame.StateUnlocked:
					typ = 17 // webUnLock
				}
				s.record(l, typ, now, rec.History)
			}
		}
		return answer{status: http.StatusOK, body: `{"statusCode":200}`}, moved
	default:
		return jsonAnswer(http.StatusMethodNotAllowed, "Method Not Allowed"), false
	}
}

// splitPath reads "/{uuid}", "/{uuid}/cmd" and "/{uuid}/history".
func splitPath(p string) (uuid string, isCmd, isHistory, ok bool) {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] != "":
		return parts[0], false, false, true
	case len(parts) == 2 && parts[0] != "" && parts[1] == "cmd":
		return parts[0], true, false, true
	case len(parts) == 2 && parts[0] != "" && parts[1] == "history":
		return parts[0], false, true, true
	case len(parts) >= 1:
		return parts[0], false, false, false
	}
	return "", false, false, false
}

// signValid accepts the signature of the current 256-s slot and of the slots
// before and after it, for clock skew.
func signValid(key []byte, sign string, now time.Time) bool {
	for _, k := range []time.Duration{0, -1, 1} {
		want, err := sesame.Sign(key, now.Add(k*signSlot))
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(sign)) == 1 {
			return true
		}
	}
	return false
}

// settle finishes a move whose time has come.
func (l *lock) settle(now time.Time) {
	if l.moving && !now.Before(l.moveUntil) {
		l.state, l.moving, l.changed = l.target, false, l.moveUntil
	}
}

// reported is the state a status request shows.
func (l *lock) reported(now time.Time) sesame.LockState {
	l.settle(now)
	if l.moving {
		return sesame.StateMoved
	}
	return l.state
}

// command applies an accepted, correctly signed command.
func (l *lock) command(now time.Time, cmd int, moveDelay time.Duration) {
	l.settle(now)
	if !l.hubOnline || l.noMove {
		return
	}
	current := l.state
	if l.moving {
		current = l.target
	}
	var target sesame.LockState
	switch cmd {
	case int(sesame.CmdLock):
		target = sesame.StateLocked
	case int(sesame.CmdUnlock):
		target = sesame.StateUnlocked
	case 88: // toggle
		target = sesame.StateLocked
		if current == sesame.StateLocked {
			target = sesame.StateUnlocked
		}
	default: // 89 (click) and the rest: accepted, no effect on a lock
		return
	}
	if target == current {
		return
	}
	if moveDelay <= 0 {
		l.state, l.moving, l.changed = target, false, now
		return
	}
	l.moving, l.target, l.moveUntil, l.changed = true, target, now.Add(moveDelay), now
}

// targetOrState is where the lock is going, or where it is.
func (l *lock) targetOrState() sesame.LockState {
	if l.moving {
		return l.target
	}
	return l.state
}

// historyBody renders GET /{uuid}/history: the newest n records first,
// timeStamp in milliseconds, historyTag base64 or null.
func (l *lock) historyBody(n int) string {
	type rec struct {
		Type       int     `json:"type"`
		TimeStamp  int64   `json:"timeStamp"`
		HistoryTag *string `json:"historyTag"`
		RecordID   int64   `json:"recordID"`
		Parameter  *string `json:"parameter"`
	}
	out := make([]rec, 0, n)
	for i := len(l.history) - 1; i >= 0 && len(out) < n; i-- {
		h := l.history[i]
		r := rec{Type: h.Type, TimeStamp: h.At.UnixMilli(), RecordID: h.RecordID}
		if h.Tag != "" {
			t := base64.StdEncoding.EncodeToString([]byte(h.Tag))
			r.HistoryTag = &t
		}
		out = append(out, r)
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// statusBody renders GET /{uuid}.
func (l *lock) statusBody(now time.Time) string {
	state := l.reported(now)
	pos := positionMoved
	switch state {
	case sesame.StateLocked:
		pos = positionLocked
	case sesame.StateUnlocked:
		pos = positionUnlocked
	}
	body := struct {
		Battery   int     `json:"batteryPercentage"`
		Voltage   float64 `json:"batteryVoltage"`
		Position  int     `json:"position"`
		State     string  `json:"CHSesame2Status"`
		Timestamp int64   `json:"timestamp"`
		HubOnline bool    `json:"wm2State"`
	}{l.battery, l.voltage, pos, string(state), l.changed.Unix(), l.hubOnline}
	b, _ := json.Marshal(body)
	return string(b)
}
