package web

import "testing"

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
