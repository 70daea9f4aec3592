package gui

// status.go: the status window, shown instead of the tray when there is
// no tray host (spec/gui.md, "Tray": "Without a tray host … the app must
// still be reachable … show a small status window instead").

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/widget"
)

// StatusWindow shows what the tray menu shows — the status line, readers,
// recent jobs — and offers its actions as buttons. Closing it quits: it is
// the app's only way in (the Quit action asks first while jobs run).
type StatusWindow struct {
	w       fyne.Window
	act     Actions
	icon    *canvas.Image
	status  *widget.Label
	readers *fyne.Container
	recent  *fyne.Container
	// hideOnClose: the close button hides the window (the tray is the
	// app's way in; raise.go), instead of quitting.
	hideOnClose bool
}

// NewStatusWindow makes the status window; Update fills it and Show shows
// it.
func NewStatusWindow(a fyne.App, act Actions) *StatusWindow {
	s := &StatusWindow{
		w:       a.NewWindow(lang.X("status.title", "cardwright")),
		act:     act,
		icon:    canvas.NewImageFromResource(Icon(IconIdle)),
		status:  widget.NewLabel(lang.X("status.starting", "Starting…")),
		readers: container.NewVBox(),
		recent:  container.NewVBox(),
	}
	s.icon.FillMode = canvas.ImageFillContain
	s.icon.SetMinSize(fyne.NewSquareSize(32))
	s.status.Wrapping = fyne.TextWrapWord
	s.status.TextStyle.Bold = true

	button := func(label string, fn func()) *widget.Button {
		b := widget.NewButton(label, fn)
		if fn == nil {
			b.Disable()
		}
		return b
	}
	buttons := container.NewGridWithColumns(2,
		button(lang.X("tray.sites", "Sites…"), act.Sites),
		button(lang.X("tray.initCard", "Initialize a card…"), act.InitCard),
		button(lang.X("tray.settings", "Settings…"), act.Settings),
		button(lang.X("tray.openLog", "Open log"), act.OpenLog),
		button(lang.X("tray.about", "About"), act.About),
		button(lang.X("tray.quit", "Quit"), act.Quit),
	)
	heading := func(text string) *widget.Label {
		l := widget.NewLabel(text)
		l.TextStyle.Bold = true
		return l
	}
	// The lines scroll above the buttons; the scroller also gives the
	// wrapping labels their width.
	s.w.SetContent(container.NewBorder(nil, container.NewVBox(widget.NewSeparator(), buttons), nil, nil,
		container.NewVScroll(container.NewVBox(
			container.NewBorder(nil, nil, s.icon, nil, s.status),
			widget.NewSeparator(),
			heading(lang.X("tray.readers", "Readers")),
			s.readers,
			heading(lang.X("tray.recent", "Recent jobs")),
			s.recent,
		))))
	s.w.SetCloseIntercept(s.closeRequested)
	s.w.Resize(fyne.NewSize(520, 480))
	return s
}

// Update redraws the window from a new snapshot.
func (s *StatusWindow) Update(st State) {
	s.icon.Resource = Icon(IconFor(st, false))
	s.icon.Refresh()
	s.status.SetText(statusLine(st))
	setLines(s.readers, readerLines(st))
	setLines(s.recent, recentLines(st.Recent, recentInMenu))
	settle(s.w)
}

// closeRequested is the window's close button: Quit (it asks first while
// jobs run), or closing without a Quit action; hiding it when there is a
// tray.
func (s *StatusWindow) closeRequested() {
	if s.hideOnClose {
		s.w.Hide()
		return
	}
	if s.act.Quit != nil {
		s.act.Quit()
		return
	}
	s.w.Close()
}

// Show shows the window and brings it to the front.
func (s *StatusWindow) Show() {
	s.w.Show()
	s.w.RequestFocus()
}

// setLines replaces a box's content with one wrapping label per line.
func setLines(box *fyne.Container, lines []string) {
	objs := make([]fyne.CanvasObject, len(lines))
	for i, l := range lines {
		lbl := widget.NewLabel(l)
		lbl.Wrapping = fyne.TextWrapWord
		objs[i] = lbl
	}
	box.Objects = objs
	box.Refresh()
}
