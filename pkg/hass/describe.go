package hass

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxQuoted bounds the quoted form of a refused payload in a log line, in
// bytes of the escaped text: 64 bytes that are no UTF-8 would otherwise
// become 256 characters of \x escapes.
const maxQuoted = 64

// describe says what a refused payload was, for a log line: quoted and
// escaped (control bytes, invalid UTF-8 and invisible characters as Go
// escapes, so `got "UNLOCK\n"` shows the stray newline), and cut once the
// escaped text reaches 64 bytes, with the full length: `got "AAAA…"…(4096 bytes)`.
// A character or an escape is never split.
func describe(p []byte) string {
	if len(p) == 0 {
		return "empty payload"
	}
	var b strings.Builder
	i := 0
	for i < len(p) {
		r, size := utf8.DecodeRune(p[i:])
		var piece string
		if r == utf8.RuneError && size == 1 {
			piece = fmt.Sprintf(`\x%02x`, p[i])
		} else {
			q := strconv.Quote(string(p[i : i+size]))
			piece = q[1 : len(q)-1]
		}
		if b.Len()+len(piece) > maxQuoted {
			break
		}
		b.WriteString(piece)
		i += size
	}
	if i < len(p) {
		return fmt.Sprintf("got \"%s\"…(%d bytes)", b.String(), len(p))
	}
	return "got \"" + b.String() + "\""
}
