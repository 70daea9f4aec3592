package batch

// progress.go: what the operator sees (spec/station.md "Batch": a live
// progress display of cards done, failed, per reader, ETA). On a terminal
// one progress bar (github.com/schollz/progressbar/v3) with the counts in
// its description, prompts and failures printed above it; elsewhere (a log,
// a pipe) plain lines only: one per prompt, per card started and per card
// finished.
//
// progressbar/v3 rather than vbauerster/mpb/v8: a batch is one count
// (records done of the total) and the per-reader counts fit on its line;
// mpb's one-bar-per-reader layout brings more dependencies and redraws
// several lines, which hand-fed prompts printed between would tear.

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/cardwright/cardwright/runner"
	"github.com/schollz/progressbar/v3"
)

// Summary is Stats in one line: "12/40 done, 1 failed · own 00: 6, own 01:
// 6 · 480 cards/h · ETA 1m30s".
func (s Stats) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d done, %d failed", s.Done, s.Total, s.Failed)
	if len(s.Reader) > 0 {
		names := make([]string, 0, len(s.Reader))
		for n := range s.Reader {
			names = append(names, n)
		}
		sort.Strings(names)
		b.WriteString(" ·")
		for i, n := range names {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, " %s: %d", n, s.Reader[n])
		}
	}
	if s.PerHour > 0 {
		fmt.Fprintf(&b, " · %.0f cards/h", s.PerHour)
	}
	if s.ETAKnown {
		fmt.Fprintf(&b, " · ETA %s", s.ETA.Round(time.Second))
	} else if s.Done < s.Total {
		b.WriteString(" · ETA …")
	}
	return b.String()
}

// Lines is a Display writing plain lines, for a log or a pipe.
type Lines struct{ W io.Writer }

// Prompt implements Display.
func (l *Lines) Prompt(reader, msg string) { fmt.Fprintln(l.W, msg) }

// Started implements Display.
func (l *Lines) Started(reader string, record int, serial string, s Stats) {
	fmt.Fprintf(l.W, "record %d started in %q (card %s)\n", record, reader, orNone(serial))
}

// Progress implements Display: nothing, a line per step would drown the
// cards.
func (l *Lines) Progress(runner.Progress, Stats) {}

// Finished implements Display.
func (l *Lines) Finished(e *Entry, s Stats) {
	fmt.Fprintf(l.W, "record %d %s in %q (card %s, %.1f s) · %s\n", e.Record, result(e), e.Reader, orNone(e.Serial), e.MS/1000, s.Summary())
}

func result(e *Entry) string {
	if e.OK() {
		return "ok"
	}
	return fmt.Sprintf("failed: %s: %s", e.Result, e.Message)
}

func orNone(serial string) string {
	if serial == "" {
		return "without serial"
	}
	return serial
}

// Bar is a Display for a terminal: a progress bar of records done.
type Bar struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

// NewBar returns a bar on w (a terminal) for total records, done of them
// done already.
func NewBar(w io.Writer, total, done int) *Bar {
	b := &Bar{w: w, bar: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(false), // the batch's ETA is in the description
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetWidth(20),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionThrottle(100*time.Millisecond),
	)}
	b.bar.Set(done)
	return b
}

// above prints a line above the bar.
func (b *Bar) above(format string, a ...any) {
	b.bar.Clear()
	fmt.Fprintf(b.w, format+"\n", a...)
	b.bar.RenderBlank()
}

// Prompt implements Display.
func (b *Bar) Prompt(reader, msg string) { b.above("%s", msg) }

// Started implements Display.
func (b *Bar) Started(reader string, record int, serial string, s Stats) {
	b.bar.Describe(s.Summary())
}

// Progress implements Display.
func (b *Bar) Progress(p runner.Progress, s Stats) {
	b.bar.Describe(fmt.Sprintf("%s · %s: %s", s.Summary(), p.Reader, p.Step))
}

// Finished implements Display: failures stay on the screen above the bar.
func (b *Bar) Finished(e *Entry, s Stats) {
	if !e.OK() {
		b.above("record %d %s in %q (card %s)", e.Record, result(e), e.Reader, orNone(e.Serial))
	}
	b.bar.Describe(s.Summary())
	b.bar.Set(s.Done)
}

// Close ends the bar's line.
func (b *Bar) Close() {
	b.bar.Exit()
	fmt.Fprintln(b.w)
}
