package batch_test

import (
	"testing"

	"github.com/cardwright/cardwright/internal/depcheck"
)

// TestImports: batch reaches the audit log through its own AuditLog and
// records jobs with jobrecord, not through the agent: no WebSocket server,
// job database in `cardwright batch`'s package.
func TestImports(t *testing.T) {
	const m = depcheck.Module
	depcheck.Never(t, []string{m + "/batch"}, m+"/agent", m+"/agent/journal", "github.com/gorilla/websocket", "go.etcd.io/bbolt/...")
}
