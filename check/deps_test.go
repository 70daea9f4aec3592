package check

import (
	"testing"

	"github.com/cardwright/cardwright/internal/depcheck"
)

// TestImports keeps check pure (ARCHITECTURE.md): dsc and cpf (with what
// they bring) and the standard library only.
func TestImports(t *testing.T) {
	const m = depcheck.Module
	depcheck.Only(t, []string{m + "/check"}, m+"/dsc", m+"/cpf", m+"/iso7816", m+"/pinblob", m+"/secret", m+"/internal/errlist",
		"golang.org/x/crypto/...", "software.sslmate.com/src/go-pkcs12/...")
}
