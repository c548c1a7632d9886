package main

// The access page end to end: the real binary with the simulated PN532
// (through libnfc), a real Mosquitto and the Sesame fake, its ingress
// listener behind a test proxy that plays the Supervisor (127.0.0.1 is
// configured as its address), in a real headless Chromium.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim/pn532simtest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/web/webtest"
)

// waitHTTP waits up to 10 s for addr to answer.
func waitHTTP(t testing.TB, u string) {
	t.Helper()
	c := &http.Client{Timeout: time.Second}
	for range 100 {
		if resp, err := c.Get(u); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within 10 s", u)
}

// tapSeen holds the card on the reader until the bridge has published the
// tap's event (bounded by 10 s), then takes it away: no tap is missed on a
// slow machine.
func tapSeen(t *testing.T, sim *pn532sim.Sim, rec *mosquittotest.Recorder, c pn532sim.Card) {
	t.Helper()
	since := time.Now()
	sim.Put(c)
	rec.WaitForAfter(t, since, "sesame2mqtt/reader/event", nil, 10*time.Second)
	sim.Remove()
}

func TestAccessPageEndToEnd(t *testing.T) {
	needLibnfc(t)
	ctx := webtest.Browser(t)
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	sim := pn532simtest.Start(t, "")
	rec := broker.Subscribe(t, "sesame2mqtt/#")
	ingress := freePort(t)
	p := startProc(t, readerEnv(t, broker, fake, sim,
		"INGRESS_LISTEN="+ingress, "INGRESS_SUPERVISOR=127.0.0.1", "NFC_HOLD_OFF=0s", "TZ=UTC"))
	rec.WaitFor(t, "sesame2mqtt/reader/status", func(s string) bool { return strings.Contains(s, `"status":"connected"`) }, 10*time.Second)
	rec.WaitFor(t, "sesame2mqtt/"+lockID+"/state", is("LOCKED"), 10*time.Second)
	waitHTTP(t, "http://"+ingress+"/static/app.css")

	const prefix = "/api/hassio_ingress/e2eT0ken"
	base := webtest.IngressProxy(t, "http://"+ingress, prefix, "u-42", "Alice Admin") + prefix
	dana := []byte{0x04, 0xc0, 0xff, 0xee, 0x11, 0x22, 0x33}
	const danaUID = "04C0FFEE112233"

	// Enroll Dana's card: the page waits, the card is tapped on the
	// simulated reader, the page shows it.
	webtest.Step(t, ctx, "start enrolling",
		chromedp.Navigate(base+"/cards"),
		chromedp.WaitVisible(chromedp.ID("cards")),
		chromedp.SendKeys(chromedp.ID("enroll-name"), "Dana"),
		chromedp.Click(chromedp.ID("enroll-start")),
		chromedp.WaitVisible(chromedp.CSS("#enroll-steps li.ev-waiting")),
	)
	tapSeen(t, sim, rec, pn532sim.ISO14443A(dana))
	webtest.Step(t, ctx, "enrolled",
		chromedp.WaitVisible(chromedp.CSS(`#enroll-result[data-kind="enrolled"]`)),
		webtest.Shot(t, "e2e-enroll"),
	)
	if r := webtest.Text(t, ctx, "#enroll-result"); !strings.Contains(r, "Dana") || !strings.Contains(r, danaUID) {
		t.Errorf("enroll result %q", r)
	}
	webtest.Step(t, ctx, "Dana on the list",
		chromedp.Click(chromedp.ID("back-to-cards")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="Dana"]`)),
		webtest.Shot(t, "e2e-cards"),
	)
	if posts := countPOSTs(fake); posts != 0 {
		t.Fatalf("the enrolling tap sent %d commands", posts)
	}

	// Dana's tap opens the door: the Sesame fake's lock unlocks, and the
	// status page shows it.
	since := time.Now()
	tapSeen(t, sim, rec, pn532sim.ISO14443A(dana))
	rec.WaitForAfter(t, since, "sesame2mqtt/"+lockID+"/state", is("UNLOCKED"), 15*time.Second)
	webtest.Step(t, ctx, "status",
		chromedp.Navigate(base+"/status"),
		chromedp.WaitVisible(chromedp.CSS("td.state-UNLOCKED")),
		webtest.Shot(t, "e2e-status"),
	)
	if st := fake.State(lockUUID); st != sesame.StateUnlocked {
		t.Errorf("the fake's lock is %v after Dana's tap", st)
	}

	// Hours that exclude now: the next tap is denied, with the reason.
	now := time.Now().UTC()
	from, to := now.Add(2*time.Hour).Format("15:04"), now.Add(3*time.Hour).Format("15:04")
	webtest.Step(t, ctx, "hours that exclude now",
		chromedp.Navigate(base+"/cards/"+danaUID),
		chromedp.WaitVisible(chromedp.ID("edit-form")),
		chromedp.SetValue(chromedp.ID("from"), from),
		chromedp.SetValue(chromedp.ID("to"), to),
		webtest.Shot(t, "e2e-edit"),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	posts := countPOSTs(fake)
	since = time.Now()
	tapSeen(t, sim, rec, pn532sim.ISO14443A(dana))
	rec.WaitForAfter(t, since, "sesame2mqtt/reader/event", func(s string) bool { return strings.Contains(s, "access_denied") }, 5*time.Second)
	webtest.Step(t, ctx, "the denial in the log",
		chromedp.Navigate(base+"/log?person=Dana&result=denied"),
		chromedp.WaitVisible(chromedp.ID("log")),
		webtest.Shot(t, "e2e-log-denied"),
	)
	if l := webtest.Text(t, ctx, "#log tbody"); !strings.Contains(l, "outside its hours") {
		t.Errorf("the log shows %q, want the denial outside the hours", l)
	}
	if n := countPOSTs(fake); n != posts {
		t.Errorf("the denied tap sent a command")
	}

	// Remove the card; an unknown card's tap; the whole log.
	webtest.Step(t, ctx, "remove",
		chromedp.Navigate(base+"/cards"),
		chromedp.Click(chromedp.CSS(`tr[data-name="Dana"] button.danger`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
		chromedp.WaitNotPresent(chromedp.CSS(`tr[data-name="Dana"]`)),
	)
	since = time.Now()
	tapSeen(t, sim, rec, pn532sim.ISO14443A(dana))
	rec.WaitForAfter(t, since, "sesame2mqtt/reader/event", func(s string) bool { return strings.Contains(s, "access_denied") }, 5*time.Second)
	webtest.Step(t, ctx, "the log",
		chromedp.Navigate(base+"/log"),
		chromedp.WaitVisible(chromedp.ID("log")),
		webtest.Shot(t, "e2e-log"),
	)
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, danaUID) {
		t.Error("the log page shows the removed (now unknown) card's UID")
	}
	for _, want := range []string{"enrolled", "granted", "outside its hours", "unknown card"} {
		if !strings.Contains(html, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	// The ingress port refuses any other address than the Supervisor's:
	// here a request from 127.0.0.2.
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	other := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	resp, err := other.Get("http://" + ingress + "/cards")
	if err != nil {
		t.Fatalf("GET from 127.0.0.2: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET from 127.0.0.2: %d, want 403", resp.StatusCode)
	}
	p.terminate(t, 5*time.Second)
	if logs := p.stderr.String(); strings.Contains(strings.ToUpper(logs), danaUID) {
		t.Error("the log shows Dana's raw UID")
	}
}

func countPOSTs(fake *sesametest.Server) int {
	n := 0
	for _, r := range fake.Requests() {
		if r.Method == http.MethodPost {
			n++
		}
	}
	return n
}

// BenchmarkPageRSS: the bridge's resident memory with the page in use: 1,000
// cards, the cards list, the log and the status loaded 20 times each, and
// four open event streams (the bound: 25 MiB).
func BenchmarkPageRSS(b *testing.B) {
	b.Run("1-card-idle", func(b *testing.B) { pageRSS(b, 1, 0) })
	b.Run("1000-cards-idle", func(b *testing.B) { pageRSS(b, 1000, 0) })
	b.Run("1000-cards-in-use", func(b *testing.B) { pageRSS(b, 1000, 20) })
}

func pageRSS(b *testing.B, n, loads int) {
	needLibnfc(b)
	broker := mosquittotest.Start(b)
	fake := newFake(b)
	sim := pn532simtest.Start(b, "")
	rec := broker.Subscribe(b, "sesame2mqtt/#")
	cards := make([]string, n)
	for i := range cards {
		cards[i] = fmt.Sprintf("04%012X:Holder %04d", i, i)
	}
	ingress := freePort(b)
	env := append(bridgeEnv(b, broker, fake), "NFC_DEVICE="+sim.Connstring(), "NFC_CARDS="+strings.Join(cards, ","),
		"INGRESS_LISTEN="+ingress, "INGRESS_SUPERVISOR=127.0.0.1")
	var worst float64
	for range b.N {
		p := startProc(b, env)
		rec.WaitForAfter(b, time.Now().Add(-time.Second), "sesame2mqtt/"+lockID+"/state", nil, 10*time.Second)
		waitHTTP(b, "http://"+ingress+"/static/app.css")
		c := &http.Client{Timeout: 10 * time.Second}
		get := func(path string) *http.Response {
			req, _ := http.NewRequest(http.MethodGet, "http://"+ingress+path, nil)
			req.Header.Set("X-Ingress-Path", "/api/hassio_ingress/bench")
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			return resp
		}
		var streams []*http.Response
		for range min(loads, 4) {
			streams = append(streams, get("/events"))
		}
		for range loads {
			for _, path := range []string{"/cards", "/log", "/status"} {
				resp := get(path)
				size, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || (path == "/cards" && n > 100 && size < 300_000) {
					b.Fatalf("GET %s: %d, %d bytes", path, resp.StatusCode, size)
				}
			}
		}
		tap(sim, pn532sim.ISO14443A([]byte{0x04, 0, 0, 0, 0, 0, 7})) // a listed card: the streams signal
		rss, err := vmRSS(p.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		worst = max(worst, rss)
		for _, s := range streams {
			s.Body.Close()
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.waited
		p.waited <- nil
	}
	b.ReportMetric(worst, "RSS-MiB")
	b.ReportMetric(0, "ns/op")
}

// A page on the network without a password is a configuration error: exit
// status 2, before anything listens or connects.
func TestWebWithoutPasswordRefused(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	port := freePort(t)
	_, p, _ := net.SplitHostPort(port)
	proc := startProc(t, append(bridgeEnv(t, broker, fake), "WEB_LISTEN=0.0.0.0:"+p))
	proc.waitExit(t, 2, 10*time.Second)
	if out := proc.stderr.String(); !strings.Contains(out, "configuration: WEB_LISTEN: \"0.0.0.0:"+p+"\" is not a loopback address, so the page needs WEB_PASSWORD") {
		t.Errorf("stderr:\n%s", out)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("%d requests to the Sesame cloud", n)
	}
}

// The standalone page: a wrong password refused after the delay, the right
// one let in; the password never in the log.
func TestStandalonePage(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	rec := broker.Subscribe(t, "sesame2mqtt/#")
	addr := freePort(t)
	const pw = "s3cret-door-pass"
	proc := startProc(t, append(bridgeEnv(t, broker, fake), "WEB_LISTEN="+addr, "WEB_PASSWORD="+pw))
	rec.WaitFor(t, "sesame2mqtt/"+lockID+"/state", is("LOCKED"), 10*time.Second)
	waitHTTP(t, "http://"+addr+"/static/app.css")
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm("http://"+addr+"/login", map[string][]string{"password": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", resp.StatusCode)
	}
	resp, err = c.PostForm("http://"+addr+"/login", map[string][]string{"password": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 || !resp.Cookies()[0].HttpOnly {
		t.Errorf("right password: %d %v", resp.StatusCode, resp.Cookies())
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/status", nil)
	req.AddCookie(resp.Cookies()[0])
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Without a card reader the bridge has no Access service: the page
	// says so and lists nothing.
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `<strong id="reader">none</strong>`) {
		t.Errorf("status page: %d\n%s", resp.StatusCode, body)
	}
	proc.terminate(t, 5*time.Second)
	if strings.Contains(proc.stderr.String(), pw) {
		t.Error("the log shows WEB_PASSWORD")
	}
}
