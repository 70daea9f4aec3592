// Package stacktest gives integration tests the real test stack started by
// scripts/teststack: pcscd with virtual readers, vicc cards, the project's own
// virtual card (cmd/vcard), SoftHSM2. Only _test.go files import it.
//
// A test that needs the stack calls Require. Under `go test -short` the test
// is skipped (quick unit runs); otherwise a missing stack fails the test with
// the command that starts it. CI runs without -short, so nothing skips there.
package stacktest

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Stack describes the running stack, as written by scripts/teststack into
// $CARDWRIGHT_STACK_DIR/stack.env (default /tmp/cardwright-stack).
type Stack struct {
	Dir  string
	Root string // repository root
	Env  map[string]string
}

var (
	lockOnce sync.Once
	lockErr  error
)

// Dir is the stack's state directory.
func Dir() string {
	if d := os.Getenv("CARDWRIGHT_STACK_DIR"); d != "" {
		return d
	}
	return "/tmp/cardwright-stack"
}

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Require returns the running stack, or fails the test saying how to start
// it. It skips under -short. The first call in a process takes an exclusive
// cross-process lock on the stack (released when the process exits), so test
// binaries of different packages never use pcscd and its cards at once.
func Require(t testing.TB) *Stack {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the real test stack (scripts/teststack start); skipped under -short")
	}
	dir := Dir()
	env, err := readEnv(filepath.Join(dir, "stack.env"))
	if err != nil {
		t.Fatalf("the test stack is not running (%v): start it with 'scripts/teststack start' (or run 'make test')", err)
	}
	lockOnce.Do(func() {
		var f *os.File
		f, lockErr = os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
		if lockErr == nil {
			lockErr = syscall.Flock(int(f.Fd()), syscall.LOCK_EX) // held until exit; f is never closed
		}
	})
	if lockErr != nil {
		t.Fatalf("locking the test stack: %v", lockErr)
	}
	return &Stack{Dir: dir, Root: RepoRoot(), Env: env}
}

// Get returns a stack.env value or fails the test.
func (s *Stack) Get(t testing.TB, key string) string {
	t.Helper()
	v, ok := s.Env[key]
	if !ok || v == "" {
		t.Fatalf("the test stack has no %s in %s/stack.env: restart it with 'scripts/teststack stop; scripts/teststack start'", key, s.Dir)
	}
	return v
}

func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			env[k] = strings.Trim(v, `"'`)
		}
	}
	return env, sc.Err()
}
