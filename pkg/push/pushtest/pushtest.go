// Package pushtest fakes the Sesame push feed on loopback: a Cognito
// identity pool that hands out temporary credentials with a configurable
// lifetime, an AWS IoT endpoint that is a real MQTT broker (mochi-mqtt)
// behind a real WebSocket whose handshake verifies the SigV4-presigned URL
// against those credentials, and the SigV4-signed shadow GET. Signatures
// are recomputed with aws-sdk-go-v2's signer and compared; a wrong,
// expired or unknown one is refused. Connections are closed when their
// credentials expire (the strictest reading of AWS IoT's rules).
//
// Tests use Start; the demo uses NewServer and Close.
package pushtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/gorilla/websocket"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/push"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// DefaultPoolID is the fake's identity pool.
const DefaultPoolID = "ap-northeast-1:00000000-0000-4000-8000-00000000fa4e"

// Form is the shape of a published document.
type Form int

// The forms a shadow update arrives in.
const (
	FormDocuments Form = iota // update/documents: current.state.reported
	FormAccepted              // update/accepted: state.reported
	FormBoth                  // both, accepted first, as AWS IoT sends them
)

// Options configure the fake.
type Options struct {
	PoolID        string        // default DefaultPoolID
	CredentialTTL time.Duration // lifetime of the credentials handed out; default 1 h
	Logger        *slog.Logger  // the broker's log; default discarded
	// TLS serves everything over TLS (wss:// and https://) with a
	// certificate that Client trusts.
	TLS bool
}

type issued struct {
	secret, token string
	expires       time.Time
}

type shadow struct {
	reported map[string]any
	version  int64
	updated  time.Time
}

// metadata is a shadow's metadata: when each reported field was set.
func (sh *shadow) metadata() map[string]any {
	fields := map[string]any{}
	for k := range sh.reported {
		fields[k] = map[string]any{"timestamp": sh.updated.Unix()}
	}
	return map[string]any{"reported": fields}
}

// Server is the fake feed.
type Server struct {
	pool, region string
	log          *slog.Logger
	http         *httptest.Server
	signer       *v4.Signer
	addr         string // the WebSocket listener's host:port

	mu          sync.Mutex
	ttl         time.Duration
	identities  map[string]bool
	creds       map[string]issued // access key -> the rest
	shadows     map[string]*shadow
	credReqs    int
	idReqs      int
	conns       int
	refused     int
	shadowReads int
	shadowRefs  int
	secrets     []string
	broker      *mochi.Server
	wsConns     map[*websocket.Conn]bool
	tls         *tls.Config // the endpoint's, with TLS
}

// NewServer starts the fake on loopback ports.
func NewServer(o Options) (*Server, error) {
	s := &Server{
		pool:       o.PoolID,
		ttl:        o.CredentialTTL,
		log:        o.Logger,
		signer:     v4.NewSigner(),
		identities: map[string]bool{},
		creds:      map[string]issued{},
		shadows:    map[string]*shadow{},
		wsConns:    map[*websocket.Conn]bool{},
	}
	if s.pool == "" {
		s.pool = DefaultPoolID
	}
	s.region, _, _ = strings.Cut(s.pool, ":")
	if s.ttl <= 0 {
		s.ttl = time.Hour
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{$}", s.cognito)
	mux.HandleFunc("GET /things/sesame2/shadow", s.getShadow)
	if o.TLS {
		s.http = httptest.NewTLSServer(mux)
		s.tls = s.http.TLS.Clone()
	} else {
		s.http = httptest.NewServer(mux)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.http.Close()
		return nil, fmt.Errorf("pushtest: listen: %w", err)
	}
	s.addr = ln.Addr().String()
	if err := s.startBroker(ln); err != nil {
		s.http.Close()
		return nil, err
	}
	return s, nil
}

// Start is NewServer for a test, closed at its end.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith is Start with options.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// CognitoURL is the fake Cognito's endpoint (SESAME_PUSH_COGNITO_URL).
func (s *Server) CognitoURL() string { return s.http.URL }

// ShadowURL is the base of the shadow GET (SESAME_PUSH_SHADOW_URL).
func (s *Server) ShadowURL() string { return s.http.URL }

// Endpoint is the IoT endpoint as a ws:// URL (SESAME_PUSH_ENDPOINT).
func (s *Server) Endpoint() string {
	if s.tls != nil {
		return "wss://" + s.addr + "/mqtt"
	}
	return "ws://" + s.addr + "/mqtt"
}

// Client is an HTTP client that trusts the fake's certificate (with TLS);
// the push client takes its TLS settings for the WebSocket too.
func (s *Server) Client() *http.Client { return s.http.Client() }

// PoolID is the identity pool the fake accepts.
func (s *Server) PoolID() string { return s.pool }

// Region is the pool's region, which every signature must name.
func (s *Server) Region() string { return s.region }

// SetCredentialTTL sets the lifetime of credentials handed out from now on.
func (s *Server) SetCredentialTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ttl = d
}

// RevokeCredentials forgets every credential handed out so far: the
// endpoint and the shadow GET refuse them from now on (as AWS does for
// credentials of a deleted identity or pool).
func (s *Server) RevokeCredentials() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds = map[string]issued{}
}

// CredentialRequests counts GetCredentialsForIdentity calls answered.
func (s *Server) CredentialRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.credReqs
}

// Connections counts WebSocket handshakes accepted.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Refused counts WebSocket handshakes refused (bad or expired signature).
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// ShadowReads counts shadow GETs answered with 200; ShadowRefused those
// refused for their signature.
func (s *Server) ShadowReads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shadowReads
}

// ShadowRefused counts shadow GETs refused for their signature.
func (s *Server) ShadowRefused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shadowRefs
}

// Secrets returns every access key, secret key and session token handed
// out and every URL signature seen, for tests that check logs for them.
func (s *Server) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.secrets...)
}

// Close stops everything.
func (s *Server) Close() {
	s.Kill()
	s.http.Close()
}

// Kill stops the IoT endpoint: every connection is closed and new ones
// are refused until Restart.
func (s *Server) Kill() {
	s.mu.Lock()
	b := s.broker
	s.broker = nil
	conns := s.wsConns
	s.wsConns = map[*websocket.Conn]bool{}
	s.mu.Unlock()
	if b != nil {
		_ = b.Close()
	}
	for c := range conns {
		_ = c.Close()
	}
}

// Restart starts the IoT endpoint again on the same address.
func (s *Server) Restart() error {
	s.mu.Lock()
	running := s.broker != nil
	s.mu.Unlock()
	if running {
		return nil
	}
	var ln net.Listener
	var err error
	for range 50 { // the port was just closed; bounded retries
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("pushtest: listen again on %s: %w", s.addr, err)
	}
	return s.startBroker(ln)
}

func (s *Server) startBroker(ln net.Listener) error {
	b := mochi.New(&mochi.Options{InlineClient: true, Logger: s.log})
	if err := b.AddHook(&verifiedHook{}, nil); err != nil {
		_ = ln.Close()
		return fmt.Errorf("pushtest: broker hook: %w", err)
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	l := &wsListener{id: "iot", ln: ln, srv: s}
	if err := b.AddListener(l); err != nil {
		_ = ln.Close()
		return fmt.Errorf("pushtest: broker listener: %w", err)
	}
	if err := b.Serve(); err != nil {
		_ = ln.Close()
		return fmt.Errorf("pushtest: broker: %w", err)
	}
	s.mu.Lock()
	s.broker = b
	s.mu.Unlock()
	return nil
}

// ---- Cognito ----

func (s *Server) cognito(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		awsError(w, http.StatusBadRequest, "SerializationException", "Content-Type "+ct)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		awsError(w, http.StatusBadRequest, "SerializationException", "body")
		return
	}
	var in map[string]json.RawMessage
	if err := json.Unmarshal(body, &in); err != nil {
		awsError(w, http.StatusBadRequest, "SerializationException", "body is not a JSON object")
		return
	}
	if logins, ok := in["Logins"]; ok && !bytes.Equal(logins, []byte("{}")) && !bytes.Equal(logins, []byte("null")) {
		awsError(w, http.StatusBadRequest, "NotAuthorizedException", "unauthenticated identities only: no Logins")
		return
	}
	str := func(k string) string {
		var v string
		_ = json.Unmarshal(in[k], &v)
		return v
	}
	switch r.Header.Get("X-Amz-Target") {
	case "AWSCognitoIdentityService.GetId":
		if str("IdentityPoolId") != s.pool {
			awsError(w, http.StatusBadRequest, "ResourceNotFoundException", "IdentityPool not found")
			return
		}
		id := s.region + ":" + randomHex(16)
		s.mu.Lock()
		s.identities[id] = true
		s.idReqs++
		s.mu.Unlock()
		writeJSON(w, map[string]any{"IdentityId": id})
	case "AWSCognitoIdentityService.GetCredentialsForIdentity":
		id := str("IdentityId")
		s.mu.Lock()
		known := s.identities[id]
		ttl := s.ttl
		s.mu.Unlock()
		if !known {
			awsError(w, http.StatusBadRequest, "ResourceNotFoundException", "Identity not found")
			return
		}
		ak, sk, tok := "ASIA"+strings.ToUpper(randomHex(8)), randomHex(20), "IQoJ"+randomHex(48)
		exp := time.Now().Add(ttl)
		s.mu.Lock()
		s.creds[ak] = issued{secret: sk, token: tok, expires: exp}
		s.credReqs++
		s.secrets = append(s.secrets, ak, sk, tok)
		s.mu.Unlock()
		writeJSON(w, map[string]any{
			"IdentityId": id,
			"Credentials": map[string]any{
				"AccessKeyId":  ak,
				"SecretKey":    sk,
				"SessionToken": tok,
				"Expiration":   float64(exp.UnixMilli()) / 1000,
			},
		})
	default:
		awsError(w, http.StatusBadRequest, "UnknownOperationException", "X-Amz-Target "+r.Header.Get("X-Amz-Target"))
	}
}

func awsError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(v)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// lookup returns the credentials of an access key that are still valid.
func (s *Server) lookup(ak, token string) (issued, error) {
	s.mu.Lock()
	c, ok := s.creds[ak]
	s.mu.Unlock()
	switch {
	case !ok:
		return issued{}, errors.New("unknown access key")
	case subtle.ConstantTimeCompare([]byte(c.token), []byte(token)) != 1:
		return issued{}, errors.New("wrong session token")
	case !time.Now().Before(c.expires):
		return issued{}, errors.New("credentials expired")
	}
	return c, nil
}

// ---- the presigned WebSocket URL ----

// verifyPresigned checks a handshake's SigV4 query: the credential scope,
// the access key and session token the fake issued, the date, and the
// signature recomputed over the request as received.
func (s *Server) verifyPresigned(r *http.Request) (issued, error) {
	q := r.URL.Query()
	if q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" {
		return issued{}, errors.New("algorithm")
	}
	scope := strings.Split(q.Get("X-Amz-Credential"), "/")
	if len(scope) != 5 || scope[2] != s.region || scope[3] != push.ServiceDeviceGateway || scope[4] != "aws4_request" {
		return issued{}, errors.New("credential scope")
	}
	if q.Get("X-Amz-SignedHeaders") != "host" {
		return issued{}, errors.New("signed headers")
	}
	at, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil || time.Since(at).Abs() > 5*time.Minute || scope[1] != at.Format("20060102") {
		return issued{}, errors.New("date")
	}
	c, err := s.lookup(scope[0], q.Get("X-Amz-Security-Token"))
	if err != nil {
		return issued{}, err
	}
	got := q.Get("X-Amz-Signature")
	q.Del("X-Amz-Signature")
	q.Del("X-Amz-Security-Token")
	u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return issued{}, err
	}
	signed, _, err := s.signer.PresignHTTP(r.Context(), aws.Credentials{AccessKeyID: scope[0], SecretAccessKey: c.secret},
		req, push.EmptyPayloadHash, push.ServiceDeviceGateway, s.region, at)
	if err != nil {
		return issued{}, err
	}
	su, err := url.Parse(signed)
	if err != nil {
		return issued{}, err
	}
	want := su.Query().Get("X-Amz-Signature")
	s.mu.Lock()
	s.secrets = append(s.secrets, got)
	s.mu.Unlock()
	if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
		return issued{}, errors.New("signature does not match")
	}
	return c, nil
}

// wsListener is a mochi listener: a WebSocket server that lets only
// verified handshakes through to the broker.
type wsListener struct {
	id        string
	ln        net.Listener
	srv       *Server
	http      *http.Server
	establish listeners.EstablishFn
	wg        sync.WaitGroup
}

func (l *wsListener) ID() string       { return l.id }
func (l *wsListener) Address() string  { return l.ln.Addr().String() }
func (l *wsListener) Protocol() string { return "ws" }

func (l *wsListener) Init(*slog.Logger) error {
	l.http = &http.Server{Handler: http.HandlerFunc(l.handle), ReadHeaderTimeout: 5 * time.Second}
	return nil
}

func (l *wsListener) Serve(establish listeners.EstablishFn) {
	l.establish = establish
	_ = l.http.Serve(l.ln)
}

func (l *wsListener) Close(closeClients listeners.CloseFn) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = l.http.Shutdown(ctx)
	_ = l.http.Close()
	closeClients(l.id)
}

var upgrader = websocket.Upgrader{
	Subprotocols: []string{"mqtt"},
	CheckOrigin:  func(*http.Request) bool { return true },
}

func (l *wsListener) handle(w http.ResponseWriter, r *http.Request) {
	s := l.srv
	c, err := s.verifyPresigned(r)
	if err != nil {
		s.mu.Lock()
		s.refused++
		s.mu.Unlock()
		http.Error(w, "Forbidden: "+err.Error(), http.StatusForbidden)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.broker == nil { // killed meanwhile
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.conns++
	s.wsConns[ws] = true
	s.mu.Unlock()
	expiry := time.AfterFunc(time.Until(c.expires), func() { _ = ws.Close() })
	defer expiry.Stop()
	defer func() {
		s.mu.Lock()
		delete(s.wsConns, ws)
		s.mu.Unlock()
		_ = ws.Close()
	}()
	_ = l.establish(l.id, &wsConn{Conn: ws.NetConn(), ws: ws, verified: true})
}

// wsConn carries MQTT in binary WebSocket messages.
type wsConn struct {
	net.Conn
	ws       *websocket.Conn
	r        io.Reader
	verified bool
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				return 0, errors.New("pushtest: not a binary WebSocket message")
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) Close() error { return c.ws.Close() }

// verifiedHook admits only clients that came through a verified
// handshake (and the broker's own inline client, which publishes).
type verifiedHook struct{ mochi.HookBase }

func (h *verifiedHook) ID() string { return "pushtest-sigv4" }

func (h *verifiedHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (h *verifiedHook) OnConnectAuthenticate(cl *mochi.Client, _ packets.Packet) bool {
	if cl.Net.Inline {
		return true
	}
	c, ok := cl.Net.Conn.(*wsConn)
	return ok && c.verified
}

func (h *verifiedHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	return !write // devices' clients only read here
}

// ---- the shadow GET ----

func (s *Server) getShadow(w http.ResponseWriter, r *http.Request) {
	if err := s.verifySigned(r); err != nil {
		s.mu.Lock()
		s.shadowRefs++
		s.mu.Unlock()
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": "Forbidden: " + err.Error()})
		return
	}
	name := strings.ToUpper(r.URL.Query().Get("name"))
	s.mu.Lock()
	sh := s.shadows[name]
	var doc map[string]any
	if sh != nil {
		doc = map[string]any{
			"state":     map[string]any{"reported": sh.reported},
			"metadata":  sh.metadata(),
			"version":   sh.version,
			"timestamp": time.Now().Unix(),
		}
		s.shadowReads++
	}
	s.mu.Unlock()
	if doc == nil {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]any{"code": 404, "message": "No shadow exists with name: " + name})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

// verifySigned checks a header-signed iotdata request by signing a copy of
// it (the headers it lists as signed, its date) and comparing.
func (s *Server) verifySigned(r *http.Request) error {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return errors.New("no SigV4 Authorization")
	}
	var cred, signedHeaders string
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signedHeaders = v
		}
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[2] != s.region || scope[3] != push.ServiceData || scope[4] != "aws4_request" {
		return errors.New("credential scope")
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || time.Since(at).Abs() > 5*time.Minute {
		return errors.New("date")
	}
	c, err := s.lookup(scope[0], r.Header.Get("X-Amz-Security-Token"))
	if err != nil {
		return err
	}
	req, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return err
	}
	for _, h := range strings.Split(signedHeaders, ";") {
		if h == "host" || h == "x-amz-date" || h == "x-amz-security-token" {
			continue // set by the signer
		}
		req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
	}
	err = s.signer.SignHTTP(r.Context(), aws.Credentials{AccessKeyID: scope[0], SecretAccessKey: c.secret, SessionToken: c.token},
		req, push.EmptyPayloadHash, push.ServiceData, s.region, at)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(req.Header.Get("Authorization")), []byte(auth)) != 1 {
		return errors.New("signature does not match")
	}
	return nil
}

// ---- documents ----

func reportedOf(mechst string, hubs map[string]bool) map[string]any {
	rep := map[string]any{"mechst": mechst}
	if hubs != nil {
		m := map[string]string{}
		for id, on := range hubs {
			m[id] = "00"
			if on {
				m[id] = "01"
			}
		}
		rep["wm2s"] = m
	}
	return rep
}

// SetShadow stores a lock's shadow (what the GET answers) without
// publishing anything.
func (s *Server) SetShadow(uuid, mechst string, hubs map[string]bool) {
	uuid = strings.ToUpper(uuid)
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.shadows[uuid]
	if sh == nil {
		sh = &shadow{}
		s.shadows[uuid] = sh
	}
	sh.version++
	sh.reported = reportedOf(mechst, hubs)
	sh.updated = time.Now()
}

// PublishMechst updates a lock's shadow and publishes the update in the
// update/documents form.
func (s *Server) PublishMechst(uuid, mechst string, hubs map[string]bool) error {
	return s.PublishMechstForm(uuid, mechst, hubs, FormDocuments)
}

// PublishMechstForm updates a lock's shadow and publishes the update in
// the given form.
func (s *Server) PublishMechstForm(uuid, mechst string, hubs map[string]bool, form Form) error {
	uuid = strings.ToUpper(uuid)
	rep := reportedOf(mechst, hubs)
	s.mu.Lock()
	sh := s.shadows[uuid]
	if sh == nil {
		sh = &shadow{}
		s.shadows[uuid] = sh
	}
	prev := sh.reported
	sh.version++
	sh.reported = rep
	sh.updated = time.Now()
	v, meta := sh.version, sh.metadata()
	s.mu.Unlock()
	ts := time.Now().Unix()
	if form == FormAccepted || form == FormBoth {
		doc, _ := json.Marshal(map[string]any{"state": map[string]any{"reported": rep}, "metadata": meta, "version": v, "timestamp": ts})
		if err := s.PublishRaw(Topic(uuid, "accepted"), doc); err != nil {
			return err
		}
	}
	if form == FormDocuments || form == FormBoth {
		doc, _ := json.Marshal(map[string]any{
			"previous":  map[string]any{"state": map[string]any{"reported": prev}, "version": v - 1},
			"current":   map[string]any{"state": map[string]any{"reported": rep}, "metadata": meta, "version": v},
			"timestamp": ts,
		})
		if err := s.PublishRaw(Topic(uuid, "documents"), doc); err != nil {
			return err
		}
	}
	return nil
}

// Topic is a lock's shadow topic; kind is "documents" or "accepted".
func Topic(uuid, kind string) string {
	return "$aws/things/sesame2/shadow/name/" + strings.ToUpper(uuid) + "/update/" + kind
}

// PublishRaw publishes any payload on any topic (garbage, other locks).
func (s *Server) PublishRaw(topic string, payload []byte) error {
	s.mu.Lock()
	b := s.broker
	s.mu.Unlock()
	if b == nil {
		return errors.New("pushtest: the endpoint is killed")
	}
	if err := b.Publish(topic, payload, false, 0); err != nil {
		return fmt.Errorf("pushtest: publish %s: %w", topic, err)
	}
	return nil
}

// Mechst encodes a mechst for a state: battery volts, position, and the
// range flags of the state (moved: both).
func Mechst(state sesame.LockState, volts float64, pos int) string {
	var flags byte
	switch state {
	case sesame.StateLocked:
		flags = 0x02
	case sesame.StateUnlocked:
		flags = 0x04
	case sesame.StateMoved:
		flags = 0x06
	}
	return MechstFlags(volts, pos, flags)
}

// MechstFlags encodes a mechst with explicit flags (0x20: battery critical).
func MechstFlags(volts float64, pos int, flags byte) string {
	raw := uint16(math.Round(volts * 1023 / 7.2))
	p := uint16(int16(pos))
	b := []byte{byte(raw), byte(raw >> 8), 0x00, 0x80, byte(p), byte(p >> 8), 0, flags}
	return hex.EncodeToString(b)
}
