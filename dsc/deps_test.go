package dsc

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps dsc pure (ARCHITECTURE.md): the standard library and
// the secret type only, and no cgo.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		switch p {
		case "github.com/cardwright/cardwright/dsc", "github.com/cardwright/cardwright/secret":
		default:
			t.Errorf("dsc depends on %s", p)
		}
	}
	cmd := exec.Command("go", "build", "-o", "/dev/null", ".")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("CGO_ENABLED=0 build: %v\n%s", err, out)
	}
}
