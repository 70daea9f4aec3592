package pinblob

import (
	"testing"

	"github.com/cardwright/cardwright/internal/depcheck"
)

// TestImports keeps pinblob to its import rule (ARCHITECTURE.md): the standard
// library, x/crypto, go-pkcs12 for LoadPKCS12, and secret.
func TestImports(t *testing.T) {
	depcheck.Only(t, []string{"github.com/cardwright/cardwright/pinblob"}, "github.com/cardwright/cardwright/secret", "golang.org/x/crypto/...", "software.sslmate.com/src/go-pkcs12/...")
}
