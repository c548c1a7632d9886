package indicator

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the pattern tables in indicator.go's doc comment and README-section.md")

// docTable is the package comment's table: every row of Table, with one
// line per output used.
func docTable() string {
	var b strings.Builder
	for _, r := range Table() {
		length := r.Length.String()
		if r.Kind != "once" {
			length = "period " + length
		}
		fmt.Fprintf(&b, "%-12s %s, priority %d, %s\n", r.Name, r.Kind, r.Priority, length)
		for o, steps := range [numOutputs]string{r.Green, r.Red, r.Buzzer} {
			if steps != "–" {
				fmt.Fprintf(&b, "  %-10s %s\n", Output(o), steps)
			}
		}
	}
	return b.String()
}

// replaceBlock returns text with what lies between the end of the line
// where begin ends and the next end replaced by block; false when either
// marker is missing.
func replaceBlock(text, begin, end, block string) (string, bool) {
	i := strings.Index(text, begin)
	if i < 0 {
		return "", false
	}
	i += len(begin)
	if !strings.HasSuffix(begin, "\n") {
		i += strings.Index(text[i:], "\n") + 1
	}
	j := strings.Index(text[i:], end)
	if j < 0 {
		return "", false
	}
	return text[:i] + block + text[i+j:], true
}

// checkBlock compares the block in file with want, or rewrites it under -update.
func checkBlock(t *testing.T, file, begin, end, want string) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := replaceBlock(string(raw), begin, end, want)
	if !ok {
		t.Fatalf("%s: markers %q and %q not found", file, begin, end)
	}
	if got == string(raw) {
		return
	}
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s: the pattern table differs from the data; run go test ./pkg/indicator -run %s -update\nwant:\n%s", file, t.Name(), want)
}

func TestDocCommentTable(t *testing.T) {
	var b strings.Builder
	for line := range strings.Lines(docTable()) {
		b.WriteString("//\t" + line)
	}
	checkBlock(t, "indicator.go", "// go test -update writes this table from the data:\n//\n", "//\n", b.String())
}

// The README table is Markdown(). The section lives in README-section.md
// until it moves into the main README; then the test checks that one.
func TestReadmeTable(t *testing.T) {
	file := "README-section.md"
	if _, err := os.Stat(file); err != nil {
		file = "../../README.md"
	}
	checkBlock(t, file, "<!-- indicator-patterns:begin", "<!-- indicator-patterns:end", Markdown())
}

func TestMarkdown(t *testing.T) {
	md := Markdown()
	lines := strings.Split(strings.TrimSuffix(md, "\n"), "\n")
	if want := 2 + numPatterns + numConditions; len(lines) != want {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), want, md)
	}
	for _, want := range []string{
		"| name | shows | priority | green | red | buzzer | length | when |",
		"| `unlocking` | once | 3 | on 3s, off 100ms | – | – | 3.1s | access granted: unlocking |",
		"| `offline` | while set | 1 | – | on 200ms, off 1.8s | – | period 2s | the bridge cannot reach MQTT or the Sesame cloud |",
	} {
		if !strings.Contains(md, want+"\n") {
			t.Errorf("Markdown() lacks the line\n%s\nin\n%s", want, md)
		}
	}
	for _, l := range lines {
		if n := strings.Count(l, "|"); n != 9 {
			t.Errorf("line has %d cells separators, want 9: %s", n, l)
		}
	}
}
