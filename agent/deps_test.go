package agent_test

import (
	"testing"

	"github.com/cardwright/cardwright/internal/depcheck"
)

// TestImports: the agent reaches hardware only through the interfaces it
// declares, never pcsc or p11 (ARCHITECTURE.md; p11/allowlist, the module
// rule, is no adapter); its test doubles in agenttest carry no test code, as
// the binary uses them for serve --fake-runner.
func TestImports(t *testing.T) {
	const m = depcheck.Module
	depcheck.Never(t, []string{m + "/agent", m + "/agent/journal"},
		m+"/pcsc/...", m+"/p11", "github.com/ebfe/scard", "github.com/miekg/pkcs11/...")
	depcheck.Never(t, []string{m + "/agent/agenttest"}, "testing")
}
