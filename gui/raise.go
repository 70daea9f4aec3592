package gui

// raise.go: 'cardwright open' (the cardwright: URI scheme) brings the
// running desktop app forward: the agent's POST /v1/raise sends the link's
// raise message, and the app shows its status window in front.

import "fyne.io/fyne/v2"

// Raise implements link.Handler.
func (d *desk) Raise() { fyne.Do(d.raise) }

// raise shows the status window in front. Without a tray host it is the
// window the app already shows (perhaps behind others); with a tray it is
// made on first use and its close button hides it — the tray stays the
// app's way in, and quitting stays the Quit button's.
func (d *desk) raise() {
	if d.status == nil {
		d.status = NewStatusWindow(d.app, d.actions())
		d.status.hideOnClose = true
	}
	d.status.Update(d.state)
	d.status.Show()
}
