package p11

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/miekg/pkcs11"
	"golang.org/x/sys/unix"
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

func TestAllowList(t *testing.T) {
	l := AllowList{"/usr/lib/softhsm/libsofthsm2.so", "/opt/x/../y/lib.so"}
	for path, want := range map[string]bool{
		"/usr/lib/softhsm/libsofthsm2.so":      true,
		"/usr/lib/softhsm//libsofthsm2.so":     true,
		"/opt/y/lib.so":                        true,
		"libsofthsm2.so":                       false,
		"/tmp/libsofthsm2.so":                  false,
		"/usr/lib/softhsm/../softhsm/evil.so":  false,
		"/usr/lib/softhsm/libsofthsm2.so.evil": false,
	} {
		if got := l.Allows(path); got != want {
			t.Errorf("Allows(%q) = %v, want %v", path, got, want)
		}
	}
}

// watchOpens reports every open of files in dir from now on (inotify
// IN_OPEN, which the kernel raises for open(2) by any means, dlopen too).
func watchOpens(t *testing.T, dir string) func() []string {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_OPEN|unix.IN_ACCESS); err != nil {
		t.Fatal(err)
	}
	return func() []string {
		var names []string
		buf := make([]byte, 4096)
		for {
			n, err := unix.Read(fd, buf)
			if err != nil || n <= 0 {
				return names
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
				names = append(names, name)
				off += unix.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}
}

func TestLoadRefusedWithoutOpening(t *testing.T) {
	s := softhsm(t) // the allowed module, so the list is a real one
	dir := t.TempDir()
	evil := filepath.Join(dir, "libevil.so")
	lib, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(evil, lib, 0o755); err != nil {
		t.Fatal(err)
	}
	opens := watchOpens(t, dir)
	allow := AllowList{s.Path()}
	for _, path := range []string{evil, filepath.Join(dir, "missing.so"), "libevil.so"} {
		m, err := Load(path, allow.Allows)
		if m != nil || !errors.Is(err, ErrNotAllowed) {
			t.Fatalf("Load(%q) = %v, %v; want ErrNotAllowed", path, m, err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name the path", err)
		}
	}
	if m, err := Load(evil, nil); m != nil || !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("Load with a nil allow func = %v, %v; want ErrNotAllowed", m, err)
	}
	if got := opens(); len(got) != 0 {
		t.Fatalf("refused module was opened: %v", got)
	}
	// The watch works: reading the file is seen.
	f, err := os.Open(evil)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := opens(); len(got) == 0 || got[0] != "libevil.so" {
		t.Fatalf("control open not seen: %v", got)
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
