package p11

import (
	"os/exec"
	"strings"
	"testing"
)

// p11 is an adapter: it must not reach policy packages (ARCHITECTURE.md).
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/cardwright/cardwright/"
	allowed := map[string]bool{mod + "p11": true, mod + "secret": true}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, mod) && !allowed[p] {
			t.Errorf("p11 imports %s", p)
		}
		if p == "github.com/miekg/pkcs11/p11" {
			t.Errorf("p11 imports miekg's p11 subpackage")
		}
	}
}
