package p11

import (
	"testing"

	"github.com/cardwright/cardwright/internal/depcheck"
)

// TestImports: p11 is an adapter, it must not reach policy packages
// (ARCHITECTURE.md); within the module it uses secret only, and never
// miekg/pkcs11's p11 subpackage (the name clashes with ours).
func TestImports(t *testing.T) {
	p11 := []string{depcheck.Module + "/p11"}
	depcheck.OnlyModule(t, p11, depcheck.Module+"/secret")
	depcheck.Never(t, p11, "github.com/miekg/pkcs11/p11")
}
