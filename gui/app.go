package gui

import (
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/widget"

	"github.com/cardwright/cardwright/gui/link"
	"github.com/cardwright/cardwright/prompt"
)

// AppID is the Fyne application id (preferences, notifications).
const AppID = "io.github.cardwright"

// Run is the GUI process: the tray (or, without a tray host, the status
// window) and the windows the agent asks for over the link. It must be
// called on the main goroutine (Fyne's rule) and returns when the agent
// closes the link or the user quits.
func Run(c *link.Client) error {
	if err := LoadTranslations(); err != nil {
		return err
	}
	a := app.NewWithID(AppID)
	d := &desk{app: a, link: c, open: map[uint64]func(){}}
	d.start()
	errc := make(chan error, 1)
	// The link says hello once Fyne has opened the display: a GUI that
	// dies while starting is never counted as up.
	a.Lifecycle().SetOnStarted(func() {
		go func() {
			err := c.Run(d)
			errc <- err
			fyne.Do(a.Quit) // the agent went away: so does its GUI
		}()
	})
	a.Run()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// desk is the running GUI: it implements link.Handler on the Fyne goroutine.
type desk struct {
	app  fyne.App
	link *link.Client

	info   link.Info
	notify bool // notifications wanted and a notification server there
	state  State
	seen   bool              // a state arrived
	open   map[uint64]func() // close functions of the windows the agent asked for
	tray   desktop.App       // nil without a tray host
	status *StatusWindow
	sites  *SitesWindow
}

func (d *desk) actions() Actions {
	return Actions{
		Sites:    d.showSites,
		InitCard: d.initCard,
		Settings: func() { ShowSettings(d.app, d.info) },
		OpenLog:  d.openLog,
		About:    func() { ShowAbout(d.app, d.info) },
		Quit:     d.quit,
	}
}

// start shows the tray icon, or the status window without a tray host
// (spec/gui.md "Tray": GNOME without the AppIndicator extension, bare X).
func (d *desk) start() {
	if t, ok := d.app.(desktop.App); ok && HasTrayHost() {
		d.tray = t
		d.redraw()
		return
	}
	d.status = NewStatusWindow(d.app, d.actions())
	d.status.Update(d.state)
	d.status.Show()
}

// redraw rebuilds the tray menu and icon (or the status window) from the
// last snapshot.
func (d *desk) redraw() {
	if d.tray != nil {
		d.tray.SetSystemTrayMenu(Menu(d.state, d.actions()))
		d.tray.SetSystemTrayIcon(Icon(IconFor(d.state, len(d.open) > 0)))
	}
	if d.status != nil {
		d.status.Update(d.state)
	}
	if d.sites != nil {
		d.sites.Update(d.state)
	}
}

// The link.Handler methods run on the link's goroutine; each moves to
// Fyne's.

func (d *desk) Info(i link.Info) {
	notify := i.Notify && HasNotifier() // asked here, off Fyne's goroutine
	fyne.Do(func() { d.info, d.notify = i, notify })
}

func (d *desk) State(st State) {
	fyne.Do(func() {
		if d.seen && d.notify {
			for _, n := range Finished(d.state, st) {
				d.app.SendNotification(n)
			}
		}
		d.state, d.seen = st, true
		d.redraw()
	})
}

func (d *desk) Ask(id uint64, r prompt.Request, timeout time.Duration) {
	fyne.Do(func() {
		d.opened(id, AskPIN(d.app, r, timeout, func(a prompt.Answer, err error) {
			d.closed(id)
			if err != nil {
				d.link.Refuse(id)
				return
			}
			d.link.Answer(id, a) // wipes a
		}))
	})
}

func (d *desk) Pad(id uint64, r prompt.Request, timeout time.Duration) {
	fyne.Do(func() {
		d.opened(id, ShowPad(d.app, r, timeout, func() { d.link.PadCancel(id) }))
	})
}

func (d *desk) Pair(id uint64, origin, code string, timeout time.Duration) {
	fyne.Do(func() {
		d.opened(id, AskPairing(d.app, origin, code, timeout, func(allow bool) {
			d.closed(id)
			d.link.PairAnswer(id, allow)
		}))
	})
}

func (d *desk) Withdraw(id uint64) {
	fyne.Do(func() {
		if closeWin := d.open[id]; closeWin != nil {
			closeWin()
			d.closed(id)
		}
	})
}

func (d *desk) opened(id uint64, closeWin func()) {
	d.open[id] = closeWin
	d.redraw() // the icon asks for attention
}

func (d *desk) closed(id uint64) {
	if _, ok := d.open[id]; ok {
		delete(d.open, id)
		d.redraw()
	}
}

func (d *desk) showSites() {
	if d.sites == nil {
		d.sites = NewSitesWindow(d.app, siteRemover{d.link})
	}
	d.sites.Update(d.state)
	d.sites.Show()
}

// siteRemover is the Agent the Sites window talks to; quitting is the
// tray's.
type siteRemover struct{ c *link.Client }

func (r siteRemover) RemoveSite(origin string) error { return r.c.RemoveSite(origin) }
func (r siteRemover) Quit()                          { r.c.Quit() }

// initCard is "Initialize a card…": the card initialization window in a
// process of its own (`cardwright init-gui`, the same executable, with the
// agent's configuration file) with its own runner; it does not depend on
// this GUI process, which may be restarted under it. Its output does not go
// to ours: our standard output is the link to the agent.
func (d *desk) initCard() {
	exe, err := os.Executable()
	if err != nil {
		slog.Error("starting the card initialization window", "err", err)
		return
	}
	args := []string{"init-gui"}
	if d.info.ConfigPath != "" {
		args = append(args, "--config", d.info.ConfigPath)
	}
	cmd := exec.Command(exe, args...)
	if err := cmd.Start(); err != nil {
		slog.Error("starting the card initialization window", "err", err)
		return
	}
	go func() {
		if err := cmd.Wait(); err != nil {
			slog.Warn("the card initialization window ended", "err", err)
		}
	}()
}

func (d *desk) openLog() {
	if d.info.LogPath == "" {
		return
	}
	p, err := filepath.Abs(d.info.LogPath)
	if err != nil {
		return
	}
	d.app.OpenURL(&url.URL{Scheme: "file", Path: p})
}

// quit ends the desktop mode; while jobs run it asks first (spec/gui.md
// "Tray": Quit asks first while jobs run). Cancel is the default.
func (d *desk) quit() {
	if d.state.Running == 0 {
		d.link.Quit()
		return
	}
	w := d.app.NewWindow(lang.X("quit.title", "Quit cardwright?"))
	msg := widget.NewLabel(lang.XN("quit.running", "{{.Count}} card jobs are running. Quitting cancels them.", d.state.Running, map[string]any{"Count": d.state.Running}))
	cancel := widget.NewButton(lang.X("button.cancel", "Cancel"), w.Close)
	quit := widget.NewButton(lang.X("quit.confirm", "Quit"), func() { w.Close(); d.link.Quit() })
	w.SetContent(container.NewVBox(msg, container.NewHBox(cancel, quit)))
	w.SetFixedSize(true)
	w.CenterOnScreen()
	w.Show()
	w.Canvas().Focus(cancel)
}
