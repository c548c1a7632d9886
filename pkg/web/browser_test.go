package web_test

// The page in a real headless Chromium (Debian's chromium package), driven
// with chromedp: logging in, arriving through an ingress prefix, enrolling
// a card by a (simulated) tap and watching it appear, the tap that opens the
// door, hours that exclude now and the denial with its reason, removing the
// card, the access log. Screenshots of each page go to
// artifacts/screenshots/ (S2M_SCREENSHOTS moves them).

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/web"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/web/webtest"
)

func TestBrowserStandaloneLogin(t *testing.T) {
	ctx := webtest.Browser(t)
	f := newFake()
	u := serve(t, web.Options{Access: f, Password: "correct horse", LoginDelay: 10 * time.Millisecond})
	webtest.Step(t, ctx, "wrong password",
		chromedp.Navigate(u+"/cards"),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), "wrong horse"),
		chromedp.Submit(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(".field-error")),
		webtest.Shot(t, "login"),
	)
	if msg := webtest.Text(t, ctx, ".field-error"); msg != "Wrong password." {
		t.Errorf("message %q", msg)
	}
	webtest.Step(t, ctx, "log in",
		chromedp.SendKeys(chromedp.ID("password"), "correct horse"),
		chromedp.Submit(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("cards")),
	)
	if names := webtest.Text(t, ctx, "#cards tbody"); !strings.Contains(names, "Alice") || !strings.Contains(names, "Managed Max") {
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
	ctx := webtest.Browser(t)
	f := newFake()
	backend := serve(t, web.Options{Access: f, Ingress: true, Supervisor: "127.0.0.1", Location: time.Local})
	const prefix = "/api/hassio_ingress/k3yT0ken-xyz"
	base := webtest.IngressProxy(t, backend, prefix, "0123abcd", "Alice Admin") + prefix

	// The cards list, through the ingress prefix.
	webtest.Step(t, ctx, "cards through ingress",
		chromedp.Navigate(base+"/cards"),
		chromedp.WaitVisible(chromedp.ID("cards")),
		chromedp.WaitReady(chromedp.CSS(`body[data-live="on"]`)), // the event stream is open
	)
	if who := webtest.Text(t, ctx, ".who"); !strings.Contains(who, "Alice Admin") {
		t.Errorf("header %q does not name the HA user", who)
	}

	// Enroll: the page waits, the card is tapped, the page shows it.
	const newUID = "04C0FFEE112233"
	webtest.Step(t, ctx, "start enrolling",
		chromedp.SendKeys(chromedp.ID("enroll-name"), "Dana"),
		chromedp.Click(chromedp.ID("enroll-start")),
		chromedp.WaitVisible(chromedp.CSS("#enroll-steps li.ev-waiting")),
	)
	waitFor(t, "the enrollment", f.Enrolling)
	f.Tap(newUID) // the simulated tap
	webtest.Step(t, ctx, "enrolled",
		chromedp.WaitVisible(chromedp.CSS(`#enroll-result[data-kind="enrolled"]`)),
		webtest.Shot(t, "enroll"),
	)
	if result := webtest.Text(t, ctx, "#enroll-result"); !strings.Contains(result, "Dana") || !strings.Contains(result, newUID) {
		t.Errorf("enroll result %q", result)
	}
	webtest.Step(t, ctx, "the card on the list",
		chromedp.Click(chromedp.ID("back-to-cards")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="Dana"]`)),
		chromedp.WaitReady(chromedp.CSS(`body[data-live="on"]`)),
		webtest.Shot(t, "cards"),
	)
	if rows := webtest.Text(t, ctx, "#cards tbody"); !strings.Contains(rows, web.MaskUID(newUID)) || strings.Contains(rows, newUID) {
		t.Errorf("the list shows %q", rows)
	}

	// A change elsewhere (HA's entities, another page): the page reloads
	// its table by itself.
	f.Add(web.Card{UID: "04AABBCCDDEE01", Name: "Erin", Enabled: true})
	webtest.Step(t, ctx, "the list updates live", chromedp.WaitVisible(chromedp.CSS(`tr[data-name="Erin"]`)))

	// Dana's tap opens the door.
	if e := f.Tap(newUID); e.Result != "granted" {
		t.Fatalf("Dana's tap: %+v", e)
	}
	webtest.Step(t, ctx, "status",
		chromedp.Navigate(base+"/status"),
		chromedp.WaitVisible(chromedp.ID("doors")),
		webtest.Shot(t, "status"),
	)
	if state := webtest.Text(t, ctx, "#doors tbody tr:first-child td:last-child"); state != "UNLOCKED" {
		t.Errorf("front door %q after the granted tap", state)
	}

	// Hours that exclude now: the next tap is denied, with the reason.
	now := time.Now()
	from, to := now.Add(2*time.Hour).Format("15:04"), now.Add(3*time.Hour).Format("15:04")
	webtest.Step(t, ctx, "edit: an invalid window first",
		chromedp.Navigate(base+"/cards/"+newUID),
		chromedp.WaitVisible(chromedp.ID("edit-form")),
		chromedp.SetValue(chromedp.ID("from"), from),
		chromedp.SetValue(chromedp.ID("to"), ""),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.CSS(".field-error")),
		webtest.Shot(t, "edit-invalid"),
	)
	if msg := webtest.Text(t, ctx, ".field-error"); !strings.Contains(msg, "Give both times") {
		t.Errorf("validation message %q", msg)
	}
	webtest.Step(t, ctx, "edit: hours that exclude now",
		chromedp.SetValue(chromedp.ID("from"), from),
		chromedp.SetValue(chromedp.ID("to"), to),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if e := f.Tap(newUID); e.Result != "denied" || e.Reason != "outside_hours" {
		t.Fatalf("tap outside the hours: %+v", e)
	}
	f.Tap("04DEADBEEF0042") // a stranger
	webtest.Step(t, ctx, "Dana's log",
		chromedp.Navigate(base+"/log?person=Dana"),
		chromedp.WaitVisible(chromedp.ID("log")),
		webtest.Shot(t, "log-filtered"),
	)
	if logText := webtest.Text(t, ctx, "#log tbody"); !strings.Contains(logText, "outside its hours") || !strings.Contains(logText, "granted") || !strings.Contains(logText, "enrolled") {
		t.Errorf("Dana's log: %q", logText)
	}
	webtest.Step(t, ctx, "the whole log",
		chromedp.Navigate(base+"/log"),
		chromedp.WaitVisible(chromedp.ID("log")),
		webtest.Shot(t, "log"),
	)
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "04DEADBEEF0042") || !strings.Contains(html, webtest.Hash("04DEADBEEF0042")) {
		t.Error("the stranger is not shown by the hash alone")
	}

	// Remove the card (the confirmation is accepted).
	webtest.Step(t, ctx, "remove",
		chromedp.Navigate(base+"/cards"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="Dana"]`)),
		chromedp.Click(chromedp.CSS(`tr[data-name="Dana"] button.danger`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
		chromedp.WaitNotPresent(chromedp.CSS(`tr[data-name="Dana"]`)),
		webtest.Shot(t, "cards-after-remove"),
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
