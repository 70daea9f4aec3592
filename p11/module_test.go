package p11

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
)

func TestResolveLibrary(t *testing.T) {
	all := map[string]string{
		"PKCS11Library": "generic.so", "PKCS11LibraryWindows32": "w32.dll", "PKCS11LibraryWindows64": "w64.dll",
		"PKCS11LibraryLinux": "/usr/lib/lin.so", "PKCS11LibraryMac": "mac.dylib",
	}
	tests := []struct {
		keys         map[string]string
		goos, goarch string
		want         string
		err          error
	}{
		{all, "linux", "amd64", "/usr/lib/lin.so", nil},
		{all, "darwin", "arm64", "mac.dylib", nil},
		{all, "windows", "amd64", "w64.dll", nil},
		{all, "windows", "386", "w32.dll", nil},
		{all, "freebsd", "amd64", "generic.so", nil},
		{map[string]string{"pkcs11library": " g.so "}, "linux", "amd64", "g.so", nil},
		{map[string]string{"PKCS11LibraryLinux": "", "PKCS11Library": "g.so"}, "linux", "amd64", "g.so", nil},
		{map[string]string{"PKCS11LibraryMac": "m.dylib"}, "linux", "amd64", "", ErrNoLibrary},
		{map[string]string{}, "plan9", "amd64", "", ErrNoLibrary},
	}
	for _, tt := range tests {
		got, err := ResolveLibrary(tt.keys, tt.goos, tt.goarch)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("ResolveLibrary(%v, %s/%s) = %q, %v; want %q, %v", tt.keys, tt.goos, tt.goarch, got, err, tt.want, tt.err)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	m := softhsm(t)
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.so")
	if err := os.WriteFile(text, []byte("not a library\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A real shared library that is not a PKCS#11 module.
	out, err := exec.Command("gcc", "-print-file-name=libm.so.6").Output()
	libm := strings.TrimSpace(string(out))
	if err != nil || !filepath.IsAbs(libm) {
		libm = "/lib/x86_64-linux-gnu/libm.so.6"
	}
	tests := []struct {
		name, path string
		kind       error
		chain      error
	}{
		{"missing", filepath.Join(dir, "nothere.so"), ErrModuleMissing, fs.ErrNotExist},
		{"directory", dir, ErrNotModule, nil},
		{"text file", text, ErrNotModule, nil},
		{"shared library without C_GetFunctionList", libm, ErrNotModule, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(tt.path, Trusted)
			if got != nil || !errors.Is(err, tt.kind) {
				t.Fatalf("Load(%q) = %v, %v; want %v", tt.path, got, err, tt.kind)
			}
			t.Log(err)
			if tt.chain != nil && !errors.Is(err, tt.chain) {
				t.Errorf("error %v does not wrap %v", err, tt.chain)
			}
			var me *ModuleError
			if !errors.As(err, &me) || me.Path != tt.path || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name %q", err, tt.path)
			}
		})
	}

	// Loading again, by another name for the same file, gives the same module.
	link := filepath.Join(dir, "link.so")
	if err := os.Symlink(m.Path(), link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{m.Path(), link} {
		again, err := Load(p, Trusted)
		if err != nil || again != m {
			t.Errorf("Load(%q) again = %p, %v; want the module loaded first (%p)", p, again, err, m)
		}
	}
}

// A second copy of SoftHSM2 is a different library to the dynamic loader,
// with its own state; pointed at a configuration that does not exist, its
// C_Initialize fails.
func TestLoadInitializeFails(t *testing.T) {
	m := softhsm(t)
	dir := t.TempDir()
	lib, err := os.ReadFile(m.Path())
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(dir, "libsofthsm2-copy.so")
	if err := os.WriteFile(cp, lib, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", filepath.Join(dir, "no-such.conf"))
	got, err := Load(cp, Trusted)
	if got != nil || !errors.Is(err, ErrInitialize) {
		t.Fatalf("Load = %v, %v; want ErrInitialize", got, err)
	}
	t.Log(err)
	var ck pkcs11.Error
	if !errors.As(err, &ck) || !strings.Contains(err.Error(), cp) || !strings.Contains(err.Error(), "CKR_") {
		t.Errorf("error %q: want the path and the CKR name, with a pkcs11.Error in the chain", err)
	}
}
