package gui

// settings.go: the Settings and About windows (spec/gui.md, "Tray":
// "Settings… (configuration file location and its problems, log location,
// language)", "About"). Settings only shows: the configuration file is the
// administrator's (docs/config.md), so the window names the keys to change
// instead of offering controls that could not be saved.

import (
	"net/url"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"
)

// The configuration keys the Settings window names (docs/config.md).
const (
	keyLogFile  = "[log] file"
	keyLanguage = "[desktop] language"
	keyNotify   = "[desktop] notifications"
)

// ProjectURL is the project's home page, shown in About.
const ProjectURL = "https://github.com/cardwright/cardwright"

// licence is the project's licence (LICENSE).
const licence = "MIT License"

// languageNames are the languages the GUI is translated to, each in its
// own language.
var languageNames = map[string]string{"en": "English", "de": "Deutsch", "sv": "Svenska"}

// ShowSettings shows the Settings window, or brings it to the front with
// info's values if it is open.
func ShowSettings(a fyne.App, info Info) {
	w := singleWindow(a, "settings", lang.X("settings.title", "Settings"), fyne.NewSize(560, 420))
	w.SetContent(settingsContent(info, w.Close))
	w.Show()
	settle(w)
	w.RequestFocus()
}

// ShowAbout shows the About window, or brings it to the front.
func ShowAbout(a fyne.App, info Info) {
	w := singleWindow(a, "about", lang.X("about.title", "About cardwright"), fyne.NewSize(440, 340))
	w.SetContent(aboutContent(info, w.Close))
	w.Show()
	settle(w)
	w.RequestFocus()
}

func settingsContent(info Info, done func()) fyne.CanvasObject {
	config := info.ConfigPath
	if config == "" {
		config = lang.X("settings.config.none", "none (built-in defaults)")
	}
	problems := lang.X("settings.problems.none", "none")
	if len(info.ConfigErrs) > 0 {
		problems = ""
		for i, e := range info.ConfigErrs {
			if i > 0 {
				problems += "\n"
			}
			problems += e
		}
	}
	logPath := info.LogPath
	if logPath == "" {
		logPath = lang.X("settings.log.stderr", "standard error")
	}
	language := info.Language
	if n, ok := languageNames[language]; ok {
		language = n
	}
	notify := lang.X("settings.notify.off", "off")
	if info.Notify {
		notify = lang.X("settings.notify.on", "on")
	}
	// Paths break anywhere, sentences between words; both can be copied.
	value := func(s string, wrap fyne.TextWrap) *widget.Label {
		l := widget.NewLabel(s)
		l.Wrapping = wrap
		l.Selectable = true
		return l
	}
	form := widget.NewForm(
		widget.NewFormItem(lang.X("settings.config", "Configuration file"), value(config, fyne.TextWrapBreak)),
		widget.NewFormItem(lang.X("settings.problems", "Problems"), value(problems, fyne.TextWrapWord)),
		widget.NewFormItem(lang.X("settings.log", "Log"), value(logPath, fyne.TextWrapBreak)),
		widget.NewFormItem(lang.X("settings.language", "Language"), value(language, fyne.TextWrapOff)),
		widget.NewFormItem(lang.X("settings.notify", "Notifications"), value(notify, fyne.TextWrapOff)),
	)
	note := widget.NewLabel(lang.X("settings.note",
		"The administrator sets these in the configuration file: {{.Log}} for the log, {{.Language}} for the language, {{.Notify}} for notifications. Changes apply when cardwright starts again.",
		map[string]any{"Log": keyLogFile, "Language": keyLanguage, "Notify": keyNotify}))
	note.Wrapping = fyne.TextWrapWord
	return framed(container.NewVBox(form, widget.NewSeparator(), note), done)
}

func aboutContent(info Info, done func()) fyne.CanvasObject {
	icon := canvas.NewImageFromResource(Icon(IconIdle))
	icon.FillMode = canvas.ImageFillContain
	icon.SetMinSize(fyne.NewSquareSize(48))
	name := widget.NewLabel("cardwright")
	name.TextStyle.Bold = true
	name.Alignment = fyne.TextAlignCenter
	version := widget.NewLabel(lang.X("about.version", "Version {{.Version}}", map[string]any{"Version": info.Version}))
	version.Alignment = fyne.TextAlignCenter
	what := widget.NewLabel(lang.X("about.what", "Encodes smart cards for the card-management portal in your browser."))
	what.Wrapping = fyne.TextWrapWord
	what.Alignment = fyne.TextAlignCenter
	lic := widget.NewLabel(licence)
	lic.Alignment = fyne.TextAlignCenter
	u, _ := url.Parse(ProjectURL) // a constant that parses
	link := widget.NewHyperlink(ProjectURL, u)
	link.Alignment = fyne.TextAlignCenter
	return framed(container.NewVBox(icon, name, version, what, lic, link), done)
}

// settle lays a window's content out again once its wrapping labels know
// their width, and so their height. The GL driver does this by itself at
// the next frame; Fyne's test driver does not, and the goldens should show
// what a user sees.
func settle(w fyne.Window) {
	var walk func(fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		switch o := o.(type) {
		case *fyne.Container:
			for _, c := range o.Objects {
				walk(c)
			}
		case *container.Scroll:
			o.Refresh()
			walk(o.Content)
		}
	}
	walk(w.Content())
}

// framed puts a window's content in a scroller (which gives wrapping
// labels their width) above a Close button.
func framed(content fyne.CanvasObject, done func()) fyne.CanvasObject {
	return container.NewBorder(nil,
		container.NewHBox(layout.NewSpacer(), widget.NewButton(lang.X("button.close", "Close"), done)),
		nil, nil,
		container.NewVScroll(content))
}

// windows holds the open Settings and About windows, one of each per app.
var windows struct {
	sync.Mutex
	m map[windowKey]fyne.Window
}

type windowKey struct {
	app  fyne.App
	kind string
}

// singleWindow returns the app's open window of a kind or a new one, which
// forgets itself when closed.
func singleWindow(a fyne.App, kind, title string, size fyne.Size) fyne.Window {
	windows.Lock()
	defer windows.Unlock()
	k := windowKey{a, kind}
	if w, ok := windows.m[k]; ok {
		w.SetTitle(title)
		return w
	}
	if windows.m == nil {
		windows.m = map[windowKey]fyne.Window{}
	}
	w := a.NewWindow(title)
	w.Resize(size)
	w.SetOnClosed(func() {
		windows.Lock()
		delete(windows.m, k)
		windows.Unlock()
	})
	windows.m[k] = w
	return w
}
