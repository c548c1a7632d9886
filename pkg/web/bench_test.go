package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/web"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/web/webtest"
)

// BenchmarkCardsPage1000: the server's time for the cards list with 1,000
// cards (the bound: 100 ms).
func BenchmarkCardsPage1000(b *testing.B) {
	f := webtest.New(web.DoorStatus{ID: "door1", Name: "Front door", State: "LOCKED"}, web.DoorStatus{ID: "door2", Name: "Back door", State: "LOCKED"})
	for i := range 1000 {
		f.Add(web.Card{
			UID: fmt.Sprintf("04%012X", i), Name: fmt.Sprintf("Holder %04d", i), Action: "toggle", Enabled: i%7 != 0,
			ValidFrom: "2026-01-01", ValidUntil: "2026-12-31", Weekdays: []time.Weekday{time.Monday, time.Friday},
			From: "08:00", To: "18:00", Doors: []string{"door2"}, AddedBy: "Home Assistant", AddedAt: time.Now(),
		})
	}
	s, err := web.New(web.Options{Access: f, Ingress: true, Supervisor: "192.0.2.1"})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	req := httptest.NewRequest(http.MethodGet, "/cards", nil)
	req.RemoteAddr = "192.0.2.1:40000"
	req.Header.Set("X-Ingress-Path", "/api/hassio_ingress/abc")
	var size, rows int
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
		size, rows = rec.Body.Len(), strings.Count(rec.Body.String(), "<tr data-name=")
	}
	if rows != 1000 {
		b.Fatalf("%d rows on the page, want 1000", rows)
	}
	b.ReportMetric(float64(size)/1024, "KiB/page")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/page")
}
