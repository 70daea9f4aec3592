package pcsc

import (
	"testing"

	"github.com/cardwright/cardwright/internal/depcheck"
)

// TestImports: pcsc is an adapter, it must not reach into policy packages
// (ARCHITECTURE.md), nor the test stack's helpers.
func TestImports(t *testing.T) {
	const m = depcheck.Module
	depcheck.Never(t, []string{m + "/pcsc"}, m+"/dsc/...", m+"/cpf/...", m+"/agent/...", m+"/runner/...", m+"/p11/...", m+"/internal/stacktest/...")
}
