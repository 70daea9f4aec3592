package iso7816_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps iso7816 and memcard pure (ARCHITECTURE.md): the
// standard library without testing and networking, x/crypto's cryptobyte
// and iso7816 itself, buildable without cgo.
func TestImports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	allowed := map[string]bool{
		"github.com/cardwright/cardwright/iso7816":         true,
		"github.com/cardwright/cardwright/iso7816/memcard": true,
		"golang.org/x/crypto/cryptobyte":                   true,
		"golang.org/x/crypto/cryptobyte/asn1":              true,
	}
	cmd := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}",
		"github.com/cardwright/cardwright/iso7816", "github.com/cardwright/cardwright/iso7816/memcard")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		p, std, _ := strings.Cut(line, " ")
		switch {
		case p == "testing" || p == "net" || p == "os/exec":
			t.Errorf("iso7816 or memcard imports %s (no I/O, no test code)", p)
		case std != "true" && !allowed[p]:
			t.Errorf("iso7816 or memcard depends on %s", p)
		}
	}
}
