package main

// batch.go: `cardwright batch` (spec/station.md "Batch"), wiring package
// batch to the PC/SC readers, the runner and the station's audit log.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/cardwright/cardwright/audit"
	"github.com/cardwright/cardwright/batch"
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/pcscreaders"
	"golang.org/x/term"
)

var batchCmd = &command{
	name:    "batch",
	args:    "--dsc FILE --records FILE [flags]",
	summary: "encode a stack of cards, one record per card, on all readers in parallel",
	detail:  batchDetail,
}

func init() {
	batchCmd.run = runBatch
	register(batchCmd)
}

const batchDetail = `Runs the encoding description once per record of the records file, each
record on a card of its own, one worker per reader: a worker waits for a
card (asking for it on the terminal), runs the next record on it and waits
for the card to be taken out. Every record is validated before the first
card is touched.

Records: CSV (FILE.csv) with a header row of field names, or JSON lines
(any other name) of objects whose values are strings.

The results file (default: the records file + .results.jsonl) is also the
batch's journal, one line fsynced per event: run the same command again
after a crash, a kill or a power loss and the batch goes on where it
stopped. Records done are not run again and the cards used are refused; a
record started and never done is reported as interrupted, with its card's
serial, and is not run again unless --retry-interrupted (on a new card).
A record that failed before its card was written to (no card, busy,
reader unavailable, card not found or ambiguous, an invalid field, a
failure while selecting or validating: a card swapped after the batch read
it) is run again with --retry-failed, on a new card. No PIN and no secret
output is written to it. Every job also goes to the station's audit log
([log] audit), before its result goes to the results file. One batch at a
time may use a results file.

Each step's timeout is learned per card model (pace.json beside the
journal, as encode and serve), which also gives the ETA before the first
card is done.

Ctrl-C finishes the cards being encoded, then stops; a second Ctrl-C
cancels them (their records end "cancelled" and are not run again: check
those cards).

Exit status: 0 every record done and ok, 1 a record failed, was interrupted
or is left to do, 2 usage.`

func runBatch(ctx context.Context, env *cmdEnv, args []string) int {
	fs := batchCmd.flags(env)
	var (
		dscFile  = fs.String("dsc", "", "encoding description `FILE` (.dsc; its .cpf/.apdu files beside it) or .dsz")
		recFile  = fs.String("records", "", "records `FILE`: .csv with a header row, or JSON lines")
		results  = fs.String("results", "", "results `FILE` (default: the records file + .results.jsonl)")
		cfgFile  = fs.String("config", "", "configuration `FILE` (default: $"+config.EnvVar+", then the standard locations)")
		retry    = fs.Bool("retry-interrupted", false, "encode the records an earlier run left interrupted again, on new cards")
		retryF   = fs.Bool("retry-failed", false, "encode the records an earlier run failed before writing to their card again, on new cards")
		readerNs multiFlag
	)
	fs.Var(&readerNs, "reader", "reader `NAME` to use (repeatable; default: every reader not skipped)")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *dscFile == "" || *recFile == "" {
		return fs.usageError("--dsc and --records are required")
	}
	if *results == "" {
		*results = *recFile + ".results.jsonl"
	}
	fail := func(err error) int {
		fmt.Fprintf(env.stderr, "cardwright batch: %v\n", err)
		return exitFailure
	}

	job, err := batchJob(*dscFile)
	if err != nil {
		return fail(err)
	}
	src, err := os.ReadFile(*recFile)
	if err != nil {
		return fail(err)
	}
	recs, err := batch.ReadRecords(*recFile, src)
	if err != nil {
		return fail(err)
	}
	cfg, err := config.Load(*cfgFile)
	if err != nil {
		return fail(err)
	}
	readers := pcscreaders.New(nil)
	defer readers.Close()
	// No local dialogs: workers run in parallel, and a job needing one is
	// refused by the validation below (prompt_unavailable).
	r, err := newRunner(cfg, readers, nil, nil)
	if err != nil {
		return fail(err)
	}
	// Learned step timeouts and ETAs, as encode and serve have them.
	book, err := openPace(env, cfg)
	if err != nil {
		return fail(err)
	}
	if book.Discarded != nil {
		fmt.Fprintf(env.stderr, "cardwright batch: warning: %v\n", book.Discarded)
	}
	defer book.Save()
	r.Engine.Pace = book
	if err := batch.Validate(r, *job, *recFile, recs); err != nil {
		return fail(err)
	}
	names, err := batchReaders(ctx, readers, cfg, readerNs)
	if err != nil {
		return fail(err)
	}
	auditLog, err := openAuditLog(env, cfg) // audit.go: [log] audit, or beside the journal
	if err != nil {
		return fail(err)
	}
	if auditLog != nil {
		defer auditLog.Close()
	}
	desc := job.Description
	if job.DSZ != nil {
		desc = job.DSZ
	}
	journal, state, err := batch.OpenJournal(*results, batch.Entry{Records: audit.Digest(src), Description: audit.Digest(desc), Total: len(recs)})
	if err != nil {
		return fail(err)
	}
	defer journal.Close()
	for _, e := range sortedEntries(state.Interrupted) {
		then := "it is not encoded again"
		if *retry {
			then = "it is encoded again on a new card"
		}
		fmt.Fprintf(env.stderr, "record %d was interrupted on card %s in %q (started %s): check that card; %s\n",
			e.Record, e.Serial, e.Reader, e.Time.Local().Format("2006-01-02 15:04:05"), then)
	}
	if len(state.Done) > 0 {
		fmt.Fprintf(env.stderr, "resuming %s: %d of %d records done\n", *results, len(state.Done), len(recs))
	}

	b := &batch.Batch{Runner: r, Readers: readers, Job: *job, Records: recs, Journal: journal, State: state,
		ReaderNames: names, RetryInterrupted: *retry, RetryFailed: *retryF}
	if auditLog != nil {
		b.Audit = auditLog
	}
	var bar *batch.Bar
	if f, ok := env.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = batch.NewBar(f, len(recs), len(state.Done))
		b.Display = bar
	} else {
		b.Display = &batch.Lines{W: env.stderr}
	}
	fmt.Fprintf(env.stderr, "encoding %d records in %s\n", len(recs), strings.Join(quoteAll(names), ", "))
	cards, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stopped := batchSignals(ctx, env, b, cancel)
	st, runErr := b.Run(cards)
	stopped()
	if bar != nil {
		bar.Close()
	}
	return batchSummary(env.stdout, *results, recs, state, st, runErr)
}

// batchJob is the job template of --dsc: a .dsz, or a .dsc with its
// folder as the files, as encode opens them.
func batchJob(path string) (*runner.Job, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	job := &runner.Job{Name: filepath.Base(path)}
	if strings.EqualFold(filepath.Ext(path), ".dsz") {
		job.DSZ = b
	} else {
		job.Description, job.Files = b, os.DirFS(filepath.Dir(path))
	}
	return job, nil
}

// batchReaders are the readers named, each of which must exist, or every
// reader the configuration does not skip.
func batchReaders(ctx context.Context, readers runner.Readers, cfg *config.Config, want []string) ([]string, error) {
	l, err := readers.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the readers: %w", err)
	}
	var all []string
	for _, r := range l {
		all = append(all, r.Name)
	}
	if len(want) > 0 {
		for _, w := range want {
			if !slices.Contains(all, w) {
				return nil, fmt.Errorf("reader %q not found (readers: %s)", w, strings.Join(quoteAll(all), ", "))
			}
		}
		return slices.Compact(slices.Sorted(slices.Values(want))), nil
	}
	var out []string
	for _, n := range all {
		if !cfg.SkipReader(n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no reader to encode in (all skipped, or none connected)")
	}
	sort.Strings(out)
	return out, nil
}

var _ batch.AuditLog = (*audit.Log)(nil)

// batchSignals is the operator's Ctrl-C (or SIGTERM): the first stops b
// from starting a new card; the second calls cancel, which ends the cards
// running. Signals are counted here: main's context (which ends on the
// first, and stops b too) cannot see a second. The returned function ends
// the watch.
func batchSignals(ctx context.Context, env *cmdEnv, b *batch.Batch, cancel context.CancelFunc) (stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		ended := ctx.Done()
		for n := 0; ; {
			select {
			case <-ended:
				b.Stop()
				ended = nil
			case <-sigs:
				if n++; n > 1 {
					cancel()
					return
				}
				b.Stop()
				fmt.Fprintln(env.stderr, "stopping: the cards in the readers are finished first; Ctrl-C again cancels them")
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

func sortedEntries(m map[int]*batch.Entry) []*batch.Entry {
	out := make([]*batch.Entry, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Record < out[j].Record })
	return out
}

// batchSummary prints the end of the batch and returns the exit status.
func batchSummary(w io.Writer, results string, recs []batch.Record, state *batch.State, st batch.Stats, runErr error) int {
	ok, failed := 0, 0
	for _, e := range state.Done {
		if e.OK() {
			ok++
		} else {
			failed++
		}
	}
	var interrupted []*batch.Entry
	for _, e := range sortedEntries(state.Interrupted) {
		if state.Done[e.Record] == nil {
			interrupted = append(interrupted, e)
		}
	}
	left := len(recs) - len(state.Done) - len(interrupted)
	fmt.Fprintf(w, "batch: %d records: %d ok, %d failed, %d interrupted, %d left", len(recs), ok, failed, len(interrupted), left)
	if st.PerHour > 0 {
		fmt.Fprintf(w, " · this run %d cards, %.0f cards/h", st.Done-st.Earlier, st.PerHour)
	}
	fmt.Fprintf(w, "\nresults: %s\n", results)
	for _, e := range sortedEntries(state.Done) {
		switch {
		case e.OK():
		case e.Result == "cancelled":
			fmt.Fprintf(w, "cancelled: record %d (line %d) in %q, card %s, mid-card: check that card; the record is not encoded again\n", e.Record, e.Line, e.Reader, e.Serial)
		case batch.Retryable(e):
			fmt.Fprintf(w, "failed: record %d (line %d) in %q, card %s: %s: %s (nothing was written to the card: --retry-failed encodes the record on a new card)\n", e.Record, e.Line, e.Reader, e.Serial, e.Result, e.Message)
		default:
			fmt.Fprintf(w, "failed: record %d (line %d) in %q, card %s: %s: %s\n", e.Record, e.Line, e.Reader, e.Serial, e.Result, e.Message)
		}
	}
	for _, e := range interrupted {
		fmt.Fprintf(w, "interrupted: record %d (line %d) in %q, card %s: check that card; --retry-interrupted encodes the record again on a new card\n", e.Record, e.Line, e.Reader, e.Serial)
	}
	if runErr != nil {
		fmt.Fprintf(w, "stopped: %v\n", runErr)
	} else if left > 0 {
		fmt.Fprintln(w, "stopped: run the same command again to go on")
	}
	if runErr != nil || failed > 0 || len(interrupted) > 0 || left > 0 {
		return exitFailure
	}
	return exitOK
}
