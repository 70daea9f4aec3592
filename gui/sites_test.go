package gui

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
)

// fakeAgent records RemoveSite calls and answers with err.
type fakeAgent struct {
	mu      sync.Mutex
	removed []string
	err     error
	quit    int
}

func (f *fakeAgent) RemoveSite(origin string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, origin)
	return f.err
}

func (f *fakeAgent) Quit() {
	f.mu.Lock()
	f.quit++
	f.mu.Unlock()
}

func (f *fakeAgent) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.removed...)
}

// newSites opens the Sites window on the sample state; removals report to
// the returned channel.
func newSites(t *testing.T, ag Agent) (*SitesWindow, chan error) {
	t.Helper()
	s := NewSitesWindow(test.NewTempApp(t), ag)
	s.Update(sampleState())
	s.Show()
	done := make(chan error, 1)
	s.removed = func(_ string, err error) { done <- err }
	return s, done
}

// TestSitesWindow: configured sites are read-only, paired ones have a
// Remove button (spec/gui.md "Tray": "from configuration: read-only;
// paired: removable"), in English and German.
func TestSitesWindow(t *testing.T) {
	for _, lang := range []string{"en", "de"} {
		t.Run(lang, func(t *testing.T) {
			trayLang(t, lang)
			s, _ := newSites(t, &fakeAgent{})
			assertMarkup(t, "sites_"+lang+".xml", s.w.Canvas())
		})
	}
	trayLang(t, "en")
	s, _ := newSites(t, &fakeAgent{})
	if got := buttons(s.w.Content()); !slices.Equal(got, []string{"Remove"}) {
		t.Errorf("buttons = %q, want one Remove (for the paired site only)", got)
	}
	rows := s.list.Objects
	if len(rows) != 3 { // configured, separator, paired
		t.Fatalf("%d rows", len(rows))
	}
	if got := buttons(rows[0]); len(got) != 0 {
		t.Errorf("the configured site has buttons %q", got)
	}
	if got := buttons(rows[2]); !slices.Equal(got, []string{"Remove"}) {
		t.Errorf("the paired site has buttons %q", got)
	}
	text := test.RenderToMarkup(s.w.Canvas())
	for _, want := range []string{"https://cms.example.com", "From the configuration (read-only)", "https://portal.example.org", "Paired on 2026-12-01 09:30"} {
		if !strings.Contains(text, want) {
			t.Errorf("the window does not show %q", want)
		}
	}

	s.Update(State{})
	if l, ok := s.list.Objects[0].(*widget.Label); len(s.list.Objects) != 1 || !ok || !strings.HasPrefix(l.Text, "No sites yet.") {
		t.Errorf("no sites: %d rows", len(s.list.Objects))
	}
}

// TestSitesRemove: Remove asks first; confirming removes the site through
// the agent, cancelling does not.
func TestSitesRemove(t *testing.T) {
	trayLang(t, "en")
	ag := &fakeAgent{}
	s, done := newSites(t, ag)

	test.Tap(button(t, s.w.Content(), "Remove"))
	if s.confirm == nil {
		t.Fatal("Remove did not ask")
	}
	assertMarkup(t, "sites_confirm_en.xml", s.w.Canvas())
	s.confirm.Dismiss()
	if got := ag.calls(); len(got) != 0 {
		t.Fatalf("cancelled, yet RemoveSite(%q)", got)
	}

	test.Tap(button(t, s.w.Content(), "Remove"))
	s.confirm.Confirm()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := ag.calls(); !slices.Equal(got, []string{"https://portal.example.org"}) {
		t.Errorf("RemoveSite(%q)", got)
	}
	if s.failure != nil {
		t.Error("an error is shown after a removal that worked")
	}
}

// TestSitesRemoveError: the agent's refusal is shown.
func TestSitesRemoveError(t *testing.T) {
	for _, lang := range []string{"en", "de"} {
		t.Run(lang, func(t *testing.T) {
			trayLang(t, lang)
			ag := &fakeAgent{err: errors.New("removing site https://portal.example.org: origin is not paired")}
			s, done := newSites(t, ag)
			s.askRemove("https://portal.example.org")
			s.confirm.Confirm()
			if err := <-done; err == nil {
				t.Fatal("no error reported")
			}
			if s.failure == nil {
				t.Fatal("the error is not shown")
			}
			want := map[string]string{
				"en": "Could not remove https://portal.example.org: removing site https://portal.example.org: origin is not paired",
				"de": "https://portal.example.org konnte nicht entfernt werden: removing site https://portal.example.org: origin is not paired",
			}[lang]
			if texts := shownTexts(s.w.Canvas()); !slices.Contains(texts, want) {
				t.Errorf("the window does not show %q: %q", want, texts)
			}
		})
	}
}
