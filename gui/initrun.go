package gui

// The jobs of the card initialization window: Dry run and Run with
// progress and Cancel, the certificate requests a job without a portal
// answers from files, the result, and "run again on the next card".

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/cardinit"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/secret"
)

// runningJob is a job the window started. Its fields live on the Fyne
// goroutine.
type runningJob struct {
	dry          bool
	cancel       context.CancelFunc
	reader       string
	iccsn        string // of the card in reader when the job started
	atr          []byte
	steps        []string // begun, in order (runner.Progress)
	closeRequest func()   // the open certificate request's panel; nil none
	shown        bool     // a real run whose result (and transcript) the window shows
}

// start is Dry run and Run: the form's values make the job, which the
// runner validates; only a valid job runs (no card I/O before). It
// reports whether the job started.
func (w *InitWindow) start(dry bool) bool {
	if w.doc == nil || !w.doc.Runnable() || w.job != nil || w.waiting {
		return false
	}
	w.clearErrors()
	reader := ""
	if !dry {
		if w.selected == "" {
			return false
		}
		reader = w.selected
	}
	in := w.inputs()
	job, ferrs := w.doc.Job(in, reader)
	if job != nil && !dry {
		job.Transcript = true // the result shows it, secrets masked
	}
	for _, v := range in {
		v.Secret.Wipe()
	}
	if len(ferrs) > 0 {
		for _, e := range ferrs {
			w.fieldError(e.Field, e.Message)
		}
		wipeFields(job)
		return false
	}
	var officer cardinit.Officer
	if !dry {
		officer = w.officer
	}
	if e := w.engine.Validate(job, officer); e != nil {
		msg := jobErrorText(e)
		if f := w.doc.FieldOf(e); f != "" {
			w.fieldError(f, msg)
		} else {
			w.formError(msg)
		}
		wipeFields(job)
		return false
	}

	ctx, cancel := context.WithCancel(w.ctx)
	j := &runningJob{dry: dry, cancel: cancel, reader: reader}
	if r, ok := w.reader(reader); ok && !dry {
		j.iccsn, j.atr = r.ICCSN, bytes.Clone(r.ATR)
	}
	w.job = j
	slog.Info("job started", "dry_run", dry, "reader", reader, "description", w.doc.Name)
	w.clearResult()
	w.bar.SetValue(0)
	w.bar.Show()
	w.setStep(lang.X("init.starting", "Starting…"))
	w.update()
	progress := func(p runner.Progress) { w.do(func() { w.progressed(j, p) }) }
	go func() {
		defer cancel()
		if dry {
			res := w.engine.DryRun(ctx, job, progress)
			wipeFields(job)
			w.do(func() { w.dryDone(j, res) })
			return
		}
		res := w.engine.Run(ctx, job, officer, progress)
		wipeFields(job)
		w.do(func() { w.done(j, res) })
	}()
	return true
}

// wipeFields wipes the copies of the form's values a job holds.
func wipeFields(job *runner.Job) {
	if job == nil {
		return
	}
	for k, v := range job.Fields {
		v.Wipe()
		delete(job.Fields, k)
	}
}

// cancel is Cancel: the running job's context, or the wait for the next
// card.
func (w *InitWindow) cancel() {
	if w.job != nil {
		w.job.cancel()
		w.setStep(lang.X("init.cancelling", "Cancelling…"))
		return
	}
	if w.waiting {
		w.waiting = false
		w.setStep("")
		w.update()
	}
}

func (w *InitWindow) progressed(j *runningJob, p runner.Progress) {
	if w.job != j {
		return
	}
	j.steps = append(j.steps, p.Step)
	if p.Total > 0 {
		w.bar.Max = float64(p.Total)
		w.bar.SetValue(float64(p.N))
	}
	w.setStep(lang.X("init.step", "Step {{.N}} of {{.Total}}: {{.Step}}", map[string]any{"N": p.N, "Total": p.Total, "Step": p.Step}))
}

func (w *InitWindow) setStep(s string) {
	w.stepLabel.SetText(s)
	if s == "" {
		w.stepLabel.Hide()
	} else {
		w.stepLabel.Show()
	}
}

// ended is what every job's end does: the window is idle again.
func (w *InitWindow) ended(j *runningJob) bool {
	if w.job != j {
		return false
	}
	if j.closeRequest != nil {
		j.closeRequest()
	}
	w.job = nil
	w.bar.Hide()
	w.setStep("")
	w.update()
	return true
}

// done shows a real run's result.
func (w *InitWindow) done(j *runningJob, res runner.Result) {
	if !w.ended(j) {
		wipeResult(res)
		return
	}
	w.last = j
	j.shown = true
	w.update()
	box := w.resultBox
	box.Add(widget.NewSeparator())
	box.Add(w.outcome(res.Err, lang.X("init.result.done", "Done")))
	info := container.New(layout.NewFormLayout())
	reader := res.Reader
	if reader == "" {
		reader = j.reader
	}
	addInfo(info, lang.X("info.reader", "Reader"), reader)
	addInfo(info, lang.X("init.result.iccsn", "ICCSN"), j.iccsn)
	box.Add(info)
	if len(j.steps) > 0 {
		box.Add(sectionHeading(lang.X("init.result.steps", "Steps")))
		for i, s := range j.steps {
			failed := res.Err != nil && i == len(j.steps)-1 && (res.Err.Step == "" || res.Err.Step == s)
			if failed {
				box.Add(widget.NewLabel("✗ " + lang.X("init.step.failed", "{{.Step}}: failed", map[string]any{"Step": s})))
			} else {
				box.Add(widget.NewLabel("✓ " + s))
			}
		}
	}
	w.outputs(res.Fields, res.Secrets)
	if len(res.Transcript) > 0 { // none when the job ended before the card
		w.showTranscript(res.Transcript, res.APDUs)
	}
	box.Show()
	w.scroll.ScrollToBottom()
	// The job's end in the log, for the station's records and the tests
	// that drive the window: no field value, only the code and the card.
	slog.Info("job finished", "dry_run", false, "code", resultCode(res.Err), "reader", reader, "iccsn", j.iccsn, "steps", len(j.steps), "apdus", res.APDUs)
}

// resultCode is "ok" or the failure's stable code.
func resultCode(e *api.JobError) string {
	if e == nil {
		return "ok"
	}
	return string(e.Code)
}

// dryDone shows a dry run's result: the steps, what ran and what did not,
// and the transcript.
func (w *InitWindow) dryDone(j *runningJob, res runner.DryResult) {
	if !w.ended(j) {
		return
	}
	box := w.resultBox
	box.Add(widget.NewSeparator())
	box.Add(w.outcome(res.Err, lang.X("init.result.drydone", "Dry run done: nothing was written to a card or token")))
	box.Add(sectionHeading(lang.X("init.result.steps", "Steps")))
	for _, s := range res.Steps {
		where := ""
		if s.File != "" && s.Line > 0 {
			where = fmt.Sprintf(" (%s:%d)", s.File, s.Line)
		}
		switch {
		case s.Ran:
			box.Add(widget.NewLabel("✓ " + s.Name + where))
		case s.Note != "":
			box.Add(widget.NewLabel("– " + lang.X("init.step.notrun.note", "{{.Step}}: not run ({{.Note}})", map[string]any{"Step": s.Name + where, "Note": s.Note})))
		default:
			box.Add(widget.NewLabel("– " + lang.X("init.step.notrun", "{{.Step}}: not run", map[string]any{"Step": s.Name + where})))
		}
	}
	w.showTranscript(res.Transcript, res.APDUs)
	box.Show()
	w.scroll.ScrollToBottom()
	slog.Info("job finished", "dry_run", true, "code", resultCode(res.Err), "apdus", res.APDUs, "steps", len(res.Steps))
}

// showTranscript adds a job's APDU transcript (secrets masked by the
// runner) to the result: its heading with the APDU count, the lines in a
// monospace grid, and Save transcript…, also in the File menu.
func (w *InitWindow) showTranscript(lines []string, apdus int) {
	w.transcript = lines
	box := w.resultBox
	box.Add(sectionHeading(lang.XN("init.transcript", "Transcript: {{.Count}} APDUs", apdus, map[string]any{"Count": apdus})))
	grid := widget.NewTextGrid()
	grid.SetText(strings.Join(lines, "\n"))
	box.Add(minHeight(container.NewScroll(grid), 240))
	save := widget.NewButtonWithIcon(lang.X("init.transcript.save", "Save transcript…"), theme.DocumentSaveIcon(), w.saveTranscript)
	if len(lines) == 0 {
		save.Disable()
	}
	box.Add(container.NewHBox(save))
	w.update() // Save transcript… in the menu
}

// outcome is the result's first line: ok, or the error with its code,
// step and position.
func (w *InitWindow) outcome(e *api.JobError, ok string) fyne.CanvasObject {
	if e == nil {
		l := widget.NewLabelWithStyle(ok, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
		l.Importance = widget.SuccessImportance
		return l
	}
	l := widget.NewLabelWithStyle(lang.X("init.result.failed", "Failed"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	l.Importance = widget.DangerImportance
	msg := widget.NewLabel(jobErrorText(e))
	msg.Wrapping = fyne.TextWrapWord
	box := container.NewVBox(l, msg)
	if e.Step != "" {
		box.Add(widget.NewLabel(lang.X("init.result.step", "Step: {{.Step}}", map[string]any{"Step": e.Step})))
	}
	return box
}

// jobErrorText is "code: message (file:line:col)".
func jobErrorText(e *api.JobError) string {
	s := string(e.Code) + ": " + e.Message
	if e.File != "" || e.Line > 0 {
		pos := e.File
		if e.Line > 0 {
			pos += fmt.Sprintf(":%d", e.Line)
			if e.Column > 0 {
				pos += fmt.Sprintf(":%d", e.Column)
			}
		}
		if !strings.Contains(e.Message, pos) { // the runner's messages may start with it
			s += " (" + pos + ")"
		}
	}
	return s
}

func addInfo(grid *fyne.Container, key, value string) {
	if value == "" {
		return
	}
	grid.Add(widget.NewLabelWithStyle(key, fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
	v := widget.NewLabel(value)
	v.Selectable = true
	grid.Add(v)
}

// outputs shows the job's output fields, sorted, each with Copy; secret
// ones masked until revealed.
func (w *InitWindow) outputs(fields map[string]string, secrets map[string]secret.Value) {
	if len(fields)+len(secrets) == 0 {
		return
	}
	box := w.resultBox
	box.Add(sectionHeading(lang.X("init.result.outputs", "Output fields")))
	grid := container.New(layout.NewFormLayout())
	copyButton := func(value func() string) *widget.Button {
		return widget.NewButtonWithIcon(lang.X("init.copy", "Copy"), theme.ContentCopyIcon(), func() {
			w.app.Clipboard().SetContent(value())
		})
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		v := fields[k]
		grid.Add(widget.NewLabelWithStyle(k, fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
		l := widget.NewLabel(v)
		l.Selectable = true
		grid.Add(container.NewBorder(nil, nil, nil, copyButton(func() string { return v }), l))
	}
	for _, k := range slices.Sorted(maps.Keys(secrets)) {
		r := &revealer{value: secrets[k], label: widget.NewLabel(masked)}
		r.button = widget.NewButtonWithIcon(lang.X("init.reveal", "Reveal"), theme.VisibilityIcon(), r.toggle)
		w.shown = append(w.shown, r)
		grid.Add(widget.NewLabelWithStyle(k, fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
		grid.Add(container.NewBorder(nil, nil, nil, container.NewHBox(r.button, copyButton(func() string { return r.value.Reveal() })), r.label))
	}
	box.Add(grid)
}

// masked stands for a secret output not revealed.
const masked = "••••••"

// revealer is a secret output shown masked, with its Reveal toggle.
type revealer struct {
	value  secret.Value
	label  *widget.Label
	button *widget.Button
}

func (r *revealer) toggle() {
	if r.label.Text == masked {
		r.label.SetText(r.value.Reveal())
		r.button.SetText(lang.X("init.hide", "Hide"))
		r.button.SetIcon(theme.VisibilityOffIcon())
		return
	}
	r.label.SetText(masked)
	r.button.SetText(lang.X("init.reveal", "Reveal"))
	r.button.SetIcon(theme.VisibilityIcon())
}

// wipeShown wipes the secret outputs shown (a new job, the window closed).
func (w *InitWindow) wipeShown() {
	for _, r := range w.shown {
		r.label.SetText(masked)
		r.value.Wipe()
	}
	w.shown = nil
}

func wipeResult(res runner.Result) {
	for _, v := range res.Secrets {
		v.Wipe()
	}
}

// clearResult empties the result (and wipes its secrets).
func (w *InitWindow) clearResult() {
	w.wipeShown()
	w.transcript = nil
	if w.last != nil {
		w.last.shown = false
	}
	w.resultBox.RemoveAll()
	w.resultBox.Hide()
}

// saveTranscript is Save transcript…: the lines of the result shown (a
// dry run's, a run's) to a file, named after the description (and the
// card of a run).
func (w *InitWindow) saveTranscript() {
	lines := w.transcript
	d := dialog.NewFileSave(func(wc fyne.URIWriteCloser, err error) {
		if err != nil {
			dialog.ShowError(err, w.win)
			return
		}
		if wc == nil {
			return
		}
		_, err = wc.Write([]byte(strings.Join(lines, "\n") + "\n"))
		if cerr := wc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			dialog.ShowError(fmt.Errorf("saving the transcript: %w", err), w.win)
		}
	}, w.win)
	if w.doc != nil {
		name := strings.TrimSuffix(w.doc.Name, filepath.Ext(w.doc.Name))
		switch {
		case w.last == nil || !w.last.shown:
			name += "-dryrun"
		case w.last.iccsn != "":
			name += "-" + w.last.iccsn
		default:
			name += "-run"
		}
		d.SetFileName(name + ".txt")
	}
	d.Resize(fyne.NewSize(700, 500))
	d.Show()
}

// runAgain is "Run again on the next card": the same form on the same
// reader once the card there changed.
func (w *InitWindow) runAgain() {
	if w.last == nil || w.job != nil {
		return
	}
	w.waiting, w.removed = true, false
	w.clearResult()
	w.setStep(lang.X("init.next", "Insert the next card…"))
	w.update()
	w.nextCard()
}

// nextCard starts the job again when the last job's reader holds another
// card: one with another ICCSN (or, when the ICCSN is not known, another
// ATR), or any card after the reader was seen empty.
func (w *InitWindow) nextCard() {
	last := w.last
	r, ok := w.reader(last.reader)
	if !ok || !r.Present {
		w.removed = true
		return
	}
	changed := w.removed
	if r.ICCSN != "" && last.iccsn != "" {
		changed = changed || r.ICCSN != last.iccsn
	} else {
		changed = changed || !bytes.Equal(r.ATR, last.atr)
	}
	if !changed {
		return
	}
	w.waiting = false
	w.setStep("")
	w.selected = last.reader
	if !w.start(false) {
		w.update()
	}
}

// officer answers the job's certificate requests (cardinit.Officer) when
// no local issuer is configured: the panel shows the request, the officer
// saves it, has it issued and loads the certificate. It runs on the
// runner's goroutine.
func (w *InitWindow) officer(ctx context.Context, req issuer.Request) (cardinit.Issued, error) {
	reply := make(chan cardinit.Issued, 1)
	w.do(func() { w.showRequest(req, reply) })
	select {
	case ans := <-reply:
		return ans, nil
	case <-ctx.Done():
		w.do(w.hideRequest)
		select {
		case ans := <-reply:
			ans.Password.Wipe()
		default:
		}
		return cardinit.Issued{}, ctx.Err()
	}
}

// requestPanel is the certificate request being answered.
type requestPanel struct {
	save, cert *widget.Entry
	password   *widget.Entry
	saved      *widget.Label
	loadErr    *widget.Label
}

// showRequest shows the panel of req; Load certificate sends the answer to
// reply (once).
func (w *InitWindow) showRequest(req issuer.Request, reply chan<- cardinit.Issued) {
	j := w.job
	if j == nil {
		return // the job ended meanwhile; its ctx is done
	}
	p := &requestPanel{save: widget.NewEntry(), cert: widget.NewEntry(), password: widget.NewPasswordEntry(),
		saved: widget.NewLabel(""), loadErr: errorLabel()}
	p.save.SetText(w.requestPath(req))
	p.saved.Hide()
	p.saved.Wrapping = fyne.TextWrapWord
	answered := false
	save := func() {
		path := strings.TrimSpace(p.save.Text)
		err := writeRequest(path, cardinit.RequestPEM(req))
		if err != nil {
			p.saved.Importance = widget.DangerImportance
			p.saved.SetText(err.Error())
		} else {
			p.saved.Importance = widget.SuccessImportance
			p.saved.SetText(lang.X("init.req.saved", "Saved to {{.Path}}", map[string]any{"Path": path}))
			w.win.Canvas().Focus(p.cert) // next: the certificate issued from it
		}
		p.saved.Show()
	}
	saveBtn := widget.NewButtonWithIcon(lang.X("init.req.save", "Save request"), theme.DocumentSaveIcon(), save)
	load := func() {
		if answered {
			return
		}
		data, err := os.ReadFile(strings.TrimSpace(p.cert.Text))
		if err != nil {
			setError(p.loadErr, fmt.Sprintf("%s: %v", lang.X("init.req.readerr", "Reading the certificate"), err))
			return
		}
		pw := secret.New(p.password.Text)
		if _, _, err := cardinit.ParseIssued(data, pw); err != nil {
			pw.Wipe()
			setError(p.loadErr, err.Error())
			return
		}
		answered = true
		slog.Info("certificate loaded", "application", req.Application, "file", strings.TrimSpace(p.cert.Text))
		p.password.SetText("")
		w.hideRequest()
		reply <- cardinit.Issued{Data: data, Password: pw}
	}
	// Keyboard first, as the PIN windows: Enter in the path saves the
	// request, Enter in the certificate file (or its password) loads it.
	p.save.OnSubmitted = func(string) { save() }
	p.cert.OnSubmitted = func(string) { load() }
	p.password.OnSubmitted = func(string) { load() }
	loadBtn := widget.NewButtonWithIcon(lang.X("init.req.load", "Load certificate"), theme.ConfirmIcon(), load)
	loadBtn.Importance = widget.HighImportance
	browse := func(e *widget.Entry) *widget.Button {
		return widget.NewButtonWithIcon(lang.X("init.browse", "Browse…"), theme.FolderOpenIcon(), func() {
			dialog.ShowFileOpen(func(r fyne.URIReadCloser, err error) {
				if err == nil && r != nil {
					e.SetText(r.URI().Path())
					r.Close()
				}
			}, w.win)
		})
	}
	heading := sectionHeading(lang.X("init.req.heading", "Certificate request for {{.Application}} ({{.Template}})",
		map[string]any{"Application": "Application_" + req.Application, "Template": req.Template}))
	form := container.New(layout.NewFormLayout(),
		widget.NewLabel(lang.X("init.req.saveto", "Save request to")), container.NewBorder(nil, nil, nil, saveBtn, p.save),
		layout.NewSpacer(), p.saved,
		widget.NewLabel(lang.X("init.req.cert", "Certificate file")), container.NewBorder(nil, nil, nil, browse(p.cert), p.cert),
		widget.NewLabel(lang.X("init.req.password", "PKCS#12 password (if any)")), p.password,
	)
	explain := widget.NewLabel(lang.X("init.req.explain", "The job waits: save the request, have it issued, then load the certificate (PEM, DER or PKCS#12)."))
	explain.Wrapping = fyne.TextWrapWord
	w.officerBox.RemoveAll()
	w.officerBox.Add(widget.NewSeparator())
	w.officerBox.Add(heading)
	w.officerBox.Add(explain)
	w.officerBox.Add(form)
	w.officerBox.Add(p.loadErr)
	w.officerBox.Add(container.NewHBox(layout.NewSpacer(), loadBtn))
	w.officerBox.Show()
	j.closeRequest = w.hideRequest
	w.scroll.ScrollToBottom()
	w.win.Canvas().Focus(p.save)
	w.setStep(lang.X("init.req.waiting", "Waiting for the certificate of {{.Application}}…", map[string]any{"Application": "Application_" + req.Application}))
	w.requestShown = p
	slog.Info("certificate request", "application", req.Application, "template", req.Template)
}

// hideRequest closes the certificate request's panel.
func (w *InitWindow) hideRequest() {
	if w.requestShown != nil {
		w.requestShown.password.SetText("")
		w.requestShown = nil
	}
	if w.job != nil {
		w.job.closeRequest = nil
	}
	w.officerBox.RemoveAll()
	w.officerBox.Hide()
}

// requestPath is where a request is saved by default:
// ~/cardwright-requests/<description>-<application>-<time>.csr.pem.
func (w *InitWindow) requestPath(req issuer.Request) string {
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	name := "request"
	if w.doc != nil {
		name = strings.TrimSuffix(w.doc.Name, filepath.Ext(w.doc.Name))
	}
	app := req.Application
	if app == "" {
		app = req.Template
	}
	file := fmt.Sprintf("%s-%s-%s.csr.pem", name, app, time.Now().Format("20060102-150405"))
	return filepath.Join(home, "cardwright-requests", file)
}

// writeRequest writes a request's PEM, making its folder.
func writeRequest(path string, pemData []byte) error {
	if path == "" {
		return errors.New(lang.X("init.req.nopath", "Say where to save the request."))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("saving the request: %w", err)
	}
	if err := os.WriteFile(path, pemData, 0o600); err != nil {
		return fmt.Errorf("saving the request: %w", err)
	}
	return nil
}
