package sesametest_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
)

// TestHistoryNamesTheActor: a command leaves its history tag, a hand turn a
// manual record; the client reads them back newest first, and OnChange
// tells of every change.
func TestHistoryNamesTheActor(t *testing.T) {
	s := start(t)
	s.SetMoveDelay(20 * time.Millisecond)
	var mu sync.Mutex
	var changes []sesame.LockState
	s.OnChange(func(u string, st sesame.LockState) {
		if u == uuid {
			mu.Lock()
			changes = append(changes, st)
			mu.Unlock()
		}
	})
	c, err := sesame.New(sesame.Options{BaseURL: s.URL(), APIKey: sesame.NewSecret(apiKey)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := c.Command(ctx, uuid, sesame.NewSecret(secret), sesame.CmdUnlock, "Alice"); err != nil {
		t.Fatal(err)
	}
	s.Turn(uuid, sesame.StateLocked)
	h, err := c.History(ctx, uuid, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 {
		t.Fatalf("history = %+v, want 2 records", h)
	}
	if h[0].Type != sesame.HistoryManualLocked || h[0].Tag != "" {
		t.Errorf("newest = %+v, want manualLocked without a tag", h[0])
	}
	if h[1].Type != sesame.HistoryWebUnlock || h[1].Tag != "Alice" || h[1].RecordID >= h[0].RecordID {
		t.Errorf("older = %+v, want webUnLock by Alice with a smaller record id", h[1])
	}
	if age := time.Since(h[0].At); age < 0 || age > time.Minute {
		t.Errorf("timestamp %v is not now (ms read as ms)", h[0].At)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(changes)
		got := append([]sesame.LockState(nil), changes...)
		mu.Unlock()
		if n >= 3 {
			// moved (command), locked (the turn), then the move's end: the
			// turn ended it, so the lock still reports locked.
			if got[0] != sesame.StateMoved || got[1] != sesame.StateLocked {
				t.Errorf("changes = %v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("changes = %v, want 3", got)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The API key is checked.
	bad, _ := sesame.New(sesame.Options{BaseURL: s.URL(), APIKey: sesame.NewSecret("wrong")})
	if _, err := bad.History(ctx, uuid, 5); err == nil {
		t.Error("history with a wrong key must fail")
	}
	if code, _, _ := do(t, http.MethodGet, s.URL()+"/"+uuid+"/history?page=0&lg=x", apiKey, ""); code != http.StatusBadRequest {
		t.Errorf("lg=x answered %d", code)
	}
	_ = sesametest.HistoryRecord{}
}

func TestDecodeHistorySecondsAndMillis(t *testing.T) {
	h, err := sesame.DecodeHistory([]byte(`[{"type":8,"timeStamp":1700000000,"historyTag":null,"recordID":3,"parameter":null},
		{"type":99,"timeStamp":1700000000123,"historyTag":"SG9tZSBBc3Npc3RhbnQ=","recordID":2,"devicePk":"x"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if h[0].At.Unix() != 1700000000 || h[1].At.UnixMilli() != 1700000000123 {
		t.Errorf("times = %v, %v", h[0].At, h[1].At)
	}
	if h[1].Tag != "Home Assistant" || h[1].Type != 99 {
		t.Errorf("entry = %+v", h[1])
	}
	for _, bad := range []string{`{}`, `null`, `[{"timeStamp":1}]`, `[{"type":1,"historyTag":"!!"}]`, `[{"type":1.5}]`} {
		if _, err := sesame.DecodeHistory([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
