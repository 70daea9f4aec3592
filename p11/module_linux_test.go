package p11

import (
	"errors"
	"github.com/cardwright/cardwright/p11/allowlist"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

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
	allow := allowlist.Modules{s.Path()}
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
