package iso7816

import (
	"testing"

	"github.com/cardwright/cardwright/internal/depcheck"
)

// TestImports keeps iso7816 and memcard pure (ARCHITECTURE.md): the standard
// library and x/crypto's cryptobyte, no cgo.
func TestImports(t *testing.T) {
	depcheck.Only(t, []string{"github.com/cardwright/cardwright/iso7816", "github.com/cardwright/cardwright/iso7816/memcard"}, "golang.org/x/crypto/cryptobyte/...")
}
