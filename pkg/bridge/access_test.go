package bridge

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/access"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

var (
	bobCard = nfc.Card{Kind: nfc.ISO14443A, UID: []byte{0x04, 0xb0, 0xb0, 0xb0, 0x01, 0x02, 0x03}}
	hcef    = nfc.Card{Kind: nfc.FeliCa, UID: []byte{0x02, 0xfe, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06}}
)

// withAccess gives the harness a reader whose list (in UTC) has Alice from
// the options and whatever the test adds.
func withAccess(fb *feedback, action CardAction) func(*Options) {
	return func(o *Options) {
		list, err := access.OpenList("", []access.Entry{{UID: aliceCard.HexUID(), Name: "Alice"}}, access.ListOptions{Location: time.UTC})
		if err != nil {
			panic(err)
		}
		o.Reader = &Reader{
			Policy: access.NewPolicy(list),
			Action: action,
			LockID: testLock.ID,
			Hash:   access.NewHasher([]byte("test key")).Hash,
		}
		o.Feedback = fb
		o.FeedbackNames = []string{"ok", "ko"}
	}
}

func (h *harness) ha(topic, payload string) {
	h.b.HandleMessage(mqtt.Message{Topic: topic, Payload: []byte(payload)})
}

func (h *harness) lastEvent(t *testing.T) hass.AccessEvent {
	t.Helper()
	evs := h.events(t)
	if len(evs) == 0 {
		t.Fatal("no event")
	}
	return evs[len(evs)-1]
}

func TestEnrollByTappingFromHomeAssistant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := &feedback{}
		h := start(t, newCloud(sesame.StateLocked), nil, true, withAccess(fb, CardUnlock))
		synctest.Wait()
		// A retained press (an old one) and a redelivered one start nothing.
		h.b.HandleMessage(mqtt.Message{Topic: h.topics.ReaderEnroll(), Payload: []byte("PRESS"), Retained: true})
		h.b.HandleMessage(mqtt.Message{Topic: h.topics.ReaderEnroll(), Payload: []byte("PRESS"), Duplicate: true})
		synctest.Wait()
		if slices.Contains(fb.got(), "+"+ConditionEnrolling) {
			t.Fatal("a retained or duplicate press started an enrollment")
		}
		// Without a name: refused with a message.
		h.ha(h.topics.ReaderEnroll(), "PRESS")
		synctest.Wait()
		if ev := h.lastEvent(t); ev.EventType != hass.EventEnrollFailed || ev.Reason != "no_name" || ev.Message == "" {
			t.Errorf("press without a name: %+v", ev)
		}
		h.ha(h.topics.ReaderEnrollName(), "Bob")
		h.ha(h.topics.ReaderEnroll(), "PRESS")
		synctest.Wait()
		if got := fb.got(); got[len(got)-1] != "+"+ConditionEnrolling {
			t.Fatalf("feedback = %v, want enrolling", got)
		}
		h.b.Tap(bobCard, time.Now())
		synctest.Wait()
		if sent := h.cloud.sent(); len(sent) != 0 {
			t.Fatalf("the enrolling tap opened the door: %+v", sent)
		}
		ev := h.lastEvent(t)
		if ev.EventType != hass.EventCardEnrolled || ev.Holder != "Bob" || ev.UID != "" || !strings.Contains(ev.Message, "Bob") {
			t.Errorf("event = %+v", ev)
		}
		got := fb.got()
		if !slices.Equal(got[len(got)-2:], []string{"-" + ConditionEnrolling, PatternOK}) {
			t.Errorf("feedback = %v, want enrolling off then ok", got)
		}
		cards := h.b.Access().Cards()
		if len(cards) != 2 || cards[1].Name != "Bob" || cards[1].UID != bobCard.HexUID() || !cards[1].Enabled || cards[1].Action != "unlock" || cards[1].AddedBy != SourceHA {
			t.Errorf("cards = %+v", cards)
		}
		// The select now offers Bob.
		cfgs := h.pub.on(h.topics.DeviceConfig(h.b.discovery.ReaderDeviceID()))
		if len(cfgs) == 0 || !strings.Contains(cfgs[len(cfgs)-1].Payload, `"Bob"`) {
			t.Errorf("the select's options were not published again")
		}
		// The next tap opens.
		time.Sleep(time.Second)
		h.b.Tap(bobCard, time.Now())
		synctest.Wait()
		if sent := h.cloud.sent(); len(sent) != 1 || sent[0].Cmd != sesame.CmdUnlock || sent[0].Tag != "Bob" {
			t.Errorf("sent = %+v", sent)
		}
		time.Sleep(20 * time.Second)
		log := h.b.Access().Log(access.LogFilter{})
		if len(log) != 2 || log[0].Result != access.ResultGranted || log[0].Outcome != hass.ResultSuccess || log[1].Result != access.ResultEnrolled || log[1].Holder != "Bob" {
			t.Errorf("access log = %+v", log)
		}
		h.noRawUIDInLogs(t, bobCard)
	})
}

func TestEnrollRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := &feedback{}
		h := start(t, newCloud(sesame.StateLocked), nil, true, withAccess(fb, CardUnlock))
		synctest.Wait()
		a := h.b.Access()
		if _, err := a.Enroll("  ", "page"); err == nil {
			t.Error("an empty name was taken")
		}
		for _, tt := range []struct {
			card nfc.Card
			kind string
		}{
			{aliceCard, access.EnrollAlreadyListed},
			{phone, access.EnrollRandomUID},
			{hcef, access.EnrollChangingIDm},
		} {
			ch, err := a.Enroll("Eve", "page")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Enroll("Mallory", "page"); !errors.Is(err, ErrEnrollRunning) {
				t.Errorf("a second enrollment: %v", err)
			}
			h.b.Tap(tt.card, time.Now())
			synctest.Wait()
			var evs []access.EnrollEvent
			for ev := range ch {
				evs = append(evs, ev)
			}
			if len(evs) != 2 || evs[0].Kind != access.EnrollWaiting || evs[1].Kind != tt.kind || evs[1].UID != "" || evs[1].Message == "" {
				t.Errorf("%s: events %+v", tt.kind, evs)
			}
			if ev := h.lastEvent(t); ev.EventType != hass.EventEnrollFailed || ev.Reason != tt.kind {
				t.Errorf("%s: HA event %+v", tt.kind, ev)
			}
			time.Sleep(5 * time.Second)
		}
		// Nobody tapped: 30 s later, a timeout.
		ch, _ := a.Enroll("Eve", "page")
		<-ch // waiting
		time.Sleep(EnrollTimeout - time.Second)
		synctest.Wait()
		select {
		case ev := <-ch:
			t.Fatalf("ended early: %+v", ev)
		default:
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if ev, ok := <-ch; !ok || ev.Kind != access.EnrollTimeout {
			t.Errorf("after 30s: %+v %v", ev, ok)
		}
		if _, open := <-ch; open {
			t.Error("channel not closed after the final event")
		}
		ch, _ = a.Enroll("Eve", "page")
		a.CancelEnroll()
		<-ch
		if ev := <-ch; ev.Kind != access.EnrollCancelled {
			t.Errorf("cancel: %+v", ev)
		}
		if n := len(a.Cards()); n != 1 {
			t.Errorf("%d cards; nothing may have been added", n)
		}
		if sent := h.cloud.sent(); len(sent) != 0 {
			t.Errorf("an enrolling tap opened the door: %+v", sent)
		}
		if fails := a.Log(access.LogFilter{Result: access.ResultEnrollFailed}); len(fails) != 5 {
			t.Errorf("access log has %d failed enrollments, want 5", len(fails))
		}
		h.noRawUIDInLogs(t, phone, hcef, aliceCard)
	})
}

func TestDeniedTapsSayWhy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bubble starts at 2000-01-01 00:00 UTC, a Saturday.
		fb := &feedback{}
		h := start(t, newCloud(sesame.StateLocked), nil, true, withAccess(fb, CardUnlock))
		synctest.Wait()
		a := h.b.Access()
		cases := []struct {
			e      access.Entry
			reason string
		}{
			{access.Entry{Name: "Dis", Enabled: false}, access.ReasonDisabled},
			{access.Entry{Name: "Old", Enabled: true, ValidUntil: "1999-12-31"}, access.ReasonExpired},
			{access.Entry{Name: "New", Enabled: true, ValidFrom: "2000-01-02"}, access.ReasonNotYetValid},
			{access.Entry{Name: "Office", Enabled: true, Weekdays: []time.Weekday{time.Monday}}, access.ReasonOutsideHours},
			{access.Entry{Name: "Day", Enabled: true, From: "08:00", To: "18:00"}, access.ReasonOutsideHours},
			{access.Entry{Name: "Back", Enabled: true, Doors: []string{"backdoor"}}, access.ReasonNotThisDoor},
			{access.Entry{Name: "Night", Enabled: true, Weekdays: []time.Weekday{time.Friday}, From: "22:00", To: "06:00"}, ""},
		}
		for i, c := range cases {
			card := nfc.Card{Kind: nfc.ISO14443A, UID: []byte{0x04, 0x10, 0x20, byte(i)}}
			c.e.UID, c.e.Action = card.HexUID(), "none"
			if err := a.Save(c.e, "page"); err != nil {
				t.Fatal(err)
			}
			h.b.Tap(card, time.Now())
			synctest.Wait()
			ev := h.lastEvent(t)
			if c.reason == "" {
				if ev.EventType != hass.EventAccessGranted || ev.Holder != c.e.Name {
					t.Errorf("%s: %+v, want granted", c.e.Name, ev)
				}
				continue
			}
			if ev.EventType != hass.EventAccessDenied || ev.Holder != c.e.Name || ev.Reason != c.reason || !strings.Contains(ev.Message, c.e.Name) {
				t.Errorf("%s: %+v, want denied for %s", c.e.Name, ev, c.reason)
			}
			if !strings.Contains(h.logs.String(), "reason="+c.reason) {
				t.Errorf("%s: the log does not say %s", c.e.Name, c.reason)
			}
			time.Sleep(4 * time.Second)
		}
		// Six refused listed cards are no lockout: they are known people.
		if slices.Contains(fb.got(), PatternLockout) {
			t.Error("refused listed cards started a lockout")
		}
		denied := a.Log(access.LogFilter{Result: access.ResultDenied})
		if len(denied) != 6 || denied[0].Reason != access.ReasonNotThisDoor || denied[5].Reason != access.ReasonDisabled || denied[0].Holder != "Back" {
			t.Errorf("access log = %+v", denied)
		}
		// Unknown cards: reason unknown, then the lockout, and taps during it.
		for i := range access.DefaultLimit + 1 {
			h.b.Tap(nfc.Card{Kind: nfc.ISO14443A, UID: []byte{0x04, 0x99, 0x99, byte(i)}}, time.Now())
			synctest.Wait()
		}
		evs := h.events(t)
		if ev := evs[len(evs)-1]; ev.EventType != hass.EventLockout || ev.Reason != access.ReasonLockout {
			t.Errorf("last event %+v", ev)
		}
		if ev := evs[len(evs)-3]; ev.Reason != access.ReasonUnknown || ev.Holder != hass.UnknownHolder {
			t.Errorf("unknown card's event %+v", ev)
		}
		log := a.Log(access.LogFilter{Limit: 2})
		if log[0].Reason != access.ReasonLockout || log[0].Holder != "" || log[1].Reason != access.ReasonUnknown {
			t.Errorf("access log = %+v", log)
		}
		if sent := h.cloud.sent(); len(sent) != 0 {
			t.Errorf("sent %+v", sent)
		}
		var csvOut bytes.Buffer
		if err := a.WriteCSV(&csvOut, access.LogFilter{Limit: 100}); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(&csvOut).ReadAll()
		if err != nil || len(rows) != 1+len(a.Log(access.LogFilter{Limit: 100})) {
			t.Errorf("csv: %d rows, %v", len(rows), err)
		}
		if strings.Contains(strings.ToUpper(csvOut.String()), "04999900") {
			t.Error("the CSV shows an unknown card's UID")
		}
	})
}

func TestRemoveAndDisableFromHomeAssistant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := &feedback{}
		h := start(t, newCloud(sesame.StateLocked), nil, true, withAccess(fb, CardNone))
		synctest.Wait()
		a := h.b.Access()
		if err := a.Save(access.Entry{UID: bobCard.HexUID(), Name: "Bob", Enabled: true}, "page"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		tap := func() hass.AccessEvent {
			time.Sleep(5 * time.Second)
			h.b.Tap(bobCard, time.Now())
			synctest.Wait()
			return h.lastEvent(t)
		}
		// Nothing chosen yet but the first card: the select's state follows the list.
		h.ha(h.topics.ReaderCard(), "Nobody")
		h.ha(h.topics.ReaderCard(), "Bob")
		h.ha(h.topics.ReaderCardAction(), hass.PayloadDisable)
		synctest.Wait()
		if ev := h.lastEvent(t); ev.EventType != hass.EventCardChanged || ev.Change != "disabled" || ev.Holder != "Bob" {
			t.Errorf("disable: %+v", ev)
		}
		if ev := tap(); ev.Reason != access.ReasonDisabled {
			t.Errorf("tap after disable: %+v", ev)
		}
		h.ha(h.topics.ReaderCardAction(), hass.PayloadEnable)
		synctest.Wait()
		if ev := tap(); ev.EventType != hass.EventAccessGranted {
			t.Errorf("tap after enable: %+v", ev)
		}
		// A retained remove is an old one: not obeyed.
		h.b.HandleMessage(mqtt.Message{Topic: h.topics.ReaderCardAction(), Payload: []byte(hass.PayloadRemove), Retained: true})
		synctest.Wait()
		if ev := tap(); ev.EventType != hass.EventAccessGranted {
			t.Errorf("a retained REMOVE was obeyed: %+v", ev)
		}
		h.ha(h.topics.ReaderCardAction(), hass.PayloadRemove)
		synctest.Wait()
		if ev := tap(); ev.Reason != access.ReasonUnknown {
			t.Errorf("tap after remove: %+v", ev)
		}
		cfgs := h.pub.on(h.topics.DeviceConfig(h.b.discovery.ReaderDeviceID()))
		var doc struct {
			Components map[string]struct {
				Options []string `json:"options"`
			} `json:"components"`
		}
		if err := json.Unmarshal([]byte(cfgs[len(cfgs)-1].Payload), &doc); err != nil || !slices.Equal(doc.Components["card"].Options, []string{"Alice"}) {
			t.Errorf("select options after the removal = %v (%v)", doc.Components["card"].Options, err)
		}
		if st := h.pub.payloads(h.topics.ReaderCardState()); len(st) == 0 || st[len(st)-1] != "Alice" {
			t.Errorf("select state = %v", st)
		}
		// The options' card: refused with a message.
		h.ha(h.topics.ReaderCard(), "Alice")
		h.ha(h.topics.ReaderCardAction(), hass.PayloadRemove)
		synctest.Wait()
		if ev := h.lastEvent(t); ev.EventType != hass.EventChangeRefused || ev.Reason != "managed" || !strings.Contains(ev.Message, "options") {
			t.Errorf("removing Alice: %+v", ev)
		}
		if err := a.Remove(aliceCard.HexUID(), "page"); !errors.Is(err, access.ErrManaged) {
			t.Errorf("Remove(Alice) = %v", err)
		}
		if n := len(a.Cards()); n != 1 {
			t.Errorf("%d cards", n)
		}
	})
}

func TestAccessIsNilSafe(t *testing.T) {
	var a *Access
	if a.Cards() != nil || a.Log(access.LogFilter{}) != nil || a.Doors() != nil || a.Reader() != "none" {
		t.Error("nil Access returned something")
	}
	if err := a.Save(access.Entry{}, "x"); err == nil {
		t.Error("nil Save succeeded")
	}
	if _, err := a.Enroll("x", "y"); err == nil {
		t.Error("nil Enroll succeeded")
	}
	a.CancelEnroll()
	ch, stop := a.Changes()
	stop()
	select {
	case <-ch:
		t.Error("signal from nil")
	default:
	}
}

func TestAccessDoorsReaderAndChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, newCloud(sesame.StateLocked), nil, true, withAccess(&feedback{}, CardNone))
		synctest.Wait()
		a := h.b.Access()
		if d := a.Doors(); len(d) != 1 || d[0].ID != testLock.ID || d[0].Name != "Front door" || d[0].State != string(hass.Locked) {
			t.Errorf("doors = %+v", d)
		}
		if r := a.Reader(); r != "unknown" {
			t.Errorf("reader before a report = %q", r)
		}
		h.b.ReaderStatus(nfc.StatusConnected, "pn532", nil)
		if r := a.Reader(); r != "connected" {
			t.Errorf("reader = %q", r)
		}
		ch, stop := a.Changes()
		defer stop()
		if err := a.Save(access.Entry{UID: bobCard.HexUID(), Name: "Bob", Enabled: true}, "page"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		default:
			t.Error("no signal after a save")
		}
		h.b.Tap(bobCard, time.Now())
		select {
		case <-ch:
		default:
			t.Error("no signal after a tap")
		}
		err := a.Save(access.Entry{UID: "zz", Name: "", Action: "open"}, "page")
		var fe access.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("Save of garbage = %v, want FieldErrors", err)
		}
	})
}
