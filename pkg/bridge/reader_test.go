package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/access"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/indicator"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/indicator/indicatortest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
	"periph.io/x/conn/v3/gpio"
)

var (
	aliceCard = nfc.Card{Kind: nfc.ISO14443A, UID: []byte{0x04, 0xa2, 0x2b, 0x1c, 0xd3, 0x5e, 0x80}}
	suica     = nfc.Card{Kind: nfc.FeliCa, UID: []byte{0x01, 0x2e, 0x4c, 0xd8, 0xa1, 0xb2, 0xc3, 0xd4}}
	stranger  = nfc.Card{Kind: nfc.ISO14443A, UID: []byte{0x04, 0x11, 0x22, 0x33}}
	phone     = nfc.Card{Kind: nfc.ISO14443A, UID: []byte{0x08, 0x9a, 0x01, 0x7f}}
)

// feedback records what the LEDs were asked to show.
type feedback struct {
	mu    sync.Mutex
	calls []string
}

func (f *feedback) Show(p string) { f.mu.Lock(); f.calls = append(f.calls, p); f.mu.Unlock() }
func (f *feedback) Set(c string, on bool) {
	f.mu.Lock()
	if on {
		f.calls = append(f.calls, "+"+c)
	} else {
		f.calls = append(f.calls, "-"+c)
	}
	f.mu.Unlock()
}
func (f *feedback) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

type readerSetup struct {
	action  CardAction
	allTags bool
}

// withReader gives the harness a reader with Alice and Chika's Suica (and,
// by mistake, a phone) on the allowlist, and LED feedback.
func withReader(rs readerSetup, fb *feedback) func(*Options) {
	return func(o *Options) {
		o.Reader = &Reader{
			Policy: access.New([]access.Card{
				{UID: aliceCard.UID, Name: "Alice"}, {UID: suica.UID, Name: "Chika"}, {UID: phone.UID, Name: "Phone"},
			}),
			Action:  rs.action,
			LockID:  testLock.ID,
			AllTags: rs.allTags,
			Hash:    access.NewHasher([]byte("test key")).Hash,
		}
		o.Feedback = fb
		o.FeedbackNames = []string{"ok", "ko"}
	}
}

func (h *harness) events(t *testing.T) []hass.AccessEvent {
	t.Helper()
	var out []hass.AccessEvent
	for _, m := range h.pub.on(h.topics.ReaderEvent()) {
		if m.Retained {
			t.Errorf("event retained: %s", m.Payload)
		}
		var e hass.AccessEvent
		if err := json.Unmarshal([]byte(m.Payload), &e); err != nil {
			t.Fatalf("event %q: %v", m.Payload, err)
		}
		out = append(out, e)
	}
	return out
}

func (h *harness) noRawUIDInLogs(t *testing.T, cards ...nfc.Card) {
	t.Helper()
	logs := strings.ToUpper(h.logs.String())
	for _, c := range cards {
		if strings.Contains(logs, c.HexUID()) {
			t.Errorf("log shows the raw UID %s", c.HexUID())
		}
	}
}

func TestTapKnownCardActsOnConfirmedState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := &feedback{}
		h := start(t, newCloud(sesame.StateLocked), nil, true, withReader(readerSetup{action: CardToggle, allTags: true}, fb))
		synctest.Wait() // the initial read confirms LOCKED
		readsBefore := len(h.cloud.readTimes())
		t0 := time.Now()
		h.b.Tap(aliceCard, t0)
		synctest.Wait()

		sent := h.cloud.sent()
		if len(sent) != 1 || sent[0].Cmd != sesame.CmdUnlock || sent[0].Tag != "Alice" || !sent[0].At.Equal(t0) {
			t.Fatalf("sent %+v, want one unlock tagged Alice at once", sent)
		}
		if n := len(h.cloud.readTimes()); n != readsBefore {
			t.Errorf("%d status reads before the command; a confirmed state needs none", n-readsBefore)
		}
		tags := h.pub.on(h.topics.ReaderTag())
		if len(tags) != 1 || tags[0].Payload != "04A22B1CD35E80" || tags[0].Retained {
			t.Errorf("tag scans = %+v, want one non-retained 04A22B1CD35E80", tags)
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		ev := h.events(t)
		if len(ev) != 2 {
			t.Fatalf("events = %+v, want granted then succeeded", ev)
		}
		if e := ev[0]; e.EventType != hass.EventAccessGranted || e.Holder != "Alice" || e.Action != "toggle" || e.Lock != "Front door" || e.UID != "" || e.CardType != "iso14443a" {
			t.Errorf("granted event = %+v", e)
		}
		if e := ev[1]; e.EventType != hass.EventActionSucceeded || e.Holder != "Alice" || e.Action != "unlock" || e.Result != hass.ResultSuccess {
			t.Errorf("result event = %+v", e)
		}
		if r := h.results(t); len(r) != 1 || r[0].Source != "Alice" || r[0].Result != hass.ResultSuccess {
			t.Errorf("lock results = %+v, want the card holder as the source", r)
		}
		if got := fb.got(); !equal(got, []string{PatternCardRead, PatternUnlocking}) {
			t.Errorf("feedback = %v", got)
		}
		h.noRawUIDInLogs(t, aliceCard)
	})
}

func TestTapFeliCaLocksWithActionLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := &feedback{}
		h := start(t, newCloud(sesame.StateUnlocked), nil, true, withReader(readerSetup{action: CardLock}, fb))
		synctest.Wait()
		h.b.Tap(suica, time.Now())
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if sent := h.cloud.sent(); len(sent) != 1 || sent[0].Cmd != sesame.CmdLock || sent[0].Tag != "Chika" {
			t.Fatalf("sent %+v, want one lock tagged Chika", sent)
		}
		// NFC_TAG_SCANNER=known: a known card is still scanned.
		if tags := h.pub.payloads(h.topics.ReaderTag()); !equal(tags, []string{"012E4CD8A1B2C3D4"}) {
			t.Errorf("tags = %v", tags)
		}
		if got := fb.got(); !equal(got, []string{PatternCardRead, PatternLocking}) {
			t.Errorf("feedback = %v", got)
		}
	})
}

func TestUnknownCardsNeverActuate(t *testing.T) {
	for _, allTags := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			fb := &feedback{}
			h := start(t, newCloud(sesame.StateLocked), nil, true, withReader(readerSetup{action: CardToggle, allTags: allTags}, fb))
			synctest.Wait()
			h.b.Tap(stranger, time.Now())
			time.Sleep(5 * time.Second)
			h.b.Tap(phone, time.Now()) // on the list by mistake: random UIDs never match
			time.Sleep(5 * time.Second)
			synctest.Wait()
			if sent := h.cloud.sent(); len(sent) != 0 {
				t.Fatalf("unknown cards sent %+v", sent)
			}
			ev := h.events(t)
			if len(ev) != 2 || ev[0].EventType != hass.EventAccessDenied || ev[0].Holder != hass.UnknownHolder || ev[1].EventType != hass.EventAccessDenied {
				t.Fatalf("events = %+v, want two denials", ev)
			}
			wantUID, wantTags := "", []string(nil)
			if allTags {
				wantUID, wantTags = "04112233", []string{"04112233"}
			}
			if ev[0].UID != wantUID || ev[1].UID != "" {
				t.Errorf("denied events carry uid %q and %q, want %q and none (random UIDs identify nobody)", ev[0].UID, ev[1].UID, wantUID)
			}
			if tags := h.pub.payloads(h.topics.ReaderTag()); !equal(tags, wantTags) {
				t.Errorf("allTags=%v: tags = %v, want %v", allTags, tags, wantTags)
			}
			if got := fb.got(); !equal(got, []string{PatternDenied, PatternDenied}) {
				t.Errorf("feedback = %v", got)
			}
			if !strings.Contains(h.logs.String(), "unknown card refused") {
				t.Error("no log line for a refused card")
			}
			h.noRawUIDInLogs(t, stranger, phone)
		})
	}
}

func TestLockoutAfterFiveUnknownCards(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := &feedback{}
		h := start(t, newCloud(sesame.StateLocked), nil, true, withReader(readerSetup{action: CardUnlock}, fb))
		synctest.Wait()
		for range 5 {
			h.b.Tap(stranger, time.Now())
			time.Sleep(10 * time.Second)
		}
		h.b.Tap(aliceCard, time.Now()) // 50 s into the lockout: ignored
		synctest.Wait()
		if sent := h.cloud.sent(); len(sent) != 0 {
			t.Fatalf("sent %+v during a lockout", sent)
		}
		ev := h.events(t)
		if len(ev) != 6 || ev[4].EventType != hass.EventAccessDenied || ev[5].EventType != hass.EventLockout || ev[5].Until == "" {
			t.Fatalf("events = %+v, want 5 denials and a lockout", ev)
		}
		if !strings.Contains(h.logs.String(), "too many unknown cards") {
			t.Error("no log line for the lockout")
		}
		if got := fb.got(); !equal(got, []string{PatternDenied, PatternDenied, PatternDenied, PatternDenied, PatternLockout, PatternLockout}) {
			t.Errorf("feedback = %v", got)
		}
		time.Sleep(50 * time.Second) // the lockout (from the fifth tap, at 40 s) ended
		h.b.Tap(aliceCard, time.Now())
		synctest.Wait()
		if sent := h.cloud.sent(); len(sent) != 1 || sent[0].Tag != "Alice" {
			t.Fatalf("after the lockout: sent %+v, want Alice's unlock", sent)
		}
	})
}

func TestActionNoneLetsHomeAssistantDecide(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, newCloud(sesame.StateLocked), nil, true, withReader(readerSetup{action: CardNone, allTags: true}, &feedback{}))
		synctest.Wait()
		h.b.Tap(aliceCard, time.Now())
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if sent := h.cloud.sent(); len(sent) != 0 {
			t.Fatalf("NFC_ACTION=none sent %+v", sent)
		}
		if ev := h.events(t); len(ev) != 1 || ev[0].EventType != hass.EventAccessGranted || ev[0].Action != "none" || ev[0].Holder != "Alice" {
			t.Fatalf("events = %+v", ev)
		}
	})
}

func TestTapCommandFailureShowsOnEventAndLEDs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(sesame.StateLocked)
		c.cmdErr = &sesame.APIError{StatusCode: 403}
		fb := &feedback{}
		h := start(t, c, nil, true, withReader(readerSetup{action: CardUnlock}, fb))
		synctest.Wait()
		h.b.Tap(aliceCard, time.Now())
		time.Sleep(time.Second)
		synctest.Wait()
		ev := h.events(t)
		if len(ev) != 2 || ev[1].EventType != hass.EventActionFailed || ev[1].Result != hass.ResultFailed || !strings.Contains(ev[1].Detail, "forbidden") {
			t.Fatalf("events = %+v, want a failed action", ev)
		}
		if got := fb.got(); !equal(got, []string{PatternCardRead, PatternUnlocking, PatternFailed}) {
			t.Errorf("feedback = %v", got)
		}
		if states := h.pub.payloads(h.topics.LockState("lock1")); states[len(states)-1] != "LOCKED" {
			t.Errorf("states %v: the confirmed state must come back after a failure", states)
		}
	})
}

// A tap while the same command from HA is in flight joins it: one POST, and
// the tap still hears how it ended.
func TestTapCoalescesWithRunningCommand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, newCloud(sesame.StateLocked), nil, true, withReader(readerSetup{action: CardUnlock}, &feedback{}))
		synctest.Wait()
		h.send("set", "UNLOCK")
		time.Sleep(time.Second)
		h.b.Tap(aliceCard, time.Now())
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if sent := h.cloud.sent(); len(sent) != 1 {
			t.Fatalf("sent %+v, want one unlock", sent)
		}
		ev := h.events(t)
		if len(ev) != 2 || ev[1].EventType != hass.EventActionSucceeded {
			t.Fatalf("events = %+v, want the tap's granted and succeeded", ev)
		}
	})
}

func TestFeedbackCommands(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := &feedback{}
		h := start(t, newCloud(sesame.StateLocked), nil, false, withReader(readerSetup{action: CardNone}, fb))
		topic := h.topics.ReaderFeedback()
		h.b.HandleMessage(mqtt.Message{Topic: topic, Payload: []byte("ok")})
		h.b.HandleMessage(mqtt.Message{Topic: topic, Payload: []byte("ko"), Retained: true})
		h.b.HandleMessage(mqtt.Message{Topic: topic, Payload: []byte("ko"), Duplicate: true})
		h.b.HandleMessage(mqtt.Message{Topic: topic, Payload: []byte("OK")})
		h.b.HandleMessage(mqtt.Message{Topic: topic, Payload: []byte("\x00\xff")})
		clearQueued(h.b)
		if got := fb.got(); !equal(got, []string{"ok"}) {
			t.Errorf("feedback = %v, want only the exact, fresh ok", got)
		}
		if cleared := h.pub.on(topic); len(cleared) != 1 || !cleared[0].Retained || cleared[0].Payload != "" {
			t.Errorf("retained feedback command not cleared: %+v", cleared)
		}
		logs := h.logs.String()
		if !strings.Contains(logs, `want one of [ok ko]`) || !strings.Contains(logs, `got \"OK\"`) || !strings.Contains(logs, `got \"\\x00\\xff\"`) {
			t.Errorf("bad payloads not logged clearly:\n%s", logs)
		}
	})
}

func TestStandingConditions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(sesame.StateLocked)
		c.noMove = true
		fb := &feedback{}
		h := start(t, c, nil, true, withReader(readerSetup{action: CardUnlock}, fb))
		synctest.Wait()
		h.b.OnConnect()
		h.b.ReaderStatus(nfc.StatusUnplugged, "pn532_uart:/dev/ttyUSB0", errors.New("poll: input / output error"))
		h.b.ReaderStatus(nfc.StatusConnected, "pn532_uart:/dev/ttyUSB0", nil)
		h.send("set", "UNLOCK")
		time.Sleep(20 * time.Second) // never moves: jammed
		synctest.Wait()
		c.mu.Lock()
		c.statusErr = &sesame.APIError{StatusCode: 503}
		c.mu.Unlock()
		h.send("refresh", "PRESS")
		synctest.Wait()
		h.b.MQTTConnected(false)
		h.b.MQTTConnected(true) // the cloud is still down: still offline
		c.mu.Lock()
		c.statusErr = nil
		c.mu.Unlock()
		time.Sleep(DefaultTiming.RefreshEvery) // a second press within it would be coalesced
		h.send("refresh", "PRESS")
		synctest.Wait()
		want := []string{PatternReady, "+" + ConditionReaderGone, "-" + ConditionReaderGone, "+" + ConditionJammed, "+" + ConditionOffline, "-" + ConditionOffline, "-" + ConditionJammed}
		if got := fb.got(); !equal(got, want) {
			t.Errorf("feedback = %v, want %v", got, want)
		}
		st := h.pub.on(h.topics.ReaderStatus())
		if len(st) != 2 || !st[0].Retained || !strings.Contains(st[0].Payload, `"status":"unplugged"`) || !strings.Contains(st[1].Payload, `"status":"connected"`) {
			t.Errorf("reader status = %+v", st)
		}
	})
}

func TestReaderDiscoveryAndRemoval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, newCloud(sesame.StateLocked), nil, false, withReader(readerSetup{action: CardToggle}, &feedback{}))
		h.b.OnConnect()
		cfg := h.pub.on(h.topics.DeviceConfig("s2m_reader"))
		if len(cfg) != 1 || !cfg[0].Retained || !strings.Contains(cfg[0].Payload, `"platform":"tag"`) || !strings.Contains(cfg[0].Payload, `"payload_press":"ok"`) {
			t.Fatalf("reader discovery = %+v", cfg)
		}
		// A bridge without reader or LEDs clears the document it once published.
		plain := start(t, newCloud(sesame.StateLocked), nil, false)
		plain.b.HandleMessage(mqtt.Message{Topic: h.topics.DeviceConfig("s2m_reader"), Payload: []byte(cfg[0].Payload), Retained: true})
		clearQueued(plain.b)
		if got := plain.pub.on(h.topics.DeviceConfig("s2m_reader")); len(got) != 1 || got[0].Payload != "" || !got[0].Retained {
			t.Errorf("stale reader discovery not cleared: %+v", got)
		}
		// One with a reader leaves it alone.
		h.b.HandleMessage(mqtt.Message{Topic: h.topics.DeviceConfig("s2m_reader"), Payload: []byte(cfg[0].Payload), Retained: true})
		if got := h.pub.on(h.topics.DeviceConfig("s2m_reader")); len(got) != 1 {
			t.Errorf("configured reader's discovery touched: %+v", got)
		}
	})
}

// indicatorFeedback plays the bridge's feedback on a real indicator.
type indicatorFeedback struct{ ind *indicator.Indicator }

func (f indicatorFeedback) Show(name string) {
	if p, err := indicator.Parse(name); err == nil {
		f.ind.Show(p)
	}
}
func (f indicatorFeedback) Set(string, bool) {}

// TestStuckLEDCannotDelayTheDoor: with the LED driver stuck in a GPIO write
// for an hour, a tap's command still leaves at once.
func TestStuckLEDCannotDelayTheDoor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		green := indicatortest.NewPin("GPIO23", 23)
		green.Hook = func(l gpio.Level) error {
			if l == gpio.High {
				<-release // the first "on" never returns while the test runs
			}
			return nil
		}
		ind := indicator.New(indicator.Outputs{Green: green, Red: indicatortest.NewPin("GPIO24", 24)}, nil)
		ictx, stopLEDs := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- ind.Run(ictx) }()
		fb := indicatorFeedback{ind}
		h := start(t, newCloud(sesame.StateLocked), nil, true, func(o *Options) {
			withReader(readerSetup{action: CardToggle}, nil)(o)
			o.Feedback = fb
		})
		synctest.Wait()
		ind.Show(indicator.Ready) // green on: the driver is now stuck
		synctest.Wait()
		for i := range 3 {
			t0 := time.Now()
			card := aliceCard
			h.b.Tap(card, t0)
			synctest.Wait()
			sent := h.cloud.sent()
			if len(sent) != i+1 || !sent[i].At.Equal(t0) {
				t.Fatalf("tap %d: sent %+v, want a command at the tap's instant", i+1, sent)
			}
			time.Sleep(20 * time.Second)
		}
		for _, w := range green.Writes() {
			if w.L == gpio.High {
				t.Fatal("the green LED was written on: the driver was not stuck, the test proves nothing")
			}
		}
		close(release)
		stopLEDs()
		if err := <-done; err != nil {
			t.Errorf("indicator Run = %v", err)
		}
	})
}
