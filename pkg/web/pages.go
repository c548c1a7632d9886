package web

import (
	"bufio"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Form limits.
const (
	maxNameLen = 64
	dateLayout = "2006-01-02"
	timeLayout = "15:04"
)

var actions = []string{"toggle", "unlock", "lock", "none"}

var results = []string{"granted", "denied", "enrolled", "enroll_failed"}

// weekdays in the order of an office week.
var weekdays = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}

func (s *Server) funcs() template.FuncMap {
	return template.FuncMap{
		"mask": MaskUID,
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.In(s.loc).Format("2006-01-02 15:04:05")
		},
		"day": func(d time.Weekday) string { return d.String()[:3] },
		"hasDay": func(ds []time.Weekday, d time.Weekday) bool {
			return slices.Contains(ds, d)
		},
		"hasDoor": func(ds []string, id string) bool { return slices.Contains(ds, id) },
		"orDash": func(s string) string {
			if s == "" {
				return "–"
			}
			return s
		},
		"reason": reasonText,
	}
}

// MaskUID shows the first and last byte of a UID only: enough to tell cards
// apart on the page, not enough to clone one from a screenshot.
func MaskUID(uid string) string {
	if len(uid) <= 4 {
		return strings.Repeat("•", len(uid))
	}
	return uid[:2] + strings.Repeat("•", len(uid)-4) + uid[len(uid)-2:]
}

var reasons = map[string]string{
	"unknown":       "unknown card",
	"disabled":      "card disabled",
	"not_yet_valid": "not valid yet",
	"expired":       "expired",
	"outside_hours": "outside its hours",
	"not_this_door": "not for this door",
	"lockout":       "reader locked out (too many unknown cards)",
}

func reasonText(r string) string {
	if t, ok := reasons[r]; ok {
		return t
	}
	return r
}

// page is what every template gets.
type page struct {
	Base, User, CSRF, Title, Nav string
	Ingress                      bool
	Reader                       string
	Data                         any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, data any) {
	v := whoFrom(r.Context())
	p := page{Base: v.base, User: v.user, Ingress: s.ingressOn, Title: name, Nav: name, Data: data}
	if v.session != "" {
		p.CSRF = s.csrfToken(v.session)
	}
	if name != "login" {
		p.Reader = s.acc.Reader()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	// Streamed: the cards list of 1,000 cards is half a megabyte, never
	// held in memory whole.
	bw := bufio.NewWriterSize(w, 16<<10)
	err := s.tmpl.ExecuteTemplate(bw, name+".html", p)
	if cv, ok := data.(cardsView); ok && err == nil {
		err = writeRows(bw, cv.rows, p.Base, p.CSRF)
		if err == nil {
			err = s.tmpl.ExecuteTemplate(bw, "cards_end.html", p)
		}
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		s.log.Debug("web: render", "page", name, "err", err)
	}
}

// cardRow is one line of the cards list, its texts worked out here rather
// than by template functions (1,000 rows render in a few milliseconds).
type cardRow struct {
	UID, Name, Masked, Action, Validity, Days, Hours, Doors string
	Enabled, Managed                                        bool
}

func cardRows(cards []Card, doors []DoorStatus) []cardRow {
	names := make(map[string]string, len(doors))
	for _, d := range doors {
		names[d.ID] = d.Name
	}
	rows := make([]cardRow, len(cards))
	for i, c := range cards {
		rows[i] = cardRow{
			UID: c.UID, Name: c.Name, Masked: MaskUID(c.UID), Action: c.Action,
			Validity: validity(c), Days: dayList(c.Weekdays), Hours: hours(c), Doors: doorNames(c.Doors, names),
			Enabled: c.Enabled, Managed: c.Managed,
		}
	}
	return rows
}

func validity(c Card) string {
	switch {
	case c.ValidFrom == "" && c.ValidUntil == "":
		return "always"
	case c.ValidFrom == "":
		return "until " + c.ValidUntil
	case c.ValidUntil == "":
		return "from " + c.ValidFrom
	}
	return c.ValidFrom + " – " + c.ValidUntil
}

func dayList(ds []time.Weekday) string {
	if len(ds) == 0 {
		return "every day"
	}
	var out []string
	for _, d := range weekdays {
		if slices.Contains(ds, d) {
			out = append(out, d.String()[:3])
		}
	}
	return strings.Join(out, " ")
}

func hours(c Card) string {
	if c.From == "" && c.To == "" {
		return "all day"
	}
	return c.From + "–" + c.To
}

func doorNames(ids []string, names map[string]string) string {
	if len(ids) == 0 {
		return "every door"
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if n, ok := names[id]; ok {
			out = append(out, n)
		} else {
			out = append(out, id)
		}
	}
	return strings.Join(out, ", ")
}

// cardsView is the cards page's data; its rows are written by writeRows.
type cardsView struct {
	Count  int
	Errors map[string]string
	Name   string
	Notice string
	rows   []cardRow
}

func (s *Server) cardsData(r *http.Request, errs map[string]string, name string) cardsView {
	rows := cardRows(s.acc.Cards(), s.acc.Doors())
	return cardsView{Count: len(rows), Errors: errs, Name: name, Notice: r.URL.Query().Get("done"), rows: rows}
}

func (s *Server) cardsPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "cards", s.cardsData(r, nil, ""))
}

func (s *Server) findCard(uid string) (Card, bool) {
	for _, c := range s.acc.Cards() {
		if c.UID == uid {
			return c, true
		}
	}
	return Card{}, false
}

func (s *Server) editPage(w http.ResponseWriter, r *http.Request) {
	c, ok := s.findCard(r.PathValue("uid"))
	if !ok {
		http.Error(w, "no such card", http.StatusNotFound)
		return
	}
	s.renderEdit(w, r, http.StatusOK, c, nil)
}

func (s *Server) renderEdit(w http.ResponseWriter, r *http.Request, code int, c Card, errs map[string]string) {
	s.render(w, r, code, "edit", map[string]any{
		"Card": c, "Doors": s.acc.Doors(), "Errors": errs,
		"Actions": actions, "Weekdays": weekdays,
	})
}

func (s *Server) saveCard(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(w, r) {
		return
	}
	old, ok := s.findCard(r.PathValue("uid"))
	if !ok {
		http.Error(w, "no such card", http.StatusNotFound)
		return
	}
	if old.Managed {
		s.renderEdit(w, r, http.StatusForbidden, old, map[string]string{"": "This card comes from the configuration (NFC_CARDS or the add-on's options) and is changed there."})
		return
	}
	c, errs := parseCardForm(r, old, s.acc.Doors())
	if len(errs) == 0 {
		if err := s.acc.Save(c, whoFrom(r.Context()).editor); err != nil {
			errs = FieldErrors(err)
		}
	}
	if len(errs) > 0 {
		s.renderEdit(w, r, http.StatusUnprocessableEntity, c, errs)
		return
	}
	http.Redirect(w, r, whoFrom(r.Context()).base+"/cards?done=saved", http.StatusSeeOther)
}

func checkName(name string) string {
	switch {
	case name == "":
		return "Give the card holder's name."
	case utf8.RuneCountInString(name) > maxNameLen:
		return fmt.Sprintf("At most %d characters.", maxNameLen)
	case strings.ContainsAny(name, ",:\n\r\t"):
		return "No commas, colons or line breaks."
	}
	return ""
}

// parseCardForm reads the edit form over the stored card, checking every
// field; the messages are keyed by the field's name.
func parseCardForm(r *http.Request, c Card, doors []DoorStatus) (Card, map[string]string) {
	errs := map[string]string{}
	c.Name = strings.TrimSpace(r.PostFormValue("name"))
	if msg := checkName(c.Name); msg != "" {
		errs["name"] = msg
	}
	c.Action = r.PostFormValue("action")
	if !slices.Contains(actions, c.Action) {
		errs["action"] = "Choose toggle, unlock, lock or none."
	}
	c.Enabled = r.PostFormValue("enabled") == "on"
	c.ValidFrom = strings.TrimSpace(r.PostFormValue("valid_from"))
	c.ValidUntil = strings.TrimSpace(r.PostFormValue("valid_until"))
	var from, until time.Time
	var err error
	if c.ValidFrom != "" {
		if from, err = time.Parse(dateLayout, c.ValidFrom); err != nil {
			errs["valid_from"] = "A date like 2026-01-31, or empty."
		}
	}
	if c.ValidUntil != "" {
		if until, err = time.Parse(dateLayout, c.ValidUntil); err != nil {
			errs["valid_until"] = "A date like 2026-12-31, or empty."
		}
	}
	if !from.IsZero() && !until.IsZero() && until.Before(from) {
		errs["valid_until"] = "Not before the first day."
	}
	c.Weekdays = nil
	for _, v := range r.PostForm["weekday"] {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 6 {
			errs["weekday"] = "Unknown weekday."
			continue
		}
		if !slices.Contains(c.Weekdays, time.Weekday(n)) {
			c.Weekdays = append(c.Weekdays, time.Weekday(n))
		}
	}
	slices.Sort(c.Weekdays)
	c.From = strings.TrimSpace(r.PostFormValue("from"))
	c.To = strings.TrimSpace(r.PostFormValue("to"))
	for _, f := range []struct{ key, v string }{{"from", c.From}, {"to", c.To}} {
		if f.v == "" {
			continue
		}
		if _, err := time.Parse(timeLayout, f.v); err != nil {
			errs[f.key] = "A time like 08:00, or empty."
		}
	}
	switch {
	case (c.From == "") != (c.To == ""):
		errs["to"] = "Give both times, or neither (all day)."
	case c.From != "" && c.From == c.To:
		errs["to"] = "The window is empty: from and to are the same."
	}
	// Doors this bridge does not show (another bridge's, with a shared
	// list, or a lock no longer configured) stay as they were: dropping
	// them could leave the list empty, which means every door.
	known := func(id string) bool { return slices.ContainsFunc(doors, func(d DoorStatus) bool { return d.ID == id }) }
	var kept []string
	for _, id := range c.Doors {
		if !known(id) {
			kept = append(kept, id)
		}
	}
	c.Doors = kept
	for _, id := range r.PostForm["door"] {
		if !slices.ContainsFunc(doors, func(d DoorStatus) bool { return d.ID == id }) {
			errs["door"] = "Unknown door."
			continue
		}
		if !slices.Contains(c.Doors, id) {
			c.Doors = append(c.Doors, id)
		}
	}
	return c, errs
}

func (s *Server) removeCard(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(w, r) {
		return
	}
	v := whoFrom(r.Context())
	if err := s.acc.Remove(r.PathValue("uid"), v.editor); err != nil {
		s.render(w, r, http.StatusConflict, "cards", s.cardsData(r, map[string]string{"": "Not removed: " + err.Error()}, ""))
		return
	}
	http.Redirect(w, r, v.base+"/cards?done=removed", http.StatusSeeOther)
}

func (s *Server) enableCard(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(w, r) {
		return
	}
	v := whoFrom(r.Context())
	on := r.PostFormValue("on") == "1"
	if err := s.acc.SetEnabled(r.PathValue("uid"), on, v.editor); err != nil {
		s.render(w, r, http.StatusConflict, "cards", s.cardsData(r, map[string]string{"": "Not changed: " + err.Error()}, ""))
		return
	}
	done := "disabled"
	if on {
		done = "enabled"
	}
	http.Redirect(w, r, v.base+"/cards?done="+done, http.StatusSeeOther)
}

// logFilter reads the log page's filter; bad dates are reported, not
// guessed.
func (s *Server) logFilter(r *http.Request) (LogFilter, map[string]string, map[string]string) {
	q := r.URL.Query()
	f := LogFilter{
		Person: strings.TrimSpace(q.Get("person")),
		Door:   strings.TrimSpace(q.Get("door")),
		Result: q.Get("result"),
	}
	errs := map[string]string{}
	form := map[string]string{"person": f.Person, "door": f.Door, "result": f.Result, "from": q.Get("from"), "to": q.Get("to")}
	if f.Result != "" && !slices.Contains(results, f.Result) {
		errs["result"] = "Unknown result."
		f.Result = ""
	}
	if v := q.Get("from"); v != "" {
		t, err := time.ParseInLocation(dateLayout, v, s.loc)
		if err != nil {
			errs["from"] = "A date like 2026-01-31."
		}
		f.From = t
	}
	if v := q.Get("to"); v != "" {
		t, err := time.ParseInLocation(dateLayout, v, s.loc)
		if err != nil {
			errs["to"] = "A date like 2026-01-31."
		} else {
			f.To = t.AddDate(0, 0, 1) // the whole day (To is exclusive)
		}
	}
	return f, errs, form
}

func (s *Server) logPage(w http.ResponseWriter, r *http.Request) {
	f, errs, form := s.logFilter(r)
	code := http.StatusOK
	if len(errs) > 0 {
		code = http.StatusUnprocessableEntity
	}
	s.render(w, r, code, "log", map[string]any{
		"Entries": s.acc.Log(f), "Errors": errs, "Form": form,
		"Results": results, "Doors": s.acc.Doors(), "Query": r.URL.RawQuery,
	})
}

func (s *Server) logCSV(w http.ResponseWriter, r *http.Request) {
	f, errs, _ := s.logFilter(r)
	if len(errs) > 0 {
		http.Error(w, "bad filter", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="access-log.csv"`)
	if err := s.acc.WriteCSV(w, f); err != nil {
		s.log.Warn("web: CSV export", "err", err)
	}
}

func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "status", map[string]any{"Doors": s.acc.Doors(), "Reader": s.acc.Reader()})
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "login", map[string]any{"Error": ""})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "forbidden: cross-site login", http.StatusForbidden)
		return
	}
	// A few checks at once, each wrong one answered after the delay: a
	// guesser gets a handful of tries a second, not thousands.
	select {
	case s.logins <- struct{}{}:
		defer func() { <-s.logins }()
	default:
		http.Error(w, "too many login attempts at once; try again in a moment", http.StatusTooManyRequests)
		return
	}
	if !s.passwordOK(r.PostFormValue("password")) {
		s.log.Warn("web: wrong password", "remote", r.RemoteAddr)
		t := time.NewTimer(s.loginDelay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
		s.render(w, r, http.StatusUnauthorized, "login", map[string]any{"Error": "Wrong password."})
		return
	}
	id := s.sessions.add(s.now())
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(sessionTTL / time.Second),
	})
	http.Redirect(w, r, "/cards", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(w, r) {
		return
	}
	s.sessions.remove(whoFrom(r.Context()).session)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
