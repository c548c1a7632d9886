package web_test

// The page in a real headless Chromium (Debian's chromium package), driven
// with chromedp: logging in, arriving through an ingress prefix, enrolling
// a card by a (simulated) tap and watching it appear, the tap that opens the
// door, hours that exclude now and the denial with its reason, removing the
// card, the access log. Screenshots of each page go to
// artifacts/screenshots/ (S2M_SCREENSHOTS moves them).

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/web"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/web/webtest"
)

// ChromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// browser starts a headless Chromium for the test, or skips the test when
// there is none (and CI is not set: then it fails).
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath
	if p := os.Getenv("S2M_CHROMIUM"); p != "" {
		path = p
	}
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium not found at %s (apt-get install -y chromium)", path)
		}
		t.Skipf("chromium not found at %s: apt-get install -y chromium", path)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(412, 915), // a phone
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// Accept the "Remove …?" confirmation; the loop ends with ctx.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return ctx
}

// screenshotDir is where the pages' screenshots go (a CI artifact).
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("S2M_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func shot(t *testing.T, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		buf, err := chromedp.FullScreenshot(100)(ctx, tg) // 100: PNG
		if err != nil {
			return fmt.Errorf("screenshot %s: %w", name, err)
		}
		return os.WriteFile(filepath.Join(screenshotDir(t), name+".png"), buf, 0o644)
	})
}

// step runs browser actions, failing the test with the page on an error.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
		t.Fatalf("%s: %v\npage:\n%s", what, err, body)
	}
}

// text reads an element's text.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// ingressProxy plays the Supervisor: it serves the page under
// /api/hassio_ingress/<token>/ and adds the headers HA's ingress adds.
func ingressProxy(t *testing.T, backend, prefix, user string) string {
	t.Helper()
	target, _ := url.Parse(backend)
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.URL.Path = strings.TrimPrefix(r.In.URL.Path, prefix)
			if r.Out.URL.Path == "" {
				r.Out.URL.Path = "/"
			}
			r.Out.URL.RawPath = ""
			r.Out.Header.Set("X-Ingress-Path", prefix)
			r.Out.Header.Set("X-Remote-User-Id", "0123abcd")
			r.Out.Header.Set("X-Remote-User-Name", strings.ToLower(user))
			r.Out.Header.Set("X-Remote-User-Display-Name", user)
			r.Out.Host = r.In.Host // what HA's proxy keeps: the browser's origin
		},
		FlushInterval: -1, // event streams pass at once
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

func TestBrowserStandaloneLogin(t *testing.T) {
	ctx := browser(t)
	f := newFake()
	u := serve(t, web.Options{Access: f, Password: "correct horse", LoginDelay: 10 * time.Millisecond})
	step(t, ctx, "wrong password",
		chromedp.Navigate(u+"/cards"),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), "wrong horse"),
		chromedp.Submit(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(".field-error")),
		shot(t, "login"),
	)
	if msg := text(t, ctx, ".field-error"); msg != "Wrong password." {
		t.Errorf("message %q", msg)
	}
	step(t, ctx, "log in",
		chromedp.SendKeys(chromedp.ID("password"), "correct horse"),
		chromedp.Submit(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("cards")),
	)
	if names := text(t, ctx, "#cards tbody"); !strings.Contains(names, "Alice") || !strings.Contains(names, "Managed Max") {
		t.Errorf("cards after login: %q", names)
	}
	cookie, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.cookie.includes("s2m_session")`))
	if err != nil {
		t.Fatal(err)
	}
	if cookie {
		t.Error("the session cookie is readable from JavaScript (not HttpOnly)")
	}
}

func TestBrowserIngressWalkthrough(t *testing.T) {
	ctx := browser(t)
	f := newFake()
	backend := serve(t, web.Options{Access: f, Ingress: true, Supervisor: "127.0.0.1", Location: time.Local})
	const prefix = "/api/hassio_ingress/k3yT0ken-xyz"
	base := ingressProxy(t, backend, prefix, "Alice Admin") + prefix

	// The cards list, through the ingress prefix.
	step(t, ctx, "cards through ingress",
		chromedp.Navigate(base+"/cards"),
		chromedp.WaitVisible(chromedp.ID("cards")),
		chromedp.WaitReady(chromedp.CSS(`body[data-live="on"]`)), // the event stream is open
	)
	if who := text(t, ctx, ".who"); !strings.Contains(who, "Alice Admin") {
		t.Errorf("header %q does not name the HA user", who)
	}

	// Enroll: the page waits, the card is tapped, the page shows it.
	const newUID = "04C0FFEE112233"
	step(t, ctx, "start enrolling",
		chromedp.SendKeys(chromedp.ID("enroll-name"), "Dana"),
		chromedp.Click(chromedp.ID("enroll-start")),
		chromedp.WaitVisible(chromedp.CSS("#enroll-steps li.ev-waiting")),
	)
	waitFor(t, "the enrollment", f.Enrolling)
	f.Tap(newUID) // the simulated tap
	step(t, ctx, "enrolled",
		chromedp.WaitVisible(chromedp.CSS(`#enroll-result[data-kind="enrolled"]`)),
		shot(t, "enroll"),
	)
	if result := text(t, ctx, "#enroll-result"); !strings.Contains(result, "Dana") || !strings.Contains(result, newUID) {
		t.Errorf("enroll result %q", result)
	}
	step(t, ctx, "the card on the list",
		chromedp.Click(chromedp.ID("back-to-cards")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="Dana"]`)),
		chromedp.WaitReady(chromedp.CSS(`body[data-live="on"]`)),
		shot(t, "cards"),
	)
	if rows := text(t, ctx, "#cards tbody"); !strings.Contains(rows, web.MaskUID(newUID)) || strings.Contains(rows, newUID) {
		t.Errorf("the list shows %q", rows)
	}

	// A change elsewhere (HA's entities, another page): the page reloads
	// its table by itself.
	f.Add(web.Card{UID: "04AABBCCDDEE01", Name: "Erin", Enabled: true})
	step(t, ctx, "the list updates live", chromedp.WaitVisible(chromedp.CSS(`tr[data-name="Erin"]`)))

	// Dana's tap opens the door.
	if e := f.Tap(newUID); e.Result != "granted" {
		t.Fatalf("Dana's tap: %+v", e)
	}
	step(t, ctx, "status",
		chromedp.Navigate(base+"/status"),
		chromedp.WaitVisible(chromedp.ID("doors")),
		shot(t, "status"),
	)
	if state := text(t, ctx, "#doors tbody tr:first-child td:last-child"); state != "UNLOCKED" {
		t.Errorf("front door %q after the granted tap", state)
	}

	// Hours that exclude now: the next tap is denied, with the reason.
	now := time.Now()
	from, to := now.Add(2*time.Hour).Format("15:04"), now.Add(3*time.Hour).Format("15:04")
	step(t, ctx, "edit: an invalid window first",
		chromedp.Navigate(base+"/cards/"+newUID),
		chromedp.WaitVisible(chromedp.ID("edit-form")),
		chromedp.SetValue(chromedp.ID("from"), from),
		chromedp.SetValue(chromedp.ID("to"), ""),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.CSS(".field-error")),
		shot(t, "edit-invalid"),
	)
	if msg := text(t, ctx, ".field-error"); !strings.Contains(msg, "Give both times") {
		t.Errorf("validation message %q", msg)
	}
	step(t, ctx, "edit: hours that exclude now",
		chromedp.SetValue(chromedp.ID("from"), from),
		chromedp.SetValue(chromedp.ID("to"), to),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if e := f.Tap(newUID); e.Result != "denied" || e.Reason != "outside_hours" {
		t.Fatalf("tap outside the hours: %+v", e)
	}
	f.Tap("04DEADBEEF0042") // a stranger
	step(t, ctx, "Dana's log",
		chromedp.Navigate(base+"/log?person=Dana"),
		chromedp.WaitVisible(chromedp.ID("log")),
		shot(t, "log-filtered"),
	)
	if logText := text(t, ctx, "#log tbody"); !strings.Contains(logText, "outside its hours") || !strings.Contains(logText, "granted") || !strings.Contains(logText, "enrolled") {
		t.Errorf("Dana's log: %q", logText)
	}
	step(t, ctx, "the whole log",
		chromedp.Navigate(base+"/log"),
		chromedp.WaitVisible(chromedp.ID("log")),
		shot(t, "log"),
	)
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "04DEADBEEF0042") || !strings.Contains(html, webtest.Hash("04DEADBEEF0042")) {
		t.Error("the stranger is not shown by the hash alone")
	}

	// Remove the card (the confirmation is accepted).
	step(t, ctx, "remove",
		chromedp.Navigate(base+"/cards"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="Dana"]`)),
		chromedp.Click(chromedp.CSS(`tr[data-name="Dana"] button.danger`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
		chromedp.WaitNotPresent(chromedp.CSS(`tr[data-name="Dana"]`)),
		shot(t, "cards-after-remove"),
	)
	if got := f.LastCall(); got != "remove Dana by Alice Admin (HA user)" {
		t.Errorf("last change %q", got)
	}
	if e := f.Tap(newUID); e.Result != "denied" || e.Reason != "unknown" {
		t.Errorf("a removed card's tap: %+v", e)
	}
}

// waitFor polls cond (set by the page's request) for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not happen within 10 s", what)
}
