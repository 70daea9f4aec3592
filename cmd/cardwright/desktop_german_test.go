package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cardwright/cardwright/internal/stacktest"
)

// TestDesktopPINWindowGerman: with [desktop] language = de the PIN window
// a portal job opens speaks German (spec/gui.md "Languages": a
// configuration key overrides the OS locale, here C.UTF-8/English), takes
// the focus, and Escape refuses it (prompt_refused, nothing written). With
// CARDWRIGHT_SCREENSHOTS set it leaves docs/img/gui/pin-new-de.png.
func TestDesktopPINWindowGerman(t *testing.T) {
	s := stacktest.Require(t)
	display := requireX(t, s)
	reader := s.Get(t, "READER_OWN_1")
	freshOwnCard(t, s, reader)
	cfg := filepath.Join(t.TempDir(), "de.cfg")
	if err := os.WriteFile(cfg, []byte("[desktop]\nlanguage = de\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	job := desktopJob(t, "newpin.dsc", reader, map[string]string{"PUK_FIELD": desktopPUK, "HOLDER": ""})
	d := startDesktop(t, s, display, desktopOptions{Args: []string{"--config", cfg, "--demo-portal", "--demo-job", job}})
	p := openPortal(t, d)

	p.Do(d, "starting the job", chromedp.SetValue(chromedp.CSS(`#name`), "Lise Meitner"), chromedp.Click(chromedp.CSS(`#encode`)))
	win := waitWindow(t, display, pinWindowName) // "cardwright — PIN" in German too
	if !hasFocus(t, display, win) {
		t.Errorf("the German PIN window %s does not have the keyboard focus", win)
	}
	// The window's text is drawn by OpenGL, not held by X: what it says is
	// checked by the German markup goldens (gui/testdata/*_de.xml) and by a
	// person in the screenshot.
	docScreenshot(t, display, win, "pin-new-de.png")
	key(t, display, "Escape")
	waitNoWindow(t, display, pinWindowName, 5*time.Second)
	p.Do(d, "waiting for the refusal", chromedp.WaitVisible(chromedp.Search(`//p[@id="result" and starts-with(text(), "FAILED prompt_refused")]`)))
	if code := d.Stop(); code != exitOK {
		t.Errorf("cardwright desktop exit %d", code)
	}
}
