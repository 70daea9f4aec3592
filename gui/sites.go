package gui

// sites.go: the Sites window (spec/gui.md, "Tray": "Sites… — the approved
// origins (from configuration: read-only; paired: removable, which also
// ends their open sessions)").

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/cardwright/cardwright/agent"
)

// SitesWindow lists the origins that may use the agent: configured ones
// marked read-only, paired ones with the time they were paired and a
// Remove button that asks first.
type SitesWindow struct {
	w    fyne.Window
	ag   Agent
	list *fyne.Container

	// The open dialogs and a hook called after a removal has been
	// answered, for tests.
	confirm *dialog.ConfirmDialog
	failure dialog.Dialog
	removed func(origin string, err error)
}

// NewSitesWindow makes the Sites window; Update fills it and Show shows
// it. Closing it hides it.
func NewSitesWindow(a fyne.App, ag Agent) *SitesWindow {
	s := &SitesWindow{
		w:    a.NewWindow(lang.X("sites.title", "Sites")),
		ag:   ag,
		list: container.NewVBox(),
	}
	intro := widget.NewLabel(lang.X("sites.intro", "Web pages that may use the card readers of this computer."))
	intro.Wrapping = fyne.TextWrapWord
	// The wrapping intro scrolls with the list: a wrapping label above a
	// scroller asks for its height before it knows its width.
	s.w.SetContent(container.NewVScroll(container.NewVBox(intro, widget.NewSeparator(), s.list)))
	s.w.SetCloseIntercept(s.w.Hide)
	s.w.Resize(fyne.NewSize(520, 360))
	return s
}

// Update redraws the list from a new snapshot.
func (s *SitesWindow) Update(st State) {
	if len(st.Sites) == 0 {
		l := widget.NewLabel(lang.X("sites.none", "No sites yet. A portal asks to be paired the first time it connects."))
		l.Wrapping = fyne.TextWrapWord
		s.list.Objects = []fyne.CanvasObject{l}
		s.list.Refresh()
		return
	}
	rows := make([]fyne.CanvasObject, 0, 2*len(st.Sites))
	for i, site := range st.Sites {
		if i > 0 {
			rows = append(rows, widget.NewSeparator())
		}
		rows = append(rows, s.row(site))
	}
	s.list.Objects = rows
	s.list.Refresh()
}

// Show shows the window and brings it to the front.
func (s *SitesWindow) Show() {
	s.w.Show()
	s.w.RequestFocus()
}

// row is one site: its origin, where it comes from, and for a paired one
// the Remove button.
func (s *SitesWindow) row(site agent.Site) fyne.CanvasObject {
	origin := widget.NewLabel(site.Origin)
	origin.TextStyle.Bold = true
	origin.Truncation = fyne.TextTruncateEllipsis
	var detail string
	switch {
	case site.Configured:
		detail = lang.X("sites.configured", "From the configuration (read-only)")
	case site.PairedAt.IsZero():
		detail = lang.X("sites.pairedUnknown", "Paired on this computer")
	default:
		detail = lang.X("sites.paired", "Paired on {{.Date}}", map[string]any{"Date": site.PairedAt.Local().Format("2006-01-02 15:04")})
	}
	text := container.NewVBox(origin, widget.NewLabel(detail))
	if site.Configured {
		return text
	}
	remove := widget.NewButtonWithIcon(lang.X("sites.remove", "Remove"), theme.DeleteIcon(), func() {
		s.askRemove(site.Origin)
	})
	remove.Importance = widget.DangerImportance
	return container.NewBorder(nil, nil, nil, container.NewCenter(remove), text)
}

// askRemove asks before removing a paired site, then removes it. The
// agent's answer is awaited off the Fyne goroutine, so a slow agent does
// not freeze the windows; the list changes with the next snapshot.
func (s *SitesWindow) askRemove(origin string) {
	msg := widget.NewLabel(lang.X("sites.confirm",
		"{{.Origin}} will have to ask again before it can use the card readers of this computer. Its open connections and running jobs end now.",
		map[string]any{"Origin": origin}))
	msg.Wrapping = fyne.TextWrapWord
	d := dialog.NewCustomConfirm(lang.X("sites.confirm.title", "Remove this site?"),
		lang.X("sites.remove", "Remove"), lang.L("Cancel"), msg, func(ok bool) {
			s.confirm = nil
			if !ok {
				return
			}
			go func() {
				err := s.ag.RemoveSite(origin)
				fyne.Do(func() { s.answered(origin, err) })
			}()
		}, s.w)
	d.SetConfirmImportance(widget.DangerImportance)
	s.confirm = d
	showWrapped(d)
}

// showWrapped shows a dialog holding wrapping text at a readable width: a
// wrapping label's height is known only once its width is, so the dialog
// is sized twice.
func showWrapped(d dialog.Dialog) {
	d.Show()
	d.Resize(fyne.NewSize(440, d.MinSize().Height))
	d.Resize(fyne.NewSize(440, d.MinSize().Height))
}

// answered shows a removal's error, if any.
func (s *SitesWindow) answered(origin string, err error) {
	if err != nil {
		// Not dialog.NewError: it capitalises the message's first letter,
		// which may be the origin's.
		msg := widget.NewLabel(lang.X("sites.removeFailed", "Could not remove {{.Origin}}: {{.Err}}",
			map[string]any{"Origin": origin, "Err": err.Error()}))
		msg.Wrapping = fyne.TextWrapWord
		s.failure = dialog.NewCustom(lang.X("sites.removeFailed.title", "Site not removed"), lang.L("OK"),
			container.NewBorder(nil, nil, container.NewCenter(widget.NewIcon(theme.ErrorIcon())), nil, msg), s.w)
		showWrapped(s.failure)
	}
	if s.removed != nil {
		s.removed(origin, err)
	}
}
