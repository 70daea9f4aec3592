package gui

import (
	"slices"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
)

var sampleInfo = Info{
	Version:    "1.4.0",
	ConfigPath: "/etc/cardwright/cardwright.cfg",
	ConfigErrs: []string{"cardwright.cfg:3: max_jobs: \"100\" is not a number from 1 to 64"},
	LogPath:    "/var/log/cardwright/agent.log",
	Language:   "de",
	Notify:     true,
}

func windowTitled(a fyne.App, title string) fyne.Window {
	for _, w := range a.Driver().AllWindows() {
		if w.Title() == title {
			return w
		}
	}
	return nil
}

// countTitled counts the app's windows with a title (the test app has an
// untitled one of its own).
func countTitled(a fyne.App, title string) int {
	n := 0
	for _, w := range a.Driver().AllWindows() {
		if w.Title() == title {
			n++
		}
	}
	return n
}

// shownTexts are the texts of the labels a canvas shows, its overlays
// (dialogs) included.
func shownTexts(c fyne.Canvas) []string {
	var out []string
	for _, o := range append([]fyne.CanvasObject{c.Content()}, c.Overlays().List()...) {
		for _, x := range test.LaidOutObjects(o) {
			if l, ok := x.(*widget.Label); ok {
				out = append(out, l.Text)
			}
		}
	}
	return out
}

// TestSettings: the configuration file, its problems, the log, language
// and notifications, with the keys the administrator sets (spec/gui.md
// "Tray": Settings…), in English and German.
func TestSettings(t *testing.T) {
	for _, tc := range []struct{ lang, title string }{{"en", "Settings"}, {"de", "Einstellungen"}} {
		t.Run(tc.lang, func(t *testing.T) {
			trayLang(t, tc.lang)
			a := test.NewTempApp(t)
			ShowSettings(a, sampleInfo)
			w := windowTitled(a, tc.title)
			if w == nil {
				t.Fatalf("no window %q", tc.title)
			}
			assertMarkup(t, "settings_"+tc.lang+".xml", w.Canvas())

			// Shown again: the same window, with the new values.
			info := sampleInfo
			info.ConfigPath, info.ConfigErrs = "", nil
			ShowSettings(a, info)
			if n := countTitled(a, tc.title); n != 1 {
				t.Errorf("%d windows after showing Settings twice", n)
			}
			if slices.Contains(shownTexts(w.Canvas()), sampleInfo.ConfigPath) {
				t.Error("the window still shows the old configuration file")
			}
			test.Tap(button(t, w.Content(), map[string]string{"en": "Close", "de": "Schließen"}[tc.lang]))
			if n := countTitled(a, tc.title); n != 0 {
				t.Errorf("%d windows after Close", n)
			}
			ShowSettings(a, info)
			if n := countTitled(a, tc.title); n != 1 {
				t.Errorf("%d windows after showing Settings again", n)
			}
		})
	}
}

// TestAbout: version, licence, project URL.
func TestAbout(t *testing.T) {
	for _, tc := range []struct{ lang, title string }{{"en", "About cardwright"}, {"de", "Über cardwright"}} {
		t.Run(tc.lang, func(t *testing.T) {
			trayLang(t, tc.lang)
			a := test.NewTempApp(t)
			ShowAbout(a, sampleInfo)
			w := windowTitled(a, tc.title)
			if w == nil {
				t.Fatalf("no window %q", tc.title)
			}
			assertMarkup(t, "about_"+tc.lang+".xml", w.Canvas())
			text := test.RenderToMarkup(w.Canvas())
			for _, want := range []string{"1.4.0", "MIT License", ProjectURL} {
				if !strings.Contains(text, want) {
					t.Errorf("About does not show %q", want)
				}
			}
		})
	}
}
