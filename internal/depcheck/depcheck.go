// Package depcheck holds pure packages to their import rule
// (ARCHITECTURE.md): only the standard library and what a package's test
// allows, never test code, HTTP or process execution, and a build without
// cgo. Only _test.go files import it.
package depcheck

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// forbidden are standard packages a pure package must not use: test code,
// HTTP, running programs. (net itself comes with crypto/x509.)
var forbidden = map[string]bool{"testing": true, "net/http": true, "os/exec": true}

// Only fails t when a package in pkgs (import paths) depends, directly or
// not, on a non-standard package other than the pkgs themselves and those
// allowed (an entry allows its subpackages too), on a forbidden
// standard package, or does not build with CGO_ENABLED=0. It skips under
// -short (it runs the go tool).
func Only(t *testing.T, pkgs []string, allowed ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	ok := func(p string) bool {
		for _, a := range append(append([]string{}, pkgs...), allowed...) {
			if p == a || strings.HasPrefix(p, strings.TrimSuffix(a, "/")+"/") {
				return true
			}
		}
		return false
	}
	list := exec.Command("go", append([]string{"list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}"}, pkgs...)...)
	list.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		p, std, _ := strings.Cut(line, " ")
		switch {
		case forbidden[p]:
			t.Errorf("%s import %s (no test code, HTTP or programs in a pure package)", strings.Join(pkgs, ", "), p)
		case std != "true" && !strings.HasPrefix(p, "vendor/") && !ok(p):
			t.Errorf("%s depend on %s", strings.Join(pkgs, ", "), p)
		}
	}
	build := exec.Command("go", append([]string{"build", "-o", os.DevNull}, pkgs...)...)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Errorf("CGO_ENABLED=0 build: %v\n%s", err, out)
	}
}
