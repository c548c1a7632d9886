package nfc_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOneCgoPackage: only pkg/nfc/libnfc imports the cgo binding, and only
// the binary imports libnfc; every other package builds without cgo.
func TestOneCgoPackage(t *testing.T) {
	const (
		binding = "github.com/clausecker/nfc/v2"
		driver  = "github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/libnfc"
		binary  = "github.com/sesame2mqtt/sesame2mqtt/cmd/sesame2mqtt"
	)
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/sesame2mqtt/sesame2mqtt/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := 0
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		seen++
		pkg, imports := fields[0], fields[1:]
		for _, imp := range imports {
			switch {
			case imp == "C":
				t.Errorf("%s uses cgo directly; only %s may (through %s)", pkg, driver, binding)
			case imp == binding && pkg != driver:
				t.Errorf("%s imports %s; only %s may", pkg, binding, driver)
			case imp == driver && pkg != binary:
				t.Errorf("%s imports %s; only the binary may", pkg, driver)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("go list saw %d packages: %s", seen, out)
	}
}
