//go:build !ci

package traytest_test

// The real tray: a Fyne app with the GL driver under the stack's Xvfb puts
// gui.Menu in the tray through fyne.io/systray, and the test, playing the
// panel, reads and clicks it over D-Bus (spec/gui.md, "Tray"). Fyne's Run
// must own the main goroutine, so the app is this test binary run again
// with $CARDWRIGHT_TRAYTEST_CHILD set (TestMain); it reports the actions it
// ran on standard output. Needs cgo (the GL driver), hence !ci.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/driver/desktop"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/gui"
	_ "github.com/cardwright/cardwright/gui/langenv" // no "Fyne error" lines in a C.UTF-8 locale
	"github.com/cardwright/cardwright/gui/traytest"
	"github.com/cardwright/cardwright/internal/stacktest"
)

const childEnv = "CARDWRIGHT_TRAYTEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		runChild()
		return
	}
	os.Exit(m.Run())
}

// childState is the snapshot the child's menu shows.
var childState = agent.State{
	Version: "9.9.9",
	Addr:    "127.0.0.1:27140",
	Readers: []api.Reader{
		{Name: "ACS_ACR1252 00 00", Card: true, ATR: "3B8F8001804F0CA000000306030001000000006A"},
		{Name: "Virtual PCD own 01"},
	},
	Recent: []agent.RecentJob{{Origin: "https://cms.example.com", ID: "1", Reader: "Virtual PCD own 01", OK: true, Finished: time.Date(2026, 12, 5, 14, 3, 0, 0, time.Local)}},
}

// runChild is the app: the tray with gui.Menu, every action printed.
func runChild() {
	a := app.NewWithID("io.github.cardwright.traytest")
	desk, ok := a.(desktop.App)
	if !ok {
		fmt.Println("child: the app is no desktop.App")
		os.Exit(2)
	}
	say := func(name string) func() { return func() { fmt.Println("action: " + name) } }
	act := gui.Actions{Sites: say("sites"), InitCard: say("initcard"), Settings: say("settings"),
		OpenLog: say("openlog"), About: say("about"),
		Quit: func() { fmt.Println("action: quit"); a.Quit() }}
	fmt.Printf("child: tray host %v\n", gui.HasTrayHost())
	desk.SetSystemTrayIcon(gui.Icon(gui.IconWorking))
	desk.SetSystemTrayMenu(gui.Menu(childState, act))
	a.Lifecycle().SetOnStarted(func() { fmt.Println("child: running") })
	a.Run()
	fmt.Println("child: stopped")
}

// child is the app running as a child process.
type child struct {
	cmd   *exec.Cmd
	lines chan string
	mu    sync.Mutex
	out   []string // everything it printed, for failures
	exit  chan error
}

// startChild runs the app on the display with the host's bus.
func startChild(t *testing.T, display string, h *traytest.Host) *child {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "DISPLAY="+display, h.Env(), "WAYLAND_DISPLAY=",
		"XDG_CONFIG_HOME="+home, "XDG_CACHE_HOME="+home, "XDG_DATA_HOME="+home)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 100), exit: make(chan error, 1)}
	cmd.Stderr = writerFunc(func(p []byte) {
		c.mu.Lock()
		c.out = append(c.out, "stderr: "+strings.TrimRight(string(p), "\n"))
		c.mu.Unlock()
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.mu.Lock()
			c.out = append(c.out, sc.Text())
			c.mu.Unlock()
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.exit <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			c.mu.Lock()
			t.Logf("the app's output:\n%s", strings.Join(c.out, "\n"))
			c.mu.Unlock()
		}
	})
	return c
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

// expect waits for the child to print line.
func (c *child) expect(ctx context.Context, t *testing.T, line string) {
	t.Helper()
	if err := c.wait(ctx, line); err != nil {
		t.Fatal(err)
	}
}

func (c *child) wait(ctx context.Context, line string) error {
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return fmt.Errorf("the app ended before printing %q", line)
			}
			if l == line {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("the app did not print %q: %w", line, ctx.Err())
		}
	}
}

// click clicks the entry shown as label until the app prints line. Fyne
// builds the menu once more after the item registered, removing the old
// entries and adding new ones with new ids: the entry may be missing for a
// moment, and a click that meets an old id does nothing. So it is made
// again.
func (c *child) click(ctx context.Context, t *testing.T, it traytest.Item, label, line string) {
	t.Helper()
	var err error
	for ctx.Err() == nil {
		if err = it.ClickLabel(ctx, label); err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		try, cancel := context.WithTimeout(ctx, 3*time.Second)
		err = c.wait(try, line)
		cancel()
		if err == nil {
			return
		}
	}
	t.Fatalf("clicking %q: the app did not print %q: %v", label, line, err)
}

// quit clicks Quit and waits for the app to end well.
func (c *child) quit(ctx context.Context, t *testing.T, it traytest.Item) {
	t.Helper()
	c.click(ctx, t, it, "Quit", "action: quit")
	c.expect(ctx, t, "child: stopped")
	select {
	case err := <-c.exit:
		if err != nil {
			t.Errorf("the app ended with %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the app did not end after Quit")
	}
}

// hasQuit is a menu whose last entry, Quit, has been added.
func hasQuit(n traytest.Node) bool {
	l := n.Labels()
	return len(l) > 0 && l[len(l)-1] == "Quit"
}

// TestFyneTray: the menu as a panel sees it — labels, the disabled status
// line, the Readers submenu with a reader's underscore shown as it is —
// the icon, and clicks that run the actions.
func TestFyneTray(t *testing.T) {
	display := stacktest.Require(t).Display(t)
	h := traytest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startChild(t, display, h)
	c.expect(ctx, t, "child: tray host true")

	it, err := h.WaitItem(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Fyne builds the menu again after the item registered, removing the
	// old entries one by one (a submenu's entries before the submenu): a
	// layout with every entry is a whole one.
	want := []string{"cardwright 9.9.9 · 127.0.0.1:27140 · no jobs running", "Readers", "Recent jobs", "-",
		"Sites…", "Initialize a card…", "Settings…", "Open log", "-", "About", "Quit"}
	wantReaders := []string{"ACS_ACR1252 00 00 — card 3B8F8001…0000006A", "Virtual PCD own 01 — empty"}
	wantRecent := []string{"https://cms.example.com · Virtual PCD own 01 · ok · 14:03"}
	root, err := it.WaitLayout(ctx, func(n traytest.Node) bool {
		readers, _ := n.Find("Readers")
		recent, _ := n.Find("Recent jobs")
		return slices.Equal(n.Labels(), want) && slices.Equal(readers.Labels(), wantReaders) && slices.Equal(recent.Labels(), wantRecent)
	})
	if err != nil {
		t.Fatal(err) // the error shows the last layout read
	}
	if st := root.Children[0]; st.Enabled {
		t.Errorf("the status line is enabled:\n%s", root)
	}
	for _, label := range []string{"Readers", "Recent jobs"} {
		n, _ := root.Find(label)
		if !n.Submenu || !n.Enabled {
			t.Errorf("%q is not an enabled submenu:\n%s", label, root)
		}
		for _, c := range n.Children {
			if c.Enabled {
				t.Errorf("%q ▸ %q is enabled (it does nothing)", label, c.Label)
			}
		}
	}
	px, err := it.IconPixmap(ctx)
	if err != nil || len(px) == 0 || px[0].Width != 64 || px[0].Height != 64 || len(px[0].ARGB) != 64*64*4 {
		t.Errorf("IconPixmap: %d images, %v", len(px), err)
	}

	for label, action := range map[string]string{"Sites…": "sites", "Initialize a card…": "initcard", "Settings…": "settings", "Open log": "openlog", "About": "about"} {
		c.click(ctx, t, it, label, "action: "+action)
	}
	c.quit(ctx, t, it)
}

// TestFyneTrayLateWatcher: without a tray host the app runs on (the GUI
// shows its status window then, HasTrayHost false), and its tray appears
// when a panel starts later (research/gui.md, "Linux tray").
func TestFyneTrayLateWatcher(t *testing.T) {
	display := stacktest.Require(t).Display(t)
	h := traytest.StartWithoutWatcher(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startChild(t, display, h)
	c.expect(ctx, t, "child: tray host false")
	if err := h.WaitWatcherAwaited(ctx); err != nil {
		t.Fatal(err)
	}
	// The panel starts. fyne.io/systray may miss the first start (it
	// listens for the signal only after asking for it), so the panel
	// restarts until the item registers.
	var it traytest.Item
	for {
		if err := h.StartWatcher(); err != nil {
			t.Fatal(err)
		}
		try, cancel := context.WithTimeout(ctx, 3*time.Second)
		var err error
		it, err = h.WaitItem(try)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal(err)
		}
		t.Log("the app missed the panel's start; the panel restarts")
		if err := h.StopWatcher(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := it.WaitLayout(ctx, hasQuit); err != nil {
		t.Fatal(err)
	}
	c.quit(ctx, t, it)
}
