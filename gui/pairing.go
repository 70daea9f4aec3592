package gui

// The pairing window (spec/gui.md, property 4): a site that the
// configuration does not name asks to use the agent, and the user compares
// the code the page shows with the one here. Nothing approves by accident:
// Deny is the default action, no key approves, Allow takes clicks only after
// allowDelay, and the timeout denies.

import (
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// allowDelay is how long Allow stays disabled after the window opens, so
// that a click or key meant for the window underneath cannot approve
// (Firefox does the same with its add-on prompts, Mozilla bug 162020).
var allowDelay = time.Second

// AskPairing opens the pairing window: origin and code (large digits).
// reply(true) only by clicking or tapping Allow, which is disabled for the
// first allowDelay. Deny is the default action: Escape, Enter, closing the
// window and the timeout all reply(false); Enter never approves, even when
// Allow has focus. reply is called at most once, on the Fyne goroutine;
// close() closes the window without reply. AskPairing and close are called
// on the Fyne goroutine.
func AskPairing(a fyne.App, origin, code string, timeout time.Duration, reply func(allow bool)) (close func()) {
	return openPairing(a, origin, code, timeout, reply).close
}

// pairingWindow is one open pairing request.
type pairingWindow struct {
	w         fyne.Window
	reply     func(bool)
	allow     *keyButton
	clock     *countdown
	stopDelay func()
	done      bool
}

func openPairing(a fyne.App, origin, code string, timeout time.Duration, reply func(bool)) *pairingWindow {
	d := &pairingWindow{reply: reply}
	d.w = a.NewWindow(lang.X("pairing.title", "cardwright — Pair a site"))
	deny := newKeyButton(lang.X("pairing.deny", "Deny"), theme.CancelIcon(), d.deny, buttonKeys(d.deny, d.deny))
	deny.Importance = widget.HighImportance
	// Allow has no key of its own: Space does nothing, Escape and Enter deny.
	d.allow = newKeyButton(lang.X("pairing.allow", "Allow"), theme.ConfirmIcon(), d.approve, map[fyne.KeyName]func(){
		fyne.KeyEscape: d.deny,
		fyne.KeyReturn: d.deny,
		fyne.KeyEnter:  d.deny,
	})
	d.allow.Disable()
	d.stopDelay = every(allowDelay, func() {
		d.stopDelay()
		if !d.done {
			d.allow.Enable()
		}
	})
	d.clock = startCountdown(timeout, d.deny)

	site := container.New(layout.NewFormLayout(),
		widget.NewLabelWithStyle(lang.X("pairing.site", "Site"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		widget.NewLabelWithStyle(origin, fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
	digits := widget.NewLabelWithStyle(code, fyne.TextAlignCenter, fyne.TextStyle{Monospace: true})
	digits.SizeName = theme.SizeNameHeadingText
	content := container.NewVBox(
		heading(lang.X("pairing.heading", "A site asks to use cardwright")),
		site,
		widget.NewLabel(lang.X("pairing.compare", "Allow only if the page shows the same code:")),
		digits,
		d.clock.label,
		container.NewHBox(layout.NewSpacer(), deny, d.allow),
	)
	d.w.Canvas().SetOnTypedKey(func(ev *fyne.KeyEvent) {
		switch ev.Name {
		case fyne.KeyEscape, fyne.KeyReturn, fyne.KeyEnter:
			d.deny()
		}
	})
	show(d.w, content, d.deny)
	return d
}

// approve is a click or tap on Allow (the button ignores it while disabled).
func (d *pairingWindow) approve() { d.answer(true) }

// deny is Deny, Escape, Enter, closing the window and the timeout.
func (d *pairingWindow) deny() { d.answer(false) }

func (d *pairingWindow) answer(allow bool) {
	if d.done {
		return
	}
	d.close()
	d.reply(allow)
}

func (d *pairingWindow) close() {
	if d.done {
		return
	}
	d.done = true
	d.clock.stop()
	d.stopDelay()
	d.w.Close()
}
