package certfilter

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps holds certfilter to the standard library (ARCHITECTURE.md).
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(p, "/")
		if strings.Contains(first, ".") && p != "github.com/cardwright/cardwright/certfilter" {
			t.Errorf("certfilter depends on %s", p)
		}
	}
}
