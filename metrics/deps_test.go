package metrics_test

import (
	"testing"

	"github.com/cardwright/cardwright/internal/depcheck"
)

// TestImports: the Prometheus client stays in package metrics (and main,
// which wires it): the agent knows its metrics as a JobObserver and an
// http.Handler, the runner's clock as a hook (iotime.Clock.OnAPDU). Nor
// does the package carry test code.
func TestImports(t *testing.T) {
	m := depcheck.Module
	depcheck.Never(t, []string{m + "/agent/...", m + "/runner/...", m + "/audit"}, "github.com/prometheus/...")
	depcheck.Never(t, []string{m + "/metrics"}, "testing", m+"/agent", m+"/runner")
}
