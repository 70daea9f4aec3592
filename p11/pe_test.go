package p11

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// peModuleC is a stand-in PKCS#11 module: a DLL exporting
// C_GetFunctionList. It is never run, only its headers are read.
const peModuleC = `__declspec(dllexport) int C_GetFunctionList(void **list) { *list = 0; return 0; }
`

// mingw builds src with the mingw compiler cc (x86_64-w64-mingw32-gcc,
// i686-w64-mingw32-gcc) into dir/name, a DLL when shared.
func mingw(t *testing.T, cc, dir, name string, shared bool) string {
	t.Helper()
	if _, err := exec.LookPath(cc); err != nil {
		t.Fatalf("%s not found: the PE tests build real Windows DLLs; scripts/install-deps installs gcc-mingw-w64-x86-64 and gcc-mingw-w64-i686", cc)
	}
	src := filepath.Join(dir, name+".c")
	code := peModuleC
	if !shared {
		code += "int main(void) { return 0; }\n"
	}
	if err := os.WriteFile(src, []byte(code), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	args := []string{"-O2", "-o", out, src}
	if shared {
		args = append([]string{"-shared"}, args...)
	}
	if b, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", cc, strings.Join(args, " "), err, b)
	}
	return out
}

// TestPEArch: checkArch, which Load runs on Windows before LoadLibrary,
// on real DLLs built by mingw: a DLL of the build's own architecture
// passes; one of the other fails with ErrArchitecture and a message naming
// the module, both architectures and the MSI to install, in both
// directions; an EXE, a file that is not PE (ELF, text) and DLLs cut short
// are ErrNotModule, never a panic or a pass.
func TestPEArch(t *testing.T) {
	dir := t.TempDir()
	dll64 := mingw(t, "x86_64-w64-mingw32-gcc", dir, "mw64.dll", true)
	dll32 := mingw(t, "i686-w64-mingw32-gcc", dir, "mw32.dll", true)
	exe64 := mingw(t, "x86_64-w64-mingw32-gcc", dir, "tool.exe", false)

	for _, tc := range []struct {
		file, goarch string
		want         string // "" passes; else the message
	}{
		{dll64, "amd64", ""},
		{dll32, "386", ""},
		{dll32, "amd64", "PKCS#11 module C:\\mw\\mw.dll is a 32-bit (x86) DLL and this is the 64-bit cardwright: install cardwright-<version>-x86.msi (the 32-bit cardwright), or a 64-bit build of the module"},
		{dll64, "386", "PKCS#11 module C:\\mw\\mw.dll is a 64-bit (x64) DLL and this is the 32-bit cardwright: install cardwright-<version>-x64.msi (the 64-bit cardwright), or a 32-bit build of the module"},
		{dll64, "arm64", "PKCS#11 module C:\\mw\\mw.dll is a 64-bit (x64) DLL and this is the 64-bit ARM cardwright: install cardwright-<version>-x64.msi (the 64-bit cardwright), or a 64-bit ARM build of the module"},
	} {
		const name = `C:\mw\mw.dll` // as an encoding description names it
		err := checkArch(name, tc.file, tc.goarch)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s in a %s build: %v", filepath.Base(tc.file), tc.goarch, err)
			}
			continue
		}
		var me *ModuleError
		var ae *ArchError
		if !errors.Is(err, ErrArchitecture) || !errors.As(err, &me) || !errors.As(err, &ae) || errors.Is(err, ErrNotModule) {
			t.Errorf("%s in a %s build: %#v, want a *ModuleError of kind ErrArchitecture with an *ArchError", filepath.Base(tc.file), tc.goarch, err)
			continue
		}
		if me.Path != name || ae.Path != name {
			t.Errorf("%s in a %s build: the error names %q / %q, want the module as named", filepath.Base(tc.file), tc.goarch, me.Path, ae.Path)
		}
		if err.Error() != tc.want {
			t.Errorf("%s in a %s build:\n got %s\nwant %s", filepath.Base(tc.file), tc.goarch, err, tc.want)
		}
	}

	whole, err := os.ReadFile(dll64)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	self, err := os.Executable() // this test binary: ELF
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, file, why string }{
		{"an EXE", exe64, "not a DLL"},
		{"an ELF file", self, "PE header"},
		{"a text file", write("readme.dll", []byte("not a module\n")), "PE header"},
		{"an empty file", write("empty.dll", nil), "PE header"},
		{"the DOS header only", write("dos.dll", whole[:64]), "PE header"},
		{"cut in the COFF header", write("coff.dll", whole[:0x86]), "PE header"},
		{"cut in the section table", write("sections.dll", whole[:0x190]), "PE header"},
	} {
		err := checkArch(tc.name, tc.file, "amd64")
		if !errors.Is(err, ErrNotModule) || errors.Is(err, ErrArchitecture) || err == nil || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s: %v, want ErrNotModule (%s)", tc.name, err, tc.why)
		}
	}
	// Every cut of the DLL's first 4 KB is refused or read as it is; none panics.
	for n := 0; n < min(len(whole), 4096); n++ {
		if err := checkArchAt("cut", bytes.NewReader(whole[:n]), "386"); err == nil {
			t.Fatalf("the 64-bit DLL cut to %d bytes passed as 32-bit", n)
		}
	}
}
