package indicator

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Output names one of the three outputs by the card reader.
type Output int

// The outputs, in the order the indicator drives them.
const (
	Green Output = iota
	Red
	Buzzer
	numOutputs
)

var outputNames = [numOutputs]string{"green", "red", "buzzer"}

// String returns "green", "red" or "buzzer".
func (o Output) String() string {
	if o < 0 || o >= numOutputs {
		return fmt.Sprintf("Output(%d)", int(o))
	}
	return outputNames[o]
}

// Step is a stretch of time during which one output is on or off.
type Step struct {
	On bool
	D  time.Duration
}

// Track is the sequence of steps of one output, from the start of a
// pattern. An empty track leaves the output off. A track shorter than its
// sequence is off for the rest of it.
type Track []Step

// Length is the sum of the steps' durations.
func (t Track) Length() time.Duration {
	var d time.Duration
	for _, s := range t {
		d += s.D
	}
	return d
}

// at reports whether the track is on at offset d.
func (t Track) at(d time.Duration) bool {
	var end time.Duration
	for _, s := range t {
		end += s.D
		if d < end {
			return s.On
		}
	}
	return false
}

// Sequence is what a pattern or a standing condition shows: pure data.
type Sequence struct {
	Name               string
	Green, Red, Buzzer Track
	// Priority orders sequences of the same kind: a transient pattern
	// pre-empts a running one of lower or equal priority; among the
	// standing conditions that are set, the highest shows. Every transient
	// pattern outranks every standing condition.
	Priority int
	// Loop marks a standing condition: it repeats while it is set.
	// Transient patterns play once.
	Loop bool
	// AliasOf names the pattern this one copies on purpose (ko copies
	// denied); such pairs are exempt from the distinctness test.
	AliasOf string
	// Meaning says when it shows, for the README table.
	Meaning string
}

// Track returns the steps of output o.
func (s *Sequence) Track(o Output) Track {
	switch o {
	case Green:
		return s.Green
	case Red:
		return s.Red
	case Buzzer:
		return s.Buzzer
	}
	return nil
}

// Length is the longest track: the play time of a transient pattern, the
// period of a standing one.
func (s *Sequence) Length() time.Duration {
	return max(s.Green.Length(), s.Red.Length(), s.Buzzer.Length())
}

// Frame is a point in a sequence where at least one output changes: from
// At (relative to the start) until the next frame the outputs are On.
type Frame struct {
	At time.Duration
	On [numOutputs]bool
}

// Frames merges the tracks into the points at which some output changes.
// The first frame is at 0 and sets every output; after the last one the
// sequence lasts until Length.
func (s *Sequence) Frames() []Frame {
	var cuts []time.Duration
	for o := range numOutputs {
		var at time.Duration
		for _, st := range s.Track(o) {
			cuts = append(cuts, at)
			at += st.D
		}
		cuts = append(cuts, at)
	}
	cuts = append(cuts, 0)
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	var frames []Frame
	for _, at := range cuts {
		if at >= s.Length() && at > 0 {
			break
		}
		var f Frame
		f.At = at
		for o := range numOutputs {
			f.On[o] = s.Track(o).at(at)
		}
		if len(frames) > 0 && frames[len(frames)-1].On == f.On {
			continue
		}
		frames = append(frames, f)
	}
	return frames
}

// Pattern is a transient indication: it plays once. Home Assistant may
// request any of them by name (see Names and Parse). The zero Pattern is
// not a pattern; Show ignores it.
type Pattern int

// The transient patterns, in table order.
const (
	CardRead Pattern = iota + 1
	Unlocking
	Locking
	Denied
	Lockout
	Failed
	Ready
	OK
	KO
	numPatterns = iota
)

// Condition is a standing indication: it repeats for as long as it is set
// (see Indicator.Set). The zero Condition is not a condition.
type Condition int

// The standing conditions, in table order.
const (
	Offline Condition = iota + 1
	ReaderGone
	Jammed
	Enrolling
	numConditions = iota
)

// Step helpers keep the table below readable.
func on(ms int) Step  { return Step{On: true, D: time.Duration(ms) * time.Millisecond} }
func off(ms int) Step { return Step{D: time.Duration(ms) * time.Millisecond} }

// repeat returns n copies of steps, one after the other.
func repeat(n int, steps ...Step) Track {
	t := make(Track, 0, n*len(steps))
	for range n {
		t = append(t, steps...)
	}
	return t
}

// concat joins tracks.
func concat(ts ...Track) Track { return slices.Concat(ts...) }

// patterns is the table of transient patterns, indexed by Pattern.
// Priorities: ready 1 < card_read 2 < unlocking = locking = ok 3 <
// denied = ko 4 < failed 5 < lockout 6.
var patterns = [numPatterns + 1]Sequence{
	CardRead: {
		Name:     "card_read",
		Green:    Track{on(100), off(50)},
		Buzzer:   Track{on(60), off(90)},
		Priority: 2,
		Meaning:  "a card was read (any card); the outcome follows",
	},
	Unlocking: {
		Name:     "unlocking",
		Green:    Track{on(3000), off(100)},
		Priority: 3,
		Meaning:  "access granted: unlocking",
	},
	Locking: {
		Name:     "locking",
		Green:    concat(repeat(6, on(100), off(100)), Track{off(100)}),
		Priority: 3,
		Meaning:  "access granted: locking",
	},
	Denied: {
		Name:     "denied",
		Red:      concat(repeat(6, on(100), off(100)), Track{off(100)}),
		Buzzer:   Track{on(100), off(100), on(100), off(1000)},
		Priority: 4,
		Meaning:  "card not on the allowlist (or a random phone UID)",
	},
	Lockout: {
		Name:     "lockout",
		Green:    concat(repeat(12, off(250), on(250)), Track{off(250)}),
		Red:      concat(repeat(12, on(250), off(250)), Track{off(250)}),
		Buzzer:   concat(repeat(3, on(150), off(100)), Track{off(5500)}),
		Priority: 6,
		Meaning:  "too many unknown cards: the reader ignores cards for a while; shown again on every refused tap",
	},
	Failed: {
		Name:     "failed",
		Red:      Track{on(2000), off(100)},
		Buzzer:   Track{on(800), off(1300)},
		Priority: 5,
		Meaning:  "the lock command failed or the lock jammed",
	},
	Ready: {
		Name:     "ready",
		Green:    Track{on(200), off(200), on(200), off(200)},
		Red:      Track{off(200), on(400), off(200)},
		Priority: 1,
		Meaning:  "the bridge has started",
	},
	OK: {
		Name:     "ok",
		Green:    Track{on(1500), off(100)},
		Priority: 3,
		Meaning:  "Home Assistant answers yes (like unlocking, shorter)",
	},
	KO: {
		Name:     "ko",
		Red:      concat(repeat(6, on(100), off(100)), Track{off(100)}),
		Buzzer:   Track{on(100), off(100), on(100), off(1000)},
		Priority: 4,
		AliasOf:  "denied",
		Meaning:  "Home Assistant answers no (same as denied)",
	},
}

// conditions is the table of standing conditions, indexed by Condition.
// None uses the buzzer: a beep that repeats for hours helps nobody.
var conditions = [numConditions + 1]Sequence{
	Offline: {
		Name:     "offline",
		Red:      Track{on(200), off(1800)},
		Loop:     true,
		Priority: 1,
		Meaning:  "the bridge cannot reach MQTT or the Sesame cloud",
	},
	ReaderGone: {
		Name:     "reader_gone",
		Red:      Track{on(200), off(200), on(200), off(1400)},
		Loop:     true,
		Priority: 2,
		Meaning:  "the card reader is unplugged or not answering",
	},
	Jammed: {
		Name:     "jammed",
		Red:      Track{on(1500), off(500)},
		Loop:     true,
		Priority: 3,
		Meaning:  "a lock reports jammed",
	},
	Enrolling: {
		Name:     "enrolling",
		Green:    Track{on(450), off(550)},
		Red:      Track{off(500), on(450), off(50)},
		Loop:     true,
		Priority: 4,
		Meaning:  "waiting for the card to enroll (up to 30 s); the next tap adds it and opens nothing",
	},
}

func (p Pattern) valid() bool { return p > 0 && p <= numPatterns }

func (c Condition) valid() bool { return c > 0 && c <= numConditions }

// Sequence returns the pattern's data; nil for an invalid Pattern.
func (p Pattern) Sequence() *Sequence {
	if !p.valid() {
		return nil
	}
	return &patterns[p]
}

// Sequence returns the condition's data; nil for an invalid Condition.
func (c Condition) Sequence() *Sequence {
	if !c.valid() {
		return nil
	}
	return &conditions[c]
}

// String returns the pattern's name, such as "card_read".
func (p Pattern) String() string {
	if !p.valid() {
		return fmt.Sprintf("Pattern(%d)", int(p))
	}
	return patterns[p].Name
}

// String returns the condition's name, such as "offline".
func (c Condition) String() string {
	if !c.valid() {
		return fmt.Sprintf("Condition(%d)", int(c))
	}
	return conditions[c].Name
}

// Patterns returns every transient pattern, in table order.
func Patterns() []Pattern {
	ps := make([]Pattern, 0, numPatterns)
	for p := Pattern(1); p <= numPatterns; p++ {
		ps = append(ps, p)
	}
	return ps
}

// Conditions returns every standing condition, in table order.
func Conditions() []Condition {
	cs := make([]Condition, 0, numConditions)
	for c := Condition(1); c <= numConditions; c++ {
		cs = append(cs, c)
	}
	return cs
}

// Names returns the names Home Assistant may ask to show (the transient
// patterns), in table order: the options of the command topic. Standing
// conditions are not among them; the bridge sets those from what it knows.
func Names() []string {
	names := make([]string, 0, numPatterns)
	for _, p := range Patterns() {
		names = append(names, p.String())
	}
	return names
}

// ErrUnknownPattern is wrapped by Parse's errors.
var ErrUnknownPattern = errors.New("unknown indicator pattern")

// Parse returns the pattern with the given name. Case and surrounding
// space are ignored, so "OK" from an automation works. An unknown name,
// including a standing condition's, is an error wrapping ErrUnknownPattern
// that lists the valid names.
func Parse(name string) (Pattern, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	for _, p := range Patterns() {
		if p.String() == n {
			return p, nil
		}
	}
	for _, c := range Conditions() {
		if c.String() == n {
			return 0, fmt.Errorf("%w %q: it is a standing condition the bridge sets itself (want one of %s)",
				ErrUnknownPattern, name, strings.Join(Names(), ", "))
		}
	}
	return 0, fmt.Errorf("%w %q (want one of %s)", ErrUnknownPattern, name, strings.Join(Names(), ", "))
}
