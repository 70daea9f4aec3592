package gui

// The card-initialization window's figures (issue 14, docs/gui.md
// "Figures"), in process with Fyne's test driver: "open a description →
// form shown" and "dry run of the demo profile → transcript shown". The
// same with the real window on the test stack's Xvfb is
// BenchmarkInitWindow in cmd/cardwright/desktop_figures_test.go; the model's
// part alone is BenchmarkOpenDemo in package cardinit, the runner's
// BenchmarkDryRunDemo in package runner.
//
//	go test ./gui/ -run '^$' -bench 'BenchmarkInit' -benchmem -count 5
//
// Each has two depths: until=shown stops when the window's widgets hold the
// form or the transcript — what the window's code does, including the
// layout Fyne does as they are added (renderers made, text measured, the
// form and box layouts); until=painted adds one Capture of the whole window
// (840×680) by the test driver's software painter, a stand-in for the first
// frame that costs far more than the GL driver's: BenchmarkInitPaint is
// that Capture alone, to subtract.

import (
	"io"
	"log"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"github.com/cardwright/cardwright/cardinit"
	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/runnertest"
)

// chanDo stands in for fyne.Do in the benchmarks: the window's goroutines
// send their calls, the benchmark's goroutine runs them as they arrive (a
// blocking receive: no polling interval is added to what is measured, as
// doQueue.waitFor's 2 ms sleep would be).
type chanDo chan func()

func (c chanDo) do(f func()) { c <- f }

// until runs the calls sent until cond holds (30 s at most).
func (c chanDo) until(b *testing.B, what string, cond func() bool) {
	b.Helper()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for !cond() {
		select {
		case f := <-c:
			f()
		case <-timeout.C:
			b.Fatalf("waited 30 s for %s", what)
		}
	}
}

// drain runs the calls sent so far.
func (c chanDo) drain() {
	for {
		select {
		case f := <-c:
			f()
		default:
			return
		}
	}
}

// benchInit opens the window in English on the demo description, over
// in-memory readers (one card) and fake tokens as newInitStack's (which
// takes a *testing.T; a dry run touches neither), its reader list shown.
// The window's log lines are formatted but discarded.
func benchInit(b *testing.B) (*InitWindow, chanDo) {
	b.Helper()
	b.Cleanup(func() {
		if err := loadTranslations(); err != nil {
			b.Error(err)
		}
	})
	for k, v := range map[string]string{"LANGUAGE": "", "LC_ALL": "en", "LC_MESSAGES": "", "LANG": "en"} {
		b.Setenv(k, v)
	}
	if err := loadTranslations(); err != nil {
		b.Fatal(err)
	}
	logger, logOut, logFlags := slog.Default(), log.Writer(), log.Flags()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.Cleanup(func() {
		slog.SetDefault(logger)
		log.SetOutput(logOut)
		log.SetFlags(logFlags)
	})

	card := memcard.New(memcard.Config{Serial: []byte{0xC0, 0xDE, 0x00, 0x01}})
	engine := &cardinit.Engine{Runner: &runner.Runner{
		Engine: &runner.Engine{Readers: runnertest.NewMemReaders(map[string]*memcard.Card{"R0": card})},
		Deps:   runner.Deps{Tokens: &runnertest.FakeTokens{Modules: []string{demoModule}, StandIn: true}, Profiles: runner.CPF{}},
	}}
	a := test.NewTempApp(b)
	q := make(chanDo, 1024)
	w, err := openInit(a, InitOptions{Open: filepath.Join(demoDir, "demo.dsc"), Poll: time.Hour,
		Engine: func(p prompt.Prompter) (*cardinit.Engine, error) {
			engine.Runner.Engine.Prompter = p
			return engine, nil
		}}, q.do)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		w.stop()
		q.drain()
	})
	if w.doc == nil || !w.doc.Runnable() {
		b.Fatalf("the demo did not open: %q", w.docErr.Text)
	}
	q.until(b, "the reader list", func() bool { return len(w.readers) > 0 })
	w.win.Canvas().Capture() // the window drawn once, as it is on the screen
	return w, q
}

// BenchmarkInitOpen is "open a description → form shown": InitWindow.open
// of the demo description in a window that shows it already (Open… or
// Recent again) — cardinit.Open (BenchmarkOpenDemo in cardinit: reading,
// checking), the log line, the diagnostics hidden, the old form's secrets
// cleared, the new form's widgets made, the result cleared, the cursor put
// in the first field, the buttons updated; until=painted adds the window's
// next paint. Caches warmed by the first open (fonts, text sizes, theme
// icons) stay warm: a process's first open costs more, which
// BenchmarkInitWindow's exec → mapped includes.
func BenchmarkInitOpen(b *testing.B) {
	path := filepath.Join(demoDir, "demo.dsc")
	for _, paint := range []bool{false, true} {
		name := "until=shown"
		if paint {
			name = "until=painted"
		}
		b.Run(name, func(b *testing.B) {
			w, _ := benchInit(b)
			b.ReportAllocs()
			for b.Loop() {
				w.open(path)
				if paint {
					w.win.Canvas().Capture()
				}
			}
			if len(w.fields) != 5 || w.docErr.Visible() {
				b.Fatalf("%d fields, error %q", len(w.fields), w.docErr.Text)
			}
		})
	}
}

// BenchmarkInitDryRun is "dry run of the demo profile → transcript shown":
// the form filled once with the demo job's values (demo-job.json), then
// each iteration InitWindow.start(true) — the form's values read, the job
// made and validated by the runner — the dry run on its goroutine
// (cardinit.Engine.DryRun: runner.DryRun on a new in-memory card), its
// progress and its end coming back through the do-queue, until dryDone has
// put the steps and the transcript grid into the window; until=painted adds
// the window's next paint. The runner's part alone is runner's
// BenchmarkDryRunDemo.
func BenchmarkInitDryRun(b *testing.B) {
	for _, paint := range []bool{false, true} {
		name := "until=shown"
		if paint {
			name = "until=painted"
		}
		b.Run(name, func(b *testing.B) {
			w, q := benchInit(b)
			values := map[string]string{"PIN_FIELD": demoPIN, "PUK_FIELD": demoPUK, "CARD_SERIAL": "CW-0042", "TOKEN_LABEL": "cardwright demo 1"}
			for _, f := range w.fields {
				if v := values[f.f.Name]; v != "" {
					test.Type(f.entry, v)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if !w.start(true) {
					b.Fatalf("the dry run did not start: %q %q", w.formErr.Text, visibleTexts(w.formBox))
				}
				q.until(b, "the dry run's end", func() bool { return w.job == nil })
				if paint {
					w.win.Canvas().Capture()
				}
			}
			if len(w.transcript) == 0 || !w.resultBox.Visible() {
				b.Fatalf("no transcript shown: %q", visibleTexts(w.resultBox))
			}
		})
	}
}

// BenchmarkInitPaint is one Capture of the demo's window, unchanged, by
// the test driver's software painter: the fixed cost the until=painted
// figures above carry (it draws every rounded rectangle and glyph on the
// CPU), to subtract from them. It says nothing about the GL driver's
// frame.
func BenchmarkInitPaint(b *testing.B) {
	w, _ := benchInit(b)
	b.ReportAllocs()
	for b.Loop() {
		w.win.Canvas().Capture()
	}
}
