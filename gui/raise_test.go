package gui

import (
	"bytes"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"

	"github.com/cardwright/cardwright/gui/link"
)

// TestRaise: the link's raise shows the status window with the last
// state. With a tray the window is made then, once, and its close button
// hides it without quitting (nothing reaches the agent); without a tray it
// is the status window the app already has, whose close button still
// quits.
func TestRaise(t *testing.T) {
	trayLang(t, "en")
	a := test.NewTempApp(t)
	var toAgent bytes.Buffer
	c, err := link.NewClient(strings.NewReader(""), &toAgent)
	if err != nil {
		t.Fatal(err)
	}

	// With a tray: no status window until raised.
	d := &desk{app: a, link: c, open: map[uint64]func(){}, state: sampleState(), seen: true}
	d.raise()
	s := d.status
	if s == nil {
		t.Fatal("raise made no status window")
	}
	if got, want := s.status.Text, statusLine(sampleState()); got != want {
		t.Errorf("status line %q, want %q", got, want)
	}
	d.raise()
	if d.status != s {
		t.Error("a second raise made a second status window")
	}
	s.closeRequested()
	if toAgent.Len() != 0 {
		t.Errorf("closing the raised window sent %q to the agent, want nothing (it hides)", toAgent.String())
	}

	// Without a tray: the window start made, which quits when closed.
	d = &desk{app: a, link: c, open: map[uint64]func(){}}
	d.status = NewStatusWindow(a, d.actions())
	own := d.status
	d.raise()
	if d.status != own || own.hideOnClose {
		t.Error("raise replaced the status window shown without a tray, or made it hide on close")
	}
	own.closeRequested()
	if !strings.Contains(toAgent.String(), `"t":"quit"`) {
		t.Errorf("closing the status window without a tray sent %q, want quit", toAgent.String())
	}
}
