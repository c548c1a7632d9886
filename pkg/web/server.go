package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Options configure a Server.
type Options struct {
	Access Access
	// Ingress: serve Home Assistant's ingress (only Supervisor's address,
	// no login); otherwise the standalone page with Password.
	Ingress bool
	// Supervisor is the address ingress requests must come from; default
	// DefaultSupervisor. Tests set 127.0.0.1.
	Supervisor string
	// Password protects the standalone page; "" leaves it open (allowed by
	// pkg/config only on a loopback address).
	Password string
	// LoginDelay is how long a wrong password waits before the answer;
	// default DefaultLoginDelay.
	LoginDelay time.Duration
	// Location is the time zone dates are shown and filtered in; default Local.
	Location *time.Location
	Logger   *slog.Logger
	Now      func() time.Time
}

// Server is the access page.
type Server struct {
	acc        Access
	ingressOn  bool
	supervisor net.IP
	password   string
	loginDelay time.Duration
	loc        *time.Location
	log        *slog.Logger
	now        func() time.Time
	csrfKey    []byte
	sessions   sessions
	tmpl       *template.Template
	handler    http.Handler

	enroll   enrollment
	sse      chan struct{} // a slot per open event stream
	logins   chan struct{} // a slot per password being checked
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// readTimeout bounds reading a request (event streams clear it); a
// variable for a test.
var readTimeout = 15 * time.Second

// maxStreams bounds the open event streams (each holds a goroutine).
const maxStreams = 32

// New builds the page.
func New(o Options) (*Server, error) {
	if o.Access == nil {
		return nil, errors.New("web: no access service")
	}
	s := &Server{
		acc: o.Access, ingressOn: o.Ingress, password: o.Password,
		loginDelay: o.LoginDelay, loc: o.Location, log: o.Logger, now: o.Now,
		csrfKey: []byte(randomToken()), sse: make(chan struct{}, maxStreams),
		logins: make(chan struct{}, maxLogins), enroll: newEnrollment(),
	}
	if s.loginDelay <= 0 {
		s.loginDelay = DefaultLoginDelay
	}
	if s.loc == nil {
		s.loc = time.Local
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if o.Ingress {
		sup := o.Supervisor
		if sup == "" {
			sup = DefaultSupervisor
		}
		if s.supervisor = net.ParseIP(sup); s.supervisor == nil {
			return nil, fmt.Errorf("web: supervisor address %q is not an IP address", sup)
		}
	}
	t, err := template.New("").Funcs(s.funcs()).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	s.tmpl = t
	s.handler = s.routes()
	return s, nil
}

// Handler serves the page (for tests and for embedding).
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	fileServer := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.Handle("GET /static/", fileServer)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, whoFrom(r.Context()).base+"/cards", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /cards", s.cardsPage)
	mux.HandleFunc("GET /cards/{uid}", s.editPage)
	mux.HandleFunc("POST /cards/{uid}", s.saveCard)
	mux.HandleFunc("POST /cards/{uid}/remove", s.removeCard)
	mux.HandleFunc("POST /cards/{uid}/enabled", s.enableCard)
	mux.HandleFunc("GET /enroll", s.enrollPage)
	mux.HandleFunc("POST /enroll", s.startEnroll)
	mux.HandleFunc("POST /enroll/cancel", s.cancelEnroll)
	mux.HandleFunc("GET /enroll/events", s.enrollEvents)
	mux.HandleFunc("GET /events", s.changeEvents)
	mux.HandleFunc("GET /log", s.logPage)
	mux.HandleFunc("GET /log.csv", s.logCSV)
	mux.HandleFunc("GET /status", s.statusPage)
	var h http.Handler = mux
	if s.ingressOn {
		h = s.ingress(h)
	} else {
		mux.HandleFunc("GET /login", s.loginPage)
		mux.HandleFunc("POST /login", s.login)
		mux.HandleFunc("POST /logout", s.logout)
		h = s.standalone(h)
	}
	return securityHeaders(limitBody(h))
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'self'; form-action 'self'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// maxBody bounds a form.
const maxBody = 64 << 10

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

// Serve runs the page on l until ctx is done, then stops it within a
// second (event streams end with ctx) and waits for its goroutines.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       readTimeout,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		s.stop()
		return fmt.Errorf("web: serve %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-errc
	s.stop()
	return nil
}

// stop cancels a running enrollment and waits for the goroutine reading it.
func (s *Server) stop() {
	if s.enroll.running() {
		s.acc.CancelEnroll()
	}
	s.stopOnce.Do(func() { close(s.enroll.done) })
	s.wg.Wait()
}

// ListenAndServe listens on addr and serves until ctx is done.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("web: listen %s: %w", addr, err)
	}
	s.log.Info("web: access page listening", "addr", l.Addr().String(), "ingress", s.ingressOn)
	return s.Serve(ctx, l)
}
