package gui

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/cardwright/cardwright/cardinit"
	"github.com/cardwright/cardwright/check"
	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/runnertest"
	"github.com/cardwright/cardwright/secret"
)

// The demo job's values (testdata/demo/demo-job.json).
const (
	demoPIN    = "472913"
	demoPUK    = "83920174"
	demoModule = "/usr/lib/softhsm/libsofthsm2.so"
	demoDir    = "../testdata/demo"
)

// doQueue stands in for fyne.Do: the window's goroutines (reader poll,
// jobs, certificate requests, PIN prompts) queue their calls and the test
// runs them on its own goroutine, so no widget is touched by two
// goroutines. (The test driver would run fyne.Do inline on the caller's.)
type doQueue struct {
	mu  sync.Mutex
	fns []func()
}

func (q *doQueue) do(f func()) {
	q.mu.Lock()
	q.fns = append(q.fns, f)
	q.mu.Unlock()
}

// run runs the calls queued so far (and those they queue).
func (q *doQueue) run() {
	for {
		q.mu.Lock()
		fns := q.fns
		q.fns = nil
		q.mu.Unlock()
		if len(fns) == 0 {
			return
		}
		for _, f := range fns {
			f()
		}
	}
}

// waitFor runs the queued calls until cond holds (30 s at most).
func (q *doQueue) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		q.run()
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var testKeys struct {
	once sync.Once
	ec   crypto.Signer
	rsa  crypto.Signer
}

// initStack is an Engine over in-memory readers and fake tokens.
type initStack struct {
	engine  *cardinit.Engine
	readers *runnertest.MemReaders
	tokens  *runnertest.FakeTokens
	card    *memcard.Card
}

func newInitStack(t *testing.T) *initStack {
	t.Helper()
	testKeys.once.Do(func() {
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testKeys.ec, testKeys.rsa = ec, rk
	})
	card := memcard.New(memcard.Config{Serial: []byte{0xC0, 0xDE, 0x00, 0x01}})
	s := &initStack{card: card, readers: runnertest.NewMemReaders(map[string]*memcard.Card{"R0": card})}
	s.tokens = &runnertest.FakeTokens{Modules: []string{demoModule}, StandIn: true,
		NewKey: func(k runner.KeySpec) (crypto.Signer, error) {
			if k.Type == "RSA" {
				return testKeys.rsa, nil
			}
			return testKeys.ec, nil
		}}
	s.engine = &cardinit.Engine{Runner: &runner.Runner{
		Engine: &runner.Engine{Readers: s.readers},
		Deps:   runner.Deps{Tokens: s.tokens, Profiles: runner.CPF{}},
	}}
	return s
}

// openTestInit opens the window on s in English (or lang) with path open;
// its background calls go through the returned queue.
func openTestInit(t *testing.T, s *initStack, path, language string) (*InitWindow, *doQueue) {
	t.Helper()
	trayLang(t, language)
	a := test.NewTempApp(t)
	q := &doQueue{}
	w, err := openInit(a, InitOptions{Open: path, Poll: 10 * time.Millisecond,
		Engine: func(p prompt.Prompter) (*cardinit.Engine, error) {
			s.engine.Runner.Engine.Prompter = p
			return s.engine, nil
		}}, q.do)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.stop()
		q.run()
	})
	return w, q
}

// readersShown waits for the first reader list.
func readersShown(t *testing.T, w *InitWindow, q *doQueue) {
	t.Helper()
	q.waitFor(t, "the reader list", func() bool { return len(w.readers) > 0 && w.readers[0].ICCSN != "" })
}

// assertObjectMarkup compares o with testdata/name, or rewrites it under
// -update.
func assertObjectMarkup(t *testing.T, name string, o fyne.CanvasObject) {
	t.Helper()
	if updating() {
		if err := os.WriteFile(filepath.Join("testdata", name), []byte(test.RenderObjectToMarkup(o)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	test.AssertObjectRendersToMarkup(t, name, o)
}

// field is the form's field named name.
func (w *InitWindow) field(t *testing.T, name string) *formField {
	t.Helper()
	for _, f := range w.fields {
		if f.f.Name == name {
			return f
		}
	}
	t.Fatalf("no field %s in the form", name)
	return nil
}

// fillDemo types the demo job's values (demo-job.json) into the form.
func fillDemo(t *testing.T, w *InitWindow) {
	t.Helper()
	test.Type(w.field(t, "PIN_FIELD").entry, demoPIN)
	test.Type(w.field(t, "PUK_FIELD").entry, demoPUK)
	test.Type(w.field(t, "CARD_SERIAL").entry, "CW-0042")
	test.Type(w.field(t, "TOKEN_LABEL").entry, "cardwright demo 1")
}

// visibleTexts is every text of o a user can read: labels, entries that
// are not password entries, rich text, text grids, buttons.
func visibleTexts(o fyne.CanvasObject) []string {
	var out []string
	var walk func(o fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		switch o := o.(type) {
		case *fyne.Container:
			for _, c := range o.Objects {
				walk(c)
			}
			return
		case *widget.Label:
			out = append(out, o.Text)
		case *widget.Entry:
			if !o.Password {
				out = append(out, o.Text)
			}
			return
		case *widget.TextGrid:
			out = append(out, o.Text())
			return
		case *widget.Button:
			out = append(out, o.Text)
			return
		case *widget.Check:
			out = append(out, o.Text)
			return
		case *widget.Select:
			out = append(out, o.Selected)
			out = append(out, o.Options...)
			return
		case *widget.List:
			// its rows are drawn from the window's data: walk the renderer
		}
		if wd, ok := o.(fyne.Widget); ok {
			for _, c := range test.WidgetRenderer(wd).Objects() {
				walk(c)
			}
		}
	}
	walk(o)
	return out
}

// TestInitFormMarkup: the form of every description under testdata, in
// English; the demo's whole window in English and German.
func TestInitFormMarkup(t *testing.T) {
	paths, err := filepath.Glob("../testdata/seed/*.dsc")
	if err != nil {
		t.Fatal(err)
	}
	paths = append(paths, filepath.Join(demoDir, "demo.dsc"))
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".dsc")
		t.Run(name, func(t *testing.T) {
			w, _ := openTestInit(t, newInitStack(t), p, "en")
			if w.doc == nil {
				t.Fatalf("%s not opened: %s", p, w.docErr.Text)
			}
			assertObjectMarkup(t, "init_form_"+name+"_en.xml", w.formBox)
		})
	}
	for _, language := range []string{"en", "de"} {
		t.Run("window_"+language, func(t *testing.T) {
			w, q := openTestInit(t, newInitStack(t), filepath.Join(demoDir, "demo.dsc"), language)
			readersShown(t, w, q)
			assertMarkup(t, "init_window_demo_"+language+".xml", w.win.Canvas())
		})
	}
}

// TestInitForm: the widgets by kind, the hints, the defaults.
func TestInitForm(t *testing.T) {
	w, _ := openTestInit(t, newInitStack(t), filepath.Join(demoDir, "demo.dsc"), "en")
	if got := w.win.Title(); got != "Initialize a card — cardwright" {
		t.Errorf("title %q", got)
	}
	var names []string
	for _, f := range w.fields {
		names = append(names, f.f.Name)
	}
	if want := []string{"PIN_FIELD", "PUK_FIELD", "HOLDER", "CARD_SERIAL", "TOKEN_LABEL"}; !slices.Equal(names, want) {
		t.Errorf("fields %q, want %q (ICCSN is an output only)", names, want)
	}
	if !w.field(t, "PIN_FIELD").entry.Password || !w.field(t, "PUK_FIELD").entry.Password {
		t.Error("the PIN and PUK entries are not password entries")
	}
	if w.field(t, "HOLDER").raw == nil {
		t.Error("HOLDER (a profile parameter) has no base64 switch")
	}
	text := strings.Join(visibleTexts(w.formBox), "\n")
	for _, s := range []string{"used by: PIN, ClearFields", "used by: ProfileParameters", "used by: InitialLabel"} {
		if !strings.Contains(text, s) {
			t.Errorf("the form does not say %q:\n%s", s, text)
		}
	}
	if !strings.Contains(strings.Join(visibleTexts(w.win.Content()), "\n"), "Certificates: from files") {
		t.Error("the window does not say where certificates come from")
	}

	// A description with defaults, a Bool, a Number and a Data field.
	dir := t.TempDir()
	writeDemo(t, dir, func(s string) string {
		s = strings.Replace(s, "TOKEN_LABEL=\n", "TOKEN_LABEL=the label\nKEY_SIZE=2048\nERASE=#TRUE\nP12=\nP12PW=\n", 1)
		s = strings.Replace(s, "KeySize=2048", "KeySize=KEY_SIZE", 1)
		s = strings.Replace(s, "DeleteProfile=true", "DeleteProfile=ERASE", 1)
		return s + "\n[Application_C]\nCertificate=P12\nP12Password=P12PW\n"
	})
	w, _ = openTestInit(t, newInitStack(t), filepath.Join(dir, "demo.dsc"), "en")
	if w.doc.Diags.HasErrors() {
		t.Fatalf("diagnostics: %v", w.doc.Diags)
	}
	if f := w.field(t, "TOKEN_LABEL"); f.entry.Text != "the label" {
		t.Errorf("TOKEN_LABEL prefilled %q", f.entry.Text)
	}
	if f := w.field(t, "KEY_SIZE"); f.f.Kind != cardinit.Number || f.entry.Text != "2048" {
		t.Errorf("KEY_SIZE: kind %v, text %q", f.f.Kind, f.entry.Text)
	}
	if f := w.field(t, "ERASE"); f.check == nil || !f.check.Checked {
		t.Error("ERASE (default #TRUE) is not a checked check box")
	}
	if f := w.field(t, "P12"); f.load == nil {
		t.Error("P12 (Certificate) has no Load file… button")
	}
	if f := w.field(t, "P12PW"); !f.entry.Password {
		t.Error("P12PW (P12Password) is not a password entry")
	}
	text = strings.Join(visibleTexts(w.formBox), "\n")
	for _, s := range []string{"default: the label", "default: 2048", "default: #TRUE"} {
		if !strings.Contains(text, s) {
			t.Errorf("the form does not say %q:\n%s", s, text)
		}
	}
}

// writeDemo copies the demo description, changed by edit, and its card
// profile to dir.
func writeDemo(t *testing.T, dir string, edit func(string) string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(demoDir, "demo.dsc"))
	if err != nil {
		t.Fatal(err)
	}
	cpf, err := os.ReadFile(filepath.Join(demoDir, "demo.cpf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "demo.dsc"), []byte(edit(string(src))), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "demo.cpf"), cpf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestInitFieldErrors: values the form or the runner refuse are shown at
// their field and nothing runs — no APDU, no token call.
func TestInitFieldErrors(t *testing.T) {
	dir := t.TempDir()
	writeDemo(t, dir, func(s string) string {
		s = strings.Replace(s, "TOKEN_LABEL=\n", "TOKEN_LABEL=\nKEY_SIZE=2048\n", 1)
		return strings.Replace(s, "KeySize=2048", "KeySize=KEY_SIZE", 1)
	})
	for _, tc := range []struct {
		name  string
		fill  func(*InitWindow)
		field string
		msg   string
	}{
		{"number", func(w *InitWindow) {
			w.field(t, "KEY_SIZE").entry.SetText("")
			test.Type(w.field(t, "KEY_SIZE").entry, "abc")
		}, "KEY_SIZE", `"abc" is not a whole number`},
		{"base64", func(w *InitWindow) {
			test.Tap(w.field(t, "HOLDER").raw)
			test.Type(w.field(t, "HOLDER").entry, "!!")
		}, "HOLDER", "not valid base64"},
		{"empty PIN", func(w *InitWindow) {
			w.field(t, "PIN_FIELD").entry.SetText("")
		}, "PIN_FIELD", ""},
	} {
		for _, button := range []string{"run", "dry run"} {
			t.Run(tc.name+"/"+button, func(t *testing.T) {
				s := newInitStack(t)
				w, q := openTestInit(t, s, filepath.Join(dir, "demo.dsc"), "en")
				readersShown(t, w, q)
				s.card.ClearTranscript()
				fillDemo(t, w)
				tc.fill(w)
				b := w.runBtn
				if button == "dry run" {
					b = w.dryBtn
				}
				if b.Disabled() {
					t.Fatal("the button is disabled")
				}
				test.Tap(b)
				q.run()
				f := w.field(t, tc.field)
				if !f.message.Visible() || !strings.Contains(f.message.Text, tc.msg) {
					t.Errorf("message at %s: %q (visible %v), want %q", tc.field, f.message.Text, f.message.Visible(), tc.msg)
				}
				for _, g := range w.fields {
					if g != f && g.message.Text != "" {
						t.Errorf("message at %s too: %q", g.f.Name, g.message.Text)
					}
				}
				if w.formErr.Visible() {
					t.Errorf("form message %q", w.formErr.Text)
				}
				if w.job != nil {
					t.Fatal("a job started")
				}
				if n := len(s.card.Transcript()); n != 0 {
					t.Errorf("%d APDUs sent", n)
				}
				if c := s.tokens.Calls(); len(c) != 0 {
					t.Errorf("token calls %q", c)
				}
				// Fixed, the message goes on the next try.
				if tc.field == "PIN_FIELD" && button == "dry run" {
					test.Type(w.field(t, "PIN_FIELD").entry, demoPIN)
					test.Tap(w.dryBtn)
					if f.message.Visible() {
						t.Errorf("message %q after the fix", f.message.Text)
					}
					q.waitFor(t, "the dry run's end", func() bool { return w.job == nil })
				}
			})
		}
	}
}

// TestInitBroken: a description with errors is listed with positions,
// selecting one shows its line, and neither Run nor Dry run is enabled.
func TestInitBroken(t *testing.T) {
	dir := t.TempDir()
	writeDemo(t, dir, func(s string) string {
		s = strings.Replace(s, "PIN=PIN_FIELD", "PIN=NO_SUCH_FIELD", 1)
		return strings.Replace(s, "InitToken=true", "InitToken=true\nNoSuchKey=1", 1)
	})
	s := newInitStack(t)
	w, q := openTestInit(t, s, filepath.Join(dir, "demo.dsc"), "en")
	readersShown(t, w, q)
	if w.doc.Runnable() {
		t.Fatalf("the broken description is runnable: %v", w.doc.Diags)
	}
	if w.selected != "R0" {
		t.Errorf("selected reader %q, want R0 (the only one with a card)", w.selected)
	}
	if !w.runBtn.Disabled() || !w.dryBtn.Disabled() {
		t.Errorf("run disabled %v, dry run disabled %v", w.runBtn.Disabled(), w.dryBtn.Disabled())
	}
	if !w.diagBox.Visible() {
		t.Fatal("no diagnostics shown")
	}
	var lines []string
	for i := range w.doc.Diags {
		o := w.diagList.CreateItem()
		w.diagList.UpdateItem(i, o)
		lines = append(lines, o.(*widget.Label).Text)
	}
	want := filepath.Join(dir, "demo.dsc") + ":"
	var errIdx = -1
	for i, l := range lines {
		if !strings.HasPrefix(l, filepath.Base(want)) && !strings.HasPrefix(l, want) {
			t.Errorf("diagnostic %q does not start with the file", l)
		}
		if strings.Contains(l, ": error: ") && errIdx < 0 {
			errIdx = i
		}
	}
	if errIdx < 0 {
		t.Fatalf("no error among %q", lines)
	}
	d := w.doc.Diags[errIdx]
	if !strings.HasPrefix(lines[errIdx], fmt.Sprintf("%s:%d:%d: error: ", d.Pos.File, d.Pos.Line, d.Pos.Col)) {
		t.Errorf("diagnostic %q is not file:line:col: error: message", lines[errIdx])
	}
	w.diagList.Select(errIdx)
	src, _ := os.ReadFile(filepath.Join(dir, "demo.dsc"))
	line := strings.Split(string(src), "\n")[d.Pos.Line-1]
	if !w.diagLine.Visible() || !strings.Contains(w.diagLine.Text, line) || !strings.Contains(w.diagLine.Text, fmt.Sprint(d.Pos.Line)) {
		t.Errorf("selected %q: line shown %q (visible %v), want %q with its number", lines[errIdx], w.diagLine.Text, w.diagLine.Visible(), line)
	}
	if !w.diagLine.TextStyle.Monospace {
		t.Error("the line is not monospace")
	}
	// Tapping the disabled buttons does nothing.
	test.Tap(w.runBtn)
	test.Tap(w.dryBtn)
	if w.job != nil {
		t.Error("a job started")
	}
}

// TestInitDryRun: the demo's dry run shows its steps and transcript, and
// the PIN and PUK are in no text of the window but the password entries.
func TestInitDryRun(t *testing.T) {
	s := newInitStack(t)
	w, q := openTestInit(t, s, filepath.Join(demoDir, "demo.dsc"), "en")
	readersShown(t, w, q)
	s.card.ClearTranscript()
	fillDemo(t, w)
	test.Tap(w.dryBtn)
	if w.job == nil {
		t.Fatalf("the dry run did not start: %q %q", w.formErr.Text, visibleTexts(w.formBox))
	}
	if !w.runBtn.Disabled() || !w.dryBtn.Disabled() || w.cancelBtn.Disabled() {
		t.Error("while it runs: Run and Dry run must be disabled, Cancel enabled")
	}
	q.waitFor(t, "the dry run's end", func() bool { return w.job == nil })
	text := strings.Join(visibleTexts(w.win.Content()), "\n")
	if !strings.Contains(text, "Dry run done") {
		t.Fatalf("no success shown:\n%s", text)
	}
	if len(w.transcript) == 0 {
		t.Fatal("no transcript")
	}
	for _, l := range w.transcript[:3] {
		if !strings.Contains(text, l) {
			t.Errorf("transcript line %q not shown", l)
		}
	}
	for _, s := range []string{"✓ DeleteProfile", "✓ InitToken", "Application_A (demo.dsc:29): not run (PKCS#11 token", "Transcript: "} {
		if !strings.Contains(text, s) {
			t.Errorf("the result does not show %q:\n%s", s, text)
		}
	}
	for _, secret := range []string{demoPIN, demoPUK, hex.EncodeToString([]byte(demoPIN)), hex.EncodeToString([]byte(demoPUK))} {
		if strings.Contains(strings.ToLower(text), secret) {
			t.Errorf("the window shows %q outside the password entries", secret)
		}
	}
	if n := len(s.card.Transcript()); n != 0 {
		t.Errorf("the dry run sent %d APDUs to the reader's card", n)
	}
	if c := s.tokens.Calls(); len(c) != 0 {
		t.Errorf("the dry run called the token: %q", c)
	}
	// The PIN stays in its entry for the next run.
	if got := w.field(t, "PIN_FIELD").entry.Text; got != demoPIN {
		t.Errorf("the PIN entry holds %d characters after the run", len(got))
	}
}

// TestInitRun: a real run on the in-memory card whose certificates the
// officer answers from files: the request panel, Save request, the test's
// CA issues, the certificate file typed and loaded; Done with the ICCSN and
// the APDU transcript (no PIN or PUK in it, as ASCII or hex).
// Then "run again" waits for the next card and runs on it.
func TestInitRun(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	ca, err := issuer.OpenLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := newInitStack(t)
	w, q := openTestInit(t, s, filepath.Join(demoDir, "demo.dsc"), "en")
	readersShown(t, w, q)
	fillDemo(t, w)
	if w.runBtn.Disabled() {
		t.Fatal("Run is disabled with R0 selected")
	}
	test.Tap(w.runBtn)
	if w.job == nil {
		t.Fatalf("the job did not start: %q", w.formErr.Text)
	}
	certDir := t.TempDir()
	answer := func(app, template string) {
		t.Helper()
		q.waitFor(t, "the request of "+app, func() bool { return w.requestShown != nil || w.job == nil })
		if w.job == nil {
			t.Fatalf("the job ended: %q", visibleTexts(w.resultBox))
		}
		text := strings.Join(visibleTexts(w.officerBox), "\n")
		if h := fmt.Sprintf("Certificate request for Application_%s (%s)", app, template); !strings.Contains(text, h) {
			t.Fatalf("the panel does not say %q:\n%s", h, text)
		}
		p := w.requestShown
		if dir := filepath.Join(home, "cardwright-requests"); !strings.HasPrefix(p.save.Text, dir+string(filepath.Separator)+"demo-"+app+"-") || !strings.HasSuffix(p.save.Text, ".csr.pem") {
			t.Errorf("default request path %q", p.save.Text)
		}
		test.Tap(button(t, w.officerBox, "Save request"))
		if !strings.HasPrefix(p.saved.Text, "Saved to ") {
			t.Fatalf("saving: %q", p.saved.Text)
		}
		b, err := os.ReadFile(p.save.Text)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
			t.Fatalf("the request file holds %q", b)
		}
		cert, chain, err := ca.Issue(context.Background(), issuer.Request{CSR: blk.Bytes, Application: app, Template: template})
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		for _, der := range append([][]byte{cert}, chain...) {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
		}
		path := filepath.Join(certDir, app+".pem")
		if err := os.WriteFile(path, out, 0o600); err != nil {
			t.Fatal(err)
		}
		// A wrong path first: said in the panel, the job waits.
		test.Type(p.cert, path+".missing")
		test.Tap(button(t, w.officerBox, "Load certificate"))
		if !p.loadErr.Visible() || w.requestShown != p {
			t.Fatalf("a missing file: message %q, panel open %v", p.loadErr.Text, w.requestShown == p)
		}
		p.cert.SetText("")
		test.Type(p.cert, path)
		test.Tap(button(t, w.officerBox, "Load certificate"))
		if w.requestShown == p {
			t.Fatalf("the panel is still open: %q", p.loadErr.Text)
		}
	}
	answer("A", "DigitalSignature")
	answer("B", "Encryption")
	q.waitFor(t, "the job's end", func() bool { return w.job == nil })
	text := strings.Join(visibleTexts(w.resultBox), "\n")
	if !strings.Contains(text, "Done") || !strings.Contains(text, "C0DE0001") || !strings.Contains(text, "R0") {
		t.Fatalf("result:\n%s", text)
	}
	if !strings.Contains(text, "✓ InitToken") {
		t.Errorf("the steps done are not listed:\n%s", text)
	}
	if strings.Contains(text, demoPIN) || strings.Contains(text, demoPUK) {
		t.Error("the result shows the PIN or PUK")
	}
	// The run's APDU transcript, secrets masked, with Save transcript….
	if len(w.transcript) == 0 || !strings.Contains(text, "Transcript: ") || !strings.HasPrefix(w.transcript[0], "connect: 00CA005A") {
		t.Fatalf("no transcript shown (%d lines):\n%s", len(w.transcript), text)
	}
	for _, l := range w.transcript {
		if !strings.Contains(text, l) {
			t.Errorf("transcript line %q not shown", l)
		}
	}
	if !strings.Contains(text, "InitToken: ") || !strings.Contains(text, "secret bytes>") {
		t.Errorf("no masked card profile lines in the transcript:\n%s", text)
	}
	if b := button(t, w.resultBox, "Save transcript…"); b.Disabled() || w.menuSave.Disabled {
		t.Error("Save transcript… is disabled after a run")
	}
	shown := strings.ToLower(text + "\n" + strings.Join(w.transcript, "\n"))
	for _, secret := range []string{demoPIN, demoPUK, hex.EncodeToString([]byte(demoPIN)), hex.EncodeToString([]byte(demoPUK))} {
		if strings.Contains(shown, secret) || strings.Contains(strings.ReplaceAll(shown, " ", ""), secret) {
			t.Errorf("the result or its transcript holds %q", secret)
		}
	}
	if got := len(s.tokens.Token("R0", runner.LocationDefault).Certificates()); got != 2 {
		t.Errorf("%d certificates on the token, want the two loaded", got)
	}

	// Run again: the same card does not start it; another card does.
	if w.againBtn.Disabled() {
		t.Fatal("Run again is disabled after a run")
	}
	test.Tap(w.againBtn)
	if !w.waiting || w.cancelBtn.Disabled() || !strings.Contains(w.stepLabel.Text, "Insert the next card") {
		t.Fatalf("waiting %v, cancel disabled %v, step %q", w.waiting, w.cancelBtn.Disabled(), w.stepLabel.Text)
	}
	time.Sleep(50 * time.Millisecond) // a few polls (every 10 ms) see the same card
	q.run()
	if !w.waiting || w.job != nil {
		t.Fatal("run again started on the same card")
	}
	// Cancel stops waiting.
	test.Tap(w.cancelBtn)
	if w.waiting {
		t.Fatal("still waiting after Cancel")
	}
	test.Tap(w.againBtn)
	// The card is taken out (a poll sees the reader empty), the next one
	// put in.
	s.readers.Put("R0", nil)
	q.waitFor(t, "the reader without a card", func() bool { r, _ := w.reader("R0"); return !r.Present })
	if w.job != nil || !w.waiting {
		t.Fatal("the job started without a card")
	}
	s.readers.Put("R0", memcard.New(memcard.Config{Serial: []byte{0xC0, 0xDE, 0x00, 0x02}}))
	q.waitFor(t, "the job on the next card", func() bool { return w.job != nil })
	// Cancel the job at its first certificate request.
	q.waitFor(t, "the next card's request", func() bool { return w.requestShown != nil || w.job == nil })
	test.Tap(w.cancelBtn)
	q.waitFor(t, "the cancelled job's end", func() bool { return w.job == nil })
	if w.officerBox.Visible() {
		t.Error("the request panel is still shown")
	}
	text = strings.Join(visibleTexts(w.resultBox), "\n")
	if !strings.Contains(text, "Failed") || !strings.Contains(text, "C0DE0002") {
		t.Errorf("result of the cancelled job:\n%s", text)
	}
	// A failed run shows its transcript up to the failure.
	if !strings.Contains(text, "Transcript: ") || len(w.transcript) == 0 || !strings.Contains(text, "InitToken: ") {
		t.Errorf("the cancelled job's transcript is not shown:\n%s", text)
	}
}

// TestInitPrompter: the in-process Prompter opens the PIN window and
// returns its answer; a cancelled context closes it.
func TestInitPrompter(t *testing.T) {
	trayLang(t, "en")
	useFakeClock(t)
	a := test.NewTempApp(t)
	q := &doQueue{}
	p := NewPrompter(a, time.Minute)
	p.do = q.do
	type result struct {
		a   prompt.Answer
		err error
	}
	ask := func(ctx context.Context) chan result {
		ch := make(chan result, 1)
		go func() {
			ans, err := p.Ask(ctx, prompt.Request{Kind: prompt.OneField, Operation: prompt.OpInitialize, Reader: "R0"})
			ch <- result{ans, err}
		}()
		return ch
	}
	pinWin := func() fyne.Window {
		var w fyne.Window
		q.waitFor(t, "the PIN window", func() bool {
			for _, x := range a.Driver().AllWindows() {
				if x.Title() == "cardwright — PIN" {
					w = x
				}
			}
			return w != nil
		})
		return w
	}
	ch := ask(context.Background())
	w := pinWin()
	typeRunes(t, w.Canvas(), "1234")
	pressKey(w.Canvas(), fyne.KeyReturn)
	r := <-ch
	if r.err != nil || r.a.PIN.Reveal() != "1234" {
		t.Fatalf("answer %v, err %v", r.a.PIN.Len(), r.err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	ch = ask(ctx)
	w = pinWin()
	cancel()
	var got result
	q.waitFor(t, "Ask to return", func() bool {
		select {
		case got = <-ch:
			return true
		default:
			return false
		}
	})
	q.run()
	if got.err != context.Canceled || isOpen(a, w) {
		t.Errorf("after cancel: err %v, window open %v", got.err, isOpen(a, w))
	}

	// The PIN pad: done closes its window.
	done := p.ShowPad(prompt.Request{Kind: prompt.Pad}, func() {})
	q.run()
	var pad fyne.Window
	for _, x := range a.Driver().AllWindows() {
		if x.Title() == "cardwright — PIN pad" {
			pad = x
		}
	}
	if pad == nil {
		t.Fatal("no PIN-pad window")
	}
	done()
	done()
	q.run()
	if isOpen(a, pad) {
		t.Error("the PIN-pad window is still open")
	}
}

// TestInitRecent: opening adds to the recent list, which opens again.
func TestInitRecent(t *testing.T) {
	file := filepath.Join(t.TempDir(), "recent.json")
	trayLang(t, "en")
	a := test.NewTempApp(t)
	q := &doQueue{}
	s := newInitStack(t)
	w, err := openInit(a, InitOptions{Recent: cardinit.LoadRecent(file), Poll: time.Hour, Check: check.Options{},
		Engine: func(prompt.Prompter) (*cardinit.Engine, error) { return s.engine, nil }}, q.do)
	if err != nil {
		t.Fatal(err)
	}
	defer w.stop()
	if !w.recent.Disabled() || !w.runBtn.Disabled() || !w.dryBtn.Disabled() {
		t.Error("with nothing open and no recent files: Recent, Run and Dry run must be disabled")
	}
	w.open(filepath.Join(demoDir, "demo.dsc"))
	w.open("../testdata/seed/init_token.dsc")
	if got := cardinit.LoadRecent(file).Paths; len(got) != 2 || filepath.Base(got[0]) != "init_token.dsc" {
		t.Fatalf("recent file: %q", got)
	}
	if w.recent.Disabled() || len(w.recent.Options) != 2 {
		t.Fatalf("recent: disabled %v, options %q", w.recent.Disabled(), w.recent.Options)
	}
	w.recent.SetSelected(w.recent.Options[1])
	if w.doc == nil || w.doc.Name != "demo.dsc" {
		t.Errorf("choosing the demo from Recent opened %v", w.doc)
	}
	if w.recent.Selected != "" {
		t.Errorf("Recent still shows %q", w.recent.Selected)
	}
	w.open(filepath.Join(t.TempDir(), "missing.dsc"))
	if !w.docErr.Visible() || w.doc.Name != "demo.dsc" {
		t.Errorf("a missing file: message %q, open %s", w.docErr.Text, w.doc.Name)
	}
}

// TestInitOutputs: output fields sorted with Copy; secret ones masked
// until revealed, copied without being shown, wiped with the next job.
func TestInitOutputs(t *testing.T) {
	w, _ := openTestInit(t, newInitStack(t), filepath.Join(demoDir, "demo.dsc"), "en")
	pin := secret.New("0815")
	w.outputs(map[string]string{"ICCSN": "C0DE0001", "A_FIELD": "a"}, map[string]secret.Value{"DecryptedCardPin_PIN1": pin})
	w.resultBox.Show()
	text := visibleTexts(w.resultBox)
	if i, j := slices.Index(text, "A_FIELD"), slices.Index(text, "ICCSN"); i < 0 || j < i {
		t.Errorf("outputs not sorted: %q", text)
	}
	if slices.Contains(text, "0815") || !slices.Contains(text, masked) {
		t.Fatalf("the secret output is not masked: %q", text)
	}
	copies := 0
	var reveal *widget.Button
	for _, x := range test.LaidOutObjects(w.resultBox) {
		b, ok := x.(*widget.Button)
		if !ok {
			continue
		}
		switch b.Text {
		case "Copy":
			copies++
		case "Reveal":
			reveal = b
		}
	}
	if copies != 3 || reveal == nil {
		t.Fatalf("%d Copy buttons, Reveal %v", copies, reveal != nil)
	}
	cb := w.app.Clipboard()
	test.Tap(button(t, w.resultBox, "Copy"))
	if got := cb.Content(); got != "a" {
		t.Errorf("copied %q", got)
	}
	test.Tap(reveal)
	if !slices.Contains(visibleTexts(w.resultBox), "0815") || reveal.Text != "Hide" {
		t.Error("Reveal does not show the secret output")
	}
	test.Tap(reveal)
	if slices.Contains(visibleTexts(w.resultBox), "0815") {
		t.Error("Hide does not mask it again")
	}
	w.clearResult()
	if !pin.IsZero() && pin.Reveal() == "0815" {
		t.Error("the secret output was not wiped with the result")
	}
}
