package access

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
)

var (
	alice    = nfc.Card{Kind: nfc.ISO14443A, UID: []byte{0x04, 0xa2, 0x2b, 0x1c, 0xd3, 0x5e, 0x80}}
	chika    = nfc.Card{Kind: nfc.FeliCa, UID: []byte{0x01, 0x2e, 0x4c, 0xd8, 0xa1, 0xb2, 0xc3, 0xd4}}
	stranger = nfc.Card{Kind: nfc.ISO14443A, UID: []byte{0x04, 0x11, 0x22, 0x33}}
	phone    = nfc.Card{Kind: nfc.ISO14443A, UID: []byte{0x08, 0x9a, 0x01, 0x7f}}
)

func policy() *Policy {
	return New([]Card{{UID: alice.UID, Name: "Alice"}, {UID: chika.UID, Name: "Chika"}, {UID: phone.UID, Name: "Phone"}})
}

func TestDecide(t *testing.T) {
	p := policy()
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		card    nfc.Card
		verdict Verdict
		holder  string
		random  bool
	}{
		{alice, Granted, "Alice", false},
		{chika, Granted, "Chika", false},
		{stranger, Denied, "", false},
		// On the list by mistake: a random UID still never matches.
		{phone, Denied, "", true},
	}
	for _, tt := range tests {
		d := p.Decide(tt.card, now, "door")
		if d.Verdict != tt.verdict || d.Holder != tt.holder || d.Random != tt.random {
			t.Errorf("Decide(%s) = %+v, want %v %q random=%v", tt.card.HexUID(), d, tt.verdict, tt.holder, tt.random)
		}
		if got := p.Known(tt.card); got != (tt.verdict == Granted) {
			t.Errorf("Known(%s) = %v", tt.card.HexUID(), got)
		}
		now = now.Add(time.Second)
	}
}

func TestLockout(t *testing.T) {
	p := policy()
	t0 := time.Unix(1_800_000_000, 0)
	// Four unknown taps in 60 s: denied.
	for i := range 4 {
		if d := p.Decide(stranger, t0.Add(time.Duration(i)*10*time.Second), "door"); d.Verdict != Denied {
			t.Fatalf("tap %d = %v, want denied", i+1, d.Verdict)
		}
	}
	// The fifth within the window starts the lockout.
	fifth := t0.Add(59 * time.Second)
	d := p.Decide(phone, fifth, "door")
	if d.Verdict != LockedOut || !d.Until.Equal(fifth.Add(60*time.Second)) {
		t.Fatalf("fifth unknown tap = %+v, want a lockout until %v", d, fifth.Add(60*time.Second))
	}
	// During the lockout even Alice is ignored.
	if d := p.Decide(alice, fifth.Add(59*time.Second), "door"); d.Verdict != Ignored || d.Holder != "" {
		t.Fatalf("known card during lockout = %+v, want ignored", d)
	}
	// At its end cards work again, and the count started afresh.
	if d := p.Decide(alice, fifth.Add(60*time.Second), "door"); d.Verdict != Granted {
		t.Fatalf("after the lockout = %+v, want granted", d)
	}
	if d := p.Decide(stranger, fifth.Add(61*time.Second), "door"); d.Verdict != Denied {
		t.Fatalf("first unknown after the lockout = %+v, want denied", d)
	}
}

func TestLockoutWindowSlides(t *testing.T) {
	p := policy()
	t0 := time.Unix(1_800_000_000, 0)
	// Unknown taps 20 s apart never have 5 within 60 s.
	for i := range 20 {
		if d := p.Decide(stranger, t0.Add(time.Duration(i)*20*time.Second), "door"); d.Verdict != Denied {
			t.Fatalf("tap %d = %v, want denied", i+1, d.Verdict)
		}
	}
	if len(p.unknown) > DefaultLimit {
		t.Errorf("kept %d old taps; the window should drop them", len(p.unknown))
	}
}

func TestHasher(t *testing.T) {
	dir := t.TempDir()
	h1, err := LoadHasher(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", fi.Mode().Perm())
	}
	h2, err := LoadHasher(dir) // a restart
	if err != nil {
		t.Fatal(err)
	}
	a1, a2 := h1.Hash(alice.UID), h2.Hash(alice.UID)
	if a1 != a2 || len(a1) != 12 {
		t.Errorf("hash not stable across restarts: %q %q", a1, a2)
	}
	if strings.Contains(strings.ToUpper(a1), "04A22B") {
		t.Errorf("hash %q shows the UID", a1)
	}
	if h1.Hash(chika.UID) == a1 {
		t.Errorf("two cards share a hash")
	}
	other, err := LoadHasher(t.TempDir()) // another installation
	if err != nil {
		t.Fatal(err)
	}
	if other.Hash(alice.UID) == a1 {
		t.Errorf("the hash is not keyed: equal across installations")
	}
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadHasher(dir); err == nil || !strings.Contains(err.Error(), "5 bytes, want 32") {
		t.Errorf("a damaged key: err = %v", err)
	}
}
