package gui

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/gui/traytest"
)

// -update rewrites the markup goldens in testdata/. Another test file of
// the package may declare the flag first (package variables are set before
// init runs); then both use it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files in testdata/")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// assertMarkup compares a canvas with testdata/name, or rewrites it under
// -update.
func assertMarkup(t *testing.T, name string, c fyne.Canvas) {
	t.Helper()
	if updating() {
		if err := os.WriteFile(filepath.Join("testdata", name), []byte(test.RenderToMarkup(c)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	test.AssertRendersToMarkup(t, name, c)
}

// trayLang makes the windows speak a language for one test: Fyne 2.7
// chooses it from the locale when translations are added, so the test
// sets the locale and adds them again (and again at its end).
func trayLang(t *testing.T, code string) {
	t.Helper()
	t.Cleanup(func() {
		if err := loadTranslations(); err != nil {
			t.Error(err)
		}
	}) // runs after the variables below are restored
	t.Setenv("LANGUAGE", "")
	t.Setenv("LC_ALL", code)
	t.Setenv("LC_MESSAGES", "")
	t.Setenv("LANG", code)
	if err := loadTranslations(); err != nil {
		t.Fatal(err)
	}
}

// at is a time today in the local zone, as the windows show it.
func at(h, m int) time.Time {
	return time.Date(2026, 12, 5, h, m, 0, 0, time.Local)
}

// sampleState is a snapshot with a bit of everything.
func sampleState() State {
	return State{
		Version: "1.4.0",
		Addr:    "127.0.0.1:27140",
		Running: 1,
		Readers: []api.Reader{
			{Name: "ACS_ACR1252 00 00", Card: true, ATR: "3B8F8001804F0CA000000306030001000000006A"},
			{Name: "Virtual PCD own 00", Card: true, ATR: "3B80800101", Busy: true, PinPad: true},
			{Name: "Microsoft Virtual Smart Card 0", Skipped: true},
		},
		Recent: []agent.RecentJob{
			{Origin: "https://cms.example.com", ID: "j6", Reader: "ACS_ACR1252 00 00", OK: true, ICCSN: "C0DE0000000001", Finished: at(14, 3)},
			{Origin: "", ID: "j5", Reader: "Virtual PCD own 00", Code: api.Code("pin_incorrect"), Finished: at(13, 58)},
			{Origin: "https://cms.example.com", ID: "j4", OK: true, Finished: at(13, 40)},
			{Origin: "https://cms.example.com", ID: "j3", OK: true, Finished: at(12, 1)},
			{Origin: "https://cms.example.com", ID: "j2", OK: true, Finished: at(11, 0)},
			{Origin: "https://old.example.com", ID: "j1", OK: true, Finished: at(9, 15)},
		},
		Sites: []agent.Site{
			{Origin: "https://cms.example.com", Configured: true},
			{Origin: "https://portal.example.org", PairedAt: time.Date(2026, 12, 1, 9, 30, 0, 0, time.Local)},
		},
	}
}

// calls records which actions ran.
type calls []string

func (c *calls) actions() Actions {
	rec := func(name string) func() { return func() { *c = append(*c, name) } }
	return Actions{Sites: rec("sites"), InitCard: rec("initcard"), Settings: rec("settings"),
		OpenLog: rec("openlog"), About: rec("about"), Quit: rec("quit")}
}

func labels(m *fyne.Menu) []string {
	var out []string
	for _, it := range m.Items {
		if it.IsSeparator {
			out = append(out, "-")
		} else {
			out = append(out, it.Label)
		}
	}
	return out
}

func item(t *testing.T, m *fyne.Menu, label string) *fyne.MenuItem {
	t.Helper()
	for _, it := range m.Items {
		if it.Label == label {
			return it
		}
	}
	t.Fatalf("no item %q in %q", label, labels(m))
	return nil
}

// TestMenu: the tray menu's items in order (spec/gui.md "Tray"), the
// disabled status line, Quit last with IsQuit, and each action's item runs
// it.
func TestMenu(t *testing.T) {
	trayLang(t, "en")
	var got calls
	m := Menu(sampleState(), got.actions())
	want := []string{
		"cardwright 1.4.0 · 127.0.0.1:27140 · 1 job running",
		"Readers", "Recent jobs", "-",
		"Sites…", "Initialize a card…", "Settings…", "Open log", "-",
		"About", "Quit",
	}
	if !slices.Equal(labels(m), want) {
		t.Fatalf("menu = %q\nwant   %q", labels(m), want)
	}
	if st := m.Items[0]; !st.Disabled || st.Action != nil {
		t.Error("the status line is not a disabled item without action")
	}
	last := m.Items[len(m.Items)-1]
	if !last.IsQuit {
		t.Error("Quit is not marked IsQuit (Fyne would add its own)")
	}
	for _, it := range m.Items {
		if it.ChildMenu != nil {
			for _, c := range it.ChildMenu.Items {
				if c.ChildMenu != nil {
					t.Errorf("%q ▸ %q has a submenu: submenus are one level deep", it.Label, c.Label)
				}
			}
		}
	}
	for label, name := range map[string]string{"Sites…": "sites", "Initialize a card…": "initcard",
		"Settings…": "settings", "Open log": "openlog", "About": "about", "Quit": "quit"} {
		got = nil
		it := item(t, m, label)
		if it.Disabled {
			t.Errorf("%q is disabled", label)
		}
		it.Action()
		if !slices.Equal(got, calls{name}) {
			t.Errorf("%q ran %q, want %q", label, got, name)
		}
	}
}

// TestMenuNilActions: an item without an action is disabled.
func TestMenuNilActions(t *testing.T) {
	trayLang(t, "en")
	m := Menu(sampleState(), Actions{Sites: func() {}})
	for _, it := range m.Items {
		if it.IsSeparator || it.ChildMenu != nil || it == m.Items[0] {
			continue
		}
		if want := it.Label != "Sites…"; it.Disabled != want {
			t.Errorf("%q disabled = %v, want %v", it.Label, it.Disabled, want)
		}
	}
}

// TestMenuStatusLine: version, listening address and running jobs, in
// English and German.
func TestMenuStatusLine(t *testing.T) {
	for _, tc := range []struct {
		lang string
		st   State
		want string
	}{
		{"en", State{Version: "1.4.0"}, "cardwright 1.4.0 · not listening yet · no jobs running"},
		{"en", State{Version: "1.4.0", Addr: "127.0.0.1:27140", TLS: true, Running: 3}, "cardwright 1.4.0 · 127.0.0.1:27140 (TLS) · 3 jobs running"},
		{"de", State{Version: "1.4.0", Addr: "127.0.0.1:27140", Running: 1}, "cardwright 1.4.0 · 127.0.0.1:27140 · 1 Auftrag läuft"},
		{"de", State{Version: "1.4.0", Addr: "127.0.0.1:27140", Running: 2}, "cardwright 1.4.0 · 127.0.0.1:27140 · 2 Aufträge laufen"},
		{"sv", State{Version: "1.4.0", Addr: "127.0.0.1:27140", Running: 2}, "cardwright 1.4.0 · 127.0.0.1:27140 · 2 jobb körs"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			trayLang(t, tc.lang)
			if got := Menu(tc.st, Actions{}).Items[0].Label; got != tc.want {
				t.Errorf("status = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestMenuReaders: the Readers submenu — each reader with its card (short
// ATR) or empty, what else is known of it, the reader source's error,
// "No readers"; underscores doubled for dbusmenu.
func TestMenuReaders(t *testing.T) {
	trayLang(t, "en")
	for _, tc := range []struct {
		name string
		st   State
		want []string
	}{
		{"sample", sampleState(), []string{
			"ACS__ACR1252 00 00 — card 3B8F8001…0000006A",
			"Virtual PCD own 00 — card 3B80800101 (in use, PIN pad)",
			"Microsoft Virtual Smart Card 0 — empty (skipped)",
		}},
		{"none", State{Readers: []api.Reader{}}, []string{"No readers"}},
		{"error", State{Readers: []api.Reader{}, ReadersErr: "pcsc: service not available"}, []string{"Readers unavailable: pcsc: service not available"}},
		{"no source", State{}, []string{"Readers unavailable"}},
		{"card without ATR", State{Readers: []api.Reader{{Name: "R", Card: true}}}, []string{"R — card ?"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := item(t, Menu(tc.st, Actions{}), "Readers").ChildMenu
			if got := labels(sub); !slices.Equal(got, tc.want) {
				t.Errorf("Readers ▸ %q\nwant      %q", got, tc.want)
			}
			for _, it := range sub.Items {
				if !it.Disabled {
					t.Errorf("%q is not disabled (it does nothing)", it.Label)
				}
			}
		})
	}
}

// TestMenuRecent: the last five jobs, newest first, with origin (or "this
// computer"), reader, result and time.
func TestMenuRecent(t *testing.T) {
	trayLang(t, "en")
	sub := item(t, Menu(sampleState(), Actions{}), "Recent jobs").ChildMenu
	want := []string{
		"https://cms.example.com · ACS__ACR1252 00 00 · ok · 14:03",
		"this computer · Virtual PCD own 00 · pin__incorrect · 13:58",
		"https://cms.example.com · ok · 13:40",
		"https://cms.example.com · ok · 12:01",
		"https://cms.example.com · ok · 11:00",
	}
	if got := labels(sub); !slices.Equal(got, want) {
		t.Errorf("Recent jobs ▸ %q\nwant          %q", got, want)
	}
	sub = item(t, Menu(State{}, Actions{}), "Recent jobs").ChildMenu
	if got := labels(sub); !slices.Equal(got, []string{"No jobs yet"}) {
		t.Errorf("Recent jobs ▸ %q without jobs", got)
	}
	trayLang(t, "de")
	sub = item(t, Menu(sampleState(), Actions{}), "Letzte Aufträge").ChildMenu
	if got := sub.Items[1].Label; got != "dieser Computer · Virtual PCD own 00 · pin__incorrect · 13:58" {
		t.Errorf("German local job = %q", got)
	}
}

func TestIconFor(t *testing.T) {
	ok := State{Readers: []api.Reader{}}
	for _, tc := range []struct {
		name      string
		st        State
		attention bool
		want      IconState
	}{
		{"idle", ok, false, IconIdle},
		{"working", State{Readers: []api.Reader{}, Running: 2}, false, IconWorking},
		{"attention", ok, true, IconAttention},
		{"attention while working", State{Readers: []api.Reader{}, Running: 1}, true, IconAttention},
		{"attention over error", State{ReadersErr: "x"}, true, IconAttention},
		{"reader error", State{Readers: []api.Reader{}, ReadersErr: "no service"}, false, IconError},
		{"reader error while working", State{ReadersErr: "no service", Running: 1}, false, IconError},
		{"no reader source", State{}, false, IconError},
	} {
		if got := IconFor(tc.st, tc.attention); got != tc.want {
			t.Errorf("%s: IconFor = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestHasTrayHost: true on a bus where a watcher owns its name, false on one
// without and without any session bus.
func TestHasTrayHost(t *testing.T) {
	t.Run("watcher", func(t *testing.T) {
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", traytest.Start(t).Address())
		if !HasTrayHost() {
			t.Error("HasTrayHost = false with a watcher")
		}
	})
	t.Run("no watcher", func(t *testing.T) {
		h := traytest.StartWithoutWatcher(t)
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", h.Address())
		if HasTrayHost() {
			t.Error("HasTrayHost = true without a watcher")
		}
		if err := h.StartWatcher(); err != nil {
			t.Fatal(err)
		}
		if !HasTrayHost() {
			t.Error("HasTrayHost = false after the watcher started")
		}
	})
	t.Run("no bus", func(t *testing.T) {
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "none"))
		if HasTrayHost() {
			t.Error("HasTrayHost = true without a bus")
		}
	})
}

func TestShortATR(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "?",
		"3B80800101":               "3B80800101",
		"0102030405060708090A0B0C": "0102030405060708090A0B0C", // 12 bytes: whole
		"3B8F8001804F0CA000000306030001000000006A": "3B8F8001…0000006A",
	} {
		if got := shortATR(in); got != want {
			t.Errorf("shortATR(%q) = %q, want %q", in, got, want)
		}
	}
}
