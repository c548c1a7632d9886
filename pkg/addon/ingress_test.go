package addon

import (
	"net"
	"strconv"
	"testing"
)

// The manifest's ingress port is where the binary listens, and the panel is
// for admins only.
func TestManifestIngress(t *testing.T) {
	m, _ := loadManifest(t)
	if m["ingress"] != true {
		t.Fatalf("ingress = %#v, want true", m["ingress"])
	}
	port := supervisorDefaults["ingress_port"]
	if p, ok := m["ingress_port"]; ok {
		port = p
	}
	_, want, err := net.SplitHostPort(IngressListen)
	if err != nil {
		t.Fatal(err)
	}
	if strconv.Itoa(port.(int)) != want {
		t.Errorf("ingress_port %v, but the binary listens on %s", port, IngressListen)
	}
	admin := supervisorDefaults["panel_admin"]
	if a, ok := m["panel_admin"]; ok {
		admin = a
	}
	if admin != true {
		t.Errorf("panel_admin %v: the door's access list is for admins only", admin)
	}
	for _, k := range []string{"panel_title", "panel_icon"} {
		if s, _ := m[k].(string); s == "" {
			t.Errorf("%s: not set", k)
		}
	}
	if _, ok := m["ports"]; ok {
		t.Error("ports: the page is reached through ingress only; publish no port")
	}
}
