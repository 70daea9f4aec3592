package winsvc_test

import (
	"testing"

	"github.com/cardwright/cardwright/internal/depcheck"
)

// TestImports: the service's life cycle is pure (ARCHITECTURE.md): the
// standard library only, no x/sys/windows, so it builds and is tested on
// every OS; the SCM adapter in cmd/cardwright brings Windows in.
func TestImports(t *testing.T) {
	depcheck.Only(t, []string{depcheck.Module + "/winsvc"})
}
