package web_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/web"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/web/webtest"
)

const (
	aliceUID   = "04A22B1CD35E80"
	managedUID = "04112233445566"
	unknownUID = "04DEADBEEF0042"
	ingressP   = "/api/hassio_ingress/Tok3n-abc_DEF"
)

func newFake() *webtest.Fake {
	f := webtest.New(web.DoorStatus{ID: "door1", Name: "Front door", State: "LOCKED"}, web.DoorStatus{ID: "door2", Name: "Back door", State: "UNLOCKED"})
	f.Add(web.Card{UID: aliceUID, Name: "Alice", Action: "toggle", Enabled: true, AddedBy: "options"})
	f.Add(web.Card{UID: managedUID, Name: "Managed Max", Action: "unlock", Enabled: true, Managed: true, AddedBy: "options"})
	return f
}

// serve runs a Server on a loopback listener until the test ends.
func serve(t *testing.T, o web.Options) string {
	t.Helper()
	s, err := web.New(o)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not stop within 5 s")
		}
	})
	return "http://" + l.Addr().String()
}

func get(t *testing.T, c *http.Client, u string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}

var csrfRe = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", body)
	}
	return m[1]
}

func ingressHeaders(user string) map[string]string {
	return map[string]string{
		"X-Ingress-Path": ingressP, "X-Remote-User-Id": "u-" + user,
		"X-Remote-User-Name": strings.ToLower(user), "X-Remote-User-Display-Name": user,
	}
}

func TestIngressRefusesOtherAddresses(t *testing.T) {
	log, buf := logcapture.New()
	// The Supervisor is 127.0.0.2: our requests from 127.0.0.1 are someone else's.
	u := serve(t, web.Options{Access: newFake(), Ingress: true, Supervisor: "127.0.0.2", Logger: log})
	for _, p := range []string{"/", "/cards", "/log", "/log.csv", "/status", "/events", "/static/app.js"} {
		code, body := get(t, noRedirect, u+p, ingressHeaders("Alice"))
		if code != http.StatusForbidden {
			t.Errorf("GET %s from 127.0.0.1: %d, want 403", p, code)
		}
		if strings.Contains(body, "Alice") {
			t.Errorf("GET %s refused, but the body names a card: %q", p, body)
		}
	}
	code, _, _ := post(t, noRedirect, u+"/cards/"+aliceUID+"/remove", url.Values{"csrf": {"x"}}, ingressHeaders("Alice"))
	if code != http.StatusForbidden {
		t.Errorf("POST remove from 127.0.0.1: %d, want 403", code)
	}
	if !strings.Contains(buf.String(), "not from the Supervisor") {
		t.Errorf("refusal not logged:\n%s", buf)
	}

	// The same server answers the Supervisor's address.
	u2 := serve(t, web.Options{Access: newFake(), Ingress: true, Supervisor: "127.0.0.1"})
	if code, _ := get(t, noRedirect, u2+"/cards", ingressHeaders("Alice")); code != http.StatusOK {
		t.Errorf("GET /cards from the Supervisor: %d, want 200", code)
	}
	if _, err := web.New(web.Options{Access: newFake(), Ingress: true, Supervisor: "supervisor"}); err == nil {
		t.Error("a supervisor address that is not an IP was accepted")
	}
}

func TestIngressBasePathAndEditor(t *testing.T) {
	f := newFake()
	u := serve(t, web.Options{Access: f, Ingress: true, Supervisor: "127.0.0.1"})
	code, body := get(t, noRedirect, u+"/cards", ingressHeaders("Bob"))
	if code != http.StatusOK {
		t.Fatalf("GET /cards: %d", code)
	}
	// Every link, form action, script and stream is under the ingress path.
	attr := regexp.MustCompile(`(?:href|src|action|data-live|data-events)="([^"]*)"`)
	n := 0
	for _, m := range attr.FindAllStringSubmatch(body, -1) {
		n++
		if !strings.HasPrefix(m[1], ingressP+"/") {
			t.Errorf("link %q is not under the ingress path", m[1])
		}
	}
	if n < 8 {
		t.Errorf("only %d links found on the cards page", n)
	}
	if !strings.Contains(body, `data-base="`+ingressP+`"`) {
		t.Error("the script's base (the event stream's prefix) is not the ingress path")
	}
	// The redirect after a change goes back under the prefix, and the
	// editor is the HA user.
	tok := csrfOf(t, body)
	h := ingressHeaders("Bob")
	h["Sec-Fetch-Site"] = "same-origin"
	code, _, hdr := post(t, noRedirect, u+"/cards/"+aliceUID+"/enabled", url.Values{"csrf": {tok}, "on": {"0"}}, h)
	if code != http.StatusSeeOther || hdr.Get("Location") != ingressP+"/cards?done=disabled" {
		t.Fatalf("disable: %d to %q", code, hdr.Get("Location"))
	}
	if got := f.LastCall(); got != "enabled Alice=false by Bob (HA user)" {
		t.Errorf("recorded %q", got)
	}

	// Without a valid X-Ingress-Path the user headers are not trusted.
	for _, p := range []string{"", "api/relative", "/a/../b", `/x"><script>`, "//evil.example/x"} {
		h := ingressHeaders("Mallory")
		h["X-Ingress-Path"] = p
		code, body := get(t, noRedirect, u+"/cards", h)
		if code != http.StatusOK {
			t.Fatalf("GET with X-Ingress-Path %q: %d", p, code)
		}
		if strings.Contains(body, "Mallory") || strings.Contains(body, "evil.example") || strings.Contains(body, "<script>") {
			t.Errorf("X-Ingress-Path %q: the page trusts the headers:\n%s", p, body)
		}
		if !strings.Contains(body, `href="/cards"`) {
			t.Errorf("X-Ingress-Path %q: links not at the root", p)
		}
	}
}

func TestCSRFRefused(t *testing.T) {
	f := newFake()
	u := serve(t, web.Options{Access: f, Ingress: true, Supervisor: "127.0.0.1"})
	_, body := get(t, noRedirect, u+"/cards", ingressHeaders("Bob"))
	tok := csrfOf(t, body)
	// Another user's token is not this user's.
	_, other := get(t, noRedirect, u+"/cards", ingressHeaders("Eve"))
	if csrfOf(t, other) == tok {
		t.Fatal("two HA users got the same CSRF token")
	}
	cases := []struct {
		name string
		form url.Values
		hdr  map[string]string
	}{
		{"no token", url.Values{}, map[string]string{"Sec-Fetch-Site": "same-origin"}},
		{"wrong token", url.Values{"csrf": {strings.Repeat("0", 64)}}, map[string]string{"Sec-Fetch-Site": "same-origin"}},
		{"other user's token", url.Values{"csrf": {csrfOf(t, other)}}, map[string]string{"Sec-Fetch-Site": "same-origin"}},
		{"cross-site", url.Values{"csrf": {tok}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"same-site", url.Values{"csrf": {tok}}, map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"foreign origin", url.Values{"csrf": {tok}}, map[string]string{"Origin": "http://evil.example"}},
	}
	for _, c := range cases {
		h := ingressHeaders("Bob")
		for k, v := range c.hdr {
			h[k] = v
		}
		for _, p := range []string{"/cards/" + aliceUID + "/remove", "/cards/" + aliceUID + "/enabled", "/cards/" + aliceUID, "/enroll"} {
			code, _, _ := post(t, noRedirect, u+p, c.form, h)
			if code != http.StatusForbidden {
				t.Errorf("%s: POST %s: %d, want 403", c.name, p, code)
			}
		}
	}
	if len(f.Calls()) != 0 || f.Enrolling() || len(f.Cards()) != 2 {
		t.Errorf("refused requests changed something: %v", f.Calls())
	}
	// The right token from the same origin works (Origin = Host, no Sec-Fetch-Site).
	h := ingressHeaders("Bob")
	h["Origin"] = u
	code, _, _ := post(t, noRedirect, u+"/cards/"+aliceUID+"/remove", url.Values{"csrf": {tok}}, h)
	if code != http.StatusSeeOther || len(f.Cards()) != 1 {
		t.Errorf("a valid remove: %d, cards %d", code, len(f.Cards()))
	}
}

func TestLoginAndCookie(t *testing.T) {
	f := newFake()
	u := serve(t, web.Options{Access: f, Password: "s3cret pass", LoginDelay: time.Millisecond})
	code, _ := get(t, noRedirect, u+"/cards", nil)
	if code != http.StatusSeeOther {
		t.Errorf("GET /cards without a login: %d, want a redirect to the login", code)
	}
	for _, p := range []string{"/log.csv", "/events", "/status"} {
		if code, body := get(t, noRedirect, u+p, nil); code == http.StatusOK || strings.Contains(body, "Alice") {
			t.Errorf("GET %s without a login: %d %q", p, code, body)
		}
	}
	if code, _, _ := post(t, noRedirect, u+"/cards/"+aliceUID+"/remove", url.Values{}, nil); code != http.StatusUnauthorized {
		t.Errorf("POST without a login: %d, want 401", code)
	}
	code, body, _ := post(t, noRedirect, u+"/login", url.Values{"password": {"s3cret"}}, nil)
	if code != http.StatusUnauthorized || !strings.Contains(body, "Wrong password") {
		t.Errorf("wrong password: %d", code)
	}
	code, _, _ = post(t, noRedirect, u+"/login", url.Values{"password": {"s3cret pass"}}, map[string]string{"Sec-Fetch-Site": "cross-site"})
	if code != http.StatusForbidden {
		t.Errorf("cross-site login: %d, want 403", code)
	}
	code, _, hdr := post(t, noRedirect, u+"/login", url.Values{"password": {"s3cret pass"}}, nil)
	if code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	raw := hdr.Get("Set-Cookie")
	for _, want := range []string{"s2m_session=", "Path=/", "HttpOnly", "SameSite=Strict", "Max-Age="} {
		if !strings.Contains(raw, want) {
			t.Errorf("session cookie %q lacks %s", raw, want)
		}
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	base, _ := url.Parse(u)
	resp := &http.Response{Header: http.Header{"Set-Cookie": {raw}}}
	jar.SetCookies(base, resp.Cookies())
	code, body = get(t, c, u+"/cards", nil)
	if code != http.StatusOK || !strings.Contains(body, "Alice") {
		t.Fatalf("cards after login: %d", code)
	}
	tok := csrfOf(t, body)
	code, _, _ = post(t, noRedirect, u+"/logout", url.Values{"csrf": {tok}}, map[string]string{"Cookie": "s2m_session=" + resp.Cookies()[0].Value})
	if code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	if code, _ := get(t, noRedirect, u+"/cards", map[string]string{"Cookie": "s2m_session=" + resp.Cookies()[0].Value}); code != http.StatusSeeOther {
		t.Errorf("the session works after logout: %d", code)
	}
}

// A wrong password is answered only after the delay; a right one at once.
// synctest's clock: no real waiting, no timing assertion on a busy machine.
func TestWrongPasswordDelayed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := web.New(web.Options{Access: newFake(), Password: "right", LoginDelay: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		try := func(pw string) (int, time.Duration) {
			req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"password": {pw}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			start := time.Now()
			s.Handler().ServeHTTP(rec, req)
			return rec.Code, time.Since(start)
		}
		for _, pw := range []string{"", "wrong", "righ", "right ", "RIGHT"} {
			code, took := try(pw)
			if code != http.StatusUnauthorized || took < 2*time.Second {
				t.Errorf("password %q: %d after %v, want 401 after 2s", pw, code, took)
			}
		}
		if code, took := try("right"); code != http.StatusSeeOther || took != 0 {
			t.Errorf("right password: %d after %v", code, took)
		}
	})
}

// No page, stream or export shows the UID of a card that is not on the
// list, and cards on the list only masked.
func TestNoUnknownUIDOnAnyPage(t *testing.T) {
	f := newFake()
	f.Tap(unknownUID)
	f.Tap(aliceUID)
	f.Tap("08A1B2C3") // a phone's random UID
	u := serve(t, web.Options{Access: f, Ingress: true, Supervisor: "127.0.0.1"})
	h := ingressHeaders("Bob")
	pages := []string{"/cards", "/cards/" + aliceUID, "/log", "/log?result=denied", "/log.csv", "/status", "/enroll"}
	for _, p := range pages {
		code, body := get(t, noRedirect, u+p, h)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d", p, code)
		}
		for _, uid := range []string{unknownUID, "08A1B2C3", strings.ToLower(unknownUID)} {
			if strings.Contains(body, uid) {
				t.Errorf("GET %s shows the unknown UID %s", p, uid)
			}
		}
		if p != "/cards/"+aliceUID && strings.Contains(strings.ReplaceAll(body, "/cards/"+aliceUID, ""), aliceUID) {
			t.Errorf("GET %s shows Alice's full UID outside a link", p)
		}
	}
	_, logPage := get(t, noRedirect, u+"/log", h)
	if !strings.Contains(logPage, webtest.Hash(unknownUID)) || !strings.Contains(logPage, "unknown card") {
		t.Error("the log does not show the unknown card by its hash")
	}
	_, cards := get(t, noRedirect, u+"/cards", h)
	if !strings.Contains(cards, web.MaskUID(aliceUID)) {
		t.Error("the cards list does not show Alice's masked UID")
	}
}

func TestEditValidation(t *testing.T) {
	f := newFake()
	u := serve(t, web.Options{Access: f, Ingress: true, Supervisor: "127.0.0.1"})
	h := ingressHeaders("Bob")
	_, body := get(t, noRedirect, u+"/cards/"+aliceUID, h)
	tok := csrfOf(t, body)
	good := url.Values{"csrf": {tok}, "name": {"Alice"}, "action": {"unlock"}, "enabled": {"on"},
		"valid_from": {"2026-01-01"}, "valid_until": {"2026-12-31"}, "weekday": {"1", "5"}, "from": {"08:00"}, "to": {"18:30"}, "door": {"door2"}}
	cases := []struct{ field, value, want string }{
		{"name", "", "Give the card holder"},
		{"name", strings.Repeat("x", 65), "At most 64"},
		{"name", "Al,ice", "No commas"},
		{"action", "open", "Choose toggle"},
		{"valid_from", "01/02/2026", "A date like"},
		{"valid_until", "2025-12-31", "Not before the first day"},
		{"weekday", "9", "Unknown weekday"},
		{"from", "8am", "A time like"},
		{"to", "", "Give both times"},
		{"door", "garage", "Unknown door"},
	}
	for _, c := range cases {
		form := url.Values{}
		for k, v := range good {
			form[k] = v
		}
		form.Set(c.field, c.value)
		code, body, _ := post(t, noRedirect, u+"/cards/"+aliceUID, form, h)
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, c.want) {
			t.Errorf("%s=%q: %d, message %q missing", c.field, c.value, code, c.want)
		}
		if !strings.Contains(body, `class="field-error"`) {
			t.Errorf("%s=%q: no field message", c.field, c.value)
		}
	}
	if len(f.Calls()) != 0 {
		t.Errorf("invalid forms were saved: %v", f.Calls())
	}
	code, _, _ := post(t, noRedirect, u+"/cards/"+aliceUID, good, h)
	if code != http.StatusSeeOther {
		t.Fatalf("valid form: %d", code)
	}
	c := f.Cards()[0]
	if c.Name != "Alice" || c.Action != "unlock" || c.ValidUntil != "2026-12-31" || len(c.Weekdays) != 2 ||
		c.Weekdays[0] != time.Monday || c.From != "08:00" || c.To != "18:30" || len(c.Doors) != 1 || c.UpdatedBy != "Bob (HA user)" {
		t.Errorf("saved %+v", c)
	}
	// Managed cards: no buttons on the list, and a POST is refused.
	_, list := get(t, noRedirect, u+"/cards", h)
	if strings.Contains(list, "/cards/"+managedUID) {
		t.Error("the managed card has edit or remove buttons")
	}
	good.Set("name", "Hacked")
	if code, _, _ := post(t, noRedirect, u+"/cards/"+managedUID, good, h); code != http.StatusForbidden {
		t.Errorf("saving a managed card: %d, want 403", code)
	}
	if code, body, _ := post(t, noRedirect, u+"/cards/"+managedUID+"/remove", url.Values{"csrf": {tok}}, h); code != http.StatusConflict || !strings.Contains(body, "managed") {
		t.Errorf("removing a managed card: %d", code)
	}
}

func TestLogFilterAndCSV(t *testing.T) {
	f := newFake()
	day := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	f.AddLog(web.LogEntry{Time: day, Door: "Front door", Holder: "Alice", Card: "aaaaaaaaaaaa", Result: "granted", Outcome: "success"})
	f.AddLog(web.LogEntry{Time: day.Add(24 * time.Hour), Door: "Back door", Holder: "Alice", Card: "aaaaaaaaaaaa", Result: "denied", Reason: "outside_hours"})
	f.AddLog(web.LogEntry{Time: day.Add(48 * time.Hour), Door: "Front door", Card: "bbbbbbbbbbbb", Result: "denied", Reason: "unknown"})
	u := serve(t, web.Options{Access: f, Ingress: true, Supervisor: "127.0.0.1", Location: time.UTC})
	h := ingressHeaders("Bob")
	count := func(body string) int { return strings.Count(body, `<tr class="result-`) }
	for q, want := range map[string]int{
		"": 3, "person=Alice": 2, "door=Back+door": 1, "result=denied": 2,
		"from=2026-03-11": 2, "to=2026-03-10": 1, "from=2026-03-11&to=2026-03-11": 1,
	} {
		_, body := get(t, noRedirect, u+"/log?"+q, h)
		if n := count(body); n != want {
			t.Errorf("log?%s: %d rows, want %d", q, n, want)
		}
	}
	_, body := get(t, noRedirect, u+"/log?result=denied", h)
	if !strings.Contains(body, "outside its hours") {
		t.Error("the reason is not shown")
	}
	if code, body := get(t, noRedirect, u+"/log?from=yesterday", h); code != http.StatusUnprocessableEntity || !strings.Contains(body, "A date like") {
		t.Errorf("bad date: %d", code)
	}
	code, csv := get(t, noRedirect, u+"/log.csv?person=Alice", h)
	if code != http.StatusOK || strings.Count(csv, "\n") != 3 || !strings.HasPrefix(csv, "time,door,holder") {
		t.Errorf("CSV: %d %q", code, csv)
	}
}

// The enrollment's steps arrive over the event stream; the tapped card
// appears in the list.
func TestEnrollOverEvents(t *testing.T) {
	f := newFake()
	u := serve(t, web.Options{Access: f, Ingress: true, Supervisor: "127.0.0.1"})
	h := ingressHeaders("Bob")
	h["Sec-Fetch-Site"] = "same-origin"
	_, body := get(t, noRedirect, u+"/cards", h)
	tok := csrfOf(t, body)
	code, body, _ := post(t, noRedirect, u+"/enroll", url.Values{"csrf": {tok}, "name": {""}}, h)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "Give the card holder") {
		t.Errorf("enroll without a name: %d", code)
	}
	code, _, hdr := post(t, noRedirect, u+"/enroll", url.Values{"csrf": {tok}, "name": {"Dana"}}, h)
	if code != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), ingressP+"/enroll?n=") {
		t.Fatalf("enroll: %d %q", code, hdr.Get("Location"))
	}
	if code, body, _ := post(t, noRedirect, u+"/enroll", url.Values{"csrf": {tok}, "name": {"Eve"}}, h); code != http.StatusConflict || !strings.Contains(body, "already running") {
		t.Errorf("a second enrollment: %d", code)
	}
	n := strings.TrimPrefix(hdr.Get("Location"), ingressP+"/enroll?n=")
	req, _ := http.NewRequest(http.MethodGet, u+"/enroll/events?n="+n, nil)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var lines []string
	tapped := false
	for sc.Scan() {
		l := sc.Text()
		lines = append(lines, l)
		if strings.Contains(l, `"Kind":"waiting"`) && !tapped {
			tapped = true
			f.Tap("04C0FFEE112233")
		}
		if l == "event: end" {
			break
		}
	}
	all := strings.Join(lines, "\n")
	if !strings.Contains(all, `"Kind":"enrolled"`) || !strings.Contains(all, `"UID":"04C0FFEE112233"`) {
		t.Fatalf("stream:\n%s", all)
	}
	_, list := get(t, noRedirect, u+"/cards", h)
	if !strings.Contains(list, "Dana") || !strings.Contains(list, web.MaskUID("04C0FFEE112233")) {
		t.Error("the enrolled card is not on the list")
	}
}

// Serve ends open event streams and waits for its goroutines when its
// context ends.
func TestServeStopsStreams(t *testing.T) {
	f := newFake()
	s, err := web.New(web.Options{Access: f, Ingress: true, Supervisor: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	req, _ := http.NewRequest(http.MethodGet, "http://"+l.Addr().String()+"/events", nil)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || sc.Text() != "event: hello" {
		t.Fatalf("first line %q", sc.Text())
	}
	if f.Subscribers() != 1 {
		t.Fatalf("subscribers %d", f.Subscribers())
	}
	f.Tap(aliceUID)
	for sc.Scan() && sc.Text() != "event: change" {
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	for sc.Scan() {
	}
	if f.Subscribers() != 0 {
		t.Errorf("a stream's subscription outlived Serve")
	}
}

// Names are text, never markup, on every page (the cards list's rows are
// written without html/template: see rows.go).
func TestHostileNamesEscaped(t *testing.T) {
	f := newFake()
	const evil = `"><script>alert(1)</script><img src=x onerror=alert(2)>&amp;'`
	f.Add(web.Card{UID: "04AABBCCDDEE02", Name: evil, Action: "toggle", Enabled: true})
	f.Tap("04AABBCCDDEE02")
	u := serve(t, web.Options{Access: f, Ingress: true, Supervisor: "127.0.0.1"})
	for _, p := range []string{"/cards", "/cards/04AABBCCDDEE02", "/log"} {
		_, body := get(t, noRedirect, u+p, ingressHeaders("Bob"))
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") || strings.Contains(body, `"><script`) {
			t.Errorf("GET %s: the name is markup:\n%s", p, body)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("GET %s: the escaped name is missing", p)
		}
	}
}
