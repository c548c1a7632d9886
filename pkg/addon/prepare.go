package addon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Environment variables this package reads itself; none is part of the
// bridge's configuration.
const (
	// EnvOptionsFile moves the options file (default DefaultOptionsFile).
	EnvOptionsFile = "OPTIONS_FILE"
	// EnvSupervisorToken is the token the Supervisor gives every add-on.
	EnvSupervisorToken = "SUPERVISOR_TOKEN"
	// EnvSupervisorURL moves the Supervisor's API (default DefaultSupervisorURL).
	EnvSupervisorURL = "SUPERVISOR_URL"
)

// Env is the process environment as Prepare sees it, so that tests need
// not touch the real one.
type Env struct {
	Lookup func(key string) (string, bool)
	Set    func(key, value string) error
	// HTTP asks the Supervisor; nil means a client with SupervisorTimeout.
	HTTP *http.Client
}

// ProcessEnv is the real environment of the process.
func ProcessEnv() Env {
	return Env{
		Lookup: os.LookupEnv,
		Set:    os.Setenv,
		HTTP:   &http.Client{Timeout: SupervisorTimeout},
	}
}

// Apply sets each of vars that the environment does not already set (a
// variable set to the empty string counts as unset, as in pkg/config) and
// returns the names it set, sorted, for a log line: never log the values.
// It stops at the first variable set refuses.
func Apply(vars map[string]string, lookup func(string) (string, bool), set func(k, v string) error) ([]string, error) {
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	done := names[:0:0]
	for _, k := range names {
		if isSet(lookup, k) {
			continue
		}
		if err := set(k, vars[k]); err != nil {
			return done, fmt.Errorf("set %s: %w", k, err)
		}
		done = append(done, k)
	}
	return done, nil
}

func isSet(lookup func(string) (string, bool), k string) bool {
	v, ok := lookup(k)
	return ok && strings.TrimSpace(v) != ""
}

func value(lookup func(string) (string, bool), k string) string {
	v, _ := lookup(k)
	return strings.TrimSpace(v)
}

// IngressListen is where the add-on serves Home Assistant's ingress: the
// manifest's ingress_port (its default, 8099), on every address of the
// container; pkg/web answers only the Supervisor's.
const IngressListen = ":8099"

// Prepare makes the environment complete before config.Load reads it:
//
//  1. It reads OPTIONS_FILE (default /data/options.json). When the file
//     exists the process runs as an add-on: every option becomes its
//     environment variable unless the environment already sets it, and
//     STATE_DIR defaults to the options file's folder (/data, the add-on's
//     persistent storage), and INGRESS_LISTEN is IngressListen (the
//     access page through Home Assistant's ingress).
//  2. When MQTT_URL is still unset and SUPERVISOR_TOKEN is set, it asks the
//     Supervisor (SUPERVISOR_URL, default http://supervisor) for the MQTT
//     service and sets MQTT_URL, and MQTT_USERNAME and MQTT_PASSWORD when
//     neither is set (a login is taken whole, never half from each source).
//
// It logs at info where the broker comes from, never a secret. The error
// joins one single-line error per problem; nothing is set when the options
// are invalid.
func Prepare(ctx context.Context, log *slog.Logger, env Env) error {
	log = log.With("component", "addon")
	path := value(env.Lookup, EnvOptionsFile)
	if path == "" {
		path = DefaultOptionsFile
	}
	vars, err := LoadOptions(path)
	if err != nil {
		return err
	}
	var fromOptions []string
	if vars != nil {
		vars["STATE_DIR"] = filepath.Dir(path)
		vars["INGRESS_LISTEN"] = IngressListen // the access page, in HA's sidebar
		fromOptions, err = Apply(vars, env.Lookup, env.Set)
		if err != nil {
			return fmt.Errorf("options: %w", err)
		}
		log.Info("running as a Home Assistant add-on", "options", path, "variables_set", len(fromOptions))
		log.Debug("variables set from the add-on options", "names", fromOptions)
	}

	if u := value(env.Lookup, "MQTT_URL"); u != "" {
		source := "environment"
		if slices.Contains(fromOptions, "MQTT_URL") {
			source = "add-on option mqtt_url"
		}
		log.Info("MQTT broker", "source", source, "url", redactURL(u))
		return nil
	}
	token := value(env.Lookup, EnvSupervisorToken)
	if token == "" {
		if vars != nil {
			log.Warn("MQTT broker: no mqtt_url option and no SUPERVISOR_TOKEN; using the default tcp://localhost:1883")
		}
		return nil
	}
	base := value(env.Lookup, EnvSupervisorURL)
	if base == "" {
		base = DefaultSupervisorURL
	}
	qctx, cancel := context.WithTimeout(ctx, SupervisorTimeout)
	defer cancel()
	b, err := MQTTService(qctx, env.HTTP, base, token)
	if err != nil {
		return fmt.Errorf("MQTT broker: %w; install and start the Mosquitto broker add-on, or set the mqtt_url option", err)
	}
	if err := env.Set("MQTT_URL", b.URL()); err != nil {
		return fmt.Errorf("MQTT broker: set MQTT_URL: %w", err)
	}
	login := "from the Supervisor"
	switch {
	case isSet(env.Lookup, "MQTT_USERNAME") || isSet(env.Lookup, "MQTT_PASSWORD"):
		login = "from the add-on options or the environment"
	case b.Username == "" && b.Password.IsZero():
		login = "none"
	default:
		if b.Username != "" {
			if err := env.Set("MQTT_USERNAME", b.Username); err != nil {
				return fmt.Errorf("MQTT broker: set MQTT_USERNAME: %w", err)
			}
		}
		if !b.Password.IsZero() {
			if err := env.Set("MQTT_PASSWORD", b.Password.Reveal()); err != nil {
				return fmt.Errorf("MQTT broker: set MQTT_PASSWORD: %w", err)
			}
		}
	}
	log.Info("MQTT broker", "source", "Supervisor (Mosquitto add-on)", "url", b.URL(), "login", login)
	return nil
}

// redactURL hides a password given in a URL's user info.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable, see the configuration check)"
	}
	return u.Redacted()
}
