package gui

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/cardwright/cardwright/prompt"
)

// fakeClock stands in for every: the test moves time on by hand, on its own
// goroutine. (The test driver runs fyne.Do inline, so a real ticker would
// change the widgets from the ticker's goroutine while the test reads them.)
type fakeClock struct {
	now     time.Duration
	tickers []*fakeTicker
}

type fakeTicker struct {
	period, next time.Duration
	f            func()
	stopped      bool
}

func useFakeClock(t *testing.T) *fakeClock {
	c := &fakeClock{}
	saved := every
	every = func(d time.Duration, f func()) func() {
		tk := &fakeTicker{period: d, next: c.now + d, f: f}
		c.tickers = append(c.tickers, tk)
		return func() { tk.stopped = true }
	}
	t.Cleanup(func() { every = saved })
	return c
}

// advance moves the clock on by d, calling the tickers that fall due in
// the order they do.
func (c *fakeClock) advance(d time.Duration) {
	end := c.now + d
	for {
		var due *fakeTicker
		for _, tk := range c.tickers {
			if !tk.stopped && tk.next <= end && (due == nil || tk.next < due.next) {
				due = tk
			}
		}
		if due == nil {
			break
		}
		c.now = due.next
		due.next += due.period
		due.f()
	}
	c.now = end
}

// typeRunes types s as the driver does: to the focused widget
// (internal/driver/glfw/window.go, processCharInput).
func typeRunes(t *testing.T, c fyne.Canvas, s string) {
	t.Helper()
	f := c.Focused()
	if f == nil {
		t.Fatal("nothing has focus to type into")
	}
	for _, r := range s {
		f.TypedRune(r)
	}
}

// pressKey presses k as the driver does: the focused widget gets it, and
// only when nothing has focus the canvas handler
// (internal/driver/glfw/window.go, processKeyPressed).
func pressKey(c fyne.Canvas, k fyne.KeyName) {
	ev := &fyne.KeyEvent{Name: k}
	if f := c.Focused(); f != nil {
		f.TypedKey(ev)
	} else if h := c.OnTypedKey(); h != nil {
		h(ev)
	}
}

// labelTexts is the text of every label in o, in order.
func labelTexts(o fyne.CanvasObject) []string {
	switch o := o.(type) {
	case *fyne.Container:
		var s []string
		for _, c := range o.Objects {
			s = append(s, labelTexts(c)...)
		}
		return s
	case *widget.Label:
		return []string{o.Text}
	}
	return nil
}

// pinReply records the replies of one window.
type pinReply struct {
	n   int
	a   prompt.Answer
	err error
}

func (r *pinReply) reply(a prompt.Answer, err error) {
	r.n++
	r.a, r.err = a, err
}

func isOpen(a fyne.App, w fyne.Window) bool {
	return slices.Contains(a.Driver().AllWindows(), w)
}

// openTestPIN opens a PIN window for r in English, on a fake clock, with a
// two-minute timeout.
func openTestPIN(t *testing.T, r prompt.Request) (fyne.App, *pinWindow, *pinReply, *fakeClock) {
	t.Helper()
	trayLang(t, "en")
	clock := useFakeClock(t)
	a := test.NewTempApp(t)
	got := &pinReply{}
	return a, openPIN(a, r, 2*time.Minute, got.reply), got, clock
}

// assertWiped fails unless every entry of d is empty (property 2).
func assertWiped(t *testing.T, d *pinWindow) {
	t.Helper()
	for i, f := range d.fields {
		if f.entry.Text != "" {
			t.Errorf("entry %d still holds %d characters", i, len(f.entry.Text))
		}
	}
}

// TestPINFields: each kind's fields typed with Enter from field to field;
// Enter on the last one submits, and the answer carries the values
// (spec/gui.md "PIN dialogs": keyboard first).
func TestPINFields(t *testing.T) {
	for _, tc := range []struct {
		kind         prompt.Kind
		typed        []string
		pin, current string
	}{
		{prompt.OneField, []string{"1234"}, "1234", ""},
		{prompt.Sign, []string{"123456"}, "123456", ""},
		{prompt.TwoFields, []string{"5678", "5678"}, "5678", ""},
		{prompt.ThreeFields, []string{"0000", "5678", "5678"}, "5678", "0000"},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			a, d, got, _ := openTestPIN(t, prompt.Request{Kind: tc.kind, MinLen: 4, MaxLen: 8})
			c := d.w.Canvas()
			if len(d.fields) != len(tc.typed) {
				t.Fatalf("%d fields, want %d", len(d.fields), len(tc.typed))
			}
			for i, s := range tc.typed {
				if c.Focused() != d.fields[i].entry {
					t.Fatalf("field %d does not have the cursor before typing", i)
				}
				typeRunes(t, c, s)
				if got.n != 0 {
					t.Fatalf("replied before Enter on field %d", i)
				}
				pressKey(c, fyne.KeyReturn)
			}
			if got.n != 1 || got.err != nil {
				t.Fatalf("%d replies, err %v; want one answer", got.n, got.err)
			}
			if got.a.PIN.Reveal() != tc.pin || got.a.Current.Reveal() != tc.current {
				t.Errorf("answer PIN %q current %q, want %q %q", got.a.PIN.Reveal(), got.a.Current.Reveal(), tc.pin, tc.current)
			}
			assertWiped(t, d)
			if isOpen(a, d.w) {
				t.Error("the window is still open")
			}
		})
	}
}

// TestPINOKButton: OK is disabled until every field is valid, then tapping
// it submits.
func TestPINOKButton(t *testing.T) {
	_, d, got, _ := openTestPIN(t, prompt.Request{Kind: prompt.TwoFields})
	c := d.w.Canvas()
	if !d.ok.Disabled() {
		t.Fatal("OK is enabled with empty fields")
	}
	typeRunes(t, c, "42")
	c.Focus(d.fields[1].entry) // Tab
	typeRunes(t, c, "42")
	if d.ok.Disabled() {
		t.Fatal("OK is disabled with both fields valid")
	}
	test.Tap(d.ok)
	if got.n != 1 || got.err != nil || got.a.PIN.Reveal() != "42" {
		t.Fatalf("%d replies, err %v, PIN %q", got.n, got.err, got.a.PIN.Reveal())
	}
	assertWiped(t, d)
}

// TestPINMismatch: a repeat that differs keeps OK disabled and, once the
// user presses Enter, says why at the field, which keeps the cursor.
func TestPINMismatch(t *testing.T) {
	_, d, got, _ := openTestPIN(t, prompt.Request{Kind: prompt.ThreeFields})
	c := d.w.Canvas()
	for _, s := range []string{"0000", "1234"} {
		typeRunes(t, c, s)
		pressKey(c, fyne.KeyReturn)
	}
	typeRunes(t, c, "1235")
	repeat := d.fields[2]
	if !d.ok.Disabled() {
		t.Error("OK is enabled while the entries differ")
	}
	if repeat.message.Text != "" {
		t.Errorf("message %q before the user left the field", repeat.message.Text)
	}
	pressKey(c, fyne.KeyReturn)
	if got.n != 0 {
		t.Fatal("Enter submitted entries that differ")
	}
	if repeat.message.Text != "The entries do not match" {
		t.Errorf("message %q", repeat.message.Text)
	}
	if c.Focused() != repeat.entry {
		t.Error("the repeat field lost the cursor")
	}

	pressKey(c, fyne.KeyBackspace)
	typeRunes(t, c, "4")
	if repeat.message.Text != "" || d.ok.Disabled() {
		t.Errorf("after the fix: message %q, OK disabled %v", repeat.message.Text, d.ok.Disabled())
	}
	pressKey(c, fyne.KeyReturn)
	if got.n != 1 || got.a.PIN.Reveal() != "1234" || got.a.Current.Reveal() != "0000" {
		t.Errorf("%d replies, PIN %q, current %q", got.n, got.a.PIN.Reveal(), got.a.Current.Reveal())
	}
}

// TestPINLength: the length rules, shown once the user presses Enter;
// Enter on a field that breaks them does not move on.
func TestPINLength(t *testing.T) {
	for _, tc := range []struct {
		min, max int
		typed    string
		message  string
	}{
		{4, 8, "12", "At least 4 characters"},
		{4, 8, "123456789", "At most 8 characters"},
		{1, 1, "12", "At most 1 character"},
		{0, 0, "", "Required"},
	} {
		t.Run(tc.message, func(t *testing.T) {
			_, d, got, _ := openTestPIN(t, prompt.Request{Kind: prompt.TwoFields, MinLen: tc.min, MaxLen: tc.max})
			c := d.w.Canvas()
			f := d.fields[0]
			typeRunes(t, c, tc.typed)
			if f.message.Text != "" {
				t.Errorf("message %q while typing", f.message.Text)
			}
			pressKey(c, fyne.KeyReturn)
			if f.message.Text != tc.message {
				t.Errorf("message %q, want %q", f.message.Text, tc.message)
			}
			if c.Focused() != f.entry {
				t.Error("Enter moved on from a field that breaks the rules")
			}
			if !d.ok.Disabled() || got.n != 0 {
				t.Errorf("OK disabled %v, %d replies", d.ok.Disabled(), got.n)
			}
		})
	}
}

// TestPINLeftField: leaving a field after typing (Tab, a click) shows its
// message; leaving an empty one does not.
func TestPINLeftField(t *testing.T) {
	_, d, _, _ := openTestPIN(t, prompt.Request{Kind: prompt.TwoFields, MinLen: 4})
	c := d.w.Canvas()
	c.Focus(d.fields[1].entry)
	if m := d.fields[0].message.Text; m != "" {
		t.Errorf("empty field left: message %q", m)
	}
	c.Focus(d.fields[0].entry)
	typeRunes(t, c, "12")
	c.Focus(d.fields[1].entry)
	if m := d.fields[0].message.Text; m != "At least 4 characters" {
		t.Errorf("short field left: message %q", m)
	}
}

// TestPINRefused: Cancel, Escape wherever the focus is, closing the window
// and the timeout all reply ErrRefused once and empty the entries.
func TestPINRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(*pinWindow, *fakeClock)
	}{
		{"escape in field", func(d *pinWindow, _ *fakeClock) { pressKey(d.w.Canvas(), fyne.KeyEscape) }},
		{"escape unfocused", func(d *pinWindow, _ *fakeClock) {
			d.w.Canvas().Unfocus()
			pressKey(d.w.Canvas(), fyne.KeyEscape)
		}},
		{"escape on OK", func(d *pinWindow, _ *fakeClock) {
			d.w.Canvas().Focus(d.ok)
			pressKey(d.w.Canvas(), fyne.KeyEscape)
		}},
		{"cancel button", func(d *pinWindow, _ *fakeClock) { test.Tap(buttonText(d.w.Content(), "Cancel")) }},
		{"enter on cancel", func(d *pinWindow, _ *fakeClock) {
			d.w.Canvas().Focus(buttonText(d.w.Content(), "Cancel"))
			pressKey(d.w.Canvas(), fyne.KeyReturn)
		}},
		{"window closed", func(d *pinWindow, _ *fakeClock) { d.cancel() }}, // the close intercept
		{"timeout", func(_ *pinWindow, clock *fakeClock) { clock.advance(2 * time.Minute) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, d, got, clock := openTestPIN(t, prompt.Request{Kind: prompt.OneField})
			typeRunes(t, d.w.Canvas(), "1234")
			tc.do(d, clock)
			if got.n != 1 || !errors.Is(got.err, prompt.ErrRefused) || !got.a.PIN.IsZero() {
				t.Fatalf("%d replies, err %v, PIN set %v", got.n, got.err, !got.a.PIN.IsZero())
			}
			assertWiped(t, d)
			if isOpen(a, d.w) {
				t.Error("the window is still open")
			}
			clock.advance(time.Hour)
			d.cancel()
			d.close()
			if got.n != 1 {
				t.Errorf("%d replies", got.n)
			}
		})
	}
}

// buttonText finds the button showing text in o.
func buttonText(o fyne.CanvasObject, text string) *keyButton {
	switch o := o.(type) {
	case *fyne.Container:
		for _, c := range o.Objects {
			if b := buttonText(c, text); b != nil {
				return b
			}
		}
	case *keyButton:
		if o.Text == text {
			return o
		}
	}
	return nil
}

// TestPINTimeout: the countdown shows the time left and the timeout says so
// in the error.
func TestPINTimeout(t *testing.T) {
	trayLang(t, "en")
	clock := useFakeClock(t)
	got := &pinReply{}
	d := openPIN(test.NewTempApp(t), prompt.Request{Kind: prompt.OneField}, 1500*time.Millisecond, got.reply)
	if s := d.clock.label.Text; s != "Closes in 0:02" {
		t.Errorf("countdown %q at the start", s)
	}
	clock.advance(time.Second)
	if s := d.clock.label.Text; s != "Closes in 0:01" || got.n != 0 {
		t.Errorf("countdown %q after a second, %d replies", s, got.n)
	}
	clock.advance(time.Second)
	if got.n != 1 || !errors.Is(got.err, prompt.ErrRefused) || !strings.Contains(got.err.Error(), "timed out") {
		t.Errorf("%d replies, err %v", got.n, got.err)
	}
}

// TestEvery runs the production ticker: f comes through fyne.Do, again and
// again, until stop (which may be called twice). Only f's channel is shared:
// the test driver runs fyne.Do on the ticker's goroutine, so a window on the
// real clock would race with the test reading it.
func TestEvery(t *testing.T) {
	test.NewTempApp(t)
	ticks := make(chan struct{}, 3)
	stop := every(time.Millisecond, func() {
		select {
		case ticks <- struct{}{}:
		default:
		}
	})
	for range 3 {
		select {
		case <-ticks:
		case <-time.After(10 * time.Second):
			t.Fatal("no tick 10 s after starting a 1 ms ticker")
		}
	}
	stop()
	stop()
}

// TestPINClose: close() (the request withdrawn) closes the window without
// a reply and empties the entries; after a reply it does nothing.
func TestPINClose(t *testing.T) {
	a, d, got, clock := openTestPIN(t, prompt.Request{Kind: prompt.OneField})
	typeRunes(t, d.w.Canvas(), "1234")
	d.close()
	clock.advance(time.Hour)
	if got.n != 0 {
		t.Errorf("%d replies after close", got.n)
	}
	assertWiped(t, d)
	if isOpen(a, d.w) {
		t.Error("the window is still open")
	}

	trayLang(t, "en")
	var n int
	closePIN := AskPIN(a, prompt.Request{Kind: prompt.OneField}, time.Minute, func(prompt.Answer, error) { n++ })
	windows := a.Driver().AllWindows()
	w := windows[len(windows)-1]
	if w.Title() != "cardwright — PIN" {
		t.Errorf("title %q", w.Title())
	}
	pressKey(w.Canvas(), fyne.KeyEscape)
	closePIN()
	if n != 1 || isOpen(a, w) {
		t.Errorf("%d replies, open %v", n, isOpen(a, w))
	}
}

// TestPINInfo: what asks and why, from the request only (property 3).
func TestPINInfo(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    prompt.Request
		want []string
		not  []string
	}{
		{"local", prompt.Request{Kind: prompt.OneField, Operation: prompt.OpLogin, Reader: "R1", Card: "C0DE01"},
			[]string{"Requested by", "this computer (local user)", "Log in to the card", "R1", "C0DE01", "Enter PIN"},
			[]string{"Certificate", "tries left", "Length:"}},
		{"origin exactly", prompt.Request{Kind: prompt.SignIn, Operation: prompt.OpSignIn, Label: "PIN1", Origin: "https://xn--bcher-kva.example:8443", Subject: "CN=Erika Mustermann", TriesLeft: 3, MinLen: 4},
			[]string{"https://xn--bcher-kva.example:8443", "Sign in to the site", "Certificate", "CN=Erika Mustermann", "3 tries left", "Enter PIN1", "Length: at least 4 characters"},
			[]string{"Reader", "Card", "Last try"}},
		{"last try", prompt.Request{Kind: prompt.OneField, Operation: prompt.OpUnblock, Label: "PUK", TriesLeft: 1, MinLen: 8, MaxLen: 8},
			[]string{"Unblock the PIN", "Last try: one more wrong entry blocks it", "Length: exactly 8 characters"},
			[]string{"tries left"}},
		{"other", prompt.Request{Kind: prompt.OneField, MinLen: 4, MaxLen: 12},
			[]string{"Use the card", "Length: 4 to 12 characters"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, d, _, _ := openTestPIN(t, tc.r)
			text := strings.Join(labelTexts(d.w.Content()), "\n")
			for _, s := range tc.want {
				if !strings.Contains(text, s) {
					t.Errorf("the window does not show %q:\n%s", s, text)
				}
			}
			for _, s := range tc.not {
				if strings.Contains(text, s) {
					t.Errorf("the window shows %q:\n%s", s, text)
				}
			}
		})
	}
}

// TestPINMarkup renders the windows in English and German (spec/gui.md
// "Languages"): a one-field request with everything the agent knows, a
// three-field request, the PIN pad.
func TestPINMarkup(t *testing.T) {
	sign := prompt.Request{Kind: prompt.Sign, Operation: prompt.OpSign, Label: "SignPIN",
		Origin: "https://portal.example.com", Reader: "Gemalto PC Twin Reader 00 00", Card: "Erika's token",
		Subject: "CN=Erika Mustermann,O=Example", TriesLeft: 1, MinLen: 6, MaxLen: 8}
	change := prompt.Request{Kind: prompt.ThreeFields, Operation: prompt.OpChangePIN, Label: "PIN",
		Reader: "Gemalto PC Twin Reader 00 00", Card: "8944000000000000001", TriesLeft: 3, MinLen: 4, MaxLen: 8}
	pad := prompt.Request{Kind: prompt.Pad, Operation: prompt.OpLogin, Label: "PIN",
		Reader: "Cherry SmartTerminal ST-2xxx 00 00", Card: "8944000000000000001"}
	for _, lang := range []string{"en", "de"} {
		t.Run(lang, func(t *testing.T) {
			trayLang(t, lang)
			useFakeClock(t)
			a := test.NewTempApp(t)
			d := openPIN(a, sign, 2*time.Minute, func(prompt.Answer, error) {})
			assertMarkup(t, "pin_sign_"+lang+".xml", d.w.Canvas())
			d = openPIN(a, change, 2*time.Minute, func(prompt.Answer, error) {})
			assertMarkup(t, "pin_change_"+lang+".xml", d.w.Canvas())
			// Messages at the fields: Enter on a short new PIN, Tab, a
			// repeat that differs and Enter.
			c := d.w.Canvas()
			typeRunes(t, c, "0000")
			pressKey(c, fyne.KeyReturn)
			typeRunes(t, c, "12")
			pressKey(c, fyne.KeyReturn)
			c.Focus(d.fields[2].entry)
			typeRunes(t, c, "13")
			pressKey(c, fyne.KeyReturn)
			assertMarkup(t, "pin_change_invalid_"+lang+".xml", c)
			p := openPad(a, pad, 90*time.Second, func() {})
			assertMarkup(t, "pad_"+lang+".xml", p.w.Canvas())
		})
	}
}

// TestPad: Cancel, Escape, closing the window and the countdown call
// cancel once and close the window; close() does not call it.
func TestPad(t *testing.T) {
	for _, tc := range []struct {
		name   string
		do     func(*padWindow, *fakeClock)
		cancel int
	}{
		{"cancel button", func(d *padWindow, _ *fakeClock) { test.Tap(buttonText(d.w.Content(), "Cancel")) }, 1},
		{"escape", func(d *padWindow, _ *fakeClock) { pressKey(d.w.Canvas(), fyne.KeyEscape) }, 1},
		{"enter on cancel", func(d *padWindow, _ *fakeClock) {
			d.w.Canvas().Focus(buttonText(d.w.Content(), "Cancel"))
			pressKey(d.w.Canvas(), fyne.KeyReturn)
		}, 1},
		{"window closed", func(d *padWindow, _ *fakeClock) { d.cancelled() }, 1}, // the close intercept
		{"timeout", func(_ *padWindow, clock *fakeClock) { clock.advance(30 * time.Second) }, 1},
		{"close", func(d *padWindow, _ *fakeClock) { d.close() }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trayLang(t, "en")
			clock := useFakeClock(t)
			a := test.NewTempApp(t)
			var n int
			d := openPad(a, prompt.Request{Kind: prompt.Pad}, 30*time.Second, func() { n++ })
			if d.w.Title() != "cardwright — PIN pad" {
				t.Errorf("title %q", d.w.Title())
			}
			if n != 0 {
				t.Fatal("cancelled at once")
			}
			tc.do(d, clock)
			clock.advance(time.Hour)
			d.cancelled()
			d.close()
			if n != tc.cancel || isOpen(a, d.w) {
				t.Errorf("cancel called %d times (want %d), window open %v", n, tc.cancel, isOpen(a, d.w))
			}
		})
	}
}
