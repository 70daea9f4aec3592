// Package depcheck asserts a package's import rule (ARCHITECTURE.md) from its
// TestImports, with the go tool's own view of the imports (go list), as
// tailscale's tstest/deptest does. Every import-rule test uses it:
//
//   - Only: a pure package — the standard library and what the test allows,
//     never test code, HTTP or process execution, and a build without cgo;
//   - OnlyModule: an adapter — any outside library (cgo too), but within
//     this module only what the test allows;
//   - Never: no dependency, direct or not, on the packages named;
//   - NeverImports: no direct import of them (main reaches ebfe/scard through
//     pcsc, but does not import it itself).
//
// Package arguments are import paths; a pattern "p/..." matches p and the
// packages below it, as in the go tool. The checks run the go tool, so they
// skip under -short. Only _test.go files import this package.
package depcheck

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Module is this module's path.
const Module = "github.com/cardwright/cardwright"

// forbidden are standard packages a pure package must not use: test code,
// HTTP, running programs. (net itself comes with crypto/x509.)
var forbidden = map[string]bool{"testing": true, "net/http": true, "os/exec": true}

// Only fails t when a package in pkgs depends, directly or not, on a
// non-standard package other than the pkgs themselves and those allowed,
// on a forbidden standard package, or does not build with CGO_ENABLED=0.
func Only(t *testing.T, pkgs []string, allowed ...string) {
	t.Helper()
	for _, d := range deps(t, true, pkgs) {
		switch {
		case forbidden[d.path]:
			t.Errorf("%s import %s (no test code, HTTP or programs in a pure package)", strings.Join(pkgs, ", "), d.path)
		case !d.std && !strings.HasPrefix(d.path, "vendor/") && !match(d.path, pkgs) && !match(d.path, allowed):
			t.Errorf("%s depend on %s", strings.Join(pkgs, ", "), d.path)
		}
	}
	build := exec.Command("go", append([]string{"build", "-o", os.DevNull}, pkgs...)...)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Errorf("CGO_ENABLED=0 build: %v\n%s", err, out)
	}
}

// OnlyModule fails t when a package in pkgs depends, directly or not, on a
// package of this module other than the pkgs themselves and those allowed.
func OnlyModule(t *testing.T, pkgs []string, allowed ...string) {
	t.Helper()
	for _, d := range deps(t, false, pkgs) {
		if match(d.path, []string{Module + "/..."}) && !match(d.path, pkgs) && !match(d.path, allowed) {
			t.Errorf("%s depend on %s", strings.Join(pkgs, ", "), d.path)
		}
	}
}

// Never fails t when a package in pkgs depends, directly or not, on a
// package in bad.
func Never(t *testing.T, pkgs []string, bad ...string) {
	t.Helper()
	for _, d := range deps(t, false, pkgs) {
		if match(d.path, bad) {
			t.Errorf("%s depend on %s", strings.Join(pkgs, ", "), d.path)
		}
	}
}

// NeverWithTags is Never for a build with the given build tags (e.g.
// "nogui").
func NeverWithTags(t *testing.T, tags string, pkgs []string, bad ...string) {
	t.Helper()
	for _, line := range golist(t, false, append([]string{"-tags", tags, "-deps", "-f", "{{.ImportPath}}"}, pkgs...)) {
		if match(line, bad) {
			t.Errorf("%s with -tags %s depend on %s", strings.Join(pkgs, ", "), tags, line)
		}
	}
}

// NeverImports fails t when a package in pkgs imports a package in bad
// itself.
func NeverImports(t *testing.T, pkgs []string, bad ...string) {
	t.Helper()
	for _, line := range golist(t, false, append([]string{"-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`}, pkgs...)) {
		f := strings.Fields(line)
		for _, p := range f[1:] {
			if match(p, bad) {
				t.Errorf("%s imports %s", f[0], p)
			}
		}
	}
}

type dep struct {
	path string
	std  bool
}

// deps lists what pkgs depend on, themselves included (go list -deps).
func deps(t *testing.T, nocgo bool, pkgs []string) []dep {
	t.Helper()
	var l []dep
	for _, line := range golist(t, nocgo, append([]string{"-deps", "-f", "{{.ImportPath}} {{.Standard}}"}, pkgs...)) {
		p, std, _ := strings.Cut(line, " ")
		l = append(l, dep{p, std == "true"})
	}
	return l
}

// golist runs go list with args and returns its output lines; with nocgo
// it lists as a CGO_ENABLED=0 build sees the packages.
func golist(t *testing.T, nocgo bool, args []string) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	list := exec.Command("go", append([]string{"list"}, args...)...)
	if nocgo {
		list.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	out, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// match reports whether p is one of patterns: an import path, or "q/..."
// for q and the packages below it.
func match(p string, patterns []string) bool {
	for _, m := range patterns {
		if q, ok := strings.CutSuffix(m, "/..."); ok {
			if p == q || strings.HasPrefix(p, q+"/") {
				return true
			}
		} else if p == m {
			return true
		}
	}
	return false
}
