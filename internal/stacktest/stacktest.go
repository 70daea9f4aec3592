// Package stacktest gives integration tests the real test stack started by
// scripts/teststack: pcscd with virtual readers, vicc cards, the project's own
// virtual card (cmd/vcard), SoftHSM2, an Xvfb X server for GUI tests. Only
// _test.go files import it.
//
// A test that needs the stack calls Require. Under `go test -short` the test
// is skipped (quick unit runs); otherwise a missing stack fails the test with
// the command that starts it. CI runs without -short, so nothing skips there.
package stacktest

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
	// lockFile holds the stack lock until the process exits. It must stay
	// reachable: an unreachable *os.File is closed by its finalizer at the
	// next GC, which silently released the lock to another test binary
	// (one that restarts pcscd) in the middle of this one's tests.
	lockFile *os.File
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
		lockFile, lockErr = os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
		if lockErr == nil {
			lockErr = syscall.Flock(int(lockFile.Fd()), syscall.LOCK_EX) // held until exit: lockFile is never closed
		}
	})
	if lockErr != nil {
		t.Fatalf("locking the test stack: %v", lockErr)
	}
	s := &Stack{Dir: dir, Root: RepoRoot(), Env: env}
	t.Cleanup(func() {
		if t.Failed() {
			s.diagnose(t)
		}
	})
	return s
}

// diagnose logs the stack's state and the end of pcscd's log, so that a
// failure in CI says whether pcscd or a card emulator was down.
func (s *Stack) diagnose(t testing.TB) {
	t.Helper()
	out, err := exec.Command(filepath.Join(s.Root, "scripts", "teststack"), "status").CombinedOutput()
	t.Logf("stack after the failure (teststack status: %v):\n%s", err, out)
	if log := s.Env["PCSCD_LOG"]; log != "" {
		if tail, err := exec.Command("tail", "-n", "15", log).Output(); err == nil {
			t.Logf("end of %s:\n%s", log, tail)
		}
	}
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

// Display returns the X display of the stack's Xvfb server ("DISPLAY" in
// stack.env, such as ":77") for tests that open real windows. It fails the
// test, saying how to start the stack, when stack.env names no display (a
// stack started before the script started Xvfb) or when the server does not
// answer xdpyinfo.
func (s *Stack) Display(t testing.TB) string {
	t.Helper()
	d := s.Env["DISPLAY"]
	if d == "" {
		t.Fatalf("the test stack has no X server (no DISPLAY in %s/stack.env): start it with 'scripts/teststack start' (it adds Xvfb to a running stack)", s.Dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "xdpyinfo", "-display", d).CombinedOutput()
	if err != nil {
		if len(out) > 500 {
			out = out[len(out)-500:]
		}
		where := ""
		if log := s.Env["XVFB_LOG"]; log != "" {
			where = "; Xvfb's log: " + log
		}
		t.Fatalf("the test stack's X server %s does not answer (xdpyinfo: %v: %s%s): restart it with 'scripts/teststack stop; scripts/teststack start' (xdpyinfo comes with x11-utils, see scripts/install-deps)",
			d, err, strings.TrimSpace(string(out)), where)
	}
	return d
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

// StopCard kills the card emulator behind a reader (vicc or bin/vcard): to
// pcscd the card is pulled out. reader is a reader name from stack.env (or
// a slot key such as "VICC_1"). The card is put back when the test ends if
// the test did not do it itself.
func (s *Stack) StopCard(t testing.TB, reader string) {
	t.Helper()
	s.script(t, "card-stop", reader)
	t.Cleanup(func() {
		if _, err := s.run("card-start", reader); err != nil {
			t.Errorf("putting the card back into %q: %v", reader, err)
		}
	})
}

// StartCard starts the card emulator behind a reader again and waits until
// pcscd sees the card (a fresh card: vicc and bin/vcard keep no state).
func (s *Stack) StartCard(t testing.TB, reader string) {
	t.Helper()
	s.script(t, "card-start", reader)
}

// StartCardNoWait starts the card emulator and returns at once, so a test
// can measure how long the insertion takes to be seen.
func (s *Stack) StartCardNoWait(t testing.TB, reader string) {
	t.Helper()
	s.script(t, "card-start", reader, "--no-wait")
}

// RestartPCSCD kills pcscd and starts it again with the same readers,
// restarting card emulators that died with it; it returns once every card
// is present again.
func (s *Stack) RestartPCSCD(t testing.TB) {
	t.Helper()
	s.script(t, "pcscd-restart")
}

// StopPCSCD stops pcscd (SIGTERM to its PID, waiting until it has gone),
// for tests of what a program does without the PC/SC service. When the
// test ends pcscd is started again with its readers and cards (as
// RestartPCSCD does), whether the test passed or not.
func (s *Stack) StopPCSCD(t testing.TB) {
	t.Helper()
	pid, err := strconv.Atoi(s.Get(t, "PID_PCSCD"))
	if err != nil || pid <= 1 {
		t.Fatalf("stack.env: PID_PCSCD %q is not a process id", s.Env["PID_PCSCD"])
	}
	t.Cleanup(func() {
		if out, err := s.run("pcscd-restart"); err != nil {
			t.Errorf("starting pcscd again: scripts/teststack pcscd-restart: %v\n%s", err, out)
		}
	})
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stopping pcscd (PID %d): %v", pid, err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		if !alive(pid) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pcscd (PID %d) still runs 5 s after SIGTERM", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alive reports whether pid runs (a zombie, which this sandbox may keep
// for a while, does not).
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	st := string(b)
	if i := strings.LastIndexByte(st, ')'); i >= 0 && i+2 < len(st) {
		return st[i+2] != 'Z'
	}
	return true
}

func (s *Stack) script(t testing.TB, args ...string) {
	t.Helper()
	out, err := s.run(args...)
	if err != nil {
		t.Fatalf("scripts/teststack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// run calls scripts/teststack and reloads stack.env (PIDs change).
func (s *Stack) run(args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.Root, "scripts", "teststack"), args...)
	cmd.Env = append(os.Environ(), "CARDWRIGHT_STACK_DIR="+s.Dir)
	out, err := cmd.CombinedOutput()
	if env, rerr := readEnv(filepath.Join(s.Dir, "stack.env")); rerr == nil {
		s.Env = env
	}
	return out, err
}
