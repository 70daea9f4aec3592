package main

// initgui_test.go: `cardwright init-gui`, the card-initialization window,
// driven as a registration officer drives it (spec/gui.md "Standalone card
// initialization"): the real window on the test stack's Xvfb, real X key
// presses and clicks (xdotool), the real readers (pcscd, the own virtual
// card) and a SoftHSM2 token. The test plays the officer's CA too: it signs
// the requests the window saves. Card and token are read back independently
// of the window afterwards.

import (
	"bufio"
	"context"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cardwright/cardwright/issuer"
)

// initWindowName is the window's title as xdotool sees it (the "—" may be
// lost in WM_NAME, see desktop_harness_test.go).
const initWindowName = `^Initialize a card .* cardwright$|^Karte initialisieren .* cardwright$`

// initProc is one running `cardwright init-gui`.
type initProc struct {
	t       testing.TB
	cmd     *exec.Cmd
	started time.Time // just before exec
	done    chan struct{}
	stop    sync.Once
	mu      sync.Mutex
	lines   []logLine
	Window  string
}

// logLine is a line of the window's log and when it was read.
type logLine struct {
	at   time.Time
	text string
}

// startInitGUI runs `cardwright init-gui args…` on display with env added,
// and returns once its window is shown.
func startInitGUI(t *testing.T, e *stackEnv, display string, env []string, args ...string) *initProc {
	t.Helper()
	p := execInitGUI(t, desktopBinary(t, e.s), display, append([]string{"SOFTHSM2_CONF=" + e.conf}, env...), args...)
	p.Window = waitWindow(t, display, initWindowName)
	onScreen(t, display, p.Window)
	return p
}

// execInitGUI runs `bin init-gui args…` on display, English unless env
// says otherwise, with a home of its own and env added, and returns at
// once; its log is read as it comes. It is stopped when the test ends, or
// by Stop.
func execInitGUI(t testing.TB, bin, display string, env []string, args ...string) *initProc {
	t.Helper()
	p := &initProc{t: t, done: make(chan struct{})}
	home := t.TempDir() // recent files, default request folder
	base := withoutEnv(os.Environ(), "DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "LANG", "LC_ALL", "LC_MESSAGES", "LANGUAGE", "HOME", "XDG_CONFIG_HOME")
	base = append(base, "DISPLAY="+display, "LANG=C.UTF-8", "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"DBUS_SESSION_BUS_ADDRESS=disabled:")
	p.cmd = exec.Command(bin, append([]string{"init-gui"}, args...)...)
	p.cmd.Env = append(base, env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			l := logLine{time.Now(), sc.Text()}
			p.mu.Lock()
			p.lines = append(p.lines, l)
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("cardwright init-gui's log:\n%s", p.Logs())
		}
	})
	return p
}

// Stop ends the window's process group (SIGTERM, SIGKILL after 10 s) and
// waits for it.
func (p *initProc) Stop() {
	p.stop.Do(func() {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		p.cmd.Wait()
	})
}

func (p *initProc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, l := range p.lines {
		b.WriteString(l.text + "\n")
	}
	return b.String()
}

// Mark is the number of log lines read so far.
func (p *initProc) Mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// waitLog waits (up to timeout) for a log line matching re and returns it.
func (p *initProc) waitLog(re string, timeout time.Duration) string {
	p.t.Helper()
	l, _, _ := p.waitLogAfter(0, re, timeout)
	return l
}

// waitLogAfter waits (up to timeout) for a log line matching re among the
// lines from the from-th (Mark) on, and returns it, when it was read, and
// the Mark after it.
func (p *initProc) waitLogAfter(from int, re string, timeout time.Duration) (string, time.Time, int) {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		p.mu.Lock()
		lines := p.lines[min(from, len(p.lines)):]
		p.mu.Unlock()
		for i, l := range lines {
			if rx.MatchString(l.text) {
				return l.text, l.at, from + i + 1
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("cardwright init-gui ended before logging %q:\n%s", re, p.Logs())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no log line %q within %v:\n%s", re, timeout, p.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// initConfig is the stack test's configuration without the vicc readers:
// the window lists the two own-card readers, in pcscd's order.
func initConfig(t *testing.T, e *stackEnv, extra string) string {
	b, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return writeTestFile(t, t.TempDir(), "cardwright.cfg", string(b)+"[readers]\nskip = Virtual PCD vicc .*\n"+extra)
}

// fillDemo types the demo job's values into the form, whose first field
// has the cursor: PIN, PUK, holder (as text; the form encodes it), the base64
// switch skipped, card serial, token label — with typeText's and key's
// xdotool calls, through xRun so that a benchmark can type them too.
func fillDemo(t testing.TB, display string) {
	t.Helper()
	typ := func(s string) []string { return []string{"type", "--delay", "20", "--", s} }
	tab := []string{"key", "--delay", "20", "Tab"}
	for _, args := range [][]string{typ(demoPIN), tab, typ(demoPUK), tab, typ("Erika Mustermann"), tab, tab,
		typ("CW-0001"), tab, typ("cardwright demo 1")} {
		if _, err := xRun(display, 30*time.Second, "xdotool", args...); err != nil {
			t.Fatalf("xdotool %s: %v", strings.Join(args, " "), err)
		}
	}
}

// The officer's whole job on the own virtual card: a dry run first (nothing
// reaches pcscd), then Run on the first own-card reader, each certificate
// request saved, issued by the test's CA and loaded, the result shown; card
// and token read back as the demo leaves them.
func TestInitWindowDemoOnStack(t *testing.T) {
	e := newStackEnv(t)
	display := requireX(t, e.s)
	cfg := initConfig(t, e, "")
	p := startInitGUI(t, e, display, []string{"LANGUAGE=en"}, "--config", cfg, demoPath(t))
	p.waitLog(`description opened .*errors=0 runnable=true`, 10*time.Second)
	p.waitLog(`card in reader reader="`+regexp.QuoteMeta(e.own[0])+`".*iccsn=[0-9A-F]+`, 15*time.Second)
	p.waitLog(`card in reader reader="`+regexp.QuoteMeta(e.own[1])+`".*iccsn=[0-9A-F]+`, 15*time.Second)
	docScreenshot(t, display, p.Window, "init-open.png")

	fillDemo(t, display)
	docScreenshot(t, display, p.Window, "init-filled.png")

	// Dry run (Ctrl+D): the transcript, and not one APDU in pcscd's log.
	pcscdLog := e.s.Get(t, "PCSCD_LOG")
	before := fileSize(t, pcscdLog)
	key(t, display, "ctrl+d")
	line := p.waitLog(`job finished dry_run=true`, 20*time.Second)
	if !strings.Contains(line, "code=ok") || !regexp.MustCompile(`apdus=[1-9]`).MatchString(line) {
		t.Fatalf("dry run: %s", line)
	}
	docScreenshot(t, display, p.Window, "init-dryrun.png")
	if apdus := pcscdAPDUs(t, pcscdLog, before); len(apdus) > 0 {
		t.Errorf("the dry run sent %d APDUs through pcscd, first: %s", len(apdus), apdus[0])
	}

	// Run (Ctrl+R) on the first own-card reader, chosen with a click on
	// its row (the readers' list is the first thing under the tool bar).
	click(t, display, p.Window, 90, 171)
	key(t, display, "ctrl+r")
	ca, err := issuer.OpenLocalCA(e.ca)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, app := range []string{"A", "B"} {
		csrPath := filepath.Join(dir, app+".csr.pem")
		certPath := filepath.Join(dir, app+".cert.pem")
		p.waitLog(`job started`, 20*time.Second)
		// The request's panel has the cursor in its path: replace it, Enter
		// saves the request and moves to the certificate file.
		waitFor(t, 20*time.Second, "the request panel of Application_"+app, func() bool {
			return strings.Contains(p.Logs(), "certificate request application="+app)
		})
		if app == "A" {
			docScreenshot(t, display, p.Window, "init-request.png")
		}
		key(t, display, "ctrl+a")
		typeText(t, display, csrPath)
		key(t, display, "Return")
		var csr []byte
		waitFor(t, 10*time.Second, "the saved request "+csrPath, func() bool {
			csr, err = os.ReadFile(csrPath)
			return err == nil && len(csr) > 0
		})
		b, _ := pem.Decode(csr)
		if b == nil || b.Type != "CERTIFICATE REQUEST" {
			t.Fatalf("%s is not a PEM certificate request:\n%s", csrPath, csr)
		}
		der, _, err := ca.Issue(context.Background(), issuer.Request{CSR: b.Bytes, Application: app})
		if err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, dir, app+".cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
		typeText(t, display, certPath)
		key(t, display, "Return")
		p.waitLog(`certificate loaded application=`+app, 10*time.Second)
	}
	line = p.waitLog(`job finished dry_run=false`, 60*time.Second)
	m := regexp.MustCompile(`code=ok reader="` + regexp.QuoteMeta(e.own[0]) + `" iccsn=([0-9A-F]+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("the job did not end ok on %q: %s", e.own[0], line)
	}
	docScreenshot(t, display, p.Window, "init-result.png")
	wantDemoState(t, e, e.own[0], "cardwright demo 1", m[1])
	for _, s := range []string{demoPIN, demoPUK} {
		if strings.Contains(p.Logs(), s) {
			t.Errorf("the window's log holds a secret")
		}
	}
}

// A broken description shows its errors with positions and cannot run:
// neither Ctrl+R nor Ctrl+D starts a job.
func TestInitWindowBrokenOnStack(t *testing.T) {
	e := newStackEnv(t)
	display := requireX(t, e.s)
	dir := t.TempDir()
	path := writeTestFile(t, dir, "broken.dsc", "[Fields]\nPIN_FIELD=\n\n[Description]\nChipProfile=missing.cpf\nPIN=PIN_FEILD\nInitTokn=true\n")
	p := startInitGUI(t, e, display, []string{"LANGUAGE=en"}, "--config", initConfig(t, e, ""), path)
	p.waitLog(`description opened .*errors=[1-9][0-9]* runnable=false`, 10*time.Second)
	p.waitLog(`card in reader reader="`+regexp.QuoteMeta(e.own[0])+`"`, 15*time.Second)
	click(t, display, p.Window, 90, 171)
	key(t, display, "ctrl+r", "ctrl+d")
	// A click on the first diagnostic shows its line under the list.
	click(t, display, p.Window, 200, 303)
	docScreenshot(t, display, p.Window, "init-broken.png")
	time.Sleep(time.Second) // what a started job would log by then: "job started"
	if strings.Contains(p.Logs(), "job started") {
		t.Errorf("a broken description ran:\n%s", p.Logs())
	}
}

// The window in German ([desktop] language = de in the configuration):
// the form and a dry run's result.
func TestInitWindowGermanOnStack(t *testing.T) {
	e := newStackEnv(t)
	display := requireX(t, e.s)
	p := startInitGUI(t, e, display, nil, "--config", initConfig(t, e, "[desktop]\nlanguage = de\n"), demoPath(t))
	p.waitLog(`description opened .*runnable=true`, 10*time.Second)
	p.waitLog(`card in reader reader="`+regexp.QuoteMeta(e.own[1])+`"`, 15*time.Second)
	if name := strings.TrimSpace(x(t, display, 5*time.Second, "xdotool", "getwindowname", p.Window)); !strings.HasPrefix(name, "Karte initialisieren") {
		t.Errorf("window title %q is not German", name)
	}
	fillDemo(t, display)
	docScreenshot(t, display, p.Window, "init-filled-de.png")
	key(t, display, "ctrl+d")
	p.waitLog(`job finished dry_run=true code=ok`, 20*time.Second)
	docScreenshot(t, display, p.Window, "init-dryrun-de.png")
}

// demoPath is the demo description's absolute path (the window shows it).
func demoPath(t testing.TB) string {
	p, err := filepath.Abs(filepath.Join(demoDir, "demo.dsc"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFor polls cond every 50 ms until it holds, or fails the test after
// timeout naming what it waited for.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// pcscdAPDUs are the lines pcscd logged after offset that record an APDU
// (pcscd --debug --apdu, as scripts/teststack runs it).
func pcscdAPDUs(t *testing.T, path string, offset int64) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, "APDU:") || strings.Contains(l, "SW:") {
			out = append(out, l)
		}
	}
	return out
}
