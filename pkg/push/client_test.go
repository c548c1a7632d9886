package push_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/push"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/push/pushtest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

const (
	lockA = "488E1234-ABCD-4EF0-A1B2-C3D4E5F60718"
	lockB = "11111111-2222-4333-8444-555555555555"
	other = "99999999-0000-4000-8000-000000000000"
)

// wait bounds every wait of these tests; it is a deadline, not a timing
// assertion.
const wait = 15 * time.Second

type harness struct {
	srv    *pushtest.Server
	client *push.Client
	docs   chan push.Document
	health chan push.Health
	log    *logcapture.Buffer

	mu   sync.Mutex
	last push.Health
}

func start(t *testing.T, srv *pushtest.Server, locks ...string) *harness {
	t.Helper()
	logger, buf := logcapture.New()
	h := &harness{srv: srv, docs: make(chan push.Document, 4096), health: make(chan push.Health, 1024), log: buf}
	c, err := push.New(push.Options{
		Locks:      locks,
		PoolID:     srv.PoolID(),
		Endpoint:   srv.Endpoint(),
		CognitoURL: srv.CognitoURL(),
		ShadowURL:  srv.ShadowURL(),
		OnDocument: func(d push.Document) { h.docs <- d },
		OnHealth: func(hl push.Health) {
			h.mu.Lock()
			h.last = hl
			h.mu.Unlock()
			h.health <- hl
		},
		Logger: logger.With("component", "push"),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.client = c
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(wait):
			t.Error("Run did not return after its context was cancelled")
		}
	})
	return h
}

// startReady gives each lock a shadow, starts the client and waits until
// it is connected and the shadow read after the connect delivered every
// lock: from then on documents come only from the feed.
func startReady(t *testing.T, srv *pushtest.Server, locks ...string) *harness {
	t.Helper()
	for _, l := range locks {
		srv.SetShadow(l, pushtest.Mechst(sesame.StateLocked, 6, 0), nil)
	}
	h := start(t, srv, locks...)
	h.waitHealth(t, true)
	for range locks {
		if d := h.next(t); d.Source != push.SourceShadow || d.Status.Position != 0 {
			t.Fatalf("first document %+v, want the shadow read", d)
		}
	}
	return h
}

// waitHealth waits for a Health with the given Connected.
func (h *harness) waitHealth(t *testing.T, connected bool) push.Health {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case hl := <-h.health:
			if hl.Connected == connected {
				return hl
			}
		case <-deadline:
			t.Fatalf("no Health with Connected=%v within %s; log:\n%s", connected, wait, h.log)
		}
	}
}

// next waits for the next document.
func (h *harness) next(t *testing.T) push.Document {
	t.Helper()
	select {
	case d := <-h.docs:
		return d
	case <-time.After(wait):
		t.Fatalf("no document within %s; log:\n%s", wait, h.log)
	}
	return push.Document{}
}

// noneBefore checks that the next document is the marker.
func (h *harness) noneBefore(t *testing.T, marker int) {
	t.Helper()
	if d := h.next(t); d.Status.Position != marker {
		t.Fatalf("unexpected document delivered before the marker: %+v", d)
	}
}

// nextAt waits for a document showing position pos, from the feed or from
// the shadow read after a reconnect (whichever delivers the version first;
// the other is then a duplicate).
func (h *harness) nextAt(t *testing.T, pos int) push.Document {
	t.Helper()
	for {
		if d := h.next(t); d.Status.Position == pos {
			return d
		}
	}
}

func TestDocumentArrives(t *testing.T) {
	srv := pushtest.Start(t)
	h := startReady(t, srv, strings.ToLower(lockA))
	hubs := map[string]bool{"00005E005300": true}
	if err := srv.PublishMechst(lockA, pushtest.Mechst(sesame.StateUnlocked, 6.1, 300), hubs); err != nil {
		t.Fatal(err)
	}
	d := h.next(t)
	if d.Source != push.SourcePush || d.UUID != lockA || d.Status.State != sesame.StateUnlocked || d.Status.Position != 300 || d.Status.Battery != 100 {
		t.Fatalf("document %+v", d)
	}
	if d.Status.HubOnline == nil || !*d.Status.HubOnline {
		t.Fatalf("hub online: %v", d.Status.HubOnline)
	}
	if d.Received.IsZero() {
		t.Fatal("Received not set")
	}
}

func TestShadowReadAfterConnect(t *testing.T) {
	srv := pushtest.Start(t)
	srv.SetShadow(lockA, "640300801d00000a", map[string]bool{"00005E005300": true})
	h := start(t, srv, lockA, lockB) // lockB has no shadow: a 404, logged
	h.waitHealth(t, true)
	d := h.next(t)
	if d.Source != push.SourceShadow || d.UUID != lockA || d.Status.State != sesame.StateLocked || d.Status.Position != 29 {
		t.Fatalf("shadow document %+v", d)
	}
	if d.Status.Timestamp.IsZero() || d.Status.Timestamp.After(time.Now()) {
		t.Fatalf("shadow document's time %s: want when mechst was reported", d.Status.Timestamp)
	}
	if srv.ShadowReads() != 1 {
		t.Fatalf("%d shadow reads answered, want 1", srv.ShadowReads())
	}
	// ReadShadow is the same GET on demand.
	got, err := h.client.ReadShadow(context.Background(), strings.ToLower(lockA))
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != push.SourceShadow || got.Status.RawState != "640300801d00000a" || got.UUID != lockA {
		t.Fatalf("ReadShadow %+v", got)
	}
	if _, err := h.client.ReadShadow(context.Background(), lockB); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("ReadShadow of a lock without a shadow: %v", err)
	}
}

func TestUnknownLockAndGarbageIgnored(t *testing.T) {
	srv := pushtest.Start(t)
	h := startReady(t, srv, lockA)
	// A document for another lock, on a topic this client did not subscribe
	// to, and garbage on the lock's own topics: nothing is delivered.
	if err := srv.PublishMechst(other, pushtest.Mechst(sesame.StateUnlocked, 6, 1), nil); err != nil {
		t.Fatal(err)
	}
	garbage := []string{
		`not json`,
		`{"state":{"reported":{"mechst":"zz"}}}`,
		`{"current":{"state":{"reported":{"mechst":"6403"}}}}`,
		`{"state":{"reported":{"mechst":12}}}`,
		`{"state":{"reported":{"wm2s":"01"}}}`,
		`{"state":{"reported":{"other":1}}}`,
		`[1,2,3]`,
	}
	for i, g := range garbage {
		kind := "documents"
		if i%2 == 1 {
			kind = "accepted"
		}
		if err := srv.PublishRaw(pushtest.Topic(lockA, kind), []byte(g)); err != nil {
			t.Fatal(err)
		}
	}
	const marker = 777
	if err := srv.PublishMechst(lockA, pushtest.Mechst(sesame.StateLocked, 6, marker), nil); err != nil {
		t.Fatal(err)
	}
	h.noneBefore(t, marker)
	// Rate-limited: logthrottle writes the first 5 of a kind in a window.
	if n := strings.Count(h.log.String(), "push document not understood"); n < 1 || n > 5 {
		t.Fatalf("%d log lines for %d garbage documents, want 1..5:\n%s", n, len(garbage), h.log)
	}
}

func TestDuplicatesAndPartialDocuments(t *testing.T) {
	srv := pushtest.Start(t)
	h := startReady(t, srv, lockA)
	// Both topics carry the same update: one delivery.
	if err := srv.PublishMechstForm(lockA, pushtest.Mechst(sesame.StateLocked, 5.9, 10), nil, pushtest.FormBoth); err != nil {
		t.Fatal(err)
	}
	d := h.next(t)
	if d.Source != push.SourcePush || d.Status.Position != 10 {
		t.Fatalf("first document %+v", d)
	}
	// A partial update/accepted with only wm2s keeps the last mechst.
	partial := `{"state":{"reported":{"wm2s":{"AB":"00"}}},"version":100,"timestamp":1700000000}`
	if err := srv.PublishRaw(pushtest.Topic(lockA, "accepted"), []byte(partial)); err != nil {
		t.Fatal(err)
	}
	d = h.next(t)
	if d.Status.Position != 10 || d.Status.HubOnline == nil || *d.Status.HubOnline {
		t.Fatalf("partial document %+v (hub %v)", d, d.Status.HubOnline)
	}
	// An older version than the one delivered is not delivered.
	old := `{"state":{"reported":{"mechst":"` + pushtest.Mechst(sesame.StateUnlocked, 6, 500) + `"}},"version":50}`
	if err := srv.PublishRaw(pushtest.Topic(lockA, "accepted"), []byte(old)); err != nil {
		t.Fatal(err)
	}
	newer := `{"state":{"reported":{"mechst":"` + pushtest.Mechst(sesame.StateUnlocked, 6, 501) + `"}},"version":101}`
	if err := srv.PublishRaw(pushtest.Topic(lockA, "accepted"), []byte(newer)); err != nil {
		t.Fatal(err)
	}
	h.noneBefore(t, 501)
}

func TestEndpointDiesAndReturns(t *testing.T) {
	srv := pushtest.Start(t)
	h := startReady(t, srv, lockA)
	srv.Kill()
	down := h.waitHealth(t, false)
	if down.Reason == "" || down.Since.IsZero() {
		t.Fatalf("failing Health without a reason or time: %+v", down)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	up := h.waitHealth(t, true)
	if up.Reason != "" || !up.Since.After(down.Since) {
		t.Fatalf("Health after the return %+v (down %+v)", up, down)
	}
	if err := srv.PublishMechst(lockA, pushtest.Mechst(sesame.StateLocked, 6, 42), nil); err != nil {
		t.Fatal(err)
	}
	h.nextAt(t, 42)
	if srv.Connections() < 2 {
		t.Fatalf("%d connections, want at least 2", srv.Connections())
	}
}

// TestCredentialsRenewedWithoutLosingADocument: credentials that live 4 s
// expire several times while documents keep coming; the fake closes a
// connection the moment its credentials expire, so only a replacement made
// in time (new connection subscribed before the old one goes) loses
// nothing.
func TestCredentialsRenewedWithoutLosingADocument(t *testing.T) {
	srv := pushtest.StartWith(t, pushtest.Options{CredentialTTL: 4 * time.Second})
	h := startReady(t, srv, lockA)
	const n = 180 // one every 50 ms: 9 s, over two renewals
	for i := 1; i <= n; i++ {
		if err := srv.PublishMechst(lockA, pushtest.Mechst(sesame.StateLocked, 6, i), nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	seen := map[int]bool{}
	deadline := time.After(wait)
	for len(seen) < n {
		select {
		case d := <-h.docs: // from the feed, or the shadow read after a replacement
			seen[d.Status.Position] = true
		case <-deadline:
			var missing []int
			for i := 1; i <= n; i++ {
				if !seen[i] {
					missing = append(missing, i)
				}
			}
			t.Fatalf("documents lost: %v\nlog:\n%s", missing, h.log)
		}
	}
	if got := srv.CredentialRequests(); got < 3 {
		t.Fatalf("%d credential requests, want at least 3 (renewed twice)", got)
	}
	if got := srv.Connections(); got < 3 {
		t.Fatalf("%d connections, want at least 3", got)
	}
	h.mu.Lock()
	last := h.last
	h.mu.Unlock()
	if !last.Connected {
		t.Fatalf("health after the renewals: %+v", last)
	}
	for {
		select {
		case hl := <-h.health:
			if !hl.Connected {
				t.Fatalf("the feed went down during a renewal: %+v", hl)
			}
			continue
		default:
		}
		break
	}
}

// TestCredentialsNeverLogged runs a connect, a renewal, a shadow read and
// a refused connection with the log at debug, and looks for every key,
// secret, token and signature the fake handed out or saw.
func TestCredentialsNeverLogged(t *testing.T) {
	srv := pushtest.StartWith(t, pushtest.Options{CredentialTTL: 3 * time.Second})
	srv.SetShadow(lockA, pushtest.Mechst(sesame.StateLocked, 6, 1), nil)
	h := start(t, srv, lockA)
	h.waitHealth(t, true)
	for srv.CredentialRequests() < 2 { // one renewal
		time.Sleep(50 * time.Millisecond)
		if t.Context().Err() != nil {
			return
		}
	}
	if _, err := h.client.ReadShadow(context.Background(), lockA); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	h.waitHealth(t, false)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	h.waitHealth(t, true)
	logs := h.log.String()
	if !strings.Contains(logs, "push connected") {
		t.Fatalf("the log does not show the connection; nothing was checked:\n%s", logs)
	}
	secrets := srv.Secrets()
	if len(secrets) < 6 {
		t.Fatalf("only %d secrets seen", len(secrets))
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Fatalf("a credential or signature appears in the log:\n%s", logs)
		}
	}
	if strings.Contains(logs, "X-Amz-Signature=") && !strings.Contains(logs, "X-Amz-Signature=REDACTED") {
		t.Fatalf("a signature appears in the log:\n%s", logs)
	}
}

func TestNewRejects(t *testing.T) {
	for _, o := range []push.Options{
		{},
		{Locks: []string{lockA}, PoolID: "nocolon"},
		{Locks: []string{lockA}, Endpoint: "http://x"},
		{Locks: []string{lockA}, Endpoint: "wss://u:p@x/mqtt"},
		{Locks: []string{"a/b"}},
	} {
		if _, err := push.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	if _, err := push.New(push.Options{Locks: []string{lockA}, Logger: slog.Default()}); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
}

// TestRefusedCredentialsReplaced: the endpoint refuses the credentials the
// client holds (revoked); the client asks Cognito for new ones instead of
// retrying the refused ones until they expire.
func TestRefusedCredentialsReplaced(t *testing.T) {
	srv := pushtest.Start(t) // credentials live an hour
	h := startReady(t, srv, lockA)
	srv.RevokeCredentials()
	srv.Kill()
	h.waitHealth(t, false)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	h.waitHealth(t, true)
	if srv.Refused() < 1 || srv.CredentialRequests() < 2 {
		t.Fatalf("%d handshakes refused, %d credential requests: want >= 1 and >= 2", srv.Refused(), srv.CredentialRequests())
	}
	if err := srv.PublishMechst(lockA, pushtest.Mechst(sesame.StateUnlocked, 6, 77), nil); err != nil {
		t.Fatal(err)
	}
	h.nextAt(t, 77)
	// The shadow GET too: refused once, then new credentials.
	srv.RevokeCredentials()
	before := srv.CredentialRequests()
	if _, err := h.client.ReadShadow(context.Background(), lockA); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("ReadShadow with revoked credentials: %v", err)
	}
	if _, err := h.client.ReadShadow(context.Background(), lockA); err != nil {
		t.Fatalf("ReadShadow after the refusal: %v", err)
	}
	if srv.CredentialRequests() != before+1 {
		t.Fatalf("%d credential requests after the refused GET, want %d", srv.CredentialRequests(), before+1)
	}
	logs := h.log.String()
	for _, s := range srv.Secrets() {
		if strings.Contains(logs, s) {
			t.Fatalf("a credential or signature appears in the log:\n%s", logs)
		}
	}
}

// TestOverTLS: wss:// and https:// as against AWS, with a test CA.
func TestOverTLS(t *testing.T) {
	srv := pushtest.StartWith(t, pushtest.Options{TLS: true})
	if !strings.HasPrefix(srv.Endpoint(), "wss://") || !strings.HasPrefix(srv.ShadowURL(), "https://") {
		t.Fatalf("endpoint %s, shadow %s", srv.Endpoint(), srv.ShadowURL())
	}
	srv.SetShadow(lockA, pushtest.Mechst(sesame.StateLocked, 6, 3), nil)
	docs := make(chan push.Document, 16)
	c, err := push.New(push.Options{
		Locks: []string{lockA}, PoolID: srv.PoolID(), Endpoint: srv.Endpoint(),
		CognitoURL: srv.CognitoURL(), ShadowURL: srv.ShadowURL(), HTTPClient: srv.Client(),
		OnDocument: func(d push.Document) { docs <- d },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(wait):
			t.Error("Run did not return after its context was cancelled")
		}
	}()
	for _, want := range []int{3, 4} {
		select {
		case d := <-docs:
			if d.Status.Position != want {
				t.Fatalf("document %+v, want position %d", d, want)
			}
		case <-time.After(wait):
			t.Fatalf("no document with position %d", want)
		}
		if want == 3 { // the shadow read came over https; now the feed over wss
			if err := srv.PublishMechst(lockA, pushtest.Mechst(sesame.StateLocked, 6, 4), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if srv.Connections() != 1 {
		t.Fatalf("%d connections", srv.Connections())
	}
}
