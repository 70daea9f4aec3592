package stacktest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
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

// TestDisplay: the stack's Xvfb answers on the display stack.env names, with
// the screen scripts/teststack asked for.
func TestDisplay(t *testing.T) {
	s := Require(t)
	d := s.Display(t)
	if !regexp.MustCompile(`^:[0-9]+$`).MatchString(d) {
		t.Fatalf("DISPLAY=%q, want :N (a local display, no TCP)", d)
	}
	out, err := exec.Command("xdpyinfo", "-display", d).Output()
	if err != nil {
		t.Fatalf("xdpyinfo -display %s: %v", d, err)
	}
	if !regexp.MustCompile(`dimensions: +1280x800 pixels`).Match(out) || !regexp.MustCompile(`depth of root window: +24 planes`).Match(out) {
		t.Errorf("Xvfb %s is not the 1280x800x24 screen scripts/teststack starts:\n%s", d, out)
	}
}

// TestDisplayFailsLoudly: without a DISPLAY, or with one nobody serves,
// Display fails the test and names the command that starts the stack.
func TestDisplayFailsLoudly(t *testing.T) {
	dead := ""
	for n := 4242; n < 4342; n++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); errors.Is(err, os.ErrNotExist) {
			dead = fmt.Sprintf(":%d", n)
			break
		}
	}
	for name, env := range map[string]map[string]string{
		"no DISPLAY":   {},
		"dead display": {"DISPLAY": dead},
	} {
		t.Run(name, func(t *testing.T) {
			s := &Stack{Dir: t.TempDir(), Env: env}
			ft := &fatalTB{TB: t}
			done := make(chan string)
			go func() {
				defer func() { done <- ft.msg }()
				ft.msg = "returned " + s.Display(ft)
			}()
			msg := <-done
			t.Logf("Display failed the test with: %s", msg)
			if !ft.failed || !strings.Contains(msg, "scripts/teststack") {
				t.Errorf("Display did not fail the test naming scripts/teststack: %q", msg)
			}
		})
	}
}

// fatalTB records Fatalf and ends its goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	failed bool
	msg    string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}
