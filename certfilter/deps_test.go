package certfilter

import (
	"testing"

	"github.com/cardwright/cardwright/internal/depcheck"
)

// TestImports keeps certfilter to the standard library (ARCHITECTURE.md).
func TestImports(t *testing.T) {
	depcheck.Only(t, []string{"github.com/cardwright/cardwright/certfilter"}, "github.com/cardwright/cardwright/internal/errlist")
}
