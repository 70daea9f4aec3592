package p11tokens

import (
	"strings"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/runner"
)

// TestPEArchCode: a module of the wrong architecture (p11.Load on Windows
// reads the DLL's PE header) ends the job with module_error, and the
// message the portal gets says what to install.
func TestPEArchCode(t *testing.T) {
	const dll = `C:\Program Files (x86)\Vendor\vendorp11.dll`
	err := mapErr(&p11.ModuleError{Path: dll, Kind: p11.ErrArchitecture,
		Err: &p11.ArchError{Path: dll, Module: "386", Build: "amd64"}})
	if c := runner.Code(err); c != api.CodeModuleError {
		t.Fatalf("code %s, want %s", c, api.CodeModuleError)
	}
	f := (&runner.Failure{Code: api.CodeModuleError, Message: "PKCS#11 module failed", Err: err}).JobError()
	for _, want := range []string{dll + " is a 32-bit (x86) DLL and this is the 64-bit cardwright", "cardwright-<version>-x86.msi"} {
		if !strings.Contains(f.Message, want) {
			t.Errorf("the portal's message %q lacks %q", f.Message, want)
		}
	}
}
