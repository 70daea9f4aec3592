package runner_test

import (
	"testing"

	"github.com/cardwright/cardwright/internal/depcheck"
)

// TestImports: the runner's engine reaches cards and tokens through its
// Readers and Tokens ports; the adapters beside them (runner/pcscreaders,
// runner/p11tokens) are the only importers of pcsc and p11 (ARCHITECTURE.md
// rule 6). The test doubles in runnertest carry no test code (rule 3).
func TestImports(t *testing.T) {
	const m = depcheck.Module
	depcheck.Never(t, []string{m + "/runner"}, m+"/pcsc/...", m+"/p11", "github.com/ebfe/scard", "github.com/miekg/pkcs11/...")
	depcheck.Never(t, []string{m + "/runner/runnertest"}, "testing")
}
