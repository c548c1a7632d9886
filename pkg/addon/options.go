// Package addon runs the bridge as a Home Assistant add-on (an "app" in
// today's Supervisor): it turns the options the user filled in the add-on's
// form (/data/options.json) into the environment variables pkg/config reads,
// and asks the Supervisor for the MQTT broker's address and login, so that
// nobody types MQTT details. Outside Home Assistant nothing here happens:
// without an options file and without SUPERVISOR_TOKEN the environment is
// left as it is.
//
// The environment always wins: a variable already set is never replaced by
// an option or by the Supervisor's answer. Like pkg/config, a variable set
// to the empty string counts as unset.
//
// This package only moves values; it checks what it must to encode them
// (types, required fields of list items, separators the environment format
// cannot carry) and leaves the meaning of values (UUID format, URL schemes,
// pin names) to pkg/config, so each rule lives in one place. Errors name the
// option and never contain a secret.
package addon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultOptionsFile is where the Supervisor writes the validated options.
const DefaultOptionsFile = "/data/options.json"

// maxOptionsSize bounds what LoadOptions reads; real files are a few KiB.
const maxOptionsSize = 1 << 20

// kind is how an option's JSON value becomes an environment value.
type kind int

const (
	kindString  kind = iota + 1 // str, url, list(a|b): a JSON string
	kindSecret                  // password: a JSON string never repeated in errors
	kindInt                     // int: a JSON integer, written in decimal
	kindBool                    // bool: true or false
	kindLocks                   // [{name, uuid, secret}] -> UUID:SECRET[:NAME],...
	kindCards                   // [{uid, name}] -> UID:NAME,...
	kindSSLPath                 // str: a file name under /ssl, or an absolute path
)

// DefaultSSLDir is the add-on's view of Home Assistant's /ssl folder
// (config.yaml maps it read-only), where HA's own add-ons keep certificates.
// A relative file name in a TLS option is taken from there.
const DefaultSSLDir = "/ssl"

// option maps one add-on option to one environment variable of the
// contract in pkg/config. The manifest (config.yaml) must agree with this
// table; manifest_test.go checks it both ways.
type option struct {
	key      string // option key in config.yaml and options.json
	env      string // environment variable
	kind     kind
	optional bool // schema type ends in "?": no default, may be absent
}

// options is every option the add-on offers, in the order of config.yaml.
var options = []option{
	{key: "api_key", env: "SESAME_API_KEY", kind: kindSecret},
	{key: "api_url", env: "SESAME_API_URL", kind: kindString, optional: true},
	{key: "locks", env: "SESAME_LOCKS", kind: kindLocks},
	{key: "cards", env: "NFC_CARDS", kind: kindCards},
	{key: "nfc_device", env: "NFC_DEVICE", kind: kindString, optional: true},
	{key: "nfc_action", env: "NFC_ACTION", kind: kindString},
	{key: "nfc_lock", env: "NFC_LOCK", kind: kindString, optional: true},
	{key: "nfc_tag_scanner", env: "NFC_TAG_SCANNER", kind: kindString},
	{key: "nfc_hold_off", env: "NFC_HOLD_OFF", kind: kindString, optional: true},
	{key: "led_green_pin", env: "LED_GREEN_PIN", kind: kindString, optional: true},
	{key: "led_red_pin", env: "LED_RED_PIN", kind: kindString, optional: true},
	{key: "buzzer_pin", env: "BUZZER_PIN", kind: kindString, optional: true},
	{key: "led_active_low", env: "LED_ACTIVE_LOW", kind: kindBool},
	{key: "monthly_api_budget", env: "API_MONTHLY_BUDGET", kind: kindInt},
	{key: "push", env: "SESAME_PUSH", kind: kindBool},
	{key: "push_endpoint", env: "SESAME_PUSH_ENDPOINT", kind: kindString, optional: true},
	{key: "push_pool_id", env: "SESAME_PUSH_POOL_ID", kind: kindString, optional: true},
	{key: "log_level", env: "LOG_LEVEL", kind: kindString},
	{key: "mqtt_url", env: "MQTT_URL", kind: kindString, optional: true},
	{key: "mqtt_username", env: "MQTT_USERNAME", kind: kindString, optional: true},
	{key: "mqtt_password", env: "MQTT_PASSWORD", kind: kindSecret, optional: true},
	{key: "mqtt_ca_file", env: "MQTT_CA_FILE", kind: kindSSLPath, optional: true},
	{key: "mqtt_client_cert", env: "MQTT_CLIENT_CERT", kind: kindSSLPath, optional: true},
	{key: "mqtt_client_key", env: "MQTT_CLIENT_KEY", kind: kindSSLPath, optional: true},
	{key: "mqtt_discovery_prefix", env: "MQTT_DISCOVERY_PREFIX", kind: kindString, optional: true},
	{key: "mqtt_base_topic", env: "MQTT_BASE_TOPIC", kind: kindString, optional: true},
}

// OptionFor returns the add-on option that sets the environment variable
// env, so that a configuration error about SESAME_LOCKS can also name the
// option ("locks") the user filled in.
func OptionFor(env string) (string, bool) {
	for _, o := range options {
		if o.env == env {
			return o.key, true
		}
	}
	return "", false
}

// LoadOptions reads the Supervisor's options file and returns the
// environment variables it sets: variable name -> value, for every option
// that has a value (null, "" and empty lists count as unset). A missing file
// returns (nil, nil): the process is not running as an add-on.
//
// The error, if any, joins one single-line error per problem, each starting
// with "options: " and naming the option, list items counted from 1 as the
// add-on form shows them (and as pkg/config counts SESAME_LOCKS entries),
// e.g. "options: locks[2].uuid: required". No error contains a value.
func LoadOptions(path string) (map[string]string, error) {
	return loadOptions(path, DefaultSSLDir)
}

// loadOptions is LoadOptions with the folder relative TLS file names are
// resolved against.
func loadOptions(path, sslDir string) (map[string]string, error) {
	raw, err := readOptions(path)
	if err != nil || raw == nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, jsonError(path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("options: %s: invalid JSON: more than one value", path)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("options: %s: must be a JSON object", path)
	}

	vars := map[string]string{}
	var errs []error
	known := map[string]bool{}
	for _, o := range options {
		known[o.key] = true
		v, present := obj[o.key]
		if !present || v == nil {
			continue
		}
		s, encErrs := encode(o, v, sslDir)
		if len(encErrs) > 0 {
			errs = append(errs, encErrs...)
			continue
		}
		if s != "" {
			vars[o.env] = s
		}
	}
	for _, k := range sortedKeys(obj) {
		if !known[k] {
			errs = append(errs, fmt.Errorf("options: %s: unknown option", printable(k)))
		}
	}
	if len(errs) > 0 {
		// Flat: every element is one line, so a caller that prints
		// Unwrap() []error one per line gets one problem per line.
		return nil, errors.Join(errs...)
	}
	return vars, nil
}

// readOptions returns the file's bytes, or nil without error if it does not exist.
func readOptions(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("options: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxOptionsSize+1))
	if err != nil {
		return nil, fmt.Errorf("options: read %s: %w", path, err)
	}
	if len(data) > maxOptionsSize {
		return nil, fmt.Errorf("options: %s: larger than %d bytes", path, maxOptionsSize)
	}
	return data, nil
}

// jsonError reports where the JSON broke without quoting any of it: a
// syntax error's text can carry a character of a secret.
func jsonError(path string, err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("options: %s: invalid JSON at byte %d", path, syn.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("options: %s: invalid JSON: unexpected end of file", path)
	}
	return fmt.Errorf("options: %s: invalid JSON", path)
}

// encode turns one option's JSON value into its environment value.
func encode(o option, v any, sslDir string) (string, []error) {
	switch o.kind {
	case kindSSLPath:
		s, errs := encode(option{key: o.key, kind: kindString}, v, sslDir)
		if len(errs) > 0 || s == "" || filepath.IsAbs(s) {
			return s, errs
		}
		// ca.crt means /ssl/ca.crt, as HA's own add-ons take certfile
		// and keyfile; whether the file exists is pkg/config's to say.
		return filepath.Join(sslDir, s), nil
	case kindString, kindSecret:
		s, ok := v.(string)
		if !ok {
			return "", []error{fmt.Errorf("options: %s: must be a string", o.key)}
		}
		if strings.ContainsRune(s, 0) {
			return "", []error{fmt.Errorf("options: %s: must not contain a NUL character", o.key)}
		}
		return strings.TrimSpace(s), nil
	case kindInt:
		n, ok := v.(json.Number)
		if !ok {
			return "", []error{fmt.Errorf("options: %s: must be a whole number", o.key)}
		}
		i, err := n.Int64()
		if err != nil {
			return "", []error{fmt.Errorf("options: %s: must be a whole number", o.key)}
		}
		return fmt.Sprint(i), nil
	case kindBool:
		b, ok := v.(bool)
		if !ok {
			return "", []error{fmt.Errorf("options: %s: must be true or false", o.key)}
		}
		return fmt.Sprint(b), nil
	case kindLocks:
		return encodeList(o.key, v, lockFields, encodeLock)
	case kindCards:
		return encodeList(o.key, v, cardFields, encodeCard)
	}
	return "", []error{fmt.Errorf("options: %s: no encoding for this option", o.key)}
}

// field is one key of a list item.
type field struct {
	name   string
	secret bool // never repeated, and separators are forbidden outright
}

var (
	lockFields = []field{{name: "name"}, {name: "uuid"}, {name: "secret", secret: true}}
	cardFields = []field{{name: "uid"}, {name: "name"}}
)

// itemEncoder encodes one checked list item; it skips the fields already
// reported (missing, null, not a string), so each problem is told once.
type itemEncoder func(at string, item map[string]string, reported map[string]bool) (string, []error)

// encodeList checks every item of a list of objects and joins the encoded
// items with commas. Every item is checked fully, so one run reports every
// problem.
func encodeList(key string, v any, fields []field, enc itemEncoder) (string, []error) {
	list, ok := v.([]any)
	if !ok {
		return "", []error{fmt.Errorf("options: %s: must be a list", key)}
	}
	var (
		parts []string
		errs  []error
	)
	for i, it := range list {
		at := fmt.Sprintf("%s[%d]", key, i+1)
		obj, ok := it.(map[string]any)
		if !ok {
			errs = append(errs, fmt.Errorf("options: %s: must be an object with %s", at, fieldNames(fields)))
			continue
		}
		item := map[string]string{}
		reported := map[string]bool{}
		bad := func(f string, err error) {
			errs = append(errs, err)
			reported[f] = true
		}
		allowed := map[string]bool{}
		for _, f := range fields {
			allowed[f.name] = true
			raw, present := obj[f.name]
			if !present || raw == nil {
				bad(f.name, fmt.Errorf("options: %s.%s: required", at, f.name))
				continue
			}
			s, ok := raw.(string)
			if !ok {
				bad(f.name, fmt.Errorf("options: %s.%s: must be a string", at, f.name))
				continue
			}
			if strings.ContainsRune(s, 0) {
				bad(f.name, fmt.Errorf("options: %s.%s: must not contain a NUL character", at, f.name))
				continue
			}
			item[f.name] = strings.TrimSpace(s)
		}
		unknown := false
		for _, k := range sortedKeys(obj) {
			if !allowed[k] {
				errs = append(errs, fmt.Errorf("options: %s.%s: unknown field", at, printable(k)))
				unknown = true
			}
		}
		s, encErrs := enc(at, item, reported)
		errs = append(errs, encErrs...)
		if len(encErrs) == 0 && len(reported) == 0 && !unknown {
			parts = append(parts, s)
		}
	}
	if len(errs) > 0 {
		return "", errs
	}
	return strings.Join(parts, ","), nil
}

// encodeLock gives UUID:SECRET[:NAME]. pkg/config splits an entry on its
// first two colons, so the name may hold ':' but no field may hold ',', and
// the UUID and the secret no ':' either.
func encodeLock(at string, it map[string]string, reported map[string]bool) (string, []error) {
	var errs []error
	switch {
	case reported["uuid"]:
	case it["uuid"] == "":
		errs = append(errs, fmt.Errorf("options: %s.uuid: required", at))
	case strings.ContainsAny(it["uuid"], ",:"):
		errs = append(errs, fmt.Errorf("options: %s.uuid: must not contain ',' or ':'", at))
	}
	switch {
	case reported["secret"]:
	case it["secret"] == "":
		errs = append(errs, fmt.Errorf("options: %s.secret: required", at))
	case strings.ContainsAny(it["secret"], ",:"):
		errs = append(errs, fmt.Errorf("options: %s.secret: must not contain ',' or ':'", at))
	}
	if !reported["name"] && strings.Contains(it["name"], ",") {
		errs = append(errs, fmt.Errorf("options: %s.name: must not contain ',' (SESAME_LOCKS separates locks with commas)", at))
	}
	if len(errs) > 0 {
		return "", errs
	}
	s := it["uuid"] + ":" + it["secret"]
	if it["name"] != "" {
		s += ":" + it["name"]
	}
	return s, nil
}

// encodeCard gives UID:NAME. The UID is written as pkg/config expects it,
// uppercase hex without separators, so "04:a2:3b:c4" as a phone app shows
// it works too; whether it is hex is pkg/config's to say.
func encodeCard(at string, it map[string]string, reported map[string]bool) (string, []error) {
	var errs []error
	uid := strings.ToUpper(strings.Map(func(r rune) rune {
		switch r {
		case ':', '-', ' ', '\t':
			return -1
		}
		return r
	}, it["uid"]))
	switch {
	case reported["uid"]:
	case uid == "":
		errs = append(errs, fmt.Errorf("options: %s.uid: required", at))
	case strings.Contains(uid, ","):
		errs = append(errs, fmt.Errorf("options: %s.uid: must not contain ','", at))
	}
	switch {
	case reported["name"]:
	case it["name"] == "":
		errs = append(errs, fmt.Errorf("options: %s.name: required", at))
	case strings.Contains(it["name"], ","):
		errs = append(errs, fmt.Errorf("options: %s.name: must not contain ',' (NFC_CARDS separates cards with commas)", at))
	}
	if len(errs) > 0 {
		return "", errs
	}
	return uid + ":" + it["name"], nil
}

func fieldNames(fields []field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// printable quotes a key only when it would otherwise break the one-line
// format (an unknown key comes from the file, not from this code).
func printable(k string) string {
	if k == "" || strings.ContainsFunc(k, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ' ' }) {
		return fmt.Sprintf("%q", k)
	}
	return k
}
