package gui

import (
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
)

// pairingReplies records the replies of one pairing window.
type pairingReplies []bool

func (r *pairingReplies) reply(allow bool) { *r = append(*r, allow) }

func openTestPairing(t *testing.T) (fyne.App, *pairingWindow, *pairingReplies, *fakeClock) {
	t.Helper()
	trayLang(t, "en")
	clock := useFakeClock(t)
	a := test.NewTempApp(t)
	got := &pairingReplies{}
	return a, openPairing(a, "https://portal.example.com", "042917", time.Minute, got.reply), got, clock
}

// TestPairingAllow: Allow is disabled for allowDelay, a tap then approves
// (spec/gui.md property 4).
func TestPairingAllow(t *testing.T) {
	a, d, got, clock := openTestPairing(t)
	if !d.allow.Disabled() {
		t.Fatal("Allow is enabled at once")
	}
	test.Tap(d.allow)
	clock.advance(allowDelay - time.Millisecond)
	test.Tap(d.allow)
	if len(*got) != 0 || !d.allow.Disabled() {
		t.Fatalf("replies %v, Allow disabled %v before the delay", *got, d.allow.Disabled())
	}
	clock.advance(time.Millisecond)
	if d.allow.Disabled() {
		t.Fatal("Allow is still disabled after the delay")
	}
	test.Tap(d.allow)
	if len(*got) != 1 || !(*got)[0] {
		t.Fatalf("replies %v after tapping Allow", *got)
	}
	if isOpen(a, d.w) {
		t.Error("the window is still open")
	}
	clock.advance(time.Hour)
	d.deny()
	d.close()
	if len(*got) != 1 {
		t.Errorf("replies %v", *got)
	}
}

// TestPairingDenied: Deny, Escape and Enter wherever the focus is — Allow's
// included —, closing the window and the timeout deny; no key approves.
func TestPairingDenied(t *testing.T) {
	focusAllow := func(d *pairingWindow, clock *fakeClock) {
		clock.advance(allowDelay)
		d.w.Canvas().Focus(d.allow)
	}
	for _, tc := range []struct {
		name string
		do   func(*pairingWindow, *fakeClock)
	}{
		{"deny button", func(d *pairingWindow, _ *fakeClock) { test.Tap(buttonText(d.w.Content(), "Deny")) }},
		{"enter", func(d *pairingWindow, _ *fakeClock) { pressKey(d.w.Canvas(), fyne.KeyReturn) }},
		{"keypad enter", func(d *pairingWindow, _ *fakeClock) { pressKey(d.w.Canvas(), fyne.KeyEnter) }},
		{"escape", func(d *pairingWindow, _ *fakeClock) { pressKey(d.w.Canvas(), fyne.KeyEscape) }},
		{"enter on allow", func(d *pairingWindow, clock *fakeClock) {
			focusAllow(d, clock)
			pressKey(d.w.Canvas(), fyne.KeyReturn)
		}},
		{"space then escape on allow", func(d *pairingWindow, clock *fakeClock) {
			focusAllow(d, clock)
			pressKey(d.w.Canvas(), fyne.KeySpace)
			pressKey(d.w.Canvas(), fyne.KeyEscape)
		}},
		{"enter on deny", func(d *pairingWindow, _ *fakeClock) {
			d.w.Canvas().Focus(buttonText(d.w.Content(), "Deny"))
			pressKey(d.w.Canvas(), fyne.KeyReturn)
		}},
		{"window closed", func(d *pairingWindow, _ *fakeClock) { d.deny() }}, // the close intercept
		{"timeout", func(_ *pairingWindow, clock *fakeClock) { clock.advance(time.Minute) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, d, got, clock := openTestPairing(t)
			tc.do(d, clock)
			if len(*got) != 1 || (*got)[0] {
				t.Fatalf("replies %v, want one denial", *got)
			}
			if isOpen(a, d.w) {
				t.Error("the window is still open")
			}
			clock.advance(time.Hour)
			test.Tap(d.allow)
			if len(*got) != 1 {
				t.Errorf("replies %v", *got)
			}
		})
	}
}

// TestPairingClose: close() (the request withdrawn or timed out in the
// agent) closes the window without a reply.
func TestPairingClose(t *testing.T) {
	trayLang(t, "en")
	useFakeClock(t)
	a := test.NewTempApp(t)
	var got pairingReplies
	closePairing := AskPairing(a, "https://portal.example.com", "042917", time.Minute, got.reply)
	windows := a.Driver().AllWindows()
	w := windows[len(windows)-1]
	if w.Title() != "cardwright — Pair a site" {
		t.Errorf("title %q", w.Title())
	}
	closePairing()
	closePairing()
	if len(got) != 0 || isOpen(a, w) {
		t.Errorf("replies %v, window open %v", got, isOpen(a, w))
	}
}

// TestPairingMarkup renders the window in English and German.
func TestPairingMarkup(t *testing.T) {
	for _, lang := range []string{"en", "de"} {
		t.Run(lang, func(t *testing.T) {
			trayLang(t, lang)
			useFakeClock(t)
			d := openPairing(test.NewTempApp(t), "https://portal.example.com:8443", "042917", 2*time.Minute, func(bool) {})
			assertMarkup(t, "pairing_"+lang+".xml", d.w.Canvas())
		})
	}
}
