package signing

import (
	"testing"

	"github.com/cardwright/cardwright/internal/depcheck"
)

// TestImports keeps signing pure (ARCHITECTURE.md): no PKCS#11 or PC/SC adapter,
// no agent beyond its wire types; the local PIN dialog is prompt's port.
func TestImports(t *testing.T) {
	depcheck.Only(t, []string{"github.com/cardwright/cardwright/signing"}, "github.com/cardwright/cardwright/certfilter", "github.com/cardwright/cardwright/secret", "github.com/cardwright/cardwright/prompt", "github.com/cardwright/cardwright/agent/api", "github.com/cardwright/cardwright/internal/errlist")
}
