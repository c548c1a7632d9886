package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Session and login limits.
const (
	sessionCookie     = "s2m_session"
	sessionTTL        = 12 * time.Hour
	maxSessions       = 64 // the oldest is dropped beyond
	maxLogins         = 4  // password checks at once; more are refused (429)
	DefaultLoginDelay = time.Second
)

// DefaultSupervisor is the address Home Assistant's Supervisor proxies
// ingress requests from; every other address is refused on the ingress
// listener.
const DefaultSupervisor = "172.30.32.2"

// ingressPathRe is what a valid X-Ingress-Path looks like
// (/api/hassio_ingress/<token>): absolute, plain path segments, no dots
// alone, nothing a link could be bent with.
var ingressPathRe = regexp.MustCompile(`^(/[A-Za-z0-9_~-][A-Za-z0-9_.~-]*)+$`)

// who is the authenticated visitor of one request.
type who struct {
	base    string // path prefix of every link ("" or the ingress path)
	editor  string // recorded as who changed what
	session string // the CSRF token is bound to it
	user    string // shown in the header
}

type whoKey struct{}

func whoFrom(ctx context.Context) who {
	w, _ := ctx.Value(whoKey{}).(who)
	return w
}

// ingress admits only the Supervisor's address, and takes the base path and
// the HA user from its headers.
func (s *Server) ingress(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil || !s.fromSupervisor(host) {
			s.log.Warn("web: ingress request refused: not from the Supervisor", "remote", host)
			http.Error(w, "forbidden: only Home Assistant's ingress may use this port", http.StatusForbidden)
			return
		}
		v := who{editor: "Home Assistant", session: "ingress", user: "Home Assistant"}
		if p := r.Header.Get("X-Ingress-Path"); ingressPathRe.MatchString(p) && !strings.Contains(p, "/../") {
			v.base = strings.TrimRight(p, "/")
			// The user headers count only on a request the Supervisor
			// proxied for a logged-in user.
			id := cleanHeader(r.Header.Get("X-Remote-User-Id"))
			name := cleanHeader(r.Header.Get("X-Remote-User-Display-Name"))
			if name == "" {
				name = cleanHeader(r.Header.Get("X-Remote-User-Name"))
			}
			if name != "" {
				v.editor, v.user = name+" (HA user)", name
			}
			if id != "" {
				v.session = "ingress:" + id
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), whoKey{}, v)))
	})
}

func (s *Server) fromSupervisor(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && s.supervisor != nil && ip.Equal(s.supervisor)
}

// cleanHeader keeps a header value fit for a name: printable, at most 64
// runes.
func cleanHeader(v string) string {
	var b strings.Builder
	n := 0
	for _, r := range strings.TrimSpace(v) {
		if r < 0x20 || r == 0x7f {
			continue
		}
		if n++; n > 64 {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// sessions are the logins of the standalone page.
type sessions struct {
	mu sync.Mutex
	m  map[string]time.Time // id -> expiry
}

func (ss *sessions) add(now time.Time) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m == nil {
		ss.m = map[string]time.Time{}
	}
	for id, exp := range ss.m {
		if !now.Before(exp) {
			delete(ss.m, id)
		}
	}
	for len(ss.m) >= maxSessions {
		var oldest string
		var t time.Time
		for id, exp := range ss.m {
			if oldest == "" || exp.Before(t) {
				oldest, t = id, exp
			}
		}
		delete(ss.m, oldest)
	}
	id := randomToken()
	ss.m[id] = now.Add(sessionTTL)
	return id
}

func (ss *sessions) valid(id string, now time.Time) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	exp, ok := ss.m[id]
	if ok && !now.Before(exp) {
		delete(ss.m, id)
		return false
	}
	return ok
}

func (ss *sessions) remove(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// standalone requires a login for everything but the login page and the
// static files.
func (s *Server) standalone(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := who{editor: "web page", user: "web page"}
		if s.password == "" {
			// A loopback listener without a password (pkg/config allows no
			// other). A page elsewhere could rebind its own name to
			// 127.0.0.1 and would then be same-origin: only loopback names
			// are served.
			if !loopbackHost(r.Host) {
				http.Error(w, "forbidden: this page answers to localhost or a loopback address only", http.StatusForbidden)
				return
			}
			v.session = "open"
		} else if c, err := r.Cookie(sessionCookie); err == nil && s.sessions.valid(c.Value, s.now()) {
			v.session = c.Value
		}
		p := r.URL.Path
		public := p == "/login" || strings.HasPrefix(p, "/static/")
		if v.session == "" && !public {
			if r.Method == http.MethodGet && !strings.HasSuffix(p, "/events") {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "unauthorized: log in first", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), whoKey{}, v)))
	})
}

// passwordOK compares in constant time (over fixed-length digests, so the
// length does not leak either).
func (s *Server) passwordOK(got string) bool {
	a := sha256.Sum256([]byte(got))
	b := sha256.Sum256([]byte(s.password))
	return s.password != "" && subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// csrfToken is bound to the session: an HMAC of its id under a key that
// lives as long as the process.
func (s *Server) csrfToken(session string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte("csrf\x00" + session))
	return hex.EncodeToString(m.Sum(nil))
}

// sameOrigin checks what the browser says about where a request comes from:
// Sec-Fetch-Site when it sends it, else Origin against the Host (or the
// proxy's forwarded host). A request with neither (not a browser) relies on
// the token alone.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false
	}
	if u.Host == r.Host {
		return true
	}
	fh := r.Header.Get("X-Forwarded-Host")
	return fh != "" && u.Host == fh
}

// checkCSRF refuses a state-changing request without the session's token or
// from another origin.
func (s *Server) checkCSRF(w http.ResponseWriter, r *http.Request) bool {
	v := whoFrom(r.Context())
	tok := r.PostFormValue("csrf")
	want := s.csrfToken(v.session)
	if !sameOrigin(r) || subtle.ConstantTimeCompare([]byte(tok), []byte(want)) != 1 {
		s.log.Warn("web: request refused: CSRF check failed", "route", r.Pattern) // the path may hold a card's UID
		http.Error(w, "forbidden: the form is stale or came from another site; reload the page", http.StatusForbidden)
		return false
	}
	return true
}

// loopbackHost reports whether a Host header names this machine's loopback:
// localhost or a loopback address, with or without a port.
func loopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	h = strings.Trim(h, "[]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
