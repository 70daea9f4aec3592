package main

// desktop_harness_test.go: the harness of the tests that drive the desktop
// app as a person would (spec/gui.md): `cardwright desktop` — the agent and
// its GUI child process — runs on the test stack's Xvfb; the tests find its
// windows with xdotool, type and click with real X input events (XTEST),
// and take screenshots with ImageMagick's import.
//
// Nothing here skips a test except under -short (stacktest.Require): a
// missing X server, xdotool or import fails it, naming what to install or
// start.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cardwright/cardwright/gui/traytest"
	"github.com/cardwright/cardwright/internal/stacktest"
)

// The window titles of the desktop app in English (gui/pin.go,
// gui/pairing.go), as xdotool search --name regular expressions. The status
// window is "cardwright" alone, so each one needs more than the program's
// name. xdotool matches WM_NAME, where the title's "—" is lost when the GUI
// process runs in the C locale (as here: GLFW converts the title to the
// locale's charset): ".*" stands for it.
const (
	pinWindowName  = `^cardwright .* PIN$`
	padWindowName  = `^cardwright .* PIN pad$`
	pairWindowName = `^cardwright .* Pair a site$`
)

// desktopBuild is the cardwright binary the desktop tests run, built once
// per test process: `cardwright desktop` starts its GUI as
// os.Executable() gui-process, which a test binary cannot play.
var desktopBuild struct {
	once sync.Once
	path string
	err  error
}

// desktopBinary is $CARDWRIGHT_BIN when set (make test sets it to the
// bin/cardwright make build made from this tree); else it builds
// ./cmd/cardwright from the working tree into the test stack's directory (one fixed path: the stack lock, taken by
// stacktest.Require, keeps other test processes out while this one runs)
// and returns its path. It is built without -race: the race detector
// covers the agent's code in this package's in-process tests.
func desktopBinary(t *testing.T, s *stacktest.Stack) string {
	t.Helper()
	desktopBuild.once.Do(func() { // the first test that gets here builds and logs it
		if bin := os.Getenv("CARDWRIGHT_BIN"); bin != "" {
			// make test passes the binary make build just made (as the
			// Debian package builds it): no second cold build of Fyne's C
			// code with other flags.
			if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
				desktopBuild.err = fmt.Errorf("CARDWRIGHT_BIN=%s is not an executable file (%v)", bin, err)
				return
			}
			t.Logf("using %s (CARDWRIGHT_BIN)", bin)
			desktopBuild.path = bin
			return
		}
		dir := filepath.Join(s.Dir, "desktop-test")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			desktopBuild.err = err
			return
		}
		bin := filepath.Join(dir, "cardwright")
		start := time.Now()
		cmd := exec.Command("go", "build", "-o", bin, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			desktopBuild.err = fmt.Errorf("go build ./cmd/cardwright: %v\n%s", err, out)
			return
		}
		t.Logf("built %s in %v", bin, time.Since(start).Round(time.Millisecond))
		desktopBuild.path = bin
	})
	if desktopBuild.err != nil {
		t.Fatal(desktopBuild.err)
	}
	return desktopBuild.path
}

// requireX returns the test stack's X display after checking the tools the
// tests drive it with.
func requireX(t *testing.T, s *stacktest.Stack) string {
	t.Helper()
	for tool, pkg := range map[string]string{"xdotool": "xdotool", "import": "imagemagick", "dbus-daemon": "dbus"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the desktop tests need %s: install the Debian package %s (scripts/install-deps)", tool, pkg)
		}
	}
	return s.Display(t)
}

// desktopOptions say how startDesktop runs `cardwright desktop`.
type desktopOptions struct {
	// Args are the flags after `cardwright desktop` (serve's: --config,
	// --demo-portal, --demo-job, --allow-origin, …). --listen 127.0.0.1:0,
	// --log-format json and a --journal in the test's directory are added
	// unless Args has them.
	Args []string
	// Env is added to the test process's environment (SOFTHSM2_CONF,
	// PINLIMIT_*, …).
	Env []string
	// Bus is the session bus: "" starts a private one on which no tray host
	// runs, so the app shows its status window; "none" gives the app no
	// session bus at all; anything else is a DBUS_SESSION_BUS_ADDRESS (a
	// traytest.Host's, for a test that plays the tray host).
	Bus string
}

// desktopProc is one running `cardwright desktop`.
type desktopProc struct {
	t        *testing.T
	Display  string
	AgentURL string // ws://127.0.0.1:PORT/v1/ws
	DemoURL  string // with --demo-portal
	Journal  string // the journal directory the harness chose ("" when Args named one)
	cmd      *exec.Cmd
	done     chan struct{} // closed when its standard error ends

	mu  sync.Mutex
	log strings.Builder
}

// startDesktop runs `cardwright desktop` on display and returns once the
// agent listens and its desktop app said hello ("desktop app ready" in the
// JSON log). The process is stopped (SIGINT) when the test ends.
func startDesktop(t *testing.T, s *stacktest.Stack, display string, opt desktopOptions) *desktopProc {
	t.Helper()
	bin := desktopBinary(t, s)
	args := append([]string{"desktop"}, opt.Args...)
	d := &desktopProc{t: t, Display: display, done: make(chan struct{})}
	if !hasFlag(args, "--listen") {
		args = append(args, "--listen", "127.0.0.1:0")
	}
	if !hasFlag(args, "--log-format") {
		args = append(args, "--log-format", "json")
	}
	if !hasFlag(args, "--journal") {
		d.Journal = filepath.Join(t.TempDir(), "journal")
		args = append(args, "--journal", d.Journal)
	}
	env := withoutEnv(os.Environ(), "DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "LANG", "LC_ALL", "LC_MESSAGES")
	env = append(env, "DISPLAY="+display, "LANG=C.UTF-8", "LANGUAGE=en") // English screenshots and window names; a UTF-8 code set keeps the titles' dash
	switch opt.Bus {
	case "":
		env = append(env, traytest.StartWithoutWatcher(t).Env())
	case "none":
		// An address no transport takes: godbus (the tray check, Fyne's
		// notifications) neither connects nor autolaunches dbus-launch, as
		// it would with the variable unset and DISPLAY set.
		env = append(env, "DBUS_SESSION_BUS_ADDRESS=disabled:")
	default:
		env = append(env, "DBUS_SESSION_BUS_ADDRESS="+opt.Bus)
	}
	env = append(env, opt.Env...)

	d.cmd = exec.Command(bin, args...)
	d.cmd.Env = env
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the GUI child goes with it
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() { d.Stop() })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cardwright desktop's log:\n%s", d.Logs())
		}
	})
	ready := make(chan struct{})
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		up := false
		for sc.Scan() {
			l := sc.Text()
			d.mu.Lock()
			d.log.WriteString(l + "\n")
			if a, u := serveAnnounced(l); a != "" {
				d.AgentURL = a
			} else if u != "" {
				d.DemoURL = u
			}
			if strings.Contains(l, `"msg":"desktop app ready"`) && !up {
				up = true
				close(ready)
			}
			d.mu.Unlock()
		}
	}()
	select {
	case <-ready:
	case <-d.done:
		t.Fatalf("cardwright desktop ended before its desktop app was ready:\n%s", d.Logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("cardwright desktop: no \"desktop app ready\" within 30 s:\n%s", d.Logs())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.AgentURL == "" || (hasFlag(args, "--demo-portal") && d.DemoURL == "") {
		t.Fatalf("cardwright desktop announced no agent or demo portal URL:\n%s", d.log.String())
	}
	return d
}

// Logs is the agent's log so far (the GUI's standard error included: the
// agent logs it as "desktop app" records).
func (d *desktopProc) Logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// Stop ends cardwright desktop as Ctrl-C does and waits for it and its
// GUI; it returns the exit code (-1 when it had to be killed). Calling it
// again returns the same.
func (d *desktopProc) Stop() int {
	if d.cmd.ProcessState != nil {
		return d.cmd.ProcessState.ExitCode()
	}
	d.cmd.Process.Signal(os.Interrupt)
	waited := make(chan error, 1)
	go func() { <-d.done; waited <- d.cmd.Wait() }()
	select {
	case <-waited:
	case <-time.After(15 * time.Second):
		d.t.Errorf("cardwright desktop did not stop within 15 s of SIGINT: killing its process group")
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-waited
	}
	return d.cmd.ProcessState.ExitCode()
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || k == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// x runs an X client (xdotool, import) on display; it fails the test when
// the command fails or takes more than timeout.
func x(t *testing.T, display string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	out, err := xRun(display, timeout, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

func xRun(display string, timeout time.Duration, name string, args ...string) (string, error) {
	// A client refused by a busy X server (xdotool: "Can't open display",
	// seen once under a load of 11 on 2 cores) is tried again; anything
	// else the client says is the test's to judge.
	for try := 1; ; try++ {
		out, err := xRunOnce(display, timeout, name, args...)
		if err == nil || try == 3 || !strings.Contains(err.Error(), "Can't open display") {
			return out, err
		}
		time.Sleep(time.Duration(try) * 200 * time.Millisecond)
	}
}

func xRunOnce(display string, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(withoutEnv(os.Environ(), "DISPLAY"), "DISPLAY="+display)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.String(), fmt.Errorf("no result within %v: %w", timeout, ctx.Err())
	}
	if err != nil {
		return out.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// windows lists the visible windows whose name matches the regular
// expression name (none is not an error: xdotool exits 1 then).
func windows(t *testing.T, display, name string) []string {
	t.Helper()
	out, err := xRun(display, 10*time.Second, "xdotool", "search", "--onlyvisible", "--name", name)
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1 && strings.TrimSpace(out) == "") {
		t.Fatalf("xdotool search --name %q: %v", name, err)
	}
	return strings.Fields(out)
}

// waitWindow waits (up to 20 s) for a visible window whose name matches
// the regular expression name and returns its id; with several, the
// newest.
func waitWindow(t *testing.T, display, name string) string {
	t.Helper()
	out, err := xRun(display, 20*time.Second, "xdotool", "search", "--sync", "--onlyvisible", "--name", name)
	ids := strings.Fields(out)
	if err != nil || len(ids) == 0 {
		t.Fatalf("no window named %q on %s within 20 s (%v); visible windows:\n%s", name, display, err, windowList(display))
	}
	return ids[len(ids)-1]
}

// waitNoWindow waits (up to timeout) until no visible window matches name.
func waitNoWindow(t *testing.T, display, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ids := windows(t, display, name)
		if len(ids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("window %v named %q still shown after %v", ids, name, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// windowList names the visible windows, for failure messages.
func windowList(display string) string {
	out, err := xRun(display, 10*time.Second, "xdotool", "search", "--onlyvisible", "--name", ".")
	if err != nil {
		return "(none: " + err.Error() + ")"
	}
	var b strings.Builder
	for _, id := range strings.Fields(out) {
		name, _ := xRun(display, 5*time.Second, "xdotool", "getwindowname", id)
		fmt.Fprintf(&b, "  %s %q\n", id, strings.TrimSpace(name))
	}
	return b.String()
}

// focusedWindow is the window that has the keyboard focus.
func focusedWindow(t *testing.T, display string) string {
	t.Helper()
	return strings.TrimSpace(x(t, display, 10*time.Second, "xdotool", "getwindowfocus"))
}

// typeText types text with real key events into the focused window, 20 ms
// between keys, as a person types.
func typeText(t *testing.T, display, text string) {
	t.Helper()
	x(t, display, 30*time.Second, "xdotool", "type", "--delay", "20", "--", text)
}

// key presses keys (xdotool names: Return, Tab, Escape) one after another
// in the focused window.
func key(t *testing.T, display string, keys ...string) {
	t.Helper()
	x(t, display, 10*time.Second, "xdotool", append([]string{"key", "--delay", "20"}, keys...)...)
}

// click moves the pointer to x, y inside window and clicks the left
// button. (No mousemove --sync: it waits for the pointer to move, forever
// when it is there already.)
func click(t *testing.T, display, window string, px, py int) {
	t.Helper()
	x(t, display, 10*time.Second, "xdotool", "mousemove", "--window", window, strconv.Itoa(px), strconv.Itoa(py), "click", "1")
}

// windowSize is a window's width and height in pixels.
func windowSize(t *testing.T, display, window string) (w, h int) {
	t.Helper()
	_, _, w, h = windowGeometry(t, display, window)
	return w, h
}

// windowGeometry is a window's position on the screen and its size, in
// pixels.
func windowGeometry(t *testing.T, display, window string) (px, py, w, h int) {
	t.Helper()
	out := x(t, display, 10*time.Second, "xdotool", "getwindowgeometry", window)
	m := regexp.MustCompile(`Position: (-?\d+),(-?\d+)[^\n]*\n\s*Geometry: (\d+)x(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("xdotool getwindowgeometry %s: %q", window, out)
	}
	px, _ = strconv.Atoi(m[1])
	py, _ = strconv.Atoi(m[2])
	w, _ = strconv.Atoi(m[3])
	h, _ = strconv.Atoi(m[4])
	return px, py, w, h
}

// onScreen fails the test unless window lies wholly on the screen.
func onScreen(t *testing.T, display, window string) {
	t.Helper()
	var sw, sh int
	out := x(t, display, 10*time.Second, "xdotool", "getdisplaygeometry")
	if _, err := fmt.Sscanf(out, "%d %d", &sw, &sh); err != nil {
		t.Fatalf("xdotool getdisplaygeometry: %q: %v", out, err)
	}
	px, py, w, h := windowGeometry(t, display, window)
	if px < 0 || py < 0 || px+w > sw || py+h > sh {
		t.Errorf("window %s at %d,%d size %dx%d is not wholly on the %dx%d screen", window, px, py, w, h, sw, sh)
	}
}

// screenshot writes window as a PNG to path once it is drawn: a window
// just mapped may not have painted yet, so it takes pictures 200 ms apart
// until two are the same (up to 5 s; a countdown that ticks between two
// pictures costs one more round).
func screenshot(t *testing.T, display, window, path string) {
	t.Helper()
	var last []byte
	deadline := time.Now().Add(5 * time.Second)
	for {
		x(t, display, 20*time.Second, "/usr/bin/import", "-window", window, "PNG:"+path)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(b, last) {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("screenshot %s: the window still changed after 5 s; keeping the last picture", path)
			return
		}
		last = b
		time.Sleep(200 * time.Millisecond)
	}
}

// docScreenshot takes the screenshot for the documentation: to
// $CARDWRIGHT_SCREENSHOTS/name when that is set (docs/img/gui is where
// they are kept), else nowhere. It returns the path written, or "".
func docScreenshot(t *testing.T, display, window, name string) string {
	t.Helper()
	dir := os.Getenv("CARDWRIGHT_SCREENSHOTS")
	if dir == "" {
		return ""
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	screenshot(t, display, window, p)
	t.Logf("screenshot %s", p)
	return p
}

// portalPage is headless Chromium on the demo portal of a desktopProc
// (web/demo.html), recording every WebSocket frame the page sends and
// receives.
type portalPage struct {
	t    *testing.T
	ctx  context.Context
	done func()

	mu     sync.Mutex
	frames []string
}

// openPortal opens the demo portal of d and waits until the page is
// connected to the agent. The browser closes when the test ends.
func openPortal(t *testing.T, d *desktopProc) *portalPage {
	t.Helper()
	ctx, done := newBrowser(t)
	p := &portalPage{t: t, ctx: ctx, done: done}
	t.Cleanup(done)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the portal page: result %q, log:\n%s", p.Text("#result"), p.Text("#log"))
		}
	})
	// Listen sees the events after the tab is attached: attach it first
	// with a blank page, then load the portal.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	if err := chromedp.Listen(ctx, p.event); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(d.DemoURL), chromedp.WaitVisible(chromedp.CSS(`#status.ok`))); err != nil {
		t.Fatalf("opening the demo portal %s: %v\n%s", d.DemoURL, err, d.Logs())
	}
	return p
}

// event records WebSocket frames. It matches the event types by name and
// reads their payload by reflection: the types are cdproto's
// (network.EventWebSocketFrameSent, …Received), a module this one
// requires only indirectly, through chromedp.
func (p *portalPage) event(ev any) {
	var dir string
	switch fmt.Sprintf("%T", ev) {
	case "*network.EventWebSocketFrameSent":
		dir = "sent "
	case "*network.EventWebSocketFrameReceived":
		dir = "received "
	default:
		return
	}
	resp := reflect.ValueOf(ev).Elem().FieldByName("Response")
	if !resp.IsValid() || resp.IsNil() {
		return
	}
	payload := resp.Elem().FieldByName("PayloadData")
	if !payload.IsValid() || payload.Kind() != reflect.Slice {
		return
	}
	p.mu.Lock()
	p.frames = append(p.frames, dir+string(payload.Bytes()))
	p.mu.Unlock()
}

// Frames are the WebSocket frames so far, each "sent …" or "received …".
func (p *portalPage) Frames() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.frames) == 0 {
		p.t.Fatal("no WebSocket frame recorded: the frame listener did not work")
	}
	return slices.Clone(p.frames)
}

// Do runs chromedp actions on the page, failing the test with the page's
// log and the agent's on error.
func (p *portalPage) Do(d *desktopProc, what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\nresult on the page: %s\npage log:\n%s\nagent log:\n%s", what, err, p.Text("#result"), p.Text("#log"), d.Logs())
	}
}

// Text is the text of the element sel ("" when there is none).
func (p *portalPage) Text(sel string) string {
	v, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", sel, err)
	}
	return v
}
