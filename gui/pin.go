package gui

// The PIN and PIN-pad windows (spec/gui.md, "PIN dialogs" and properties
// 2, 3 and 5). Each request gets its own small window, not a dialog overlay:
// a tray app has no parent window to lay an overlay on, and an OS window
// can come to the front and shows in the taskbar.

import (
	"fmt"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/secret"
)

// AskPIN opens the PIN window for r. reply is called exactly once, on the
// Fyne goroutine: with the answer (values as secret.Value; the caller owns
// and wipes them) or with an error wrapping prompt.ErrRefused (Cancel,
// Escape, window closed, timeout). close() closes the window WITHOUT calling
// reply (the agent withdrew the request: job cancelled, page gone); calling
// close after reply is a no-op. AskPIN and close are called on the Fyne
// goroutine.
func AskPIN(a fyne.App, r prompt.Request, timeout time.Duration, reply func(prompt.Answer, error)) (close func()) {
	return openPIN(a, r, timeout, reply).close
}

// ShowPad opens the PIN-pad window for r (Kind Pad): no fields, "enter the
// PIN on the reader's keypad", a countdown of timeout and Cancel. Cancel,
// Escape, closing the window and the end of the countdown call cancel, once,
// and close the window; close() closes it without calling cancel.
func ShowPad(a fyne.App, r prompt.Request, timeout time.Duration, cancel func()) (close func()) {
	return openPad(a, r, timeout, cancel).close
}

// pinWindow is one open PIN request. Its fields live on the Fyne goroutine.
type pinWindow struct {
	w      fyne.Window
	r      prompt.Request
	reply  func(prompt.Answer, error)
	fields []*pinField
	ok     *keyButton
	clock  *countdown
	done   bool               // answered or closed: nothing more happens
	stores *widget.RadioGroup // for a soft token: where it goes (Request.Stores)
}

// pinField is one entry with the message shown under it.
type pinField struct {
	entry   *pinEntry
	message *widget.Label
	repeat  bool // must equal the field before it
	rules   bool // MinLen and MaxLen apply
	// touched: the user pressed Enter in the field or left it after typing;
	// only then does its message show, so a PIN half typed is not "too
	// short".
	touched bool
}

func openPIN(a fyne.App, r prompt.Request, timeout time.Duration, reply func(prompt.Answer, error)) *pinWindow {
	d := &pinWindow{r: r, reply: reply}
	d.w = a.NewWindow(lang.X("pin.title", "cardwright — PIN"))

	// Fields by kind: the PIN; a new PIN twice; the current one (PIN or
	// PUK, which the card checks by its own rules) then a new one twice.
	type field struct {
		label         string
		repeat, rules bool
	}
	newPIN := lang.X("pin.field.new", "New")
	repeat := lang.X("pin.field.repeat", "Repeat")
	var fields []field
	switch r.Kind.Fields() {
	case 2:
		fields = []field{{newPIN, false, true}, {repeat, true, false}}
	case 3:
		fields = []field{{lang.X("pin.field.current", "Current"), false, false}, {newPIN, false, true}, {repeat, true, false}}
	default:
		fields = []field{{pinLabel(r), false, true}}
	}
	form := container.New(layout.NewFormLayout())
	for i, spec := range fields {
		f := &pinField{message: widget.NewLabel(""), repeat: spec.repeat, rules: spec.rules}
		f.message.Importance = widget.DangerImportance
		f.message.SizeName = theme.SizeNameCaptionText
		f.entry = newPINEntry(d.cancel, func() {
			if f.entry.Text != "" {
				f.touched = true
				d.update()
			}
		})
		f.entry.OnChanged = func(string) { d.update() }
		f.entry.OnSubmitted = func(string) { d.enter(i) }
		d.fields = append(d.fields, f)
		form.Add(widget.NewLabelWithStyle(spec.label, fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
		form.Add(container.NewVBox(f.entry, f.message))
	}

	d.ok = newKeyButton(lang.X("button.ok", "OK"), theme.ConfirmIcon(), d.submit, buttonKeys(d.cancel, d.submit))
	d.ok.Importance = widget.HighImportance
	cancel := newKeyButton(lang.X("button.cancel", "Cancel"), theme.CancelIcon(), d.cancel, buttonKeys(d.cancel, d.cancel))
	d.clock = startCountdown(timeout, func() { d.answer(prompt.Answer{}, fmt.Errorf("%w: timed out", prompt.ErrRefused)) })

	content := container.NewVBox(heading(pinHeading(r)), requestInfo(r))
	if t := triesLine(r.TriesLeft); t != nil {
		content.Add(t)
	}
	if r.Retry { // the answer before was wrong (a PKCS#12 passphrase)
		text := lang.X("pin.retry", "That {{.Label}} was wrong. Try again.", map[string]any{"Label": pinLabel(r)})
		if r.Kind == prompt.Passphrase {
			text = lang.X("pin.retry.passphrase", "That passphrase was wrong. Try again.")
		}
		wrong := widget.NewLabel(text)
		wrong.Importance = widget.DangerImportance
		content.Add(wrong)
	}
	content.Add(widget.NewSeparator())
	content.Add(form)
	if len(r.Stores) > 0 { // where a soft token goes: the user chooses
		var texts []string
		for _, c := range r.Stores {
			texts = append(texts, c.Text)
		}
		d.stores = widget.NewRadioGroup(texts, nil)
		d.stores.Required = true
		d.stores.SetSelected(texts[0])
		form.Add(widget.NewLabelWithStyle(lang.X("pin.store", "Store in"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
		form.Add(d.stores)
	}
	if h := lengthHint(r.MinLen, r.MaxLen); h != "" {
		content.Add(widget.NewLabel(h))
	}
	content.Add(d.clock.label)
	content.Add(container.NewHBox(layout.NewSpacer(), cancel, d.ok))
	d.w.Canvas().SetOnTypedKey(func(ev *fyne.KeyEvent) {
		switch ev.Name {
		case fyne.KeyEscape:
			d.cancel()
		case fyne.KeyReturn, fyne.KeyEnter:
			d.submit()
		}
	})
	d.update()
	show(d.w, content, d.cancel)
	d.w.Canvas().Focus(d.fields[0].entry)
	return d
}

// pinLabel names what is asked: the credential as the request names it
// ("PIN", "SignPIN", "PUK"), "PIN" when it does not.
// pinHeading says what the window wants: the PIN, a new one, or a change.
func pinHeading(r prompt.Request) string {
	data := map[string]any{"Label": pinLabel(r)}
	switch r.Kind {
	case prompt.TwoFields:
		return lang.X("pin.heading.new", "Choose a new {{.Label}}", data)
	case prompt.ThreeFields:
		return lang.X("pin.heading.change", "Change {{.Label}}", data)
	case prompt.Passphrase:
		return lang.X("pin.heading.passphrase", "Enter passphrase")
	}
	return lang.X("pin.heading", "Enter {{.Label}}", data)
}

func pinLabel(r prompt.Request) string {
	if r.Kind == prompt.Passphrase {
		return lang.X("pin.passphrase", "Passphrase")
	}
	if r.Label != "" {
		return r.Label
	}
	return lang.X("pin.label", "PIN")
}

// problem is what is wrong with the value of field i ("" nothing).
func (d *pinWindow) problem(i int) string {
	f := d.fields[i]
	n := len(f.entry.Text) // the rules count bytes
	switch {
	case n == 0:
		return lang.X("pin.error.required", "Required")
	case f.repeat && f.entry.Text != d.fields[i-1].entry.Text:
		return lang.X("pin.error.mismatch", "The entries do not match")
	case f.rules && n < d.r.MinLen:
		return lang.XN("pin.error.short", "At least {{.Count}} characters", d.r.MinLen, map[string]any{"Count": d.r.MinLen})
	case f.rules && d.r.MaxLen > 0 && n > d.r.MaxLen:
		return lang.XN("pin.error.long", "At most {{.Count}} characters", d.r.MaxLen, map[string]any{"Count": d.r.MaxLen})
	}
	return ""
}

// update shows the messages of the touched fields and enables OK when
// every field is valid.
func (d *pinWindow) update() {
	if d.done {
		return
	}
	valid := true
	for i, f := range d.fields {
		p := d.problem(i)
		valid = valid && p == ""
		if !f.touched {
			p = ""
		}
		f.message.SetText(p)
	}
	if valid {
		d.ok.Enable()
	} else {
		d.ok.Disable()
	}
}

// enter is Enter in field i: the next field, or on the last one submit; a
// field that is not valid keeps the cursor and shows why.
func (d *pinWindow) enter(i int) {
	d.fields[i].touched = true
	d.update()
	switch {
	case d.problem(i) != "":
	case i+1 < len(d.fields):
		d.w.Canvas().Focus(d.fields[i+1].entry)
	default:
		d.submit()
	}
}

// submit answers with the values typed, if they are valid; otherwise the
// first field that is not gets the cursor and shows why. Each entry's text
// is read once here and the entries are emptied (spec/gui.md property 2).
func (d *pinWindow) submit() {
	if d.done {
		return
	}
	for i, f := range d.fields {
		if d.problem(i) != "" {
			f.touched = true
			d.update()
			d.w.Canvas().Focus(f.entry)
			return
		}
	}
	n := len(d.fields)
	pin := d.fields[0]
	if n > 1 {
		pin = d.fields[n-2] // the new PIN; the last field repeats it
	}
	a := prompt.Answer{PIN: secret.New(pin.entry.Text)}
	if d.stores != nil {
		for _, c := range d.r.Stores {
			if c.Text == d.stores.Selected {
				a.Store = c.ID
			}
		}
	}
	if n == 3 {
		a.Current = secret.New(d.fields[0].entry.Text)
	}
	d.answer(a, nil)
}

// cancel is Cancel, Escape and closing the window.
func (d *pinWindow) cancel() { d.answer(prompt.Answer{}, prompt.ErrRefused) }

// answer closes the window and replies, the first time only.
func (d *pinWindow) answer(a prompt.Answer, err error) {
	if d.done {
		return
	}
	d.close()
	d.reply(a, err)
}

// close empties the entries and closes the window without a reply.
func (d *pinWindow) close() {
	if d.done {
		return
	}
	d.done = true
	d.clock.stop()
	for _, f := range d.fields {
		f.entry.SetText("")
	}
	d.w.Close()
}

// padWindow is one open PIN-pad wait.
type padWindow struct {
	w      fyne.Window
	cancel func()
	clock  *countdown
	done   bool
}

func openPad(a fyne.App, r prompt.Request, timeout time.Duration, cancel func()) *padWindow {
	d := &padWindow{cancel: cancel}
	d.w = a.NewWindow(lang.X("pad.title", "cardwright — PIN pad"))
	button := newKeyButton(lang.X("button.cancel", "Cancel"), theme.CancelIcon(), d.cancelled, buttonKeys(d.cancelled, d.cancelled))
	d.clock = startCountdown(timeout, d.cancelled)
	content := container.NewVBox(heading(lang.X("pad.heading", "Enter {{.Label}} on the reader's keypad", map[string]any{"Label": pinLabel(r)})), requestInfo(r))
	if t := triesLine(r.TriesLeft); t != nil {
		content.Add(t)
	}
	content.Add(d.clock.label)
	content.Add(container.NewHBox(layout.NewSpacer(), button))
	d.w.Canvas().SetOnTypedKey(func(ev *fyne.KeyEvent) {
		if ev.Name == fyne.KeyEscape {
			d.cancelled()
		}
	})
	show(d.w, content, d.cancelled)
	return d
}

// cancelled is Cancel, Escape, closing the window and the timeout.
func (d *padWindow) cancelled() {
	if d.done {
		return
	}
	d.close()
	d.cancel()
}

func (d *padWindow) close() {
	if d.done {
		return
	}
	d.done = true
	d.clock.stop()
	d.w.Close()
}

// show shows w with content at the front of the screen (property 5):
// closing it is the same as cancel.
func show(w fyne.Window, content fyne.CanvasObject, cancel func()) {
	w.SetContent(content)
	w.SetFixedSize(true)
	w.SetCloseIntercept(cancel)
	w.CenterOnScreen()
	w.Show()
	w.RequestFocus()
}

func heading(text string) *widget.Label {
	l := widget.NewLabelWithStyle(text, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	l.SizeName = theme.SizeNameSubHeadingText
	return l
}

// requestInfo says who asks and why (property 3), all from r: the origin
// exactly as the agent checked it, the operation, the reader, the card or
// token, the certificate's subject.
func requestInfo(r prompt.Request) fyne.CanvasObject {
	origin := r.Origin
	if origin == "" {
		origin = lang.X("info.local", "this computer (local user)")
	}
	grid := container.New(layout.NewFormLayout())
	add := func(key, value string) {
		if value != "" {
			grid.Add(widget.NewLabelWithStyle(key, fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
			grid.Add(widget.NewLabel(value))
		}
	}
	add(lang.X("info.origin", "Requested by"), origin)
	add(lang.X("info.operation", "Operation"), operationName(r.Operation))
	add(lang.X("info.reader", "Reader"), r.Reader)
	if r.Operation == prompt.OpSoftToken { // r.Card names the token being stored or used
		add(lang.X("info.token", "Token"), r.Card)
	} else {
		add(lang.X("info.card", "Card"), r.Card)
	}
	add(lang.X("info.certificate", "Certificate"), r.Subject)
	return grid
}

// operationName is how the window names op.
func operationName(op prompt.Operation) string {
	switch op {
	case prompt.OpLogin:
		return lang.X("op.login", "Log in to the card")
	case prompt.OpInitialize:
		return lang.X("op.initialize", "Initialize the card")
	case prompt.OpSetPIN:
		return lang.X("op.set_pin", "Set a new PIN")
	case prompt.OpChangePIN:
		return lang.X("op.change_pin", "Change the PIN")
	case prompt.OpUnblock:
		return lang.X("op.unblock", "Unblock the PIN")
	case prompt.OpSign:
		return lang.X("op.sign", "Sign")
	case prompt.OpSignIn:
		return lang.X("op.sign_in", "Sign in to the site")
	case prompt.OpSoftToken:
		return lang.X("op.soft_token", "Store a soft token (PKCS#12)")
	}
	return lang.X("op.other", "Use the card")
}

// triesLine is "n tries left", or the stronger warning before the last
// try; nil when the card or token does not tell (n == 0).
func triesLine(n int) fyne.CanvasObject {
	switch {
	case n == 1:
		l := widget.NewLabelWithStyle(lang.X("pin.last_try", "Last try: one more wrong entry blocks it"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
		l.Importance = widget.DangerImportance
		return l
	case n > 1:
		return widget.NewLabel(lang.XN("pin.tries", "{{.Count}} tries left", n, map[string]any{"Count": n}))
	}
	return nil
}

// lengthHint states the length rules, "" when there are none.
func lengthHint(min, max int) string {
	switch {
	case min > 0 && min == max:
		return lang.XN("pin.hint.exact", "Length: exactly {{.Count}} characters", min, map[string]any{"Count": min})
	case min > 0 && max > 0:
		return lang.X("pin.hint.range", "Length: {{.Min}} to {{.Max}} characters", map[string]any{"Min": min, "Max": max})
	case min > 0:
		return lang.XN("pin.hint.min", "Length: at least {{.Count}} characters", min, map[string]any{"Count": min})
	case max > 0:
		return lang.XN("pin.hint.max", "Length: at most {{.Count}} characters", max, map[string]any{"Count": max})
	}
	return ""
}

// pinEntry is a password entry (the settings of widget.NewPasswordEntry,
// reveal toggle included) that also takes Escape and tells when it loses
// focus. A plain Entry cannot cancel the window: the driver gives every key
// to the focused widget and only keys typed with nothing focused to the
// canvas handler (fyne internal/driver/glfw/window.go, processKeyPressed),
// and Entry ignores Escape.
type pinEntry struct {
	widget.Entry
	escape func()
	left   func()
}

func newPINEntry(escape, left func()) *pinEntry {
	e := &pinEntry{escape: escape, left: left}
	e.Password = true
	e.Wrapping = fyne.TextWrap(fyne.TextTruncateClip)
	e.ExtendBaseWidget(e)
	return e
}

// TypedKey implements fyne.Focusable.
func (e *pinEntry) TypedKey(ev *fyne.KeyEvent) {
	if ev.Name == fyne.KeyEscape {
		e.escape()
		return
	}
	e.Entry.TypedKey(ev)
}

// FocusLost implements fyne.Focusable.
func (e *pinEntry) FocusLost() {
	e.Entry.FocusLost()
	e.left()
}

// keyButton is a button whose keys, while it has focus, come from a table.
// Fyne's Button taps on Space and drops every other key, Escape and Enter
// included, which then reach neither the button nor the window.
type keyButton struct {
	widget.Button
	keys map[fyne.KeyName]func() // keys not in it do nothing
}

func newKeyButton(text string, icon fyne.Resource, tapped func(), keys map[fyne.KeyName]func()) *keyButton {
	b := &keyButton{keys: keys}
	b.Text, b.Icon, b.OnTapped = text, icon, tapped
	b.ExtendBaseWidget(b)
	return b
}

// TypedKey implements fyne.Focusable.
func (b *keyButton) TypedKey(ev *fyne.KeyEvent) {
	if f := b.keys[ev.Name]; f != nil {
		f()
	}
}

// buttonKeys is the usual table: Escape is escape; Enter, keypad Enter and
// Space press the button.
func buttonKeys(escape, press func()) map[fyne.KeyName]func() {
	return map[fyne.KeyName]func(){
		fyne.KeyEscape: escape,
		fyne.KeyReturn: press,
		fyne.KeyEnter:  press,
		fyne.KeySpace:  press,
	}
}

// countdown shows the time a window has left and calls expire when it is
// up (property 5: a dialog closes by itself when it times out).
type countdown struct {
	label  *widget.Label
	left   time.Duration // whole seconds; 0 once expired or stopped
	expire func()
	halt   func()
}

// startCountdown counts timeout down, rounded up to whole seconds and at
// least one.
func startCountdown(timeout time.Duration, expire func()) *countdown {
	left := (timeout + time.Second - 1).Truncate(time.Second)
	c := &countdown{label: widget.NewLabel(""), left: max(left, time.Second), expire: expire}
	c.show()
	c.halt = every(time.Second, c.tick)
	return c
}

func (c *countdown) tick() {
	if c.left <= 0 {
		return
	}
	c.left -= time.Second
	if c.left > 0 {
		c.show()
		return
	}
	c.stop()
	c.expire()
}

func (c *countdown) show() {
	s := int(c.left / time.Second)
	c.label.SetText(lang.X("countdown", "Closes in {{.Time}}", map[string]any{"Time": fmt.Sprintf("%d:%02d", s/60, s%60)}))
}

func (c *countdown) stop() {
	c.left = 0
	c.halt()
}

// every calls f on the Fyne goroutine every d until stop is called. A tick
// already handed to fyne.Do may still call f after stop, so f checks its
// own state. Tests replace every with a clock they advance by hand.
var every = func(d time.Duration, f func()) (stop func()) {
	t := time.NewTicker(d)
	done := make(chan struct{})
	go func() {
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fyne.Do(f)
			case <-done:
				return
			}
		}
	}()
	return sync.OnceFunc(func() { close(done) })
}
