package gui

// tray.go: the tray menu and icon state, drawn from a snapshot of the agent
// (spec/gui.md, "Tray"), and the check for a tray host ("Without a tray
// host … detect the missing org.kde.StatusNotifierWatcher").

import (
	"context"
	"runtime"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/lang"
	"github.com/godbus/dbus/v5"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/api"
)

// Actions are what the tray's items do. A nil action leaves its item
// disabled.
type Actions struct {
	Sites, InitCard, Settings, OpenLog, About, Quit func()
}

// recentInMenu is how many finished jobs the Recent jobs submenu lists
// ("the last few").
const recentInMenu = 5

// Menu builds the tray menu from a snapshot (spec/gui.md, "Tray"): the
// status line (disabled), Readers ▸, Recent jobs ▸, Sites…, Initialize a
// card…, Settings…, Open log, About and Quit. It is pure data: the caller
// builds it again on every change and hands it to
// desktop.App.SetSystemTrayMenu. Submenus are one level deep (tray hosts
// render deeper ones badly). Quit is the last item with IsQuit set, so Fyne
// adds no Quit of its own; asking before quitting while jobs run is the
// action's business.
func Menu(st State, act Actions) *fyne.Menu {
	readers := fyne.NewMenu("", infoItems(readerLines(st))...)
	recent := fyne.NewMenu("", infoItems(recentLines(st.Recent, recentInMenu))...)

	status := fyne.NewMenuItem(menuText(statusLine(st)), nil)
	status.Disabled = true
	readersItem := fyne.NewMenuItem(menuText(lang.X("tray.readers", "Readers")), nil)
	readersItem.ChildMenu = readers
	recentItem := fyne.NewMenuItem(menuText(lang.X("tray.recent", "Recent jobs")), nil)
	recentItem.ChildMenu = recent
	quit := actionItem(lang.X("tray.quit", "Quit"), act.Quit)
	quit.IsQuit = true

	return fyne.NewMenu("",
		status,
		readersItem,
		recentItem,
		fyne.NewMenuItemSeparator(),
		actionItem(lang.X("tray.sites", "Sites…"), act.Sites),
		actionItem(lang.X("tray.initCard", "Initialize a card…"), act.InitCard),
		actionItem(lang.X("tray.settings", "Settings…"), act.Settings),
		actionItem(lang.X("tray.openLog", "Open log"), act.OpenLog),
		fyne.NewMenuItemSeparator(),
		actionItem(lang.X("tray.about", "About"), act.About),
		quit,
	)
}

// actionItem is an item that runs fn, disabled without one.
func actionItem(label string, fn func()) *fyne.MenuItem {
	it := fyne.NewMenuItem(menuText(label), fn)
	it.Disabled = fn == nil
	return it
}

// infoItems are disabled items showing lines of information.
func infoItems(lines []string) []*fyne.MenuItem {
	items := make([]*fyne.MenuItem, len(lines))
	for i, l := range lines {
		items[i] = fyne.NewMenuItem(menuText(l), nil)
		items[i].Disabled = true
	}
	return items
}

// menuText escapes a label for the tray: on Linux and the BSDs Fyne's
// systray hands it to com.canonical.dbusmenu, where a single "_" marks the
// access key and is not shown ("__" shows one). Reader names and origins
// are shown as they are.
func menuText(s string) string {
	switch runtime.GOOS {
	case "linux", "freebsd", "openbsd", "netbsd":
		return strings.ReplaceAll(s, "_", "__")
	}
	return s
}

// statusLine is "cardwright <version> · <address> · <n> jobs running"
// (spec/gui.md, "Tray": status line).
func statusLine(st State) string {
	parts := []string{lang.X("tray.status.version", "cardwright {{.Version}}", map[string]any{"Version": st.Version})}
	switch {
	case st.Addr == "":
		parts = append(parts, lang.X("tray.status.notListening", "not listening yet"))
	case st.TLS:
		parts = append(parts, lang.X("tray.status.addrTLS", "{{.Addr}} (TLS)", map[string]any{"Addr": st.Addr}))
	default:
		parts = append(parts, st.Addr)
	}
	if st.Running == 0 {
		parts = append(parts, lang.X("tray.status.noJobs", "no jobs running"))
	} else {
		parts = append(parts, lang.XN("tray.status.jobs", "{{.Count}} jobs running", st.Running, map[string]any{"Count": st.Running}))
	}
	return strings.Join(parts, " · ")
}

// readerLines are the Readers submenu: the reader source's error, then each
// reader with its card (spec/gui.md, "Tray": "each reader with its card
// (ATR, ICCSN when known) or empty").
func readerLines(st State) []string {
	var lines []string
	if st.ReadersErr != "" {
		lines = append(lines, lang.X("tray.readers.error", "Readers unavailable: {{.Err}}", map[string]any{"Err": st.ReadersErr}))
	} else if st.Readers == nil {
		lines = append(lines, lang.X("tray.readers.unavailable", "Readers unavailable"))
	}
	for _, r := range st.Readers {
		lines = append(lines, readerText(r))
	}
	if st.Readers != nil && len(st.Readers) == 0 && st.ReadersErr == "" {
		lines = append(lines, lang.X("tray.readers.none", "No readers"))
	}
	return lines
}

// readerText is one reader: "name — empty" or "name — card 3B8F8001…0000006A",
// with what else the agent knows of it in parentheses. api.Reader carries
// no ICCSN, so none is shown: a serial remembered from a past job could
// belong to a card since removed.
func readerText(r api.Reader) string {
	var s string
	if r.Card {
		s = lang.X("tray.reader.card", "{{.Name}} — card {{.ATR}}", map[string]any{"Name": r.Name, "ATR": shortATR(r.ATR)})
	} else {
		s = lang.X("tray.reader.empty", "{{.Name}} — empty", map[string]any{"Name": r.Name})
	}
	var notes []string
	if r.Busy {
		notes = append(notes, lang.X("tray.reader.busy", "in use"))
	}
	if r.PinPad {
		notes = append(notes, lang.X("tray.reader.pinpad", "PIN pad"))
	}
	if r.Skipped {
		notes = append(notes, lang.X("tray.reader.skipped", "skipped"))
	}
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, ", ") + ")"
	}
	return s
}

// shortATR keeps an ATR of up to 12 bytes whole and shortens a longer one to
// its first and last four bytes: the head says the protocol, the tail the
// card.
func shortATR(atr string) string {
	if atr == "" {
		return "?"
	}
	if len(atr) <= 24 {
		return atr
	}
	return atr[:8] + "…" + atr[len(atr)-8:]
}

// recentLines are the newest n finished jobs, or a line saying there are
// none.
func recentLines(jobs []agent.RecentJob, n int) []string {
	if len(jobs) == 0 {
		return []string{lang.X("tray.recent.none", "No jobs yet")}
	}
	if len(jobs) > n {
		jobs = jobs[:n]
	}
	lines := make([]string, len(jobs))
	for i, j := range jobs {
		lines[i] = recentText(j)
	}
	return lines
}

// recentText is one finished job: "origin · reader · result · HH:MM"
// (spec/gui.md, "Tray": "origin, reader, result and time").
func recentText(j agent.RecentJob) string {
	parts := []string{originText(j.Origin)}
	if j.Reader != "" {
		parts = append(parts, j.Reader)
	}
	parts = append(parts, resultText(j), clock(j.Finished))
	return strings.Join(parts, " · ")
}

// originText is the checked origin, or "this computer" for a local program.
func originText(origin string) string {
	if origin == "" {
		return lang.X("tray.origin.local", "this computer")
	}
	return origin
}

// resultText is "ok" or the job's error code. Codes are the protocol's
// stable words (docs/protocol.md), shown untranslated so they can be
// looked up and reported.
func resultText(j agent.RecentJob) string {
	switch {
	case j.OK:
		return lang.X("tray.job.ok", "ok")
	case j.Code != "":
		return string(j.Code)
	default:
		return lang.X("tray.job.failed", "failed")
	}
}

// clock is a time as the local HH:MM.
func clock(t time.Time) string {
	if t.IsZero() {
		return "--:--"
	}
	return t.Local().Format("15:04")
}

// IconState is what the tray icon shows (spec/gui.md, "Tray": "idle,
// working, needs attention, error").
type IconState int

const (
	IconIdle      IconState = iota
	IconWorking             // jobs are running
	IconAttention           // a dialog waits for the user
	IconError               // the readers cannot be listed
)

// IconFor is the icon state for a snapshot. attention is set by the caller
// while a dialog waits; it wins, since the user is the one who can act.
// Then a reader source that failed (or is missing), then running jobs.
func IconFor(st State, attention bool) IconState {
	switch {
	case attention:
		return IconAttention
	case st.ReadersErr != "" || st.Readers == nil:
		return IconError
	case st.Running > 0:
		return IconWorking
	default:
		return IconIdle
	}
}

// watcherName is the tray host's well-known name on the session bus; Fyne's
// systray registers its item there and nowhere else.
const watcherName = "org.kde.StatusNotifierWatcher"

// HasTrayHost reports whether a StatusNotifierWatcher owns its name on the
// session bus (spec/gui.md, "Tray": "detect the missing
// org.kde.StatusNotifierWatcher and show a small status window instead").
// It is false without a session bus; it never starts one. Windows and
// macOS always have a tray.
func HasTrayHost() bool { return !usesDBus() || busHasOwner(watcherName) }

// HasNotifier reports whether desktop notifications can be shown: on
// Linux a notification server owns org.freedesktop.Notifications (without
// one Fyne logs an error for every notification).
func HasNotifier() bool { return !usesDBus() || busHasOwner("org.freedesktop.Notifications") }

// usesDBus reports whether the tray and notifications go over D-Bus here.
func usesDBus() bool { return runtime.GOOS != "windows" && runtime.GOOS != "darwin" }

// busHasOwner asks the session bus whether name has an owner.
func busHasOwner(name string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := dbus.SessionBusPrivateNoAutoStartup(dbus.WithContext(ctx))
	if err != nil {
		return false
	}
	defer conn.Close()
	if conn.Auth(nil) != nil || conn.Hello() != nil {
		return false
	}
	var has bool
	err = conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has)
	return err == nil && has
}
