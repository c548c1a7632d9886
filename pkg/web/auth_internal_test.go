package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestLoopbackHost: a page without a password answers loopback names only,
// so a site that rebinds its own name to 127.0.0.1 is refused.
func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:8080": true, "LOCALHOST": true, "[::1]:8080": true, "127.0.0.2": true,
		"evil.example:8080": false, "evil.example": false, "192.168.1.5:8080": false, "": false,
	} {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestEditKeepsDoorsItDoesNotShow: a card restricted to another bridge's
// door (a shared list) keeps that grant when edited here; dropping it would
// leave the list empty, which means every door.
func TestEditKeepsDoorsItDoesNotShow(t *testing.T) {
	form := url.Values{"name": {"Cleaner"}, "action": {"unlock"}, "enabled": {"on"}, "door": {"front"}}
	r := httptest.NewRequest(http.MethodPost, "/cards/04A1B2C3D4E5F6", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	c, errs := parseCardForm(r, Card{Doors: []string{"back-at-bridge-b", "front"}}, []DoorStatus{{ID: "front", Name: "Front door"}})
	if len(errs) != 0 {
		t.Fatalf("errors %v", errs)
	}
	if !slices.Equal(c.Doors, []string{"back-at-bridge-b", "front"}) {
		t.Errorf("doors %v, want the other bridge's door kept and front", c.Doors)
	}
	form.Del("door")
	r = httptest.NewRequest(http.MethodPost, "/cards/04A1B2C3D4E5F6", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c, _ = parseCardForm(r, Card{Doors: []string{"back-at-bridge-b", "front"}}, []DoorStatus{{ID: "front"}}); !slices.Equal(c.Doors, []string{"back-at-bridge-b"}) {
		t.Errorf("doors %v after unticking front, want only the other bridge's door", c.Doors)
	}
}
