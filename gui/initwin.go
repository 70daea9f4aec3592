package gui

// The card initialization window (spec/gui.md, "Standalone card
// initialization"; docs/gui.md): initializing cards without a portal. The
// model is package cardinit; this file holds the window, its toolbar, its
// reader list and its diagnostics; initform.go the form, initrun.go the
// jobs, the certificate requests and the results.

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"image/color"
	"log/slog"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/cardwright/cardwright/cardinit"
	"github.com/cardwright/cardwright/check"
	"github.com/cardwright/cardwright/prompt"
)

// InitOptions configure the card initialization window.
type InitOptions struct {
	// Open is a description (.dsc or .dsz) to open at start; "" none.
	Open string
	// Engine makes the engine the window's jobs run on, given the
	// Prompter that asks the officer at the screen for PINs.
	Engine func(prompt.Prompter) (*cardinit.Engine, error)
	// Check are the options descriptions are checked with (card models).
	Check check.Options
	// Recent is the list of recent descriptions (nil: none kept).
	Recent *cardinit.Recent
	// PINTimeout closes a PIN window nobody answers (0: two minutes).
	PINTimeout time.Duration
	// Poll is how often the reader list is refreshed (0: every second).
	Poll time.Duration
}

// RunInit is the process of `cardwright init-gui`: the Fyne app with the
// card initialization window, until it is closed. It must be called on the
// main goroutine (Fyne's rule).
func RunInit(opts InitOptions) error {
	if err := LoadTranslations(); err != nil {
		return err
	}
	a := app.NewWithID(AppID)
	w, err := OpenInit(a, opts)
	if err != nil {
		return err
	}
	w.win.SetMaster()
	a.Run()
	return nil
}

// OpenInit opens the card initialization window in a, with opts.Open
// opened when set (a file that cannot be read is said in the window).
// OpenInit is called on the Fyne goroutine; an error is the engine's.
func OpenInit(a fyne.App, opts InitOptions) (*InitWindow, error) {
	return openInit(a, opts, fyne.Do)
}

// InitWindow is an open card initialization window. Its fields live on the
// Fyne goroutine; the reader poll, the jobs and the certificate requests
// run on their own and come back through do.
type InitWindow struct {
	app    fyne.App
	win    fyne.Window
	opts   InitOptions
	engine *cardinit.Engine
	do     func(func()) // fyne.Do; the tests queue the calls and run them
	ctx    context.Context
	stop   context.CancelFunc // the window closed: the poll and any job end

	doc *cardinit.Doc

	// toolbar
	openBtn  *widget.Button
	recent   *widget.Select
	docLabel *widget.Label
	docErr   *widget.Label
	certFrom *widget.Label

	// readers
	readers    []cardinit.Reader
	selected   string // reader name; "" none
	readerList *widget.List
	readerNote *widget.Label

	// diagnostics
	diagBox  *fyne.Container
	diagList *widget.List
	diagPos  *widget.Label
	diagLine *widget.Label

	// form (initform.go)
	formBox *fyne.Container
	fields  []*formField
	formErr *widget.Label

	// jobs (initrun.go)
	dryBtn, runBtn, cancelBtn, againBtn *widget.Button
	bar                                 *widget.ProgressBar
	stepLabel                           *widget.Label
	officerBox                          *fyne.Container
	resultBox                           *fyne.Container
	job                                 *runningJob // nil: none runs
	last                                *runningJob // the last real run, for "run again"
	waiting                             bool        // waiting for the next card
	removed                             bool        // while waiting: the last card left
	shown                               []*revealer // secret outputs shown: wiped on the next job
	requestShown                        *requestPanel
	transcript                          []string // of the last result (dry run or run)
	scroll                              *container.Scroll
	mainMenu                            *fyne.MainMenu
	menuOpen, menuSave, menuDry         *fyne.MenuItem
	menuRun, menuAgain, menuCancel      *fyne.MenuItem
}

func openInit(a fyne.App, opts InitOptions, do func(func())) (*InitWindow, error) {
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Engine == nil {
		return nil, fmt.Errorf("opening the card initialization window: no engine")
	}
	p := NewPrompter(a, opts.PINTimeout)
	p.do = do
	engine, err := opts.Engine(p)
	if err != nil {
		return nil, fmt.Errorf("opening the card initialization window: %w", err)
	}
	w := &InitWindow{app: a, opts: opts, engine: engine, do: do}
	w.ctx, w.stop = context.WithCancel(context.Background())
	w.win = a.NewWindow(lang.X("init.title", "Initialize a card — cardwright"))
	w.win.SetContent(w.build())
	w.win.SetMainMenu(w.menu())
	// Fits a 1366×768 laptop screen with its panel; the form scrolls.
	w.win.Resize(fyne.NewSize(840, 680))
	w.win.SetOnClosed(w.closed)
	if opts.Open != "" {
		w.open(opts.Open)
	}
	w.update()
	w.win.Show()
	go w.poll(w.ctx)
	return w, nil
}

// Window is the window itself.
func (w *InitWindow) Window() fyne.Window { return w.win }

func (w *InitWindow) build() fyne.CanvasObject {
	// Toolbar: Open…, Recent, the open description.
	w.openBtn = widget.NewButtonWithIcon(lang.X("init.open", "Open…"), theme.FolderOpenIcon(), w.showOpen)
	w.recent = widget.NewSelect(nil, func(p string) {
		if p != "" {
			w.recent.ClearSelected()
			w.open(p)
		}
	})
	w.recent.PlaceHolder = lang.X("init.recent", "Recent")
	w.refreshRecent()
	w.docLabel = widget.NewLabel(lang.X("init.doc.none", "No description open"))
	w.docLabel.Truncation = fyne.TextTruncateEllipsis
	w.docErr = errorLabel()
	if w.engine.Issuer != nil {
		w.certFrom = widget.NewLabel(lang.X("init.certs.ca", "Certificates: from the local CA"))
	} else {
		w.certFrom = widget.NewLabel(lang.X("init.certs.files", "Certificates: from files (save each request, load the certificate issued)"))
	}
	toolbar := container.NewBorder(nil, nil, container.NewHBox(w.openBtn, w.recent), nil, w.docLabel)

	// Readers.
	w.readerList = widget.NewList(func() int { return len(w.readers) },
		func() fyne.CanvasObject {
			name := widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
			return container.NewHBox(name, widget.NewLabel(""))
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			if id >= len(w.readers) {
				return
			}
			r := w.readers[id]
			row := o.(*fyne.Container)
			row.Objects[0].(*widget.Label).SetText(r.Name)
			row.Objects[1].(*widget.Label).SetText(readerDetail(r))
		})
	w.readerList.OnSelected = func(id widget.ListItemID) {
		if id < len(w.readers) {
			w.selected = w.readers[id].Name
			w.update()
		}
	}
	w.readerNote = widget.NewLabel(lang.X("init.readers.none", "No readers"))

	// Diagnostics.
	w.diagList = widget.NewList(func() int {
		if w.doc == nil {
			return 0
		}
		return len(w.doc.Diags)
	}, func() fyne.CanvasObject { return widget.NewLabel("") },
		func(id widget.ListItemID, o fyne.CanvasObject) {
			if w.doc != nil && id < len(w.doc.Diags) {
				o.(*widget.Label).SetText(w.doc.Diags[id].String())
			}
		})
	w.diagList.OnSelected = w.showDiag
	w.diagPos = widget.NewLabel("")
	w.diagPos.Hide()
	w.diagLine = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Monospace: true})
	w.diagLine.Hide()
	w.diagBox = container.NewVBox(sectionHeading(lang.X("init.diags", "Diagnostics")),
		minHeight(w.diagList, 120), w.diagPos, w.diagLine)
	w.diagBox.Hide()

	// Form, certificate requests, result.
	w.formBox = container.NewVBox()
	w.formErr = errorLabel()
	w.officerBox = container.NewVBox()
	w.officerBox.Hide()
	w.resultBox = container.NewVBox()
	w.resultBox.Hide()

	// Buttons and progress.
	w.dryBtn = widget.NewButtonWithIcon(lang.X("init.dryrun", "Dry run"), theme.VisibilityIcon(), func() { w.start(true) })
	w.runBtn = widget.NewButtonWithIcon(lang.X("init.run", "Run"), theme.MediaPlayIcon(), func() { w.start(false) })
	w.runBtn.Importance = widget.HighImportance
	w.againBtn = widget.NewButtonWithIcon(lang.X("init.again", "Run again on the next card"), theme.MediaReplayIcon(), w.runAgain)
	w.cancelBtn = widget.NewButtonWithIcon(lang.X("button.cancel", "Cancel"), theme.CancelIcon(), w.cancel)
	w.bar = widget.NewProgressBar()
	w.bar.TextFormatter = func() string { return fmt.Sprintf("%d/%d", int(w.bar.Value), int(w.bar.Max)) }
	w.bar.Hide()
	w.stepLabel = widget.NewLabel("")
	w.stepLabel.Hide()

	// The readers stay in view above the form (the choice Run needs); the
	// rest scrolls.
	body := container.NewVBox(
		w.diagBox,
		sectionHeading(lang.X("init.form", "Fields")), w.formBox, w.formErr,
		w.officerBox,
		w.resultBox,
	)
	top := container.NewVBox(toolbar, w.docErr, w.certFrom, widget.NewSeparator(),
		sectionHeading(lang.X("init.readers", "Readers")), minHeight(w.readerList, 84), w.readerNote, widget.NewSeparator())
	bottom := container.NewVBox(widget.NewSeparator(), w.bar, w.stepLabel,
		container.NewHBox(layout.NewSpacer(), w.againBtn, w.cancelBtn, w.dryBtn, w.runBtn))
	w.scroll = container.NewVScroll(body)
	return container.NewBorder(top, bottom, nil, nil, w.scroll)
}

// menu is the window's menu bar. Its shortcuts work wherever the focus is
// (Fyne gives the main menu's shortcuts precedence over the focused entry):
// Ctrl+O open, Ctrl+D dry run, Ctrl+R run, Ctrl+N run again on the next
// card, Ctrl+S save the transcript.
func (w *InitWindow) menu() *fyne.MainMenu {
	ctrl := func(k fyne.KeyName) fyne.Shortcut {
		return &desktop.CustomShortcut{KeyName: k, Modifier: fyne.KeyModifierShortcutDefault}
	}
	item := func(label string, k fyne.KeyName, f func()) *fyne.MenuItem {
		it := fyne.NewMenuItem(label, f)
		if k != "" {
			it.Shortcut = ctrl(k)
		}
		return it
	}
	w.menuOpen = item(lang.X("init.open", "Open…"), fyne.KeyO, func() {
		if !w.menuOpen.Disabled {
			w.showOpen()
		}
	})
	w.menuSave = item(lang.X("init.transcript.save", "Save transcript…"), fyne.KeyS, func() {
		if len(w.transcript) > 0 {
			w.saveTranscript()
		}
	})
	w.menuDry = item(lang.X("init.dryrun", "Dry run"), fyne.KeyD, func() {
		if !w.menuDry.Disabled {
			w.start(true)
		}
	})
	w.menuRun = item(lang.X("init.run", "Run"), fyne.KeyR, func() {
		if !w.menuRun.Disabled {
			w.start(false)
		}
	})
	w.menuAgain = item(lang.X("init.again", "Run again on the next card"), fyne.KeyN, func() {
		if !w.menuAgain.Disabled {
			w.runAgain()
		}
	})
	w.menuCancel = item(lang.X("button.cancel", "Cancel"), "", w.cancel)
	file := fyne.NewMenu(lang.X("init.menu.file", "File"), w.menuOpen, w.menuSave)
	card := fyne.NewMenu(lang.X("init.menu.card", "Card"), w.menuDry, w.menuRun, w.menuAgain, w.menuCancel)
	w.mainMenu = fyne.NewMainMenu(file, card)
	return w.mainMenu
}

// closed ends what the window started: the poll, a running job, a wait
// for a certificate; the secrets shown are wiped.
func (w *InitWindow) closed() {
	w.stop()
	w.wipeShown()
	for _, f := range w.fields {
		if f.f.Kind == cardinit.Secret {
			f.entry.SetText("")
		}
	}
}

// Close closes the window (a running job is cancelled).
func (w *InitWindow) Close() { w.win.Close() }

// showOpen is Open…: a file dialog for .dsc and .dsz files.
func (w *InitWindow) showOpen() {
	d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil {
			w.setDocErr(err.Error())
			return
		}
		if r == nil {
			return
		}
		path := r.URI().Path()
		r.Close()
		w.open(path)
	}, w.win)
	d.SetFilter(storage.NewExtensionFileFilter([]string{".dsc", ".dsz", ".DSC", ".DSZ"}))
	d.Resize(fyne.NewSize(700, 500))
	d.Show()
}

// open opens the description at path, checks it and makes its form; the
// path goes first in the recent list.
func (w *InitWindow) open(path string) {
	if w.job != nil || w.waiting {
		return
	}
	doc, err := cardinit.Open(path, w.opts.Check)
	if err != nil {
		w.setDocErr(err.Error())
		return
	}
	w.setDocErr("")
	w.doc = doc
	slog.Info("description opened", "path", doc.Path, "errors", len(doc.Diags.Errors()), "runnable", doc.Runnable())
	w.last = nil
	w.docLabel.SetText(doc.Name + " — " + doc.Path)
	w.diagList.UnselectAll()
	w.diagPos.Hide()
	w.diagLine.Hide()
	if len(doc.Diags) > 0 {
		w.diagBox.Show()
	} else {
		w.diagBox.Hide()
	}
	w.diagList.Refresh()
	w.buildForm()
	w.clearResult()
	w.focusFirst()
	if w.opts.Recent != nil {
		if err := w.opts.Recent.Add(path); err != nil {
			slog.Warn("saving the recent descriptions", "err", err)
		}
		w.refreshRecent()
	}
	w.update()
}

func (w *InitWindow) setDocErr(s string) {
	w.docErr.SetText(s)
	if s == "" {
		w.docErr.Hide()
	} else {
		w.docErr.Show()
	}
}

func (w *InitWindow) refreshRecent() {
	var paths []string
	if w.opts.Recent != nil {
		paths = append(paths, w.opts.Recent.Paths...)
	}
	w.recent.SetOptions(paths)
	if len(paths) == 0 {
		w.recent.Disable()
	} else if w.job == nil && !w.waiting {
		w.recent.Enable()
	}
}

// showDiag shows the line of diagnostic id below the list.
func (w *InitWindow) showDiag(id widget.ListItemID) {
	if w.doc == nil || id >= len(w.doc.Diags) {
		return
	}
	d := w.doc.Diags[id]
	line, ok := w.doc.Line(d.Pos)
	if !ok {
		w.diagPos.SetText(lang.X("init.diag.noline", "{{.File}}: the line cannot be shown", map[string]any{"File": d.Pos.File}))
		w.diagPos.Show()
		w.diagLine.Hide()
		return
	}
	w.diagPos.SetText(lang.X("init.diag.line", "{{.File}}, line {{.Line}}:", map[string]any{"File": d.Pos.File, "Line": d.Pos.Line}))
	w.diagLine.SetText(fmt.Sprintf("%4d | %s", d.Pos.Line, line))
	w.diagPos.Show()
	w.diagLine.Show()
}

// poll refreshes the reader list every opts.Poll until ctx ends.
func (w *InitWindow) poll(ctx context.Context) {
	t := time.NewTicker(w.opts.Poll)
	defer t.Stop()
	for {
		list, err := w.engine.Readers(ctx)
		if ctx.Err() != nil {
			return
		}
		w.do(func() { w.setReaders(list, err) })
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// setReaders shows a new reader list, keeping the selection (or choosing
// the one reader with a card), and lets "run again" see the next card.
func (w *InitWindow) setReaders(list []cardinit.Reader, err error) {
	logCardChanges(w.readers, list)
	w.readers = list
	switch {
	case err != nil:
		w.readerNote.SetText(err.Error())
		w.readerNote.Show()
	case len(list) == 0:
		w.readerNote.SetText(lang.X("init.readers.none", "No readers"))
		w.readerNote.Show()
	default:
		w.readerNote.Hide()
	}
	w.readerList.Refresh()
	idx := -1
	for i, r := range list {
		if r.Name == w.selected {
			idx = i
		}
	}
	if idx < 0 && w.job == nil && !w.waiting {
		w.selected = ""
		var withCard []int
		for i, r := range list {
			if r.Present {
				withCard = append(withCard, i)
			}
		}
		if len(withCard) == 1 {
			idx = withCard[0]
		}
	}
	if idx >= 0 {
		w.readerList.Select(idx) // sets w.selected
	} else {
		w.readerList.UnselectAll()
	}
	if w.waiting {
		w.nextCard()
	}
	w.update()
}

// logCardChanges logs each card that arrived in or left a reader between
// two lists (what the officer sees change in the window).
func logCardChanges(old, now []cardinit.Reader) {
	before := map[string]cardinit.Reader{}
	for _, r := range old {
		before[r.Name] = r
	}
	for _, r := range now {
		b := before[r.Name]
		switch {
		case r.Present && (!b.Present || b.ICCSN != r.ICCSN || !bytes.Equal(b.ATR, r.ATR)):
			slog.Info("card in reader", "reader", r.Name, "atr", fmt.Sprintf("%X", r.ATR), "iccsn", r.ICCSN)
		case !r.Present && b.Present:
			slog.Info("card removed", "reader", r.Name)
		}
	}
}

// reader is the listed reader named name.
func (w *InitWindow) reader(name string) (cardinit.Reader, bool) {
	for _, r := range w.readers {
		if r.Name == name {
			return r, true
		}
	}
	return cardinit.Reader{}, false
}

// readerDetail is "no card" or the card's ATR and ICCSN.
func readerDetail(r cardinit.Reader) string {
	if !r.Present {
		return lang.X("init.reader.nocard", "no card")
	}
	atr := strings.ToUpper(hex.EncodeToString(r.ATR))
	if r.ICCSN == "" {
		return lang.X("init.reader.atr", "ATR {{.ATR}}", map[string]any{"ATR": atr})
	}
	return lang.X("init.reader.card", "ATR {{.ATR}}, ICCSN {{.ICCSN}}", map[string]any{"ATR": atr, "ICCSN": r.ICCSN})
}

// update enables the buttons for the state: Run needs a runnable
// description, a reader and no job; Dry run no reader; Cancel a job or a
// wait for the next card.
func (w *InitWindow) update() {
	busy := w.job != nil || w.waiting
	runnable := w.doc != nil && w.doc.Runnable()
	enable(w.dryBtn, runnable && !busy)
	enable(w.runBtn, runnable && !busy && w.selected != "")
	enable(w.cancelBtn, busy)
	enable(w.againBtn, runnable && !busy && w.last != nil)
	enable(w.openBtn, !busy)
	if w.mainMenu != nil {
		w.menuOpen.Disabled = busy
		w.menuSave.Disabled = len(w.transcript) == 0
		w.menuDry.Disabled = w.dryBtn.Disabled()
		w.menuRun.Disabled = w.runBtn.Disabled()
		w.menuAgain.Disabled = w.againBtn.Disabled()
		w.menuCancel.Disabled = !busy
		w.mainMenu.Refresh()
	}
	if busy || len(w.recent.Options) == 0 {
		w.recent.Disable()
	} else {
		w.recent.Enable()
	}
	for _, f := range w.fields {
		f.enable(!busy)
	}
}

type disableable interface {
	Enable()
	Disable()
}

func enable(o disableable, on bool) {
	if on {
		o.Enable()
	} else {
		o.Disable()
	}
}

func sectionHeading(text string) *widget.Label {
	return widget.NewLabelWithStyle(text, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
}

// errorLabel is a red message, hidden while empty.
func errorLabel() *widget.Label {
	l := widget.NewLabel("")
	l.Importance = widget.DangerImportance
	l.Wrapping = fyne.TextWrapWord
	l.Hide()
	return l
}

func setError(l *widget.Label, s string) {
	l.SetText(s)
	if s == "" {
		l.Hide()
	} else {
		l.Show()
	}
}

// minHeight gives o (a list, which is one row high by itself) a height.
func minHeight(o fyne.CanvasObject, h float32) fyne.CanvasObject {
	r := canvas.NewRectangle(color.Transparent)
	r.SetMinSize(fyne.NewSize(1, h))
	return container.NewStack(r, o)
}
