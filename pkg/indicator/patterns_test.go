package indicator

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	maxSteps     = 64
	maxTransient = 10 * time.Second // a pattern longer than this is a standing condition
	maxPeriod    = 5 * time.Second  // a slower loop is not recognisable as one
	minStep      = 50 * time.Millisecond
)

// all returns every sequence: patterns, then conditions.
func all() []*Sequence {
	var seqs []*Sequence
	for _, p := range Patterns() {
		seqs = append(seqs, p.Sequence())
	}
	for _, c := range Conditions() {
		seqs = append(seqs, c.Sequence())
	}
	return seqs
}

func TestSequencesWellFormed(t *testing.T) {
	for _, s := range all() {
		t.Run(s.Name, func(t *testing.T) {
			if s.Name == "" || s.Meaning == "" {
				t.Errorf("name %q, meaning %q: both are needed for the table", s.Name, s.Meaning)
			}
			if s.Priority <= 0 {
				t.Errorf("priority %d, want > 0", s.Priority)
			}
			if s.Length() <= 0 {
				t.Fatalf("length %v, want > 0", s.Length())
			}
			if len(s.Green) == 0 && len(s.Red) == 0 {
				t.Errorf("uses no LED: without a buzzer it would show nothing")
			}
			for o := range numOutputs {
				tr := s.Track(o)
				if len(tr) > maxSteps {
					t.Errorf("%s: %d steps, want at most %d", o, len(tr), maxSteps)
				}
				for i, st := range tr {
					if st.D < minStep && !(o == Buzzer && st.On) {
						t.Errorf("%s step %d lasts %v: shorter than %v is not seen", o, i, st.D, minStep)
					}
					if st.D <= 0 {
						t.Errorf("%s step %d lasts %v, want > 0", o, i, st.D)
					}
				}
				if len(tr) > 0 && tr[len(tr)-1].On {
					t.Errorf("%s ends on; every track ends with an off step", o)
				}
			}
			if s.Loop {
				if s.Length() > maxPeriod {
					t.Errorf("period %v, want at most %v", s.Length(), maxPeriod)
				}
				if len(s.Buzzer) > 0 {
					t.Errorf("a standing condition must not use the buzzer: it would beep for hours")
				}
			}
			frames := s.Frames()
			if len(frames) == 0 || frames[0].At != 0 {
				t.Fatalf("frames %v: the first must be at 0", frames)
			}
			for i := 1; i < len(frames); i++ {
				if frames[i].At <= frames[i-1].At || frames[i].At >= s.Length() {
					t.Errorf("frame %d at %v: want increasing and before %v", i, frames[i].At, s.Length())
				}
				if frames[i].On == frames[i-1].On {
					t.Errorf("frame %d changes nothing", i)
				}
			}
			if last := frames[len(frames)-1]; last.On != [numOutputs]bool{} {
				t.Errorf("last frame %v: the sequence must end with every output off", last)
			}
		})
	}
	for _, p := range Patterns() {
		if s := p.Sequence(); s.Loop || s.Length() > maxTransient {
			t.Errorf("%s: loop %v, length %v: a pattern plays once, for at most %v", p, s.Loop, s.Length(), maxTransient)
		}
	}
	for _, c := range Conditions() {
		if !c.Sequence().Loop {
			t.Errorf("%s: a standing condition loops", c)
		}
	}
}

func TestSequencesDistinct(t *testing.T) {
	// What a person sees: the LEDs only (the buzzer is optional), over two
	// periods for the loops.
	seen := func(s *Sequence) string {
		var b strings.Builder
		for range 1 + btoi(s.Loop) {
			for _, f := range s.Frames() {
				fmt.Fprintf(&b, "%v:%v,%v ", f.At, f.On[Green], f.On[Red])
			}
			fmt.Fprintf(&b, "| %v ", s.Length())
		}
		return b.String()
	}
	seqs := all()
	names := map[string]bool{}
	for _, s := range seqs {
		if names[s.Name] {
			t.Errorf("name %q used twice", s.Name)
		}
		names[s.Name] = true
	}
	for i, a := range seqs {
		for _, b := range seqs[i+1:] {
			alias := a.AliasOf == b.Name || b.AliasOf == a.Name
			same := seen(a) == seen(b)
			if same && !alias {
				t.Errorf("%s and %s look the same on the LEDs", a.Name, b.Name)
			}
			if alias && (!reflect.DeepEqual(a.Green, b.Green) || !reflect.DeepEqual(a.Red, b.Red) ||
				!reflect.DeepEqual(a.Buzzer, b.Buzzer) || a.Priority != b.Priority) {
				t.Errorf("%s is an alias of %s but differs from it", b.Name, a.Name)
			}
		}
		if a.AliasOf != "" && !names[a.AliasOf] {
			t.Errorf("%s is an alias of unknown %q", a.Name, a.AliasOf)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestPriorities(t *testing.T) {
	// higher must win over lower.
	for _, tc := range []struct{ higher, lower Pattern }{
		{CardRead, Ready},
		{Unlocking, CardRead},
		{Locking, CardRead},
		{OK, CardRead},
		{Denied, Unlocking},
		{Denied, OK},
		{Failed, Denied},
		{Failed, Unlocking},
		{Lockout, Failed},
	} {
		if h, l := tc.higher.Sequence().Priority, tc.lower.Sequence().Priority; h <= l {
			t.Errorf("%s (priority %d) must outrank %s (%d)", tc.higher, h, tc.lower, l)
		}
	}
	for _, tc := range []struct{ higher, lower Condition }{
		{Jammed, ReaderGone},
		{ReaderGone, Offline},
	} {
		if h, l := tc.higher.Sequence().Priority, tc.lower.Sequence().Priority; h <= l {
			t.Errorf("%s (priority %d) must outrank %s (%d)", tc.higher, h, tc.lower, l)
		}
	}
}

func TestNames(t *testing.T) {
	want := []string{"card_read", "unlocking", "locking", "denied", "lockout", "failed", "ready", "ok", "ko"}
	if got := Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	for _, n := range Names() {
		p, err := Parse(n)
		if err != nil || p.String() != n {
			t.Errorf("Parse(%q) = %v, %v; want the pattern back", n, p, err)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Pattern
		wantErr string // substring; "" = no error
	}{
		{in: "ok", want: OK},
		{in: " KO\n", want: KO},
		{in: "Card_Read", want: CardRead},
		{in: "lockout", want: Lockout},
		{in: "offline", wantErr: `"offline": it is a standing condition`},
		{in: "jammed", wantErr: "standing condition"},
		{in: "blink", wantErr: `unknown indicator pattern "blink" (want one of card_read, unlocking, locking, denied, lockout, failed, ready, ok, ko)`},
		{in: "", wantErr: `unknown indicator pattern ""`},
	} {
		got, err := Parse(tc.in)
		if tc.wantErr == "" {
			if err != nil || got != tc.want {
				t.Errorf("Parse(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrUnknownPattern) {
			t.Errorf("Parse(%q) = %v, %v; want an ErrUnknownPattern containing %q", tc.in, got, err, tc.wantErr)
		}
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{CardRead.String(), "card_read"},
		{KO.String(), "ko"},
		{Pattern(0).String(), "Pattern(0)"},
		{Pattern(99).String(), "Pattern(99)"},
		{ReaderGone.String(), "reader_gone"},
		{Condition(0).String(), "Condition(0)"},
		{Buzzer.String(), "buzzer"},
		{Output(7).String(), "Output(7)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if Pattern(0).Sequence() != nil || Condition(99).Sequence() != nil {
		t.Error("an invalid pattern or condition has no sequence")
	}
}

func TestFrames(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		s    Sequence
		want []Frame
	}{
		{Ready.Sequence().clone(), []Frame{
			{0, [3]bool{true, false, false}},
			{200 * ms, [3]bool{false, true, false}},
			{400 * ms, [3]bool{true, true, false}},
			{600 * ms, [3]bool{}},
		}},
		{CardRead.Sequence().clone(), []Frame{
			{0, [3]bool{true, false, true}},
			{60 * ms, [3]bool{true, false, false}},
			{100 * ms, [3]bool{}},
		}},
		// A track that is shorter than the others is off after its end,
		// even if (against the rules) it ends on.
		{Sequence{Green: Track{off(100), on(100)}, Red: Track{off(400)}}, []Frame{
			{0, [3]bool{}},
			{100 * ms, [3]bool{true, false, false}},
			{200 * ms, [3]bool{}},
		}},
		{Sequence{}, []Frame{{0, [3]bool{}}}},
	} {
		if got := tc.s.Frames(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Frames() =\n%v\nwant\n%v", tc.s.Name, got, tc.want)
		}
	}
}

func (s *Sequence) clone() Sequence { return *s }

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		t    Track
		want string
	}{
		{nil, "–"},
		{Track{on(3000), off(100)}, "on 3s, off 100ms"},
		{Track{on(100), off(100), on(100), off(1000)}, "on 100ms, off 100ms, on 100ms, off 1s"},
		{concat(repeat(3, on(150), off(100)), Track{off(5500)}), "3× (on 150ms, off 100ms), off 5.5s"},
		{Track{off(250), on(250), off(250), on(250), off(250)}, "2× (off 250ms, on 250ms), off 250ms"},
	} {
		if got := describe(tc.t); got != tc.want {
			t.Errorf("describe(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}
