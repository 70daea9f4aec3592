package stacktest

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// TestLockSurvivesGC: the stack lock taken by Require stays held after
// garbage collection (an unreachable *os.File would be closed by its
// finalizer, handing the stack to another test binary mid-run).
func TestLockSurvivesGC(t *testing.T) {
	s := Require(t)
	runtime.GC()
	runtime.GC()
	f, err := os.OpenFile(filepath.Join(s.Dir, "lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		t.Fatal("the stack lock could be taken again after a GC: Require no longer holds it")
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("flock: %v", err)
	}
}
