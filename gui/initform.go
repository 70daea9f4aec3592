package gui

// The form of the card initialization window: one row per input field of
// the description (cardinit.Doc.Form), a widget by the field's kind, and a
// message under each for the values the job refuses.

import (
	"encoding/base64"
	"io"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/cardwright/cardwright/cardinit"
	"github.com/cardwright/cardwright/secret"
)

// formField is one field of the form.
type formField struct {
	f       cardinit.Field
	entry   *widget.Entry  // every kind but Bool (Secret: a password entry)
	raw     *widget.Check  // Param: the text typed is base64 already
	check   *widget.Check  // Bool
	load    *widget.Button // Data: Load file…
	message *widget.Label  // what is wrong with the value, hidden when empty
}

// buildForm makes the form of the open description.
func (w *InitWindow) buildForm() {
	for _, f := range w.fields { // the old description's secrets
		if f.f.Kind == cardinit.Secret {
			f.entry.SetText("")
		}
	}
	w.fields = nil
	w.formBox.RemoveAll()
	setError(w.formErr, "")
	if w.doc == nil {
		return
	}
	if len(w.doc.Form) == 0 {
		w.formBox.Add(widget.NewLabel(lang.X("init.form.empty", "The description asks for no values.")))
		return
	}
	grid := container.New(layout.NewFormLayout())
	for _, fd := range w.doc.Form {
		f := w.newField(fd)
		w.fields = append(w.fields, f)
		grid.Add(widget.NewLabelWithStyle(fd.Name, fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
		grid.Add(container.NewVBox(f.control(), f.hint(), f.message))
	}
	w.formBox.Add(grid)
}

// focusFirst puts the cursor in the form's first field.
func (w *InitWindow) focusFirst() {
	for _, f := range w.fields {
		switch {
		case f.entry != nil:
			w.win.Canvas().Focus(f.entry)
			return
		case f.check != nil:
			w.win.Canvas().Focus(f.check)
			return
		}
	}
}

func (w *InitWindow) newField(fd cardinit.Field) *formField {
	f := &formField{f: fd, message: errorLabel()}
	switch fd.Kind {
	case cardinit.Secret:
		f.entry = widget.NewPasswordEntry() // never prefilled
	case cardinit.Bool:
		f.check = widget.NewCheck("", nil)
		f.check.Checked = isTrue(fd.Default)
	case cardinit.Param:
		f.entry = widget.NewEntry()
		f.entry.SetText(fd.Default)
		f.raw = widget.NewCheck(lang.X("init.field.base64", "base64"), nil)
	case cardinit.Data:
		f.entry = widget.NewEntry()
		f.entry.SetText(fd.Default)
		f.entry.SetPlaceHolder(lang.X("init.field.data", "base64, or load a file"))
		f.load = widget.NewButtonWithIcon(lang.X("init.field.load", "Load file…"), theme.FileIcon(), func() { w.loadData(f) })
	default: // Text, Number
		f.entry = widget.NewEntry()
		f.entry.SetText(fd.Default)
	}
	return f
}

// control is the field's widget row.
func (f *formField) control() fyne.CanvasObject {
	switch {
	case f.check != nil:
		return f.check
	case f.raw != nil:
		return container.NewBorder(nil, nil, nil, f.raw, f.entry)
	case f.load != nil:
		return container.NewBorder(nil, nil, nil, f.load, f.entry)
	}
	return f.entry
}

// hint says where the description uses the field and its default.
func (f *formField) hint() fyne.CanvasObject {
	var parts []string
	if u := f.f.UsedBy(); u != "" {
		parts = append(parts, lang.X("init.field.usedby", "used by: {{.Keys}}", map[string]any{"Keys": u}))
	}
	if f.f.Default != "" && f.f.Kind != cardinit.Secret {
		parts = append(parts, lang.X("init.field.default", "default: {{.Default}}", map[string]any{"Default": f.f.Default}))
	}
	if f.f.Output {
		parts = append(parts, lang.X("init.field.output", "the job writes it back"))
	}
	l := widget.NewLabel(strings.Join(parts, "; "))
	l.SizeName = theme.SizeNameCaptionText
	return l
}

func (f *formField) enable(on bool) {
	if f.entry != nil {
		enable(f.entry, on)
	}
	if f.raw != nil {
		enable(f.raw, on)
	}
	if f.check != nil {
		enable(f.check, on)
	}
	if f.load != nil {
		enable(f.load, on)
	}
}

// input is what the field holds. A secret is copied out of the entry here
// (the caller wipes it); the entry keeps its text for "run again".
func (f *formField) input() cardinit.Input {
	switch f.f.Kind {
	case cardinit.Secret:
		var in cardinit.Input
		if f.entry.Text != "" {
			in.Secret = secret.New(f.entry.Text)
		}
		return in
	case cardinit.Bool:
		if f.check.Checked {
			return cardinit.Input{Text: "true"}
		}
		return cardinit.Input{Text: "false"}
	case cardinit.Param:
		return cardinit.Input{Text: f.entry.Text, Raw: f.raw.Checked}
	}
	return cardinit.Input{Text: f.entry.Text}
}

// inputs is the form's values by field name.
func (w *InitWindow) inputs() map[string]cardinit.Input {
	in := map[string]cardinit.Input{}
	for _, f := range w.fields {
		in[f.f.Name] = f.input()
	}
	return in
}

// clearErrors empties every message of the form.
func (w *InitWindow) clearErrors() {
	for _, f := range w.fields {
		setError(f.message, "")
	}
	setError(w.formErr, "")
}

// fieldError shows msg at the field named name (case as declared or
// not), or for the whole form when no field has that name.
func (w *InitWindow) fieldError(name, msg string) {
	for _, f := range w.fields {
		if strings.EqualFold(f.f.Name, name) {
			setError(f.message, msg)
			return
		}
	}
	w.formError(msg)
}

// formError adds a line to the message of the whole form.
func (w *InitWindow) formError(msg string) {
	if w.formErr.Text != "" {
		msg = w.formErr.Text + "\n" + msg
	}
	setError(w.formErr, msg)
}

// loadData is Load file… of a Data field: the file's content, base64.
func (w *InitWindow) loadData(f *formField) {
	dialog.ShowFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil {
			setError(f.message, err.Error())
			return
		}
		if r == nil {
			return
		}
		defer r.Close()
		b, err := io.ReadAll(io.LimitReader(r, maxDataFile+1))
		switch {
		case err != nil:
			setError(f.message, err.Error())
		case len(b) > maxDataFile:
			setError(f.message, lang.X("init.field.toolarge", "The file is too large (more than 1 MiB)."))
		default:
			setError(f.message, "")
			f.entry.SetText(base64.StdEncoding.EncodeToString(b))
		}
	}, w.win)
}

// maxDataFile bounds a file loaded into a Data field (a PKCS#12 or a
// certificate list is a few KiB; the job's whole description is limited
// too).
const maxDataFile = 1 << 20

// isTrue reads a Bool field's default as the description's parser does
// (true in any case, or 1), also #true.
func isTrue(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "#true", "1":
		return true
	}
	return false
}
