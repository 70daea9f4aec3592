package main

// desktop_figures_test.go: the desktop app's figures (spec/gui.md "Figures
// to measure", issue 13 "Figures"), measured with the real binary on the
// test stack's Xvfb and quoted in docs/gui.md "Figures":
//
//   - BenchmarkDesktopPrompt: from the agent's Prompter being asked to the
//     PIN window mapped on the X screen, p50 and p99 over 20 prompts.
//   - BenchmarkDesktopIdle: `cardwright desktop` idle with no window open
//     (its tray registered with a tray host, so no status window) beside
//     `cardwright serve` with the same flags over the same seconds (from
//     the same binary and from the -tags nogui server build): CPU (% of
//     one core), RSS and wake-ups of the agent, of its GUI process, of
//     each serve, and the X server's CPU.
//   - BenchmarkDesktopStartup: from exec of `cardwright desktop` to its tray
//     registered with the tray host and /v1/health answering (and, beside
//     it, serve's exec to /v1/health).
//   - BenchmarkInitWindow (issue 14): the card-initialization window,
//     `cardwright init-gui`: from exec to the window mapped and to its
//     description opened, over 10 starts; Ctrl+D to its dry run's end
//     logged (the transcript is in the window), over 10 dry runs.
//
// They take minutes and need the test stack (scripts/teststack start), so
// they run only when CARDWRIGHT_FIGURES is set (`make bench` runs -bench .
// over every package):
//
//	CARDWRIGHT_FIGURES=1 go test -run '^$' -bench '^Benchmark(Desktop|InitWindow)' -benchtime 1x -timeout 30m ./cmd/cardwright/
//
// or scripts/gui-figures. Each b.N iteration is a whole measurement (20
// prompts, 60 idle seconds, 10 starts): run them with -benchtime 1x.
// CARDWRIGHT_FIGURES_IDLE (a Go duration) shortens the idle window for a
// quick look; the quoted figures use the default, 60 s.
//
// When a window is mapped is read from the X server's own MapNotify events
// (xMaps, a small X11 client below), not by polling: `xdotool search --sync`
// sleeps half a second between its searches (strace shows
// clock_nanosleep(500000000)), coarser than what it would measure.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/gui/link"
	"github.com/cardwright/cardwright/gui/traytest"
	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/prompt"
)

const (
	figPrompts = 20 // prompts per BenchmarkDesktopPrompt iteration
	figStarts  = 10 // starts per BenchmarkDesktopStartup iteration
	figOrigin  = "https://portal.example"
	figIdle    = 60 * time.Second // BenchmarkDesktopIdle's window
	figSettle  = 5 * time.Second  // after start-up, before the idle window
	figPause   = time.Second      // between two starts: the last one's exit settles
	figDryRuns = 10               // dry runs per BenchmarkInitWindow/dryrun iteration
)

// figPINWindow is the PIN window's WM_NAME ("cardwright — PIN"; the dash
// may be lost to the GUI's locale charset, as desktop_harness_test.go
// explains).
var figPINWindow = regexp.MustCompile(`^cardwright .* PIN$`)

// anyName matches every window name.
var anyName = regexp.MustCompile(``)

// figEraseDSC asks for the card's PIN in the desktop app's PIN window
// (!FROM_USER_DIALOG_1_FIELD) before it touches the card; Escape in the
// window ends the job prompt_refused with the card as it was.
const figEraseDSC = `[Encoding]
Type=1024,Chip
Devices=8711

[Fields]
ICCSN=

[Description]
iccsnfield=ICCSN
DeleteProfile=true
PIN=!FROM_USER_DIALOG_1_FIELD
`

// figures skips the benchmark unless CARDWRIGHT_FIGURES is set, and
// returns the test stack and its X display.
func figures(b *testing.B) (*stacktest.Stack, string) {
	b.Helper()
	if os.Getenv("CARDWRIGHT_FIGURES") == "" {
		b.Skip("the desktop figures take minutes: run them with CARDWRIGHT_FIGURES=1 (scripts/gui-figures)")
	}
	s := stacktest.Require(b)
	for tool, pkg := range map[string]string{"xdotool": "xdotool", "xprop": "x11-utils", "dbus-daemon": "dbus", "pgrep": "procps"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Fatalf("the desktop figures need %s: install the Debian package %s (scripts/install-deps)", tool, pkg)
		}
	}
	return s, s.Display(b)
}

// figBuilds are the binaries the figures run, each built once per test
// process into the stack's directory (the stack lock keeps other test
// processes out of it while this one runs), without -race: "" the
// desktop build, "nogui" the server build (-tags nogui), for comparison.
var figBuilds sync.Map // build tags → *figBuilt

type figBuilt struct {
	once sync.Once
	path string
	err  error
}

func figBinary(b *testing.B, s *stacktest.Stack, tags string) string {
	b.Helper()
	v, _ := figBuilds.LoadOrStore(tags, &figBuilt{})
	fb := v.(*figBuilt)
	fb.once.Do(func() {
		dir := filepath.Join(s.Dir, "figures")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fb.err = err
			return
		}
		bin := filepath.Join(dir, "cardwright")
		if tags != "" {
			bin += "-" + tags
		}
		if out, err := exec.Command("go", "build", "-tags", tags, "-o", bin, ".").CombinedOutput(); err != nil {
			fb.err = fmt.Errorf("go build -tags %q ./cmd/cardwright: %v\n%s", tags, err, out)
			return
		}
		fb.path = bin
	})
	if fb.err != nil {
		b.Fatal(fb.err)
	}
	return fb.path
}

// figEnv is this process's environment without display, bus and language
// variables, plus English and add (DISPLAY=…, DBUS_SESSION_BUS_ADDRESS=…).
func figEnv(env []string, add ...string) []string {
	var out []string
	for _, kv := range env {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "LANG", "LC_ALL", "LC_MESSAGES":
		default:
			out = append(out, kv)
		}
	}
	return append(append(out, "LANG=en_US.UTF-8"), add...)
}

// figProc is a running `cardwright desktop`, with the times its log said
// what.
type figProc struct {
	cmd     *exec.Cmd
	started time.Time     // just before exec
	url     chan string   // the agent's ws:// URL, once ("agent ready")
	ready   chan struct{} // closed at "desktop app ready"
	done    chan struct{} // closed when its standard error ends
	log     lockedBuffer
	stopped bool
}

// figStartDesktop runs `cardwright desktop` with env added to figEnv's,
// listening on a free port, logging JSON, with a journal of its own. It
// does not wait for anything.
func figStartDesktop(b *testing.B, bin string, env []string, args ...string) *figProc {
	b.Helper()
	args = append([]string{"desktop", "--listen", "127.0.0.1:0", "--log-format", "json", "--journal", b.TempDir()}, args...)
	p := &figProc{url: make(chan string, 1), ready: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = figEnv(os.Environ(), env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its GUI goes with it
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		b.Fatalf("starting %s: %v", bin, err)
	}
	b.Cleanup(func() { p.Stop(b) })
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		announced, up := false, false
		for sc.Scan() {
			l := sc.Text()
			fmt.Fprintln(&p.log, l)
			if u, _ := serveAnnounced(l); u != "" && !announced {
				announced = true
				p.url <- u
			}
			if strings.Contains(l, `"msg":"desktop app ready"`) && !up {
				up = true
				close(p.ready)
			}
		}
	}()
	return p
}

// URL waits for the agent's announcement and returns its ws:// URL.
func (p *figProc) URL(b *testing.B) string {
	b.Helper()
	select {
	case u := <-p.url:
		p.url <- u
		return u
	case <-p.done:
		b.Fatalf("cardwright desktop ended before the agent was ready:\n%s", p.log.String())
	case <-time.After(30 * time.Second):
		b.Fatalf("cardwright desktop: no \"agent ready\" within 30 s:\n%s", p.log.String())
	}
	return ""
}

// WaitReady waits for "desktop app ready".
func (p *figProc) WaitReady(b *testing.B) {
	b.Helper()
	select {
	case <-p.ready:
	case <-p.done:
		b.Fatalf("cardwright desktop ended before its desktop app was ready:\n%s", p.log.String())
	case <-time.After(30 * time.Second):
		b.Fatalf("cardwright desktop: no \"desktop app ready\" within 30 s:\n%s", p.log.String())
	}
}

// GUI is the process id of the agent's `cardwright gui-process` child.
func (p *figProc) GUI(b *testing.B) int {
	b.Helper()
	return figChild(b, p.cmd.Process.Pid)
}

// Stop ends it as Ctrl-C does and waits for it and its GUI.
func (p *figProc) Stop(b *testing.B) {
	if p.stopped {
		return
	}
	p.stopped = true
	p.cmd.Process.Signal(os.Interrupt)
	waited := make(chan struct{})
	go func() { <-p.done; p.cmd.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(15 * time.Second):
		b.Errorf("cardwright desktop did not stop within 15 s of SIGINT: killing its process group")
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-waited
	}
}

// figChild is the process id of parent's gui-process child.
func figChild(b *testing.B, parent int) int {
	b.Helper()
	out, err := exec.Command("pgrep", "-P", strconv.Itoa(parent), "-f", guiProcessName).Output()
	f := strings.Fields(string(out))
	if err != nil || len(f) != 1 {
		b.Fatalf("pgrep -P %d -f %s: %q %v, want one process", parent, guiProcessName, out, err)
	}
	pid, _ := strconv.Atoi(f[0])
	return pid
}

// figHealth polls GET /v1/health of the agent at wsURL every millisecond
// until it answers 200.
func figHealth(b *testing.B, wsURL string) {
	b.Helper()
	u := "http://" + strings.TrimSuffix(strings.TrimPrefix(wsURL, "ws://"), "/v1/ws") + "/v1/health"
	c := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(u)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("GET %s: no 200 within 30 s (%v)", u, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// figPercentile is the nearest-rank percentile p (0-1] of d: of 20
// samples p50 is the 10th and p99 the 20th (the largest).
func figPercentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func figMs(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

func figList(d []time.Duration) string {
	var s []string
	for _, x := range d {
		s = append(s, strconv.FormatFloat(figMs(x), 'f', 1, 64))
	}
	return strings.Join(s, " ")
}

// xMaps is a small X11 client that selects SubstructureNotify on the root
// window and timestamps every MapNotify, UnmapNotify and DestroyNotify of
// a top-level window as it arrives: the moment the server maps a window,
// with no polling and no process between. Written here rather than taken
// from an X library (github.com/jezek/xgb) because it is sixty lines of
// the core protocol and only this benchmark needs it.
type xMaps struct {
	conn   net.Conn
	synced chan struct{} // closed when the server answered after the selection

	mu      sync.Mutex
	events  []xEvent
	changed chan struct{} // closed and replaced at each event
	err     error
}

type xEvent struct {
	At   time.Time
	Code byte // 17 DestroyNotify, 18 UnmapNotify, 19 MapNotify
	Win  uint32
}

const (
	xDestroyNotify = 17
	xUnmapNotify   = 18
	xMapNotify     = 19
)

// watchMaps connects to display (":N", a local Xvfb without
// authorization, as scripts/teststack starts it) and returns once the
// server reports to it every top-level window's mapping.
func watchMaps(b *testing.B, display string) *xMaps {
	b.Helper()
	num := strings.TrimPrefix(display, ":")
	num, _, _ = strings.Cut(num, ".")
	c, err := net.Dial("unix", "/tmp/.X11-unix/X"+num)
	if err != nil {
		b.Fatalf("connecting to the X server %s: %v", display, err)
	}
	b.Cleanup(func() { c.Close() })
	le := binary.LittleEndian
	// Connection setup: little-endian, protocol 11.0, no authorization.
	if _, err := c.Write([]byte{'l', 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		b.Fatal(err)
	}
	hdr := make([]byte, 8)
	if _, err := io.ReadFull(c, hdr); err != nil {
		b.Fatalf("X connection setup: %v", err)
	}
	body := make([]byte, int(le.Uint16(hdr[6:]))*4)
	if _, err := io.ReadFull(c, body); err != nil {
		b.Fatalf("X connection setup: %v", err)
	}
	if hdr[0] != 1 {
		b.Fatalf("the X server %s refused the connection: %q", display, body[:min(int(hdr[1]), len(body))])
	}
	vendor, formats := int(le.Uint16(body[16:])), int(body[21])
	root := le.Uint32(body[32+(vendor+3)/4*4+8*formats:]) // the first screen's root
	// ChangeWindowAttributes(root, event-mask = SubstructureNotify), then
	// GetInputFocus, whose reply says the selection is in force.
	req := make([]byte, 20)
	req[0] = 2
	le.PutUint16(req[2:], 4)
	le.PutUint32(req[4:], root)
	le.PutUint32(req[8:], 0x800)  // CWEventMask
	le.PutUint32(req[12:], 1<<19) // SubstructureNotifyMask
	req[16], req[18] = 43, 1      // GetInputFocus, length 1
	if _, err := c.Write(req); err != nil {
		b.Fatal(err)
	}
	x := &xMaps{conn: c, synced: make(chan struct{}), changed: make(chan struct{})}
	go x.read()
	select {
	case <-x.synced:
	case <-time.After(10 * time.Second):
		b.Fatalf("the X server %s did not answer: %v", display, x.Err())
	}
	return x
}

func (x *xMaps) read() {
	buf := make([]byte, 32)
	synced := false
	for {
		if _, err := io.ReadFull(x.conn, buf); err != nil {
			x.mu.Lock()
			x.err = err
			x.mu.Unlock()
			return
		}
		at := time.Now()
		switch code := buf[0] & 0x7f; code {
		case 0: // an error
			x.mu.Lock()
			x.err = fmt.Errorf("X error %d on request %d", buf[1], buf[10])
			x.mu.Unlock()
		case 1: // a reply: GetInputFocus's, 32 bytes
			if extra := binary.LittleEndian.Uint32(buf[4:]) * 4; extra > 0 {
				io.CopyN(io.Discard, x.conn, int64(extra))
			}
			if !synced {
				synced = true
				close(x.synced)
			}
		case xMapNotify, xUnmapNotify, xDestroyNotify:
			x.mu.Lock()
			x.events = append(x.events, xEvent{At: at, Code: code, Win: binary.LittleEndian.Uint32(buf[8:])})
			close(x.changed)
			x.changed = make(chan struct{})
			x.mu.Unlock()
		}
	}
}

func (x *xMaps) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

// Mark is the position of the next event.
func (x *xMaps) Mark() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.events)
}

// Since are the events from position from on.
func (x *xMaps) Since(from int) []xEvent {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.events[from:])
}

// Wait returns the first event from position *from on with code for
// which match is true, moving *from past the events it looked at; it fails
// the benchmark after timeout.
func (x *xMaps) Wait(b *testing.B, from *int, code byte, match func(xEvent) bool, timeout time.Duration) xEvent {
	b.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		x.mu.Lock()
		evs, ch, err := x.events[*from:], x.changed, x.err
		x.mu.Unlock()
		for _, e := range evs {
			*from++
			if e.Code == code && match(e) {
				return e
			}
		}
		if err != nil {
			b.Fatalf("watching the X server: %v", err)
		}
		select {
		case <-ch:
		case <-deadline.C:
			b.Fatalf("no X event %d within %v", code, timeout)
		}
	}
}

// windowOf reports whether window w belongs to process pid (_NET_WM_PID,
// which GLFW sets) and has a name matching name.
func windowOf(display string, w uint32, pid int, name *regexp.Regexp) bool {
	cmd := exec.Command("xprop", "-display", display, "-id", strconv.FormatUint(uint64(w), 10), "_NET_WM_PID", "WM_NAME")
	out, err := cmd.Output()
	if err != nil {
		return false // gone already, or not a client window
	}
	var gotPID, gotName string
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "_NET_WM_PID(CARDINAL) = "); ok {
			gotPID = strings.TrimSpace(v)
		}
		if _, v, ok := strings.Cut(l, "WM_NAME("); ok {
			if _, v, ok = strings.Cut(v, " = "); ok {
				gotName, _ = strconv.Unquote(strings.TrimSpace(v))
			}
		}
	}
	return gotPID == strconv.Itoa(pid) && name.MatchString(gotName)
}

// figEscape presses Escape in window w.
func figEscape(b *testing.B, display string, w uint32) {
	b.Helper()
	id := strconv.FormatUint(uint64(w), 10)
	for _, args := range [][]string{{"windowfocus", "--sync", id}, {"key", "Escape"}} {
		cmd := exec.Command("xdotool", args...)
		cmd.Env = append(os.Environ(), "DISPLAY="+display)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("xdotool %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
}

// figAgent is the state the GUI process shows in the in-process run of
// BenchmarkDesktopPrompt: an idle agent with one reader.
type figAgent struct{}

func (figAgent) State(context.Context) agent.State {
	return agent.State{Version: version, Addr: "127.0.0.1:27140",
		Readers: []api.Reader{{Name: "Virtual PCD own 00 00", Card: true}}}
}
func (figAgent) StateChanges() (<-chan struct{}, func()) { return make(chan struct{}), func() {} }
func (figAgent) RemoveSite(string) error                 { return nil }

// BenchmarkDesktopPrompt: PIN prompt → the PIN window mapped on the X
// screen (its MapNotify), 20 prompts one after another, each closed with
// Escape once mapped; p50 and p99 (nearest rank: the largest of 20) and
// the first (the first window the GUI process opens) in ms.
//
// from=ask: the agent's Prompter itself — a link.Supervisor, the object
// `cardwright desktop` wires as its Prompter, in this process, with the
// real GUI process (`cardwright gui-process`) as its child over the real
// pipes — from the call of Supervisor.Ask.
//
// from=job: the whole path from a portal: `cardwright desktop` with the
// real runner over PC/SC, a WebSocket client sends a job whose
// description asks for the PIN in a dialog (!FROM_USER_DIALOG_1_FIELD) on
// the own virtual card; from sending the job, so it includes checking the
// description and the runner's steps before the prompt.
func BenchmarkDesktopPrompt(b *testing.B) {
	s, display := figures(b)
	bin := figBinary(b, s, "")
	b.Run("from=ask", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			benchPromptAsk(b, bin, display)
		}
	})
	b.Run("from=job", func(b *testing.B) {
		reader := s.Get(b, "READER_OWN_1")
		for i := 0; i < b.N; i++ {
			benchPromptJob(b, bin, display, reader)
		}
	})
}

func benchPromptAsk(b *testing.B, bin, display string) {
	b.StopTimer()
	xm := watchMaps(b, display)
	host := traytest.Start(b) // a tray host: no status window
	var log lockedBuffer
	sup := &link.Supervisor{
		Command: func() *exec.Cmd {
			cmd := guiCommand(bin, "en")
			cmd.Env = figEnv(cmd.Env, "DISPLAY="+display, host.Env())
			return cmd
		},
		Agent:      figAgent{},
		Info:       link.Info{Version: version, Language: "en"},
		Log:        slog.New(slog.NewJSONHandler(&log, nil)),
		PINTimeout: time.Minute,
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { sup.Run(ctx); close(ran) }()
	defer func() { cancel(); <-ran }()
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := sup.WaitUp(wctx); err != nil {
		b.Fatalf("the GUI process did not say hello: %v\n%s", err, log.String())
	}
	if _, err := host.WaitItem(wctx); err != nil {
		b.Fatalf("the GUI process registered no tray item: %v\n%s", err, log.String())
	}
	gui := figChild(b, os.Getpid())
	time.Sleep(time.Second) // let the GUI's start-up settle

	req := prompt.Request{Kind: prompt.OneField, Operation: prompt.OpLogin, Label: "user PIN", Origin: figOrigin,
		Reader: "Virtual PCD own 00 00", Card: "9876543210", TriesLeft: 3, MinLen: 4, MaxLen: 8}
	var lat []time.Duration
	b.StartTimer()
	for range figPrompts {
		from := xm.Mark()
		asked := make(chan time.Time, 1)
		answered := make(chan error, 1)
		go func() {
			asked <- time.Now()
			_, err := sup.Ask(ctx, req)
			answered <- err
		}()
		t0 := <-asked
		m := xm.Wait(b, &from, xMapNotify, func(e xEvent) bool { return windowOf(display, e.Win, gui, figPINWindow) }, 20*time.Second)
		lat = append(lat, m.At.Sub(t0))
		b.StopTimer()
		figEscape(b, display, m.Win)
		select {
		case err := <-answered:
			if !errors.Is(err, prompt.ErrRefused) {
				b.Fatalf("Ask after Escape: %v, want prompt.ErrRefused\n%s", err, log.String())
			}
		case <-time.After(20 * time.Second):
			b.Fatalf("Ask did not return within 20 s of Escape\n%s", log.String())
		}
		xm.Wait(b, &from, xUnmapNotify, func(e xEvent) bool { return e.Win == m.Win }, 10*time.Second)
		time.Sleep(500 * time.Millisecond) // a person does not get prompts back to back
		b.StartTimer()
	}
	b.StopTimer()
	figReportPrompt(b, lat)
}

func benchPromptJob(b *testing.B, bin, display, reader string) {
	b.StopTimer()
	xm := watchMaps(b, display)
	host := traytest.Start(b)
	d := figStartDesktop(b, bin, []string{"DISPLAY=" + display, host.Env()}, "--config", "/dev/null", "--allow-origin", figOrigin)
	url := d.URL(b)
	d.WaitReady(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := host.WaitItem(ctx); err != nil {
		b.Fatal(err)
	}
	gui := d.GUI(b)
	c, err := client.Dial(ctx, url, client.Options{Origin: figOrigin})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	time.Sleep(time.Second)

	var lat []time.Duration
	b.StartTimer()
	for range figPrompts {
		from := xm.Mark()
		sent := make(chan time.Time, 1)
		codes := make(chan string, 1)
		go func() {
			sent <- time.Now()
			res, err := c.Run(ctx, &api.Job{Description: figEraseDSC, Reader: reader}, nil, nil)
			switch {
			case err != nil:
				codes <- "error: " + err.Error()
			case res.OK:
				codes <- "ok"
			default:
				codes <- string(res.Error.Code)
			}
		}()
		t0 := <-sent
		m := xm.Wait(b, &from, xMapNotify, func(e xEvent) bool { return windowOf(display, e.Win, gui, figPINWindow) }, 20*time.Second)
		lat = append(lat, m.At.Sub(t0))
		b.StopTimer()
		figEscape(b, display, m.Win)
		select {
		case code := <-codes:
			if code != string(api.CodePromptRefused) {
				b.Fatalf("the job ended %q after Escape in its PIN window, want %s\n%s", code, api.CodePromptRefused, d.log.String())
			}
		case <-time.After(20 * time.Second):
			b.Fatalf("the job did not end within 20 s of Escape\n%s", d.log.String())
		}
		xm.Wait(b, &from, xUnmapNotify, func(e xEvent) bool { return e.Win == m.Win }, 10*time.Second)
		time.Sleep(500 * time.Millisecond)
		b.StartTimer()
	}
	b.StopTimer()
	if g := d.GUI(b); g != gui {
		b.Fatalf("the GUI process was restarted during the prompts (%d, then %d)\n%s", gui, g, d.log.String())
	}
	figReportPrompt(b, lat)
}

func figReportPrompt(b *testing.B, lat []time.Duration) {
	b.Logf("prompt → mapped, ms, in order: %s", figList(lat))
	b.ReportMetric(figMs(figPercentile(lat, 0.50)), "p50-ms")
	b.ReportMetric(figMs(figPercentile(lat, 0.99)), "p99-ms")
	b.ReportMetric(figMs(lat[0]), "first-ms")
	b.ReportMetric(0, "ns/op") // one op is the whole series: its time says nothing
}

// BenchmarkDesktopIdle: `cardwright desktop` — its tray registered with a
// tray host, no window open — and `cardwright serve` from the same binary
// and from the server build (-tags nogui, no Fyne linked), all with the
// same flags (the real runner over PC/SC, no configuration), started
// together and left idle; after 5 s to settle, over the same 60 s: CPU
// time as % of one core, context switches of all threads per second
// (wake-ups), and at the end the resident memory, of the desktop agent,
// its GUI process and both serves; and the X server's CPU over the same
// window (a GUI that draws costs the server too). With -benchtime 1x.
func BenchmarkDesktopIdle(b *testing.B) {
	s, display := figures(b)
	bin := figBinary(b, s, "")
	idle := figIdle
	if v := os.Getenv("CARDWRIGHT_FIGURES_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("CARDWRIGHT_FIGURES_IDLE: %v", err)
		}
		idle = d
	}
	nogui := figBinary(b, s, "nogui")
	xvfb, _ := strconv.Atoi(s.Env["PID_XVFB"])
	args := []string{"--config", "/dev/null"}
	for i := 0; i < b.N; i++ {
		xm := watchMaps(b, display)
		host := traytest.Start(b)
		d := figStartDesktop(b, bin, []string{"DISPLAY=" + display, host.Env()}, args...)
		srv, _ := startProcess(b, bin, b.TempDir(), args...)
		headless, _ := startProcess(b, nogui, b.TempDir(), args...)
		d.URL(b)
		d.WaitReady(b)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := host.WaitItem(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		gui := d.GUI(b)
		time.Sleep(figSettle)

		pids := map[string]int{"agent": d.cmd.Process.Pid, "gui": gui, "serve": srv.Process.Pid, "nogui": headless.Process.Pid}
		cpu0, sw0 := map[string]int64{}, map[string]int64{}
		for k, pid := range pids {
			cpu0[k], sw0[k] = procCPU(b, pid), figSwitches(b, pid)
		}
		var x0 int64
		if xvfb > 0 {
			x0 = procCPU(b, xvfb)
		}
		from := xm.Mark()
		t0 := time.Now()
		time.Sleep(idle)
		secs := time.Since(t0).Seconds()
		cpu, sw, rss := map[string]float64{}, map[string]float64{}, map[string]float64{}
		for k, pid := range pids {
			// Clock ticks of 10 ms: % of one core = ticks × 0.01 s / secs × 100.
			cpu[k] = float64(procCPU(b, pid)-cpu0[k]) / secs
			sw[k] = float64(figSwitches(b, pid)-sw0[k]) / secs
			rss[k] = float64(procStatus(b, pid, "VmRSS")) / 1024
		}
		var xcpu float64
		if xvfb > 0 {
			xcpu = float64(procCPU(b, xvfb)-x0) / secs
		}
		mapped := 0
		for _, e := range xm.Since(from) {
			if e.Code == xMapNotify && windowOf(display, e.Win, gui, anyName) {
				mapped++
			}
		}
		if g := d.GUI(b); g != gui {
			b.Fatalf("the GUI process was restarted while idle (%d, then %d)", gui, g)
		}
		if mapped > 0 {
			b.Fatalf("the GUI mapped %d windows while idle: not the figure asked for", mapped)
		}
		d.Stop(b)
		for _, p := range []*exec.Cmd{srv, headless} {
			p.Process.Signal(os.Interrupt)
			p.Wait()
		}
		b.Logf("idle %.0f s: desktop agent %.3f %% CPU, %.1f MiB, %.1f wake-ups/s; GUI process %.3f %% CPU, %.1f MiB, %.1f wake-ups/s; serve %.3f %% CPU, %.1f MiB, %.1f wake-ups/s; serve (-tags nogui) %.3f %% CPU, %.1f MiB, %.1f wake-ups/s; Xvfb %.3f %% CPU",
			secs, cpu["agent"], rss["agent"], sw["agent"], cpu["gui"], rss["gui"], sw["gui"], cpu["serve"], rss["serve"], sw["serve"], cpu["nogui"], rss["nogui"], sw["nogui"], xcpu)
		b.ReportMetric(cpu["agent"], "agent-CPU-%")
		b.ReportMetric(cpu["gui"], "gui-CPU-%")
		b.ReportMetric(cpu["agent"]+cpu["gui"], "desktop-CPU-%")
		b.ReportMetric(cpu["serve"], "serve-CPU-%")
		b.ReportMetric(xcpu, "Xvfb-CPU-%")
		b.ReportMetric(rss["agent"], "agent-RSS-MiB")
		b.ReportMetric(rss["gui"], "gui-RSS-MiB")
		b.ReportMetric(rss["serve"], "serve-RSS-MiB")
		b.ReportMetric(sw["agent"], "agent-wakeups/s")
		b.ReportMetric(sw["gui"], "gui-wakeups/s")
		b.ReportMetric(sw["serve"], "serve-wakeups/s")
		b.ReportMetric(cpu["nogui"], "nogui-CPU-%")
		b.ReportMetric(rss["nogui"], "nogui-RSS-MiB")
		b.ReportMetric(sw["nogui"], "nogui-wakeups/s")
		b.ReportMetric(0, "ns/op")
	}
}

// figSwitches is the voluntary and involuntary context switches of all of
// pid's threads.
func figSwitches(b *testing.B, pid int) int64 {
	return procStatus(b, pid, "voluntary_ctxt_switches") + procStatus(b, pid, "nonvoluntary_ctxt_switches")
}

// BenchmarkDesktopStartup: from exec of `cardwright desktop` (the real
// runner over PC/SC, no configuration) to (a) its tray item registered
// with the tray host (RegisterStatusNotifierItem on a traytest watcher),
// (b) GET /v1/health answering 200, and both; 10 starts, a fresh session
// bus and tray host for each; p50 and the largest in ms. Beside it, after
// each, `cardwright serve` with the same flags from exec to /v1/health,
// from the same binary and from the server build (-tags nogui).
func BenchmarkDesktopStartup(b *testing.B) {
	s, display := figures(b)
	bin, nogui := figBinary(b, s, ""), figBinary(b, s, "nogui")
	for i := 0; i < b.N; i++ {
		var tray, health, both, serve, headless []time.Duration
		for range figStarts {
			host := traytest.Start(b)
			d := figStartDesktop(b, bin, []string{"DISPLAY=" + display, host.Env()}, "--config", "/dev/null")
			registered := make(chan time.Duration, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if _, err := host.WaitItem(ctx); err != nil {
					registered <- -1
					return
				}
				registered <- time.Since(d.started)
			}()
			figHealth(b, d.URL(b))
			h := time.Since(d.started)
			t := <-registered
			if t < 0 {
				b.Fatalf("no tray item registered within 30 s\n%s", d.log.String())
			}
			d.Stop(b)
			tray, health, both = append(tray, t), append(health, h), append(both, max(t, h))
			time.Sleep(figPause)

			// serve with the same flags, from both builds, for comparison.
			for _, x := range []struct {
				bin string
				lat *[]time.Duration
			}{{bin, &serve}, {nogui, &headless}} {
				t0 := time.Now()
				srv, addr := startProcess(b, x.bin, b.TempDir(), "--config", "/dev/null")
				figHealth(b, "ws://"+addr+"/v1/ws")
				*x.lat = append(*x.lat, time.Since(t0))
				srv.Process.Signal(os.Interrupt)
				srv.Wait()
				time.Sleep(figPause)
			}
		}
		b.Logf("desktop: exec → tray registered, ms: %s", figList(tray))
		b.Logf("desktop: exec → /v1/health answers, ms: %s", figList(health))
		b.Logf("serve: exec → /v1/health answers, ms: %s", figList(serve))
		b.Logf("serve (-tags nogui): exec → /v1/health answers, ms: %s", figList(headless))
		b.ReportMetric(figMs(figPercentile(both, 0.5)), "p50-ms")
		b.ReportMetric(figMs(figPercentile(both, 1)), "max-ms")
		b.ReportMetric(figMs(figPercentile(tray, 0.5)), "tray-p50-ms")
		b.ReportMetric(figMs(figPercentile(health, 0.5)), "health-p50-ms")
		b.ReportMetric(figMs(figPercentile(serve, 0.5)), "serve-health-p50-ms")
		b.ReportMetric(figMs(figPercentile(headless, 0.5)), "nogui-health-p50-ms")
		b.ReportMetric(0, "ns/op")
	}
}

// BenchmarkInitWindow: the card-initialization window (issue 14, docs/gui.md
// "Figures"), `cardwright init-gui --config CFG demo.dsc` with the real
// readers over PC/SC, on the test stack's Xvfb. CFG is the demo's
// configuration (testdata/demo/cardwright.cfg: the SoftHSM2 module, the
// own-card readers' tokens, the vicc readers skipped), as initConfig makes
// it from a stackEnv; that needs a *testing.T and makes tokens and fresh
// cards, which neither opening nor a dry run uses. In ms:
//
// open: from just before exec to the window's MapNotify (xMaps, by
// _NET_WM_PID and name) and to the log line "description opened" as this
// process reads it from the window's standard error; 10 starts, each
// stopped before the next, p50 and the largest. The description is opened
// before the window is shown (gui.openInit), so the line comes first; the
// form is in the window when it is mapped. Mapped is not yet painted.
//
// dryrun: one window, the demo job's values typed into its form (fillDemo),
// then 10 dry runs, each from just before exec of `xdotool key ctrl+d` to
// the log line "job finished dry_run=true code=ok", which dryDone logs
// after it has put the steps and the transcript into the window (the frame
// that draws them follows); 0.5 s between two. The figure includes
// xdotool's own start (its exec, X connection, the XTEST key press), whose
// time to exit is reported beside it (xdotool-p50-ms): the key press lies
// inside that time.
func BenchmarkInitWindow(b *testing.B) {
	s, display := figures(b)
	bin := figBinary(b, s, "")
	cfg := filepath.Join(demoDir, "cardwright.cfg")
	demo := demoPath(b)
	name := regexp.MustCompile(initWindowName)
	env := []string{"LANGUAGE=en"}
	b.Run("open", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			xm := watchMaps(b, display)
			var mapped, opened []time.Duration
			for range figStarts {
				from := xm.Mark()
				p := execInitGUI(b, bin, display, env, "--config", cfg, demo)
				_, at, _ := p.waitLogAfter(0, `description opened .*errors=0 runnable=true`, 30*time.Second)
				m := xm.Wait(b, &from, xMapNotify, func(e xEvent) bool { return windowOf(display, e.Win, p.cmd.Process.Pid, name) }, 30*time.Second)
				mapped, opened = append(mapped, m.At.Sub(p.started)), append(opened, at.Sub(p.started))
				p.Stop()
				time.Sleep(figPause)
			}
			b.Logf("init-gui: exec → window mapped, ms: %s", figList(mapped))
			b.Logf("init-gui: exec → description opened, ms: %s", figList(opened))
			b.ReportMetric(figMs(figPercentile(mapped, 0.5)), "mapped-p50-ms")
			b.ReportMetric(figMs(figPercentile(mapped, 1)), "mapped-max-ms")
			b.ReportMetric(figMs(figPercentile(opened, 0.5)), "opened-p50-ms")
			b.ReportMetric(figMs(figPercentile(opened, 1)), "opened-max-ms")
			b.ReportMetric(0, "ns/op")
		}
	})
	b.Run("dryrun", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			xm := watchMaps(b, display)
			from := xm.Mark()
			p := execInitGUI(b, bin, display, env, "--config", cfg, demo)
			p.waitLog(`description opened .*errors=0 runnable=true`, 30*time.Second)
			xm.Wait(b, &from, xMapNotify, func(e xEvent) bool { return windowOf(display, e.Win, p.cmd.Process.Pid, name) }, 30*time.Second)
			p.waitLog(`card in reader`, 15*time.Second)
			time.Sleep(time.Second) // the window drawn, the cards' ICCSNs read
			fillDemo(b, display)
			time.Sleep(500 * time.Millisecond)
			var lat, xdo []time.Duration
			mark := p.Mark()
			for range figDryRuns {
				t0 := time.Now()
				if _, err := xRun(display, 10*time.Second, "xdotool", "key", "--delay", "0", "ctrl+d"); err != nil {
					b.Fatalf("xdotool key ctrl+d: %v", err)
				}
				t1 := time.Now()
				line, at, next := p.waitLogAfter(mark, `job finished dry_run=true`, 20*time.Second)
				if !strings.Contains(line, "code=ok") || !regexp.MustCompile(`apdus=[1-9]`).MatchString(line) {
					b.Fatalf("dry run: %s\n%s", line, p.Logs())
				}
				lat, xdo, mark = append(lat, at.Sub(t0)), append(xdo, t1.Sub(t0)), next
				time.Sleep(500 * time.Millisecond)
			}
			p.Stop()
			b.Logf("init-gui: ctrl+d → dry run finished, ms: %s", figList(lat))
			b.Logf("xdotool key ctrl+d: exec → exit, ms: %s", figList(xdo))
			b.ReportMetric(figMs(figPercentile(lat, 0.5)), "p50-ms")
			b.ReportMetric(figMs(figPercentile(lat, 1)), "max-ms")
			b.ReportMetric(figMs(lat[0]), "first-ms")
			b.ReportMetric(figMs(figPercentile(xdo, 0.5)), "xdotool-p50-ms")
			b.ReportMetric(0, "ns/op")
		}
	})
}
