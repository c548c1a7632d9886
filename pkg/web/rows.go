package web

import (
	"bufio"
	"html"
	"net/url"
)

// writeRows writes the rows of the cards list. It is the one piece of HTML
// not written by html/template: with 1,000 cards the template's escapers,
// called by reflection for every value, took 50 ms; this takes a few. Every
// value goes through html.EscapeString and sits in element text or in a
// double-quoted attribute; a path segment is url.PathEscape'd first. The
// base path is checked by ingressPathRe (or empty).
func writeRows(w *bufio.Writer, rows []cardRow, base, csrf string) error {
	b := w
	e := html.EscapeString
	base, csrf = e(base), e(csrf)
	for _, r := range rows {
		uid := e(url.PathEscape(r.UID))
		b.WriteString(`<tr data-name="`)
		b.WriteString(e(r.Name))
		if r.Enabled {
			b.WriteString(`">`)
		} else {
			b.WriteString(`" class="disabled">`)
		}
		b.WriteString(`<td data-label="Name">`)
		b.WriteString(e(r.Name))
		if r.Managed {
			b.WriteString(` <span class="badge" title="from the configuration: read-only here">managed</span>`)
		}
		for _, c := range [...]struct{ label, v string }{
			{"Card", "<code>" + e(r.Masked) + "</code>"},
			{"Action", e(r.Action)}, {"Valid", e(r.Validity)}, {"Days", e(r.Days)},
			{"Hours", e(r.Hours)}, {"Doors", e(r.Doors)},
			{"State", map[bool]string{true: "enabled", false: "disabled"}[r.Enabled]},
		} {
			b.WriteString(`</td><td data-label="`)
			b.WriteString(c.label)
			b.WriteString(`">`)
			b.WriteString(c.v)
		}
		b.WriteString(`</td><td class="actions">`)
		if !r.Managed {
			on, label := "1", "Enable"
			if r.Enabled {
				on, label = "0", "Disable"
			}
			b.WriteString(`<a class="button" href="` + base + `/cards/` + uid + `">Edit</a> `)
			b.WriteString(`<form method="post" action="` + base + `/cards/` + uid + `/enabled" class="inline"><input type="hidden" name="csrf" value="` + csrf + `"><input type="hidden" name="on" value="` + on + `"><button>` + label + `</button></form> `)
			b.WriteString(`<form method="post" action="` + base + `/cards/` + uid + `/remove" class="inline confirm" data-confirm="Remove ` + e(r.Name) + `&#39;s card?"><input type="hidden" name="csrf" value="` + csrf + `"><button class="danger">Remove</button></form>`)
		}
		b.WriteString("</td></tr>\n")
	}
	return nil // a write error stays in w: its Flush reports it
}
