package addon

// The add-on manifest (config.yaml at the repository root) checked against
// the Supervisor's rules (home-assistant/supervisor: supervisor/apps/
// validate.py, apps/options.py) and the add-on linter's
// (frenck/action-addon-linter: src/config.schema.json, src/lint.py), and
// against this package's options table. contract_test.go ties the table to
// pkg/config; repo_test.go checks the files around the manifest. Together
// they keep the form the user fills in, this package and the binary from
// drifting apart.

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const repoRoot = "../.."

func loadYAML(t *testing.T, path string) (map[string]any, *yaml.Node) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m, &n
}

func loadManifest(t *testing.T) (map[string]any, *yaml.Node) {
	t.Helper()
	return loadYAML(t, filepath.Join(repoRoot, "config.yaml"))
}

// keysInOrder lists the keys of the mapping at path (e.g. "schema") as
// written in the file.
func keysInOrder(t *testing.T, doc *yaml.Node, path string) []string {
	t.Helper()
	n := doc
	if n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
	for _, p := range strings.Split(path, ".") {
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == p {
				next = n.Content[i+1]
			}
		}
		if next == nil || next.Kind != yaml.MappingNode {
			t.Fatalf("config.yaml: %s is not a mapping", path)
		}
		n = next
	}
	var keys []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i].Value)
	}
	return keys
}

// linterKeys are the keys the add-on linter's schema allows
// (additionalProperties: false), less the deprecated ones below.
var linterKeys = []string{
	"apparmor", "arch", "audio", "auth_api", "backup", "backup_exclude", "backup_pre",
	"backup_post", "boot", "breaking_versions", "description", "devices", "devicetree",
	"discovery", "docker_api", "environment", "full_access", "gpio", "hassio_api",
	"hassio_role", "homeassistant", "homeassistant_api", "host_dbus", "host_ipc",
	"host_network", "host_pid", "host_uts", "image", "ingress", "ingress_entry",
	"ingress_port", "ingress_stream", "init", "journald", "kernel_modules", "legacy",
	"machine", "map", "name", "options", "panel_admin", "panel_icon", "panel_title",
	"ports", "ports_description", "privileged", "realtime", "schema", "services", "slug",
	"stage", "startup", "stdin", "timeout", "tmpfs", "uart", "udev", "ulimits", "url",
	"usb", "version", "video", "webui",
}

// rejectedKeys are deprecated or obsolete: the linter errors or Supervisor
// ignores them.
var rejectedKeys = map[string]string{
	"advanced":   "deprecated and ignored since Supervisor 2026.03",
	"auto_uart":  "replaced by uart",
	"codenotary": "no longer used",
	"watchdog":   "obsolete: use a Docker HEALTHCHECK",
}

// supervisorDefaults are the defaults of _SCHEMA_APP_CONFIG in
// supervisor/apps/validate.py (and the linter's "default" values). The
// linter rejects a key set to its default.
var supervisorDefaults = map[string]any{
	"startup": "application", "boot": "auto", "init": true, "advanced": false,
	"stage": "stable", "ingress": false, "ingress_port": 8099, "ingress_stream": false,
	"panel_icon": "mdi:puzzle", "panel_admin": true, "host_network": false,
	"host_pid": false, "host_ipc": false, "host_uts": false, "host_dbus": false,
	"udev": false, "tmpfs": false, "map": []any{}, "apparmor": true,
	"full_access": false, "audio": false, "video": false, "gpio": false, "usb": false,
	"uart": false, "devicetree": false, "kernel_modules": false, "realtime": false,
	"hassio_api": false, "hassio_role": "default", "homeassistant_api": false,
	"stdin": false, "legacy": false, "docker_api": false, "auth_api": false,
	"backup": "hot", "options": map[string]any{}, "schema": map[string]any{},
	"ulimits": map[string]any{}, "timeout": 10, "journald": false,
	"breaking_versions": []any{}, "auto_uart": false,
}

// capabilities are the values privileged accepts (supervisor/docker/const.py).
var capabilities = []string{
	"BPF", "CHECKPOINT_RESTORE", "DAC_READ_SEARCH", "IPC_LOCK", "NET_ADMIN", "NET_RAW",
	"PERFMON", "SYS_ADMIN", "SYS_MODULE", "SYS_NICE", "SYS_PTRACE", "SYS_RAWIO",
	"SYS_RESOURCE", "SYS_TIME",
}

var (
	reSlug    = regexp.MustCompile(`^[-_.A-Za-z0-9]+$`)
	reService = regexp.MustCompile(`^(mqtt|mysql):(provide|want|need)$`)
	reImage   = regexp.MustCompile(`^[a-z0-9{][a-z0-9.\-_{}]*$`)
	reVersion = regexp.MustCompile(`^\d+\.\d+\.\d+$`)
	// RE_SCHEMA_ELEMENT of supervisor/apps/options.py, less its empty
	// alternative (an empty type passes the manifest check there but fails
	// every option at start).
	reSchemaElement = regexp.MustCompile(`^(?:` +
		`bool|email|url|port` +
		`|device(?:\((?P<filter>subsystem=[a-z]+)\))?` +
		`|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?` +
		`|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?` +
		`|int(?:\((?P<i_min>-?\d+)?,(?P<i_max>-?\d+)?\))?` +
		`|float(?:\((?P<f_min>-?\d*\.?\d+)?,(?P<f_max>-?\d*\.?\d+)?\))?` +
		`|match\((?P<match>.*)\)` +
		`|list\((?P<list>.+)\)` +
		`)\??$`)
)

func TestManifestSupervisorRules(t *testing.T) {
	m, _ := loadManifest(t)

	for _, k := range []string{"name", "version", "slug", "description"} {
		if s, ok := m[k].(string); !ok || strings.TrimSpace(s) == "" {
			t.Errorf("%s: required, a non-empty string (got %#v)", k, m[k])
		}
	}
	if s, _ := m["slug"].(string); !reSlug.MatchString(s) {
		t.Errorf("slug %q does not match %s", s, reSlug)
	}
	if v, _ := m["version"].(string); !reVersion.MatchString(v) {
		t.Errorf("version %q: want a quoted MAJOR.MINOR.PATCH (it is the image tag)", v)
	}
	arch, _ := m["arch"].([]any)
	if !reflect.DeepEqual(arch, []any{"aarch64", "amd64"}) {
		t.Errorf("arch = %v, want [aarch64 amd64] (the architectures Supervisor still supports)", m["arch"])
	}

	for k := range m {
		if why, bad := rejectedKeys[k]; bad {
			t.Errorf("%s: %s", k, why)
		} else if !slices.Contains(linterKeys, k) {
			t.Errorf("%s: not a key the add-on linter knows", k)
		}
		if def, ok := supervisorDefaults[k]; ok && reflect.DeepEqual(normalize(m[k]), def) {
			t.Errorf("%s: %v is Supervisor's default; the linter rejects it, remove the key", k, m[k])
		}
	}

	services, _ := m["services"].([]any)
	if !slices.Contains(services, any("mqtt:need")) {
		t.Errorf("services = %v: want mqtt:need (the Supervisor hands out the broker's login)", m["services"])
	}
	for _, s := range services {
		if str, _ := s.(string); !reService.MatchString(str) {
			t.Errorf("services: %v does not match %s", s, reService)
		}
	}
	if p, ok := m["privileged"]; ok {
		list, _ := p.([]any)
		if len(list) == 0 {
			t.Errorf("privileged: %v, want a list of capabilities", p)
		}
		for _, c := range list {
			if s, _ := c.(string); !slices.Contains(capabilities, s) {
				t.Errorf("privileged: %v is not a capability Supervisor knows", c)
			}
		}
	}
	if m["full_access"] == true {
		t.Error("full_access: use usb, uart, gpio and devices instead")
	}
	if d, ok := m["devices"]; ok {
		list, _ := d.([]any)
		for _, p := range list {
			s, _ := p.(string)
			if !strings.HasPrefix(s, "/dev/") || strings.Contains(s, ":") {
				t.Errorf("devices: %v: want a host path under /dev, without the old :rwm suffix", p)
			}
		}
	}
	for _, k := range []string{"usb", "uart", "gpio"} {
		if m[k] != true {
			t.Errorf("%s: want true, a reader or the LEDs need it", k)
		}
	}
	if s, _ := m["stage"].(string); s != "" && !slices.Contains([]string{"stable", "experimental", "deprecated"}, s) {
		t.Errorf("stage %q", s)
	}
	if s, _ := m["startup"].(string); s != "" && !slices.Contains([]string{"initialize", "system", "services", "application", "once"}, s) {
		t.Errorf("startup %q", s)
	}
	if s, _ := m["boot"].(string); s != "" && !slices.Contains([]string{"auto", "manual", "manual_only"}, s) {
		t.Errorf("boot %q", s)
	}
	if u, _ := m["url"].(string); !isAbsoluteURL(u, "https") {
		t.Errorf("url %q: want an absolute https URL", u)
	}
	if v, _ := m["homeassistant"].(string); !reVersion.MatchString(v) {
		t.Errorf("homeassistant %q: want a quoted minimum Core version like 2025.10.0", v)
	}
	// No image is published yet: the Supervisor builds the Dockerfile. Once
	// one is, its name must be well-formed.
	if v, ok := m["image"]; ok {
		checkImage(t, v)
	}
}

func checkImage(t *testing.T, v any) {
	t.Helper()
	img, ok := v.(string)
	if !ok || img == "" {
		t.Errorf("image %v: want the published image name", v)
		return
	}
	if img != strings.ToLower(img) {
		t.Errorf("image %q: must be lowercase", img)
	}
	parts := strings.Split(img, "/")
	if len(parts) < 2 || !strings.Contains(parts[0], ".") {
		t.Errorf("image %q: want registry/owner/name", img)
		return
	}
	for _, c := range parts[1:] {
		if strings.Contains(c, ":") {
			t.Errorf("image %q: no tag, the tag is the version", img)
		}
		if !reImage.MatchString(c) {
			t.Errorf("image %q: component %q does not match %s", img, c, reImage)
		}
	}
}

func isAbsoluteURL(s, scheme string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == scheme && u.Host != ""
}

// normalize turns YAML's typed empties into the forms supervisorDefaults uses.
func normalize(v any) any {
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			return []any{}
		}
	case map[string]any:
		if len(x) == 0 {
			return map[string]any{}
		}
	}
	return v
}

func TestManifestSchemaAndOptions(t *testing.T) {
	m, _ := loadManifest(t)
	schema, ok := m["schema"].(map[string]any)
	if !ok || len(schema) == 0 {
		t.Fatalf("schema: %#v, want a mapping", m["schema"])
	}
	opts, ok := m["options"].(map[string]any)
	if !ok {
		t.Fatalf("options: %#v, want a mapping", m["options"])
	}
	for k, typ := range schema {
		if err := checkSchemaElement(typ, 0, false); err != nil {
			t.Errorf("schema.%s: %v", k, err)
		}
	}
	for k, v := range opts {
		typ, ok := schema[k]
		if !ok {
			t.Errorf("options.%s: not in schema (Supervisor would drop it)", k)
			continue
		}
		if isOptional(typ) {
			t.Errorf("options.%s: an optional (?) option must have no default, or it becomes required", k)
		}
		if err := checkValue(typ, v, true); err != nil {
			t.Errorf("options.%s: default %v does not pass its schema %v: %v", k, v, typ, err)
		}
	}
	// A required option is listed in options (null where no default makes
	// sense), so the form starts from the defaults the binary has too.
	for k, typ := range schema {
		if _, ok := opts[k]; !ok && !isOptional(typ) {
			t.Errorf("schema.%s: required but missing from options (give a default or null)", k)
		}
	}
}

// isOptional reports a schema entry whose type ends in "?"; for a list the
// element decides, as in Supervisor's _check_missing_options.
func isOptional(typ any) bool {
	if l, ok := typ.([]any); ok && len(l) > 0 {
		typ = l[0]
	}
	s, ok := typ.(string)
	return ok && strings.HasSuffix(s, "?")
}

// checkSchemaElement follows SCHEMA_ELEMENT of supervisor/apps/validate.py:
// a type string, a one-element list of a type or a mapping (not of a list),
// or a mapping; and the documented maximum nesting depth of two.
func checkSchemaElement(v any, depth int, inList bool) error {
	switch x := v.(type) {
	case string:
		if !reSchemaElement.MatchString(x) {
			return fmt.Errorf("%q is not a Supervisor option type", x)
		}
		if m := reSchemaElement.FindStringSubmatch(x); m != nil {
			if re := m[reSchemaElement.SubexpIndex("match")]; re != "" {
				if _, err := regexp.Compile(re); err != nil {
					return fmt.Errorf("%q: %v", x, err)
				}
			}
		}
		return nil
	case []any:
		if inList {
			return fmt.Errorf("a list may not directly contain another list")
		}
		if depth+1 > 2 {
			return fmt.Errorf("nested deeper than two levels")
		}
		if len(x) != 1 {
			return fmt.Errorf("a list type has exactly one element, got %d", len(x))
		}
		return checkSchemaElement(x[0], depth+1, true)
	case map[string]any:
		if depth+1 > 2 {
			return fmt.Errorf("nested deeper than two levels")
		}
		if len(x) == 0 {
			return fmt.Errorf("empty mapping")
		}
		for k, e := range x {
			if err := checkSchemaElement(e, depth+1, false); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		return nil
	}
	return fmt.Errorf("%#v is neither a type, a list nor a mapping", v)
}

// checkValue validates a default as Supervisor's AppOptions would at start.
// top allows null for a required top-level option: the documented way to
// make the user fill it in.
func checkValue(typ, v any, top bool) error {
	switch x := typ.(type) {
	case []any:
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("not a list")
		}
		for i, e := range list {
			if err := checkValue(x[0], e, false); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return nil
	case map[string]any:
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("not a mapping")
		}
		for k, e := range obj {
			sub, ok := x[k]
			if !ok {
				return fmt.Errorf("%s: not in the schema", k)
			}
			if err := checkValue(sub, e, false); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		for k, sub := range x {
			if _, ok := obj[k]; !ok && !isOptional(sub) {
				return fmt.Errorf("%s: missing", k)
			}
		}
		return nil
	}
	s := typ.(string)
	if v == nil {
		if top {
			return nil
		}
		return fmt.Errorf("null")
	}
	m := reSchemaElement.FindStringSubmatch(s)
	group := func(name string) string { return m[reSchemaElement.SubexpIndex(name)] }
	base := strings.TrimSuffix(s, "?")
	switch {
	case strings.HasPrefix(base, "str"), strings.HasPrefix(base, "password"):
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("not a string")
		}
		return inRange(float64(len(str)), group("s_min")+group("p_min"), group("s_max")+group("p_max"))
	case strings.HasPrefix(base, "int"):
		n, ok := v.(int)
		if !ok {
			return fmt.Errorf("not an integer")
		}
		return inRange(float64(n), group("i_min"), group("i_max"))
	case strings.HasPrefix(base, "float"):
		switch n := v.(type) {
		case int:
			return inRange(float64(n), group("f_min"), group("f_max"))
		case float64:
			return inRange(n, group("f_min"), group("f_max"))
		}
		return fmt.Errorf("not a number")
	case base == "bool":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("not a bool")
		}
	case base == "port":
		if n, ok := v.(int); !ok || n < 1 || n > 65535 {
			return fmt.Errorf("not a port")
		}
	case base == "url":
		str, _ := v.(string)
		if u, err := url.Parse(str); err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("not a URL")
		}
	case strings.HasPrefix(base, "list("):
		str, _ := v.(string)
		if !slices.Contains(strings.Split(group("list"), "|"), str) {
			return fmt.Errorf("%v is not one of %s", v, group("list"))
		}
	case strings.HasPrefix(base, "match("):
		str, _ := v.(string)
		if !regexp.MustCompile(group("match")).MatchString(str) {
			return fmt.Errorf("does not match")
		}
	default: // email, device: nothing to check in a default
		if _, ok := v.(string); !ok {
			return fmt.Errorf("not a string")
		}
	}
	return nil
}

func inRange(n float64, lo, hi string) error {
	if lo != "" {
		if l, _ := strconv.ParseFloat(lo, 64); n < l {
			return fmt.Errorf("%v is below %s", n, lo)
		}
	}
	if hi != "" {
		if h, _ := strconv.ParseFloat(hi, 64); n > h {
			return fmt.Errorf("%v is above %s", n, hi)
		}
	}
	return nil
}

func TestManifestCheckerRejectsBadSchemas(t *testing.T) {
	bad := map[string]any{
		"empty type":        "",
		"unknown type":      "string",
		"list of lists":     []any{[]any{"str"}},
		"too deep":          []any{map[string]any{"x": []any{"str"}}},
		"dict too deep":     map[string]any{"a": map[string]any{"b": map[string]any{"c": "str"}}},
		"two list elements": []any{"str", "int"},
		"bad match":         "match([)",
	}
	for name, typ := range bad {
		if err := checkSchemaElement(typ, 0, false); err == nil {
			t.Errorf("%s: %v accepted", name, typ)
		}
	}
	for _, good := range []any{"int(1,)", "str?", "list(a|b)", "match(^\\d+$)", "device(subsystem=tty)", []any{map[string]any{"a": "str"}}, map[string]any{"a": "float(0.5,2)"}} {
		if err := checkSchemaElement(good, 0, false); err != nil {
			t.Errorf("%v rejected: %v", good, err)
		}
	}
	if err := checkValue("int(1,)", 0, true); err == nil {
		t.Error("int(1,) accepted 0")
	}
	if err := checkValue([]any{map[string]any{"a": "str", "b": "str?"}}, []any{map[string]any{"b": "x"}}, true); err == nil {
		t.Error("list item without its required field accepted")
	}
}

// The schema and the options table of this package agree: same keys in the
// same order, same optionality, and types that encode as the table says.
func TestManifestMatchesOptionTable(t *testing.T) {
	m, doc := loadManifest(t)
	schema := m["schema"].(map[string]any)

	var tableKeys []string
	for _, o := range options {
		tableKeys = append(tableKeys, o.key)
	}
	if got := keysInOrder(t, doc, "schema"); !reflect.DeepEqual(got, tableKeys) {
		t.Errorf("schema keys (config.yaml order):\n %v\noptions table:\n %v", got, tableKeys)
	}
	for _, o := range options {
		typ, ok := schema[o.key]
		if !ok {
			continue // reported above
		}
		if isOptional(typ) != o.optional {
			t.Errorf("%s: schema %v, table optional=%v", o.key, typ, o.optional)
		}
		if err := kindMatches(o.kind, typ); err != nil {
			t.Errorf("%s: schema %v: %v", o.key, typ, err)
		}
	}
}

func kindMatches(k kind, typ any) error {
	base := func(v any) string { s, _ := v.(string); return strings.TrimSuffix(s, "?") }
	switch k {
	case kindSecret:
		if !strings.HasPrefix(base(typ), "password") {
			return fmt.Errorf("a secret must be a password field (masked in the form)")
		}
	case kindString:
		b := base(typ)
		if !(strings.HasPrefix(b, "str") || b == "url" || strings.HasPrefix(b, "list(") || strings.HasPrefix(b, "match(")) {
			return fmt.Errorf("a string option needs str, url, list(...) or match(...)")
		}
	case kindInt:
		if !strings.HasPrefix(base(typ), "int") {
			return fmt.Errorf("want int")
		}
	case kindBool:
		if base(typ) != "bool" {
			return fmt.Errorf("want bool")
		}
	case kindLocks:
		return itemMatches(typ, lockFields)
	case kindCards:
		return itemMatches(typ, cardFields)
	case kindSSLPath:
		if base(typ) != "str" {
			return fmt.Errorf("a file under /ssl is a plain str (a path, not a url)")
		}
	default:
		return fmt.Errorf("unknown kind %d", k)
	}
	return nil
}

func itemMatches(typ any, fields []field) error {
	l, ok := typ.([]any)
	if !ok || len(l) != 1 {
		return fmt.Errorf("want a list of mappings")
	}
	item, ok := l[0].(map[string]any)
	if !ok {
		return fmt.Errorf("want a list of mappings")
	}
	var want, got []string
	for _, f := range fields {
		want = append(want, f.name)
		s, _ := item[f.name].(string)
		switch {
		case f.secret && s != "password":
			return fmt.Errorf("%s: want password", f.name)
		case !f.secret && s != "str":
			return fmt.Errorf("%s: want str (required: this package requires it)", f.name)
		}
	}
	for k := range item {
		got = append(got, k)
	}
	sort.Strings(want)
	sort.Strings(got)
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("fields %v, the encoder knows %v", got, want)
	}
	return nil
}

// reVolume is RE_VOLUME of supervisor/apps/validate.py (the string form of
// a map entry); mapTypes is its MappingType.
var (
	reVolume = regexp.MustCompile(`^(data|config|ssl|addons|backup|share|media|homeassistant_config|all_addon_configs|addon_config)(?::(rw|ro))?$`)
	mapTypes = []string{"data", "config", "ssl", "addons", "backup", "share", "media", "homeassistant_config", "all_addon_configs", "addon_config"}
)

// The manifest maps Home Assistant's /ssl folder, read-only, for the TLS
// options, and nothing else; every entry is one Supervisor accepts (it
// silently skips one it does not) and the add-on linter's schema too
// (frenck/action-addon-linter src/config.schema.json: a list of strings
// matching its pattern, or of {type, read_only, path} mappings).
func TestManifestMapsSSLReadOnly(t *testing.T) {
	m, _ := loadManifest(t)
	entries, ok := m["map"].([]any)
	if !ok || len(entries) == 0 {
		t.Fatalf("map: %#v, want a list with ssl (the TLS options read /ssl)", m["map"])
	}
	var types []string
	for i, e := range entries {
		switch x := e.(type) {
		case string:
			g := reVolume.FindStringSubmatch(x)
			if g == nil {
				t.Errorf("map[%d] %q does not match Supervisor's RE_VOLUME", i, x)
				continue
			}
			if g[2] == "rw" {
				t.Errorf("map[%d] %q: the add-on only reads certificates; map it read-only", i, x)
			}
			types = append(types, g[1])
		case map[string]any:
			typ, _ := x["type"].(string)
			if !slices.Contains(mapTypes, typ) {
				t.Errorf("map[%d]: type %v is not one of %v", i, x["type"], mapTypes)
			}
			for k, v := range x {
				switch k {
				case "type":
				case "read_only":
					if v != true {
						t.Errorf("map[%d]: read_only %v; the add-on only reads certificates (leave the key out: true is the default)", i, v)
					}
				case "path":
					if s, _ := v.(string); !strings.HasPrefix(s, "/") {
						t.Errorf("map[%d]: path %v, want an absolute path", i, v)
					}
				default:
					t.Errorf("map[%d]: unknown key %s", i, k)
				}
			}
			types = append(types, typ)
		default:
			t.Errorf("map[%d]: %#v is neither a string nor a mapping", i, e)
		}
	}
	if !reflect.DeepEqual(types, []string{"ssl"}) {
		t.Errorf("map types %v, want exactly [ssl]", types)
	}
	// The linter's schema (oneOf) wants all strings or all mappings.
	strs := 0
	for _, e := range entries {
		if _, ok := e.(string); ok {
			strs++
		}
	}
	if strs != 0 && strs != len(entries) {
		t.Error("map mixes strings and mappings; the add-on linter accepts one form or the other")
	}
}
