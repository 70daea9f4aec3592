// Package gui is the desktop app of cardwright (spec/gui.md): the tray, the
// PIN, PIN-pad and pairing windows, the Sites, Settings and status windows,
// and the card-initialization window. It is the only package that imports
// Fyne.
//
// The tray and its windows run in the GUI process that the agent supervises
// (docs/gui.md, "Process model"): everything they know of the agent arrives
// as plain data (agent.State, prompt.Request) and everything they do goes
// back through the Agent interface, so they never touch a card, a token, a
// socket or the configuration file themselves. The card-initialization
// window (init*.go, RunInit) is a process of its own, `cardwright init-gui`:
// it drives the runner main wires through cardinit.Engine, and opens the PIN
// windows in-process (Prompter).
//
// Threading: Fyne runs every callback on one goroutine; the functions here
// that open or change windows are called on it (from the link's reader
// through fyne.Do).
package gui

import (
	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/gui/link"
)

// Agent is what the windows ask of the agent.
type Agent interface {
	// RemoveSite removes a paired origin (and ends its sessions).
	RemoveSite(origin string) error
	// Quit ends the desktop mode: the agent and the GUI.
	Quit()
}

// Info is what the GUI shows of its agent beyond State (Settings, About).
type Info = link.Info

// State is the agent's snapshot the tray and status window draw from.
type State = agent.State
