package pinblob

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps holds pinblob to its import rule (ARCHITECTURE.md): the
// standard library, x/crypto, go-pkcs12 for LoadPKCS12, and secret.
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
		switch {
		case !strings.Contains(first, "."), strings.HasPrefix(p, "vendor/"):
		case strings.HasPrefix(p, "golang.org/x/crypto/"),
			strings.HasPrefix(p, "software.sslmate.com/src/go-pkcs12"),
			p == "github.com/cardwright/cardwright/secret",
			p == "github.com/cardwright/cardwright/pinblob":
		default:
			t.Errorf("pinblob depends on %s", p)
		}
	}
}
