package main

// The real tray of `cardwright desktop` (spec/gui.md, "Tray"; issue 13,
// "Must show": the real tray menu). The test plays the panel: a fake
// org.kde.StatusNotifierWatcher on a private session bus (gui/traytest),
// where the desktop app's Fyne tray registers its item; the test reads the
// menu over com.canonical.dbusmenu as a panel does and clicks its entries.
// The windows the clicks open are found, photographed and clicked on the
// test stack's Xvfb (xdotool, import), as in the other desktop tests.
//
// No program here draws a tray menu from dbusmenu, so there is no picture
// of the menu itself: its labels are checked as text, and the windows it
// opens are photographed.

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cardwright/cardwright/agent/journal"
	"github.com/cardwright/cardwright/gui/traytest"
	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/pcsc"
)

// The Sites and status windows' names for xdotool search --name.
const (
	sitesWindowName   = `^Sites$`
	sitesWindowNameDE = `^Seiten$`
	statusWindowName  = `^cardwright$`
)

// trayWholeMenu is a menu whose last entry, Quit (or Beenden), is there:
// Fyne rebuilds the menu entry by entry, a submenu's entries before the
// submenu.
func trayWholeMenu(n traytest.Node) bool {
	l := n.Labels()
	return len(l) > 5 && (l[len(l)-1] == "Quit" || l[len(l)-1] == "Beenden")
}

// trayClickUntil clicks the menu entry label until window name is shown
// (a click can meet an entry that a rebuild just replaced; then nothing
// happens) and returns the window.
func trayClickUntil(ctx context.Context, t *testing.T, it traytest.Item, display, label, name string) string {
	t.Helper()
	var err error
	for ctx.Err() == nil {
		if err = it.ClickLabel(ctx, label); err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if ids := windows(t, display, name); len(ids) > 0 {
				return ids[len(ids)-1]
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Fatalf("clicking %q in the tray menu showed no window %q (%v); visible windows:\n%s", label, name, err, windowList(display))
	return ""
}

// trayShot photographs window: to the documentation's directory under name
// when CARDWRIGHT_SCREENSHOTS is set, else into the test's directory. It
// returns the picture's path.
func trayShot(t *testing.T, display, window, name string) string {
	t.Helper()
	if p := docScreenshot(t, display, window, name); p != "" {
		return p
	}
	p := filepath.Join(t.TempDir(), name)
	screenshot(t, display, window, p)
	return p
}

// dangerButton finds the largest patch of the dark theme's danger colour
// (theme.ColorNameError, #f44336: the Remove buttons) in a screenshot and
// returns its centre. A patch dimmed by a dialog's shade is not that
// colour, so with the confirmation open it is the dialog's button.
func dangerButton(t *testing.T, path string) (cx, cy int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	b := img.Bounds()
	near := func(v uint32, want int) bool { d := int(v>>8) - want; return d > -24 && d < 24 }
	w, h := b.Dx(), b.Dy()
	match := make([]bool, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			match[y*w+x] = near(r, 0xf4) && near(g, 0x43) && near(bl, 0x36)
		}
	}
	// The largest 4-connected patch.
	seen := make([]bool, w*h)
	best, bestBox := 0, image.Rectangle{}
	for i := range match {
		if !match[i] || seen[i] {
			continue
		}
		stack := []int{i}
		seen[i] = true
		n := 0
		box := image.Rectangle{Min: image.Pt(w, h)} // image.Rect would swap the corners
		for len(stack) > 0 {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			n++
			px, py := p%w, p/w
			box.Min.X, box.Min.Y = min(box.Min.X, px), min(box.Min.Y, py)
			box.Max.X, box.Max.Y = max(box.Max.X, px+1), max(box.Max.Y, py+1)
			for _, q := range []int{p - 1, p + 1, p - w, p + w} {
				if q < 0 || q >= w*h || seen[q] || !match[q] || (q == p-1 && px == 0) || (q == p+1 && px == w-1) {
					continue
				}
				seen[q] = true
				stack = append(stack, q)
			}
		}
		if n > best {
			best, bestBox = n, box
		}
	}
	if best < 200 {
		t.Fatalf("no Remove button (a patch of #f44336) in %s", path)
	}
	return (bestBox.Min.X + bestBox.Max.X) / 2, (bestBox.Min.Y + bestBox.Max.Y) / 2
}

// pcscdReaders are the reader names pcscd lists.
func pcscdReaders(t *testing.T) []string {
	t.Helper()
	pc, err := pcsc.Open()
	if err != nil {
		t.Fatalf("pcscd: %v", err)
	}
	defer pc.Close()
	names, err := pc.Readers(nil)
	if err != nil {
		t.Fatalf("pcscd: %v", err)
	}
	if len(names) == 0 {
		t.Fatal("pcscd lists no readers")
	}
	return names
}

// TestDesktopTrayMenu: `cardwright desktop` (real runner, demo portal)
// registers its tray with the test's panel; the menu read over dbusmenu
// has the status line with the listening address and, under Readers, every
// reader pcscd lists. A page on a new origin pairs (Allow clicked in the
// pairing window) and runs a job on the own card: Recent jobs shows it
// with the origin. Sites… clicked over dbusmenu opens the Sites window on
// Xvfb; the test removes the site there with real clicks (Remove, then
// Remove in the confirmation): the agent closes the page's connection
// (1008, the page sees it), a new connection from the origin is not
// paired, and the journal no longer holds it. Initialize a card… starts the
// card-initialization window with the agent's configuration.
func TestDesktopTrayMenu(t *testing.T) {
	start := time.Now()
	e := newStackEnv(t)
	display := requireX(t, e.s)
	h := traytest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	d := startDesktop(t, e.s, display, desktopOptions{
		Args: []string{"--config", e.cfg, "--demo-portal"},
		Env:  []string{"SOFTHSM2_CONF=" + e.conf},
		Bus:  h.Address(),
	})
	it, err := h.WaitItem(ctx)
	if err != nil {
		t.Fatalf("the desktop app registered no tray item: %v\n%s", err, d.Logs())
	}
	if len(windows(t, display, statusWindowName)) != 0 {
		t.Error("the status window is shown although a tray host runs")
	}
	u, err := url.Parse(d.AgentURL)
	if err != nil {
		t.Fatal(err)
	}
	addr := u.Host

	// The status line and the readers, as pcscd names them.
	readers := pcscdReaders(t)
	hasReaders := func(n traytest.Node) bool {
		rs, _ := n.Find("Readers")
		lines := rs.Labels()
		for _, r := range readers {
			if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, r+" — ") }) {
				return false
			}
		}
		return true
	}
	wantStatus := func(n traytest.Node) bool {
		return len(n.Children) > 0 && strings.Contains(n.Children[0].Label, " · "+addr+" · ")
	}
	root, err := it.WaitLayout(ctx, func(n traytest.Node) bool { return trayWholeMenu(n) && wantStatus(n) && hasReaders(n) })
	if err != nil {
		t.Fatalf("the tray menu: status line with %s and the readers %q: %v", addr, readers, err)
	}
	t.Logf("the tray menu at start:\n%s", root)
	if st := root.Children[0]; st.Enabled || !strings.HasPrefix(st.Label, "cardwright ") || !strings.HasSuffix(st.Label, " · no jobs running") {
		t.Errorf("status line %q (enabled %v)", st.Label, st.Enabled)
	}
	for _, r := range e.own {
		rs, _ := root.Find("Readers")
		if !slices.ContainsFunc(rs.Labels(), func(l string) bool { return strings.HasPrefix(l, r+" — card ") }) {
			t.Errorf("Readers ▸ shows no card in %q: %q", r, rs.Labels())
		}
	}
	if rj, ok := root.Find("Recent jobs"); !ok || !slices.Equal(rj.Labels(), []string{"No jobs yet"}) {
		t.Errorf("Recent jobs ▸ at start: %q", rj.Labels())
	}

	// A new origin pairs with a click on Allow, then runs a job.
	origin, page := pairingPortal(t, d.AgentURL)
	p := openPairingPage(t, d, page)
	p.call(`startPair()`)
	p.pairingCode(d)
	win := waitWindow(t, display, pairWindowName)
	time.Sleep(time.Until(pairRequested(t, d, origin).Add(1300 * time.Millisecond)))
	for i := 0; p.Text("#outcome") == "" && i < 5; i++ {
		clickAllow(t, display, win)
		time.Sleep(500 * time.Millisecond)
	}
	if o := p.outcome(d, 5*time.Second); !strings.HasPrefix(o, `ok {"type":"paired"`) {
		t.Fatalf("pairing with a click on Allow: %q", o)
	}
	waitNoWindow(t, display, pairWindowName, 5*time.Second)
	job, _ := json.Marshal(map[string]string{"description": iccsnJob, "reader": e.own[0]})
	p.call(`startJob(` + string(job) + `)`)
	if o := p.outcome(d, 30*time.Second); !strings.HasPrefix(o, `ok {"type":"result"`) || !strings.Contains(o, `"ok":true`) {
		t.Fatalf("a job from the paired page: %q", o)
	}
	wantJob := origin + " · " + e.own[0] + " · ok · "
	root, err = it.WaitLayout(ctx, func(n traytest.Node) bool {
		rj, _ := n.Find("Recent jobs")
		return trayWholeMenu(n) && len(rj.Children) > 0 && strings.HasPrefix(rj.Children[0].Label, wantJob)
	})
	if err != nil {
		t.Fatalf("Recent jobs ▸ does not show the job as %q…: %v", wantJob, err)
	}
	t.Logf("the tray menu after the job:\n%s", root)

	// The page hears when the agent closes its connection.
	p.call(`window.closedBy = ""; agent.addEventListener("close", e => { window.closedBy = e.detail.code + " " + e.detail.reason; })`)

	// Sites… opens the Sites window with the configured demo portal and
	// the paired origin.
	sites := trayClickUntil(ctx, t, it, display, "Sites…", sitesWindowName)
	onScreen(t, display, sites)
	shot := trayShot(t, display, sites, "sites.png")

	// Remove, then Remove in the confirmation: real clicks.
	bx, by := dangerButton(t, shot)
	click(t, display, sites, bx, by)
	time.Sleep(500 * time.Millisecond) // the dialog shows
	shot = trayShot(t, display, sites, "sites-remove.png")
	cx, cy := dangerButton(t, shot)
	if cx == bx && cy == by {
		t.Fatalf("no confirmation after clicking Remove at %d,%d: the picture %s shows the same button", bx, by, shot)
	}
	click(t, display, sites, cx, cy)

	// The agent closes the page's connection.
	deadline := time.Now().Add(10 * time.Second)
	var closedBy string
	for {
		v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`window.closedBy`))
		if err == nil && v != "" {
			closedBy = v
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page's connection was not closed after the site was removed (%v)\n%s", err, d.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the page saw its connection closed: %s", closedBy)
	if !strings.HasPrefix(closedBy, "1008 ") {
		t.Errorf("close %q, want 1008 (policy)", closedBy)
	}
	time.Sleep(500 * time.Millisecond)                                             // the window redraws from the next snapshot
	screenshot(t, display, sites, filepath.Join(t.TempDir(), "sites-removed.png")) // for a failure's inspection only

	// A new connection from the origin is not paired.
	p.Do(d, "reloading the page", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#status.ok`)))
	if st := p.Text("#status"); st != "connected paired=false" {
		t.Errorf("after the removal the page connects with %q, want unpaired", st)
	}
	if !strings.Contains(d.Logs(), `"msg":"site removed","origin":"`+origin+`"`) {
		t.Errorf("no \"site removed\" of %s in the agent's log", origin)
	}
	root, err = it.WaitLayout(ctx, func(n traytest.Node) bool { return trayWholeMenu(n) && wantStatus(n) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the tray menu after the removal:\n%s", root)

	// Initialize a card… starts the card-initialization window, a process
	// of its own (`cardwright init-gui`) that outlives the agent: closed by
	// the test.
	initWin := trayClickUntil(ctx, t, it, display, "Initialize a card…", initWindowName)
	pid, err := strconv.Atoi(strings.TrimSpace(x(t, display, 5*time.Second, "xdotool", "getwindowpid", initWin)))
	if err != nil {
		t.Fatalf("the initialization window's process: %v", err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGTERM) })
	onScreen(t, display, initWin)
	if args, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil || !strings.HasPrefix(string(args), desktopBinary(t, e.s)+"\x00init-gui\x00--config\x00") {
		t.Errorf("the tray started %q (%v), want cardwright init-gui --config with the agent's configuration", args, err)
	}

	if code := d.Stop(); code != exitOK {
		t.Errorf("cardwright desktop exit %d", code)
	}
	j, _, err := journal.Open(d.Journal)
	if err != nil {
		t.Fatal(err)
	}
	paired, err := j.Paired()
	j.Close()
	if err != nil || slices.Contains(paired, origin) {
		t.Errorf("the journal's paired origins after the removal: %q (%v)", paired, err)
	}
	t.Logf("TestDesktopTrayMenu took %v", time.Since(start).Round(100*time.Millisecond))
}

// TestDesktopTrayStatusWindow: without a tray host on the session bus the
// desktop app shows its status window (spec/gui.md, "Tray"), in English
// and, with `[desktop] language = de`, in German. Its Sites… button, a
// real click, opens the Sites window, which lists a paired origin from
// the journal.
func TestDesktopTrayStatusWindow(t *testing.T) {
	s := stacktest.Require(t)
	display := requireX(t, s)
	for _, c := range []struct{ lang, cfg, sites, shot string }{
		{"en", "", sitesWindowName, ""},
		{"de", "[desktop]\nlanguage = de\n", sitesWindowNameDE, "-de"},
	} {
		t.Run(c.lang, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "cardwright.cfg")
			if err := os.WriteFile(cfg, []byte(c.cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			// A paired origin, as a past pairing left it in the journal.
			jdir := filepath.Join(dir, "journal")
			j, _, err := journal.Open(jdir)
			if err != nil {
				t.Fatal(err)
			}
			if err := j.AddPaired("https://portal.example.org"); err != nil {
				t.Fatal(err)
			}
			j.Close()

			d := startDesktop(t, s, display, desktopOptions{
				Args: []string{"--fake-runner", "--config", cfg, "--journal", jdir, "--demo-portal"},
			})
			win := waitWindow(t, display, statusWindowName)
			onScreen(t, display, win)
			time.Sleep(500 * time.Millisecond) // the first snapshot drawn
			trayShot(t, display, win, "status"+c.shot+".png")

			// Sites…: the first button of the bottom grid (two columns,
			// three rows), its centre a quarter in from the left.
			w, h := windowSize(t, display, win)
			click(t, display, win, w/4, h-trayStatusButtonsFromBottom)
			sites := waitWindow(t, display, c.sites)
			onScreen(t, display, sites)
			if c.lang == "de" { // the English one is TestDesktopTrayMenu's, with a page's origin
				trayShot(t, display, sites, "sites-de.png")
			} else {
				p := filepath.Join(t.TempDir(), "sites.png")
				screenshot(t, display, sites, p)
			}
			if code := d.Stop(); code != exitOK {
				t.Errorf("cardwright desktop exit %d", code)
			}
		})
	}
}

// trayStatusButtonsFromBottom is how far above the status window's bottom
// edge the first row of its buttons is centred (Fyne's default theme:
// three rows of 36 px buttons, 4 px apart, 4 px padding). Measured from
// the screenshot.
var trayStatusButtonsFromBottom = 4 + 2*(36+4) + 18
