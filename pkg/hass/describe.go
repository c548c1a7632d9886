package hass

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// maxQuoted is the most of a refused payload a log line repeats.
const maxQuoted = 64

// describe says what a refused payload was, for a log line: quoted and
// escaped (control bytes, invalid UTF-8 and invisible characters as Go
// escapes, so `got "UNLOCK\n"` shows the stray newline), and cut after 64
// bytes with the full length: `got "AAAA…"…(4096 bytes)`.
func describe(p []byte) string {
	if len(p) == 0 {
		return "empty payload"
	}
	if len(p) <= maxQuoted {
		return "got " + strconv.Quote(string(p))
	}
	n := maxQuoted
	for n > maxQuoted-utf8.UTFMax && !utf8.RuneStart(p[n]) {
		n-- // do not split a character (bytes that are no UTF-8 are cut anywhere)
	}
	return fmt.Sprintf("got %s…(%d bytes)", strconv.Quote(string(p[:n])), len(p))
}
