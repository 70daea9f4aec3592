package audit_test

import (
	"testing"

	"github.com/cardwright/cardwright/internal/depcheck"
)

// TestImports: the audit log is a leaf the agent, batch and metrics share:
// the standard library, x/sys and internal/lockedfile (its file lock), no test code, no HTTP,
// and it builds with CGO_ENABLED=0.
func TestImports(t *testing.T) {
	depcheck.Only(t, []string{depcheck.Module + "/audit"}, depcheck.Module+"/internal/lockedfile", "golang.org/x/sys/...")
}
