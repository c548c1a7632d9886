package addon

// What the Supervisor reads from the repository besides config.yaml, and
// the image's Dockerfile.

import (
	"bytes"
	"image"
	_ "image/png"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// Supervisor reads every config.{yaml,yml,json} under the repository (but
// not under dot-folders or rootfs) as an add-on, and takes the first
// repository.{yaml,yml,json} it finds anywhere: there must be exactly the
// root ones. Test fixtures go under other names.
func TestNoSecondManifest(t *testing.T) {
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	var configs, repos []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() && rel != "." && (d.Name() == ".git" || strings.HasPrefix(d.Name(), ".")) {
			return fs.SkipDir
		}
		name := d.Name()
		ext := filepath.Ext(name)
		if ext != ".yaml" && ext != ".yml" && ext != ".json" {
			return nil
		}
		switch strings.TrimSuffix(name, ext) {
		case "config":
			if !slices.Contains(strings.Split(rel, string(filepath.Separator)), "rootfs") {
				configs = append(configs, rel)
			}
		case "repository":
			repos = append(repos, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(configs, []string{"config.yaml"}) {
		t.Errorf("add-on manifests found: %v; want only config.yaml at the root (rename test fixtures)", configs)
	}
	if !reflect.DeepEqual(repos, []string{"repository.yaml"}) {
		t.Errorf("repository files found: %v; want only repository.yaml at the root", repos)
	}
}

func TestRepositoryFile(t *testing.T) {
	m, _ := loadYAML(t, filepath.Join(repoRoot, "repository.yaml"))
	if s, _ := m["name"].(string); s == "" {
		t.Error("repository.yaml: name is required")
	}
	if u, ok := m["url"]; ok {
		if s, _ := u.(string); !isAbsoluteURL(s, "https") {
			t.Errorf("repository.yaml: url %v", u)
		}
	}
	if s, ok := m["maintainer"]; ok {
		if _, isStr := s.(string); !isStr {
			t.Errorf("repository.yaml: maintainer %v is not a string", s)
		}
	}
}

// Every option has a name and a description in the form; nested fields of
// list items too; nothing is translated that is not an option.
func TestTranslations(t *testing.T) {
	m, _ := loadManifest(t)
	schema := m["schema"].(map[string]any)
	tr, _ := loadYAML(t, filepath.Join(repoRoot, "addon", "translations", "en.yaml"))
	conf, ok := tr["configuration"].(map[string]any)
	if !ok {
		t.Fatal("en.yaml: no configuration mapping")
	}
	checkTranslations(t, "configuration", conf, schema)
}

func checkTranslations(t *testing.T, at string, tr map[string]any, schema map[string]any) {
	t.Helper()
	for k, typ := range schema {
		entry, ok := tr[k].(map[string]any)
		if !ok {
			t.Errorf("%s.%s: no translation", at, k)
			continue
		}
		for _, f := range []string{"name", "description"} {
			if s, _ := entry[f].(string); strings.TrimSpace(s) == "" {
				t.Errorf("%s.%s.%s: missing or empty", at, k, f)
			}
		}
		var nested map[string]any
		switch x := typ.(type) {
		case map[string]any:
			nested = x
		case []any:
			nested, _ = x[0].(map[string]any)
		}
		fields, hasFields := entry["fields"].(map[string]any)
		switch {
		case nested != nil && !hasFields:
			t.Errorf("%s.%s.fields: missing for the item fields %v", at, k, mapKeys(nested))
		case nested != nil:
			checkTranslations(t, at+"."+k+".fields", fields, nested)
		case hasFields:
			t.Errorf("%s.%s.fields: %s has no fields", at, k, k)
		}
		for f := range entry {
			if f != "name" && f != "description" && f != "fields" {
				t.Errorf("%s.%s.%s: not a translation key Supervisor reads", at, k, f)
			}
		}
	}
	for k := range tr {
		if _, ok := schema[k]; !ok {
			t.Errorf("%s.%s: translated but not an option", at, k)
		}
	}
}

func mapKeys(m map[string]any) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Supervisor looks for DOCS.md, CHANGELOG.md, icon.png, logo.png and
// translations/ next to config.yaml (apps/model.py, store/data.py). They
// live in addon/; the root holds relative symlinks to them, which git keeps.
func TestAddonFilesNextToManifest(t *testing.T) {
	for _, name := range []string{"DOCS.md", "CHANGELOG.md", "icon.png", "logo.png", "translations"} {
		root := filepath.Join(repoRoot, name)
		fi, err := os.Lstat(root)
		if err != nil {
			t.Errorf("%s: %v (Supervisor reads it next to config.yaml)", name, err)
			continue
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("%s: want a symlink into addon/, so there is one copy", name)
			continue
		}
		target, err := os.Readlink(root)
		if err != nil {
			t.Error(err)
			continue
		}
		if target != filepath.Join("addon", name) {
			t.Errorf("%s -> %s, want a relative link to addon/%s", name, target, name)
		}
		if _, err := os.Stat(root); err != nil {
			t.Errorf("%s: dangling link: %v", name, err)
		}
	}
	for name, size := range map[string][2]int{"icon.png": {128, 128}, "logo.png": {250, 100}} {
		f, err := os.Open(filepath.Join(repoRoot, "addon", name))
		if err != nil {
			t.Error(err)
			continue
		}
		cfg, format, err := image.DecodeConfig(f)
		f.Close()
		if err != nil || format != "png" || cfg.Width != size[0] || cfg.Height != size[1] {
			t.Errorf("%s: %s %dx%d (%v), want png %dx%d", name, format, cfg.Width, cfg.Height, err, size[0], size[1])
		}
	}
	m, _ := loadManifest(t)
	changelog, err := os.ReadFile(filepath.Join(repoRoot, "addon", "CHANGELOG.md"))
	if err != nil {
		t.Fatal(err)
	}
	if v := m["version"].(string); !bytes.Contains(changelog, []byte("## "+v)) {
		t.Errorf("CHANGELOG.md has no \"## %s\" section for the manifest's version", v)
	}
	docs, err := os.ReadFile(filepath.Join(repoRoot, "addon", "DOCS.md"))
	if err != nil {
		t.Fatal(err)
	}
	for k := range m["schema"].(map[string]any) {
		if !bytes.Contains(docs, []byte("`"+k+"`")) {
			t.Errorf("DOCS.md does not document the option `%s`", k)
		}
	}
}

// The Dockerfile builds with the Go release go.mod names, through the make
// target CI runs, and carries the labels the Supervisor reads.
func TestDockerfile(t *testing.T) {
	df, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if goVersion == nil {
		t.Fatal("go.mod: no go directive")
	}
	for _, want := range []string{
		"ARG GO_VERSION=" + string(goVersion[1]) + "\n",
		"make build VERSION=",
		"ARG BUILD_ARCH\n",
		`io.hass.type="app"`,
		`io.hass.version="${BUILD_VERSION}"`,
		`io.hass.arch="${BUILD_ARCH}"`,
		"libnfc6",
		"ca-certificates",
		"tzdata",
	} {
		if !bytes.Contains(df, []byte(want)) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// The Dockerfile builds with every Supervisor that builds add-ons on the
// device: those before 2025.07 use Docker's legacy builder (no BuildKit), and
// those before 2026.04.0 pass BUILD_FROM=ghcr.io/home-assistant/<arch>-base
// (Alpine, musl), which must not become the base of a glibc binary. So: no
// BuildKit-only syntax, and every stage on a Debian bookworm image it names
// itself. .ci/image builds it that way with buildah.
func TestDockerfileWithoutBuildKitOrBuildFrom(t *testing.T) {
	df, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// Flags the legacy builder does not know, by instruction (they follow
	// the keyword), and the arguments only BuildKit (and buildah) predefine.
	buildKitFlags := map[string][]string{
		"FROM": {"--platform"},
		"RUN":  {"--mount", "--network", "--security"},
		"COPY": {"--link", "--chmod", "--parents", "--exclude"},
		"ADD":  {"--link", "--chmod", "--checksum", "--keep-git-dir", "--exclude"},
	}
	var froms []string
	continued := false
	for i, line := range strings.Split(string(df), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			if strings.HasPrefix(strings.ReplaceAll(trimmed, " ", ""), "#syntax=") {
				t.Errorf("Dockerfile:%d: a BuildKit frontend directive: %s", i+1, line)
			}
			continue
		}
		for _, bad := range []string{"TARGETARCH", "TARGETPLATFORM", "TARGETOS", "BUILDPLATFORM", "BUILDARCH"} {
			if strings.Contains(line, bad) {
				t.Errorf("Dockerfile:%d: %s is set by BuildKit only: %s", i+1, bad, line)
			}
		}
		first := !continued
		continued = strings.HasSuffix(trimmed, "\\")
		fields := strings.Fields(line)
		if !first || len(fields) == 0 {
			continue
		}
		keyword := strings.ToUpper(fields[0])
		for _, f := range fields[1:] {
			if !strings.HasPrefix(f, "--") {
				break
			}
			for _, bad := range buildKitFlags[keyword] {
				if f == bad || strings.HasPrefix(f, bad+"=") {
					t.Errorf("Dockerfile:%d: BuildKit-only %s %s: %s", i+1, keyword, bad, line)
				}
			}
		}
		if strings.Contains(line, "<<") && (keyword == "RUN" || keyword == "COPY") {
			t.Errorf("Dockerfile:%d: a heredoc is BuildKit-only: %s", i+1, line)
		}
		if keyword == "FROM" {
			froms = append(froms, line)
			base := ""
			for _, f := range fields[1:] {
				if !strings.HasPrefix(f, "--") {
					base = f
					break
				}
			}
			switch {
			case base == "":
				t.Errorf("Dockerfile:%d: FROM without an image", i+1)
			case strings.Contains(base, "BUILD_FROM"):
				t.Errorf("Dockerfile:%d: a stage on BUILD_FROM, which old Supervisors set to an Alpine base: %s", i+1, line)
			case !strings.HasSuffix(base, "-bookworm") && !strings.HasSuffix(base, ":bookworm-slim"):
				t.Errorf("Dockerfile:%d: base %s is not a Debian bookworm image", i+1, base)
			}
		}
	}
	if len(froms) != 2 {
		t.Errorf("Dockerfile has %d stages, want 2 (build, runtime): %q", len(froms), froms)
	}
}

// No image is published (config.yaml has no `image`): the documentation must
// not tell anyone to pull one.
func TestDocsNameNoUnpublishedImage(t *testing.T) {
	m, _ := loadManifest(t)
	if _, ok := m["image"]; ok {
		t.Skip("config.yaml names a published image")
	}
	for _, name := range []string{"addon/DOCS.md", "README.md"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, name))
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, []byte("ghcr.io/sesame2mqtt")); i >= 0 {
			line := bytes.Count(b[:i], []byte("\n")) + 1
			t.Errorf("%s:%d names ghcr.io/sesame2mqtt, but no image is published (config.yaml has no image)", name, line)
		}
	}
}
