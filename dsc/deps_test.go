package dsc

import (
	"testing"

	"github.com/cardwright/cardwright/internal/depcheck"
)

// TestImports keeps dsc pure (ARCHITECTURE.md): the standard library and the
// secret type only, no cgo.
func TestImports(t *testing.T) {
	depcheck.Only(t, []string{"github.com/cardwright/cardwright/dsc"}, "github.com/cardwright/cardwright/secret", "github.com/cardwright/cardwright/internal/errlist")
}
