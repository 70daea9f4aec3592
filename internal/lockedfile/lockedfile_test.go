package lockedfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cardwright/cardwright/internal/depcheck"
	"github.com/cardwright/cardwright/internal/lockedfile"
)

// TestLock: a second open of a locked file cannot lock it (the lock is per
// open file, so this holds within one process as across two); closing the
// first releases it.
func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a, b := open(), open()
	defer b.Close()
	if err := lockedfile.Lock(a); err != nil {
		t.Fatal(err)
	}
	if err := lockedfile.Lock(b); !errors.Is(err, lockedfile.ErrLocked) {
		t.Fatalf("locking a locked file: %v, want ErrLocked", err)
	}
	a.Close()
	if err := lockedfile.Lock(b); err != nil {
		t.Fatalf("locking after the holder closed: %v", err)
	}
}

// TestSyncDir: a folder that is not there is an error, not silence.
func TestSyncDir(t *testing.T) {
	if err := lockedfile.SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := lockedfile.SyncDir(filepath.Join(t.TempDir(), "gone")); err == nil && os.PathSeparator == '/' {
		t.Fatal("syncing a missing folder: no error")
	}
}

// TestImports: the standard library and x/sys only.
func TestImports(t *testing.T) {
	depcheck.Only(t, []string{depcheck.Module + "/internal/lockedfile"}, "golang.org/x/sys/...")
}
