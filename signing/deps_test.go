package signing

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps signing pure (ARCHITECTURE.md): no PKCS#11 or PC/SC
// adapter, no agent beyond its wire types, no testing.
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	allowed := map[string]bool{
		"github.com/cardwright/cardwright/signing":    true,
		"github.com/cardwright/cardwright/certfilter": true,
		"github.com/cardwright/cardwright/secret":     true,
		"github.com/cardwright/cardwright/agent/api":  true,
	}
	for _, p := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(p, "/")
		if strings.Contains(first, ".") && !allowed[p] {
			t.Errorf("signing depends on %s", p)
		}
		if p == "testing" {
			t.Errorf("signing depends on %s", p)
		}
	}
}
