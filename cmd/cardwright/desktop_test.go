package main

// The agent outlives its GUI (spec/gui.md property 1; issue 13, "Must
// show", Failure): `cardwright desktop` — the real binary, its real GUI
// child process — with no display, with a display that does not answer,
// and with its GUI killed with SIGKILL while a PIN window is open. The
// agent keeps serving, a job that needs a PIN dialog ends
// prompt_unavailable while no GUI runs, and once the GUI is back the next
// one opens its window.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/gui/traytest"
	"github.com/cardwright/cardwright/internal/stacktest"
)

// failureOrigin is the portal the failure tests connect as.
const failureOrigin = "https://portal.example"

// startDesktopAgent runs `cardwright desktop` from bin with the test
// process's environment minus the display and bus variables, plus env,
// and returns once the agent listens ("agent ready") — without waiting for
// its desktop app, which may never come up. Stopped with SIGINT when the
// test ends (desktopProc.Stop, desktop_harness_test.go).
func startDesktopAgent(t *testing.T, bin string, env []string, args ...string) *desktopProc {
	t.Helper()
	d := &desktopProc{t: t, done: make(chan struct{}), Journal: filepath.Join(t.TempDir(), "journal")}
	args = append([]string{"desktop", "--listen", "127.0.0.1:0", "--log-format", "json", "--journal", d.Journal}, args...)
	d.cmd = exec.Command(bin, args...)
	d.cmd.Env = append(withoutEnv(os.Environ(), "DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "LANG", "LC_ALL", "LC_MESSAGES"),
		append([]string{"LANG=en_US.UTF-8", "DBUS_SESSION_BUS_ADDRESS=disabled:"}, env...)...)
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == "DISPLAY" {
			d.Display = v
		}
	}
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() { d.Stop() })
	ready := make(chan struct{})
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			l := sc.Text()
			d.mu.Lock()
			d.log.WriteString(l + "\n")
			if a, _ := serveAnnounced(l); a != "" && d.AgentURL == "" {
				d.AgentURL = a
				close(ready)
			}
			d.mu.Unlock()
		}
	}()
	select {
	case <-ready:
	case <-d.done:
		t.Fatalf("cardwright desktop ended before the agent was ready:\n%s", d.Logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("cardwright desktop: no \"agent ready\" within 30 s:\n%s", d.Logs())
	}
	return d
}

// waitLogCount waits until d's log holds s at least n times.
func waitLogCount(t *testing.T, d *desktopProc, s string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Count(d.Logs(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q is in the agent's log %d times after %v, want %d:\n%s", s, strings.Count(d.Logs(), s), timeout, n, d.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// guiChild is the process id of d's GUI child process (`cardwright
// gui-process`), found by its parent; 0 when none runs.
func guiChild(t *testing.T, d *desktopProc) int {
	t.Helper()
	out, err := exec.Command("pgrep", "-P", strconv.Itoa(d.cmd.Process.Pid), "-f", guiProcessName).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
			return 0
		}
		t.Fatalf("pgrep: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 1 {
		t.Fatalf("pgrep -P %d -f %s: %q, want one process", d.cmd.Process.Pid, guiProcessName, out)
	}
	pid, _ := strconv.Atoi(f[0])
	return pid
}

// agentHealth is GET /v1/health of d's agent.
func agentHealth(t *testing.T, d *desktopProc) map[string]any {
	t.Helper()
	host := strings.TrimSuffix(strings.TrimPrefix(d.AgentURL, "ws://"), "/v1/ws")
	resp, err := http.Get("http://" + host + "/v1/health")
	if err != nil {
		t.Fatalf("health: %v\n%s", err, d.Logs())
	}
	defer resp.Body.Close()
	var h map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &h); err != nil || resp.StatusCode != 200 || h["status"] != "ok" {
		t.Fatalf("health: %d %s", resp.StatusCode, b)
	}
	return h
}

// eraseJob is the job whose description asks for the card's PIN in a
// dialog (testdata/desktop/erase.dsc, !FROM_USER_DIALOG_1_FIELD) before it
// touches the card.
func eraseJob(t *testing.T, reader string) *api.Job {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(desktopData, "erase.dsc"))
	if err != nil {
		t.Fatal(err)
	}
	return &api.Job{Description: string(src), Reader: reader}
}

// runFailed runs job and returns its error code ("" when it ended ok).
func runFailed(t *testing.T, ctx context.Context, c *client.Client, d *desktopProc, job *api.Job) api.Code {
	t.Helper()
	res, err := c.Run(ctx, job, nil, nil)
	if err != nil {
		t.Fatalf("job: %v\n%s", err, d.Logs())
	}
	if res.OK {
		return ""
	}
	return res.Error.Code
}

// runAsync runs job in the background; the channel gets its error code
// ("" ok; "error: …" when the client failed).
func runAsync(ctx context.Context, c *client.Client, job *api.Job) <-chan api.Code {
	codes := make(chan api.Code, 1)
	go func() {
		res, err := c.Run(ctx, job, nil, nil)
		switch {
		case err != nil:
			codes <- api.Code("error: " + err.Error())
		case res.OK:
			codes <- ""
		default:
			codes <- res.Error.Code
		}
	}()
	return codes
}

// readICCSN runs the job that reads the card's serial and nothing else,
// and checks it.
func readICCSN(t *testing.T, ctx context.Context, c *client.Client, d *desktopProc, reader, serial string) {
	t.Helper()
	res, err := c.Run(ctx, &api.Job{Description: iccsnJob, Reader: reader}, nil, nil)
	if err != nil || !res.OK || res.Fields["ICCSN"] != serial {
		t.Fatalf("ICCSN job: %+v %v\n%s", res, err, d.Logs())
	}
}

// freeDisplay is an X display number nobody serves.
func freeDisplay(t *testing.T) string {
	t.Helper()
	for n := 150; n < 200; n++ {
		_, e1 := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n))
		_, e2 := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n))
		if os.IsNotExist(e1) && os.IsNotExist(e2) {
			return fmt.Sprintf(":%d", n)
		}
	}
	t.Fatal("no free X display number in :150-:199")
	return ""
}

// TestDesktopWithoutDisplay: `cardwright desktop` where no GUI can run —
// DISPLAY and WAYLAND_DISPLAY unset (the GUI process says why and exits),
// and DISPLAY naming an X server that is not there (Fyne panics opening
// it). The agent serves all the same: /v1/health, a job that reads the own
// card's ICCSN, and a job that needs a PIN dialog ends prompt_unavailable
// at once without touching the card; the GUI is tried again and again,
// never counted as up; Ctrl-C stops it all with exit 0.
func TestDesktopWithoutDisplay(t *testing.T) {
	s := stacktest.Require(t)
	bin := desktopBinary(t, s)
	reader, serial := s.Get(t, "READER_OWN_1"), s.Get(t, "SERIAL_OWN_1")
	for _, tc := range []struct {
		name string
		env  []string
		why  string // in the GUI's standard error, logged by the agent
	}{
		{"no DISPLAY", nil, "no display: DISPLAY and WAYLAND_DISPLAY are not set"},
		{"X server absent", []string{"DISPLAY=" + freeDisplay(t)}, "no X server answers on DISPLAY="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDesktopAgent(t, bin, tc.env, "--config", "/dev/null", "--allow-origin", failureOrigin)
			waitLogCount(t, d, `"msg":"desktop app ended`, 1, 20*time.Second)
			agentHealth(t, d)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c, err := client.Dial(ctx, d.AgentURL, client.Options{Origin: failureOrigin})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			readICCSN(t, ctx, c, d, reader, serial)
			start := time.Now()
			if code := runFailed(t, ctx, c, d, eraseJob(t, reader)); code != api.CodePromptUnavailable {
				t.Fatalf("the PIN job ended %q, want %s\n%s", code, api.CodePromptUnavailable, d.Logs())
			}
			t.Logf("PIN job ended prompt_unavailable after %v", time.Since(start).Round(time.Millisecond))
			readICCSN(t, ctx, c, d, reader, serial)                           // the agent still serves the card
			waitLogCount(t, d, `"msg":"desktop app ended`, 2, 20*time.Second) // tried again
			if code := d.Stop(); code != exitOK {
				t.Errorf("cardwright desktop exit %d, want 0", code)
			}
			out := d.Logs()
			if !strings.Contains(out, tc.why) {
				t.Errorf("the agent's log does not say why the desktop app cannot start (%q):\n%s", tc.why, out)
			}
			if strings.Contains(out, `"msg":"desktop app ready"`) {
				t.Errorf("a desktop app that cannot start was logged ready:\n%s", out)
			}
		})
	}
}

// TestDesktopGUIKilled: under Xvfb, a portal job asks for the PIN and its
// window opens; the GUI process is killed with SIGKILL. The job ends
// prompt_unavailable and its window is gone. While the GUI is down — its
// restart held back by moving the executable away, so the down time does
// not depend on timing (it also plays a GUI that cannot start) — the agent
// serves health and card jobs, and the next PIN job ends prompt_unavailable
// at once. With the executable back the agent starts the GUI again
// ("desktop app ready" a second time, a new process) and the next PIN job
// opens its window, which Escape cancels (prompt_refused).
func TestDesktopGUIKilled(t *testing.T) {
	s := stacktest.Require(t)
	display := requireX(t, s)
	reader, serial := s.Get(t, "READER_OWN_1"), s.Get(t, "SERIAL_OWN_1")
	// A copy of the binary of our own, to move away and back.
	built, err := os.ReadFile(desktopBinary(t, s))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "cardwright")
	if err := os.WriteFile(bin, built, 0o755); err != nil {
		t.Fatal(err)
	}
	bus := traytest.StartWithoutWatcher(t).Env() // no tray host: the status window shows
	d := startDesktopAgent(t, bin, []string{"DISPLAY=" + display, bus}, "--config", "/dev/null", "--allow-origin", failureOrigin)
	waitLogCount(t, d, `"msg":"desktop app ready"`, 1, 30*time.Second)
	first := guiChild(t, d)
	if first == 0 {
		t.Fatalf("no %s child process of the agent\n%s", guiProcessName, d.Logs())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, d.AgentURL, client.Options{Origin: failureOrigin})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readICCSN(t, ctx, c, d, reader, serial)

	// The PIN window is open; the GUI is killed.
	codes := runAsync(ctx, c, eraseJob(t, reader))
	waitWindow(t, display, pinWindowName)
	if err := os.Rename(bin, bin+".away"); err != nil {
		t.Fatal(err)
	}
	moved := true
	defer func() {
		if moved {
			os.Rename(bin+".away", bin)
		}
	}()
	killed := time.Now()
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-codes:
		if code != api.CodePromptUnavailable {
			t.Fatalf("the job whose PIN window was open when the GUI was killed ended %q, want %s\n%s", code, api.CodePromptUnavailable, d.Logs())
		}
		t.Logf("job ended prompt_unavailable %v after the kill", time.Since(killed).Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		t.Fatalf("the job did not end within 20 s of the GUI's kill\n%s", d.Logs())
	}
	waitNoWindow(t, display, pinWindowName, 5*time.Second) // went with its process
	waitLogCount(t, d, `"msg":"desktop app ended`, 1, 10*time.Second)

	// Down: the agent serves; a PIN job ends prompt_unavailable at once.
	agentHealth(t, d)
	readICCSN(t, ctx, c, d, reader, serial)
	start := time.Now()
	if code := runFailed(t, ctx, c, d, eraseJob(t, reader)); code != api.CodePromptUnavailable {
		t.Fatalf("a PIN job while the GUI is down ended %q, want %s\n%s", code, api.CodePromptUnavailable, d.Logs())
	}
	t.Logf("PIN job while the GUI is down ended prompt_unavailable in %v", time.Since(start).Round(time.Millisecond))
	waitLogCount(t, d, "starting the desktop app", 1, 10*time.Second) // a restart failed
	if n := strings.Count(d.Logs(), `"msg":"desktop app ready"`); n != 1 {
		t.Fatalf("the GUI came back without its executable (%d ready)\n%s", n, d.Logs())
	}

	// Back.
	if err := os.Rename(bin+".away", bin); err != nil {
		t.Fatal(err)
	}
	moved = false
	back := time.Now()
	waitLogCount(t, d, `"msg":"desktop app ready"`, 2, 40*time.Second)
	t.Logf("GUI back %v after the executable returned", time.Since(back).Round(time.Millisecond))
	if second := guiChild(t, d); second == 0 || second == first {
		t.Fatalf("GUI process after the restart: %d (killed: %d)", second, first)
	}
	codes = runAsync(ctx, c, eraseJob(t, reader))
	win := waitWindow(t, display, pinWindowName)
	x(t, display, 10*time.Second, "xdotool", "windowfocus", "--sync", win)
	key(t, display, "Escape")
	select {
	case code := <-codes:
		if code != api.CodePromptRefused {
			t.Fatalf("the PIN job after the restart ended %q, want %s (Escape in its window)\n%s", code, api.CodePromptRefused, d.Logs())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the PIN job after the restart did not end\n%s", d.Logs())
	}
	waitNoWindow(t, display, pinWindowName, 5*time.Second)
	readICCSN(t, ctx, c, d, reader, serial)
	if code := d.Stop(); code != exitOK {
		t.Errorf("cardwright desktop exit %d, want 0", code)
	}
	if n := strings.Count(d.Logs(), `"msg":"agent ready"`); n != 1 {
		t.Errorf("the agent started %d times", n)
	}
}
