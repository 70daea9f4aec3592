package cpf

import (
	"testing"

	"github.com/cardwright/cardwright/internal/depcheck"
)

// TestImports keeps cpf pure (ARCHITECTURE.md): besides the standard library
// it may use iso7816, pinblob (and what pinblob brings) and secret; never a
// hardware adapter or the agent.
func TestImports(t *testing.T) {
	depcheck.Only(t, []string{"github.com/cardwright/cardwright/cpf"}, "github.com/cardwright/cardwright/iso7816", "github.com/cardwright/cardwright/pinblob", "github.com/cardwright/cardwright/secret", "github.com/cardwright/cardwright/internal/errlist",
		"golang.org/x/crypto/...", "software.sslmate.com/src/go-pkcs12/...")
}
