package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// enrollment is the one enrollment the page shows: the events so far, and a
// broadcast to the event streams watching it.
type enrollment struct {
	mu     sync.Mutex
	gen    int // counts enrollments, so a page follows only its own
	events []EnrollEvent
	active bool
	wake   chan struct{} // closed at every new event
	done   chan struct{} // closed by Server.stop: the reader goroutine quits
}

func newEnrollment() enrollment {
	return enrollment{wake: make(chan struct{}), done: make(chan struct{})}
}

func (e *enrollment) running() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.active
}

// begin starts a new record, returning its generation.
func (e *enrollment) begin() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gen++
	e.events = nil
	e.active = true
	e.broadcast()
	return e.gen
}

func (e *enrollment) add(gen int, ev EnrollEvent, last bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if gen != e.gen {
		return
	}
	e.events = append(e.events, ev)
	if last {
		e.active = false
	}
	e.broadcast()
}

func (e *enrollment) broadcast() { close(e.wake); e.wake = make(chan struct{}) }

// since returns the events of gen from index i, whether gen is over, and a
// channel closed at the next change.
func (e *enrollment) since(gen, i int) ([]EnrollEvent, bool, <-chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if gen != e.gen {
		return nil, true, e.wake
	}
	var out []EnrollEvent
	if i < len(e.events) {
		out = append(out, e.events[i:]...)
	}
	return out, !e.active, e.wake
}

func (e *enrollment) snapshot() (int, []EnrollEvent, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gen, append([]EnrollEvent(nil), e.events...), e.active
}

// maxEnrollEvents bounds what one enrollment keeps (the service sends a
// handful).
const maxEnrollEvents = 16

func (s *Server) startEnroll(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(w, r) {
		return
	}
	v := whoFrom(r.Context())
	name := strings.TrimSpace(r.PostFormValue("name"))
	if msg := checkName(name); msg != "" {
		s.render(w, r, http.StatusUnprocessableEntity, "cards", s.cardsData(r, map[string]string{"name": msg}, name))
		return
	}
	ch, err := s.acc.Enroll(name, v.editor)
	if err != nil {
		s.render(w, r, http.StatusConflict, "cards", s.cardsData(r, map[string]string{"": "Cannot start an enrollment: " + err.Error()}, name))
		return
	}
	gen := s.enroll.begin()
	s.wg.Add(1)
	go s.follow(gen, ch)
	http.Redirect(w, r, fmt.Sprintf("%s/enroll?n=%d", v.base, gen), http.StatusSeeOther)
}

// follow reads one enrollment's events until the service closes the
// channel (after its final event) or the server stops.
func (s *Server) follow(gen int, ch <-chan EnrollEvent) {
	defer s.wg.Done()
	n := 0
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				s.enroll.add(gen, EnrollEvent{Kind: "cancelled", Message: "The enrollment ended."}, true)
				return
			}
			n++
			final := ev.Final() || n >= maxEnrollEvents
			s.enroll.add(gen, ev, final)
			if final {
				// Drain to the close without keeping anything more.
				for {
					select {
					case _, ok := <-ch:
						if !ok {
							return
						}
					case <-s.enroll.done:
						return
					}
				}
			}
		case <-s.enroll.done:
			return
		}
	}
}

func (s *Server) cancelEnroll(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(w, r) {
		return
	}
	s.acc.CancelEnroll()
	http.Redirect(w, r, whoFrom(r.Context()).base+"/enroll", http.StatusSeeOther)
}

func (s *Server) enrollPage(w http.ResponseWriter, r *http.Request) {
	gen, events, active := s.enroll.snapshot()
	var final *EnrollEvent
	if n := len(events); n > 0 && !active && events[n-1].Final() {
		final = &events[n-1]
	}
	s.render(w, r, http.StatusOK, "enroll", map[string]any{
		"Gen": gen, "Events": events, "Active": active, "Final": final,
	})
}

// sseHeartbeat keeps proxies from closing an idle stream; sseWriteTimeout
// bounds each write to a client that stopped reading.
const (
	sseHeartbeat    = 15 * time.Second
	sseWriteTimeout = 5 * time.Second
)

// stream prepares an event stream, or answers 503 when too many are open.
func (s *Server) stream(w http.ResponseWriter) (*http.ResponseController, func(), bool) {
	select {
	case s.sse <- struct{}{}:
	default:
		http.Error(w, "too many open pages", http.StatusServiceUnavailable)
		return nil, nil, false
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	return rc, func() { <-s.sse }, true
}

func writeEvent(w http.ResponseWriter, rc *http.ResponseController, name string, data any) error {
	_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b); err != nil {
		return err
	}
	return rc.Flush()
}

func (s *Server) enrollEvents(w http.ResponseWriter, r *http.Request) {
	var gen int
	if _, err := fmt.Sscan(r.URL.Query().Get("n"), &gen); err != nil {
		http.Error(w, "which enrollment? (n)", http.StatusBadRequest)
		return
	}
	rc, release, ok := s.stream(w)
	if !ok {
		return
	}
	defer release()
	tick := time.NewTicker(sseHeartbeat)
	defer tick.Stop()
	i := 0
	for {
		evs, over, wake := s.enroll.since(gen, i)
		for _, ev := range evs {
			if err := writeEvent(w, rc, "enroll", ev); err != nil {
				return
			}
		}
		i += len(evs)
		if over {
			_ = writeEvent(w, rc, "end", map[string]int{"n": gen})
			return
		}
		select {
		case <-wake:
		case <-tick.C:
			if err := writeEvent(w, rc, "ping", 0); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-s.enroll.done:
			return
		}
	}
}

// changeEvents signals every change of the cards or the log, for the pages
// to reload their tables.
func (s *Server) changeEvents(w http.ResponseWriter, r *http.Request) {
	ch, unsubscribe := s.acc.Changes()
	defer unsubscribe()
	rc, release, ok := s.stream(w)
	if !ok {
		return
	}
	defer release()
	tick := time.NewTicker(sseHeartbeat)
	defer tick.Stop()
	if err := writeEvent(w, rc, "hello", 0); err != nil {
		return
	}
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
			if err := writeEvent(w, rc, "change", 0); err != nil {
				return
			}
		case <-tick.C:
			if err := writeEvent(w, rc, "ping", 0); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-s.enroll.done:
			return
		}
	}
}
