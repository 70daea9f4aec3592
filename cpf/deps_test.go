package cpf

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps cpf pure (ARCHITECTURE.md): besides the standard
// library it may use iso7816, pinblob (and what pinblob brings) and
// secret; never a hardware adapter, the agent, or testing.
func TestImports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}{{if eq .ImportPath \"testing\"}}testing{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := []string{
		"github.com/cardwright/cardwright/cpf",
		"github.com/cardwright/cardwright/iso7816",
		"github.com/cardwright/cardwright/pinblob",
		"github.com/cardwright/cardwright/secret",
		"golang.org/x/crypto/",
		"software.sslmate.com/src/go-pkcs12", // through pinblob's PKCS#12 keys
	}
	for _, dep := range strings.Fields(string(out)) {
		ok := false
		for _, a := range allowed {
			if dep == a || strings.HasSuffix(a, "/") && strings.HasPrefix(dep, a) || strings.HasPrefix(dep, a+"/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("cpf depends on %s", dep)
		}
	}
}
