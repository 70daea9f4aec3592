package cardinit_test

import (
	"testing"

	"github.com/cardwright/cardwright/internal/depcheck"
)

// TestImports: cardinit is the window's model, not the window and not an
// adapter (ARCHITECTURE.md): no toolkit, no PC/SC, no PKCS#11 — main wires
// those into the runner it is given.
func TestImports(t *testing.T) {
	const m = depcheck.Module
	depcheck.Never(t, []string{m + "/cardinit"}, "fyne.io/...", m+"/gui/...", m+"/pcsc", m+"/p11", m+"/runner/pcscreaders", m+"/runner/p11tokens",
		"github.com/ebfe/scard", "github.com/miekg/pkcs11")
}
