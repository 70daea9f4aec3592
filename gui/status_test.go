package gui

import (
	"slices"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
)

// button finds a button by its text among the laid-out objects.
func button(t *testing.T, o fyne.CanvasObject, text string) *widget.Button {
	t.Helper()
	for _, x := range test.LaidOutObjects(o) {
		if b, ok := x.(*widget.Button); ok && b.Text == text {
			return b
		}
	}
	t.Fatalf("no button %q", text)
	return nil
}

func buttons(o fyne.CanvasObject) []string {
	var out []string
	for _, x := range test.LaidOutObjects(o) {
		if b, ok := x.(*widget.Button); ok {
			out = append(out, b.Text)
		}
	}
	return out
}

// TestStatusWindow: the window shown without a tray host has the menu's
// information and actions (spec/gui.md "Tray"), in English and German; its
// close button quits.
func TestStatusWindow(t *testing.T) {
	for _, lang := range []string{"en", "de"} {
		t.Run(lang, func(t *testing.T) {
			trayLang(t, lang)
			a := test.NewTempApp(t)
			var got calls
			s := NewStatusWindow(a, got.actions())
			s.Update(sampleState())
			s.Show()
			assertMarkup(t, "status_"+lang+".xml", s.w.Canvas())
		})
	}
}

func TestStatusWindowActions(t *testing.T) {
	trayLang(t, "en")
	a := test.NewTempApp(t)
	var got calls
	s := NewStatusWindow(a, got.actions())
	s.Update(sampleState())
	for text, name := range map[string]string{"Sites…": "sites", "Initialize a card…": "initcard",
		"Settings…": "settings", "Open log": "openlog", "About": "about", "Quit": "quit"} {
		got = nil
		test.Tap(button(t, s.w.Content(), text))
		if !slices.Equal(got, calls{name}) {
			t.Errorf("%q ran %q, want %q", text, got, name)
		}
	}
	got = nil
	s.closeRequested()
	if !slices.Equal(got, calls{"quit"}) {
		t.Errorf("closing the window ran %q, want quit", got)
	}

	// Without actions the buttons are disabled.
	s = NewStatusWindow(a, Actions{})
	for _, text := range buttons(s.w.Content()) {
		if !button(t, s.w.Content(), text).Disabled() {
			t.Errorf("%q is enabled without an action", text)
		}
	}
}

// TestStatusWindowUpdate: a new snapshot replaces the old lines and icon.
func TestStatusWindowUpdate(t *testing.T) {
	trayLang(t, "en")
	s := NewStatusWindow(test.NewTempApp(t), Actions{})
	s.Update(sampleState())
	st := sampleState()
	st.Readers, st.ReadersErr, st.Recent, st.Running = nil, "pcsc: no service", nil, 0
	s.Update(st)
	if s.status.Text != "cardwright 1.4.0 · 127.0.0.1:27140 · no jobs running" {
		t.Errorf("status = %q", s.status.Text)
	}
	if len(s.readers.Objects) != 1 || s.readers.Objects[0].(*widget.Label).Text != "Readers unavailable: pcsc: no service" {
		t.Errorf("readers not redrawn: %d lines", len(s.readers.Objects))
	}
	if len(s.recent.Objects) != 1 || s.recent.Objects[0].(*widget.Label).Text != "No jobs yet" {
		t.Errorf("recent jobs not redrawn: %d lines", len(s.recent.Objects))
	}
	if s.icon.Resource != Icon(IconError) {
		t.Errorf("icon = %s, want the error icon", s.icon.Resource.Name())
	}
}
