package p11

// pe.go: the architecture check of a Windows module. A 64-bit process
// cannot load a 32-bit DLL (nor the reverse): LoadLibrary fails with
// ERROR_BAD_EXE_FORMAT, and miekg/pkcs11's New drops that error, leaving
// only "not a PKCS#11 module". The incumbent middleware is 32-bit only, so
// Load reads the DLL's PE header first (Microsoft PE format, "COFF File
// Header": Machine, Characteristics) and says which cardwright to install.

import (
	"debug/pe"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrArchitecture: the module is built for another processor architecture
// than this process (a 32-bit DLL in the 64-bit cardwright, or the
// reverse). The *ArchError in the chain says which.
var ErrArchitecture = errors.New("module built for another architecture")

// ArchError is a module whose PE machine is not this build's.
type ArchError struct {
	Path   string
	Module string // the module's machine as GOARCH names it: 386, amd64, arm64, or "machine 0x…"
	Build  string // this process's GOARCH
}

func (e *ArchError) Error() string {
	msg := fmt.Sprintf("PKCS#11 module %s is a %s DLL and this is the %s cardwright", e.Path, archName(e.Module), archBits(e.Build))
	if msi := msiArch(e.Module); msi != "" {
		return msg + fmt.Sprintf(": install cardwright-<version>-%s.msi (the %s cardwright), or a %s build of the module", msi, archBits(e.Module), archBits(e.Build))
	}
	return msg + fmt.Sprintf(": install a %s build of the module", archBits(e.Build))
}

// PE machines (IMAGE_FILE_MACHINE_*) by GOARCH.
var peMachines = map[uint16]string{
	pe.IMAGE_FILE_MACHINE_I386:  "386",
	pe.IMAGE_FILE_MACHINE_AMD64: "amd64",
	pe.IMAGE_FILE_MACHINE_ARM64: "arm64",
}

// archName is a GOARCH as the message says it.
func archName(goarch string) string {
	switch goarch {
	case "386":
		return "32-bit (x86)"
	case "amd64":
		return "64-bit (x64)"
	case "arm64":
		return "64-bit ARM (arm64)"
	}
	return goarch
}

// archBits is the short form: "32-bit", "64-bit", "64-bit ARM".
func archBits(goarch string) string {
	switch goarch {
	case "386":
		return "32-bit"
	case "amd64":
		return "64-bit"
	case "arm64":
		return "64-bit ARM"
	}
	return goarch
}

// msiArch is the MSI's architecture suffix for a GOARCH, "" when there is
// no such MSI (spec/installer.md: x64 and x86).
func msiArch(goarch string) string {
	switch goarch {
	case "386":
		return "x86"
	case "amd64":
		return "x64"
	}
	return ""
}

// checkArch reads the PE header of file, the module named path, and fails
// with a *ModuleError: of kind ErrArchitecture, with an *ArchError, when
// its machine is not goarch; of kind ErrNotModule when it is no PE image
// or no DLL. It reads the headers only; it runs nothing.
func checkArch(path, file, goarch string) error {
	r, err := os.Open(file)
	if err != nil {
		return &ModuleError{Path: path, Kind: ErrModuleMissing, Err: err}
	}
	defer r.Close()
	return checkArchAt(path, r, goarch)
}

// checkArchAt is checkArch on the module's content r.
func checkArchAt(path string, r io.ReaderAt, goarch string) error {
	f, err := pe.NewFile(r)
	if err != nil {
		return &ModuleError{Path: path, Kind: ErrNotModule, Err: fmt.Errorf("reading its PE header: %w", err)}
	}
	if f.Characteristics&pe.IMAGE_FILE_DLL == 0 {
		return &ModuleError{Path: path, Kind: ErrNotModule, Err: errors.New("it is a PE image but not a DLL")}
	}
	m, ok := peMachines[f.Machine]
	if !ok {
		m = fmt.Sprintf("machine 0x%04x", f.Machine)
	}
	if m != goarch {
		return &ModuleError{Path: path, Kind: ErrArchitecture, Err: &ArchError{Path: path, Module: m, Build: goarch}}
	}
	return nil
}
