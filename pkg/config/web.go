package config

// The access page (pkg/web): WEB_LISTEN and WEB_PASSWORD for a page of its
// own, INGRESS_LISTEN and INGRESS_SUPERVISOR for Home Assistant's ingress
// (the add-on sets INGRESS_LISTEN itself).

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// DefaultIngressSupervisor is the Supervisor's address on the add-ons'
// network: the only one ingress requests may come from.
const DefaultIngressSupervisor = "172.30.32.2"

// minWebPassword is the shortest WEB_PASSWORD accepted.
const minWebPassword = 8

// Web is the access page's configuration. Both listeners off: no page.
type Web struct {
	Listen     string        // WEB_LISTEN: host:port of the standalone page; "" = off
	Password   sesame.Secret // WEB_PASSWORD: required unless Listen is a loopback address
	Ingress    string        // INGRESS_LISTEN: host:port of the ingress listener; "" = off
	Supervisor string        // INGRESS_SUPERVISOR: the only address served on Ingress
}

// parseWeb checks the access page's variables.
func parseWeb(r raw) (Web, []error) {
	w := Web{Listen: r.WebListen, Password: sesame.NewSecret(r.WebPassword), Ingress: r.IngressListen, Supervisor: r.IngressSupervisor}
	var errs []error
	loopback := false
	if w.Listen != "" {
		var err error
		loopback, err = checkListen("WEB_LISTEN", w.Listen)
		if err != nil {
			errs = append(errs, err)
		} else if !loopback && w.Password.IsZero() {
			errs = append(errs, fmt.Errorf("WEB_LISTEN: %s is not a loopback address, so the page needs WEB_PASSWORD (or listen on 127.0.0.1)", quote(w.Listen)))
		}
	}
	if !w.Password.IsZero() && utf8.RuneCountInString(r.WebPassword) < minWebPassword {
		errs = append(errs, fmt.Errorf("WEB_PASSWORD: at least %d characters", minWebPassword)) // never the value
	}
	if w.Ingress != "" {
		if _, err := checkListen("INGRESS_LISTEN", w.Ingress); err != nil {
			errs = append(errs, err)
		}
	}
	if net.ParseIP(w.Supervisor) == nil {
		errs = append(errs, fmt.Errorf("INGRESS_SUPERVISOR: must be an IP address, got %s", quote(w.Supervisor)))
	}
	if w.Listen != "" && w.Listen == w.Ingress {
		errs = append(errs, errors.New("WEB_LISTEN: the same address as INGRESS_LISTEN; give the page its own port"))
	}
	return w, errs
}

// checkListen checks host:port and reports whether host is a loopback
// address (an empty host, 0.0.0.0 or [::] is every address).
func checkListen(key, s string) (bool, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return false, fmt.Errorf("%s: must be host:port or :port, like 127.0.0.1:8099, got %s", key, quote(s))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return false, fmt.Errorf("%s: port must be 1-65535, got %s", key, quote(port))
	}
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

func webWarnings(r raw) []string {
	if r.WebPassword != "" && r.WebListen == "" {
		return []string{"WEB_PASSWORD is set but WEB_LISTEN is not: without a listener there is no page to protect; set WEB_LISTEN (host:port)"}
	}
	return nil
}

// redacted is the page's part of Config.Redacted.
func (w Web) redacted() map[string]any {
	return map[string]any{
		"listen":     w.Listen,
		"password":   redact(w.Password),
		"ingress":    w.Ingress,
		"supervisor": w.Supervisor,
	}
}
