package indicator

import (
	"fmt"
	"strings"
	"time"
)

// Row describes one pattern or standing condition for people: the README
// table is Markdown() of these rows, and a test keeps the two equal.
type Row struct {
	Name string
	// Kind is "once" for a transient pattern Home Assistant may request,
	// "while set" for a standing condition.
	Kind string
	// Priority is the order among sequences of the same Kind (higher wins);
	// every "once" pattern outranks every "while set" one.
	Priority int
	// Green, Red and Buzzer describe each track, such as
	// "6× (on 100ms, off 100ms), off 100ms"; "–" for an unused output.
	Green, Red, Buzzer string
	// Length is the play time of a pattern, the period of a condition.
	Length  time.Duration
	Meaning string
}

// Table describes every pattern, then every standing condition, in the
// order of Patterns and Conditions.
func Table() []Row {
	var rows []Row
	add := func(s *Sequence, kind string) {
		rows = append(rows, Row{
			Name:     s.Name,
			Kind:     kind,
			Priority: s.Priority,
			Green:    describe(s.Green),
			Red:      describe(s.Red),
			Buzzer:   describe(s.Buzzer),
			Length:   s.Length(),
			Meaning:  s.Meaning,
		})
	}
	for _, p := range Patterns() {
		add(p.Sequence(), "once")
	}
	for _, c := range Conditions() {
		add(c.Sequence(), "while set")
	}
	return rows
}

// Markdown renders Table as a Markdown table (with a trailing newline).
func Markdown() string {
	var b strings.Builder
	b.WriteString("| name | shows | priority | green | red | buzzer | length | when |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range Table() {
		length := r.Length.String()
		if r.Kind != "once" {
			length = "period " + length
		}
		fmt.Fprintf(&b, "| `%s` | %s | %d | %s | %s | %s | %s | %s |\n",
			r.Name, r.Kind, r.Priority, r.Green, r.Red, r.Buzzer, length, r.Meaning)
	}
	return b.String()
}

// describe writes a track compactly: runs of a repeated on/off pair become
// "n× (on a, off b)".
func describe(t Track) string {
	if len(t) == 0 {
		return "–"
	}
	var parts []string
	for i := 0; i < len(t); {
		if i+1 < len(t) {
			n := 1
			for i+2*n+1 < len(t) && t[i+2*n] == t[i] && t[i+2*n+1] == t[i+1] {
				n++
			}
			if n > 1 {
				parts = append(parts, fmt.Sprintf("%d× (%s, %s)", n, describeStep(t[i]), describeStep(t[i+1])))
				i += 2 * n
				continue
			}
		}
		parts = append(parts, describeStep(t[i]))
		i++
	}
	return strings.Join(parts, ", ")
}

func describeStep(s Step) string {
	if s.On {
		return "on " + s.D.String()
	}
	return "off " + s.D.String()
}
