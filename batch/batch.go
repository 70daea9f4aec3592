package batch

// batch.go: the scheduler (spec/station.md "Batch"): one worker per reader
// waits for a card, takes the next record, runs it, writes the result and
// waits for the card to leave.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/audit"
	"github.com/cardwright/cardwright/jobrecord"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/secret"
)

// AuditLog keeps the station's audit log: Append returns once the record
// is durable (audit.Log).
type AuditLog interface {
	Append(rec *audit.Record) error
}

// unreadableTries is how many times in a row a card's serial may fail to
// read before the operator is asked to take the card out.
const unreadableTries = 3

// Runner is what a batch needs of runner.Runner.
type Runner interface {
	Run(ctx context.Context, job *runner.Job, progress func(runner.Progress)) runner.Result
	Validate(job *runner.Job) error
}

// Display shows a batch's progress. Its methods are called from the
// workers, one at a time.
type Display interface {
	// Prompt asks the operator to act on a reader ("insert the next card").
	Prompt(reader, msg string)
	// Started: a record began on a reader's card.
	Started(reader string, record int, serial string, s Stats)
	// Progress is a step of a running record.
	Progress(p runner.Progress, s Stats)
	// Finished: a record ended (e.Result "ok" or an error code).
	Finished(e *Entry, s Stats)
}

// Stats is the batch so far.
type Stats struct {
	Total   int            // records in the file
	Done    int            // records done, this run and before (ok or failed)
	Failed  int            // of Done, those that failed
	Earlier int            // of Done, those done by runs before this one
	Reader  map[string]int // records done by this run, per reader
	Running int
	// PerHour is this run's cards per hour; ETA the time left, from the
	// mean card cycle of each reader so far (or, before the first card,
	// from the running card's learned ETA). ETAKnown is false when neither
	// is known.
	PerHour  float64
	ETA      time.Duration
	ETAKnown bool
}

// Batch is one run over a records file.
type Batch struct {
	Runner  Runner
	Readers runner.Readers
	// Job is the template of every record's job: the description and its
	// files (Name, Description or DSZ, Files). Fields and Reader are set
	// per record.
	Job     runner.Job
	Records []Record
	Journal *Journal
	State   *State
	// ReaderNames are the readers to use, one worker each.
	ReaderNames []string
	// Audit, if set, keeps every record's job in the station's audit log
	// (jobrecord.New with via "batch"), and each record a resume finds
	// interrupted (result "interrupted").
	Audit   AuditLog
	Display Display
	// RetryInterrupted runs the records an earlier run left interrupted
	// again, on new cards.
	RetryInterrupted bool
	// RetryFailed runs the records an earlier run failed before writing
	// to the card (Retryable) again, on new cards.
	RetryFailed bool
	Poll        time.Duration // reader polling; 0 is 100 ms

	mu       sync.Mutex
	next     int // index into queue
	queue    []*Record
	stats    Stats
	start    time.Time
	cycles   map[string][]time.Duration
	progress map[string]runner.Progress
	fatal    error

	stopMu   sync.Mutex // not mu: Stop may be called from a Display method
	stopped  bool
	stopSoft context.CancelFunc
}

// Stop asks the batch to start no new card: the cards running finish, then
// Run returns (the operator's first Ctrl-C). Cancelling Run's context
// instead ends the running cards too (the second). Safe to call at any
// time, from any goroutine, more than once.
func (b *Batch) Stop() {
	b.stopMu.Lock()
	defer b.stopMu.Unlock()
	b.stopped = true
	if b.stopSoft != nil {
		b.stopSoft()
	}
}

// Validate checks every record against the description before any card
// I/O: the runner validates the job with each record's values, so a record
// missing a field the description needs, or with a value it refuses, is
// reported as file:line. A description that does not check is reported
// once.
func Validate(r Runner, tmpl runner.Job, recordsFile string, recs []Record) error {
	var errs ErrorList
	for i := range recs {
		job := tmpl
		job.Fields = recs[i].Fields
		err := r.Validate(&job)
		if err == nil {
			continue
		}
		var f *runner.Failure
		if i == 0 && errors.As(err, &f) && f.Code != api.CodeInvalidField {
			return fmt.Errorf("validating the description with record 1: %w", err)
		}
		errs = append(errs, &Error{File: recordsFile, Line: recs[i].Line, Msg: fmt.Sprintf("record %d: %v", recs[i].N, err)})
	}
	return errs.err()
}

// Run encodes the records not done yet until all are done, Stop is called
// (the cards running are finished first) or ctx ends (the cards running
// end too: their records are done with result cancelled, never encoded
// again). Records a run before this one left interrupted are first marked
// so, in the audit log and then in the results file. It returns the final
// Stats, and an error when the batch could not go on (a reader gone, the
// results file or the audit log not writable).
func (b *Batch) Run(ctx context.Context) (Stats, error) {
	if b.Poll == 0 {
		b.Poll = 100 * time.Millisecond
	}
	if len(b.ReaderNames) == 0 {
		return Stats{}, errors.New("no reader to encode in")
	}
	b.start = time.Now()
	b.cycles = map[string][]time.Duration{}
	b.progress = map[string]runner.Progress{}
	b.stats = Stats{Total: len(b.Records), Reader: map[string]int{}}
	if err := b.markInterrupted(); err != nil {
		return b.stats, err
	}
	for _, e := range b.State.Done {
		if b.RetryFailed && Retryable(e) {
			continue // in the queue below
		}
		b.stats.Done++
		b.stats.Earlier++
		if !e.OK() {
			b.stats.Failed++
		}
	}
	for i := range b.Records {
		r := &b.Records[i]
		if e := b.State.Done[r.N]; e != nil && !(b.RetryFailed && Retryable(e)) {
			continue
		}
		if b.State.Interrupted[r.N] != nil && b.State.Done[r.N] == nil && !b.RetryInterrupted {
			continue
		}
		b.queue = append(b.queue, r)
	}
	// soft ends the waits for cards (Stop, a fatal error); ctx, the cards.
	soft, stop := context.WithCancel(ctx)
	defer stop()
	b.stopMu.Lock()
	b.stopSoft = stop
	if b.stopped {
		stop()
	}
	b.stopMu.Unlock()
	var wg sync.WaitGroup
	for _, name := range b.ReaderNames {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.work(soft, ctx, name); err != nil {
				b.mu.Lock()
				if b.fatal == nil {
					b.fatal = err
				}
				b.mu.Unlock()
				stop()
			}
		}()
	}
	wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.statsLocked(), b.fatal
}

// markInterrupted writes what a resume found: each record started and
// never done by a run before this one goes to the audit log (result
// interrupted) and then gets its "interrupted" line. A crash between the
// two leaves the record started only, so the next resume records it again:
// the audit log may hold it twice, never not at all.
func (b *Batch) markInterrupted() error {
	var found []*Entry
	for _, e := range b.State.Interrupted {
		if e.Event == EventStarted {
			found = append(found, e)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Record < found[j].Record })
	for _, e := range found {
		now := time.Now()
		if b.Audit != nil {
			serial, _ := hex.DecodeString(e.Serial)
			res := &runner.Result{Reader: e.Reader, Serial: serial,
				Err: &api.JobError{Code: api.CodeInterrupted, Message: "the batch stopped mid-card"}}
			if err := b.Audit.Append(jobrecord.New("batch", "", fmt.Sprint(e.Record), &b.Job, res, e.Time, now)); err != nil {
				return fmt.Errorf("writing the audit record of interrupted record %d: %w", e.Record, err)
			}
		}
		ie := *e
		ie.Event, ie.Time = EventInterrupted, now.UTC()
		if err := b.Journal.Write(&ie); err != nil {
			return err
		}
		b.State.Interrupted[e.Record] = &ie
	}
	return nil
}

// errNoRecords ends a worker's wait: every record is taken.
var errNoRecords = errors.New("no records left")

// work is one reader's loop. soft ends its waits and keeps it from taking
// a new card; ctx is the running card's.
func (b *Batch) work(soft, ctx context.Context, reader string) error {
	for {
		if b.left() == 0 {
			return nil
		}
		cycle := time.Now()
		serial, err := b.waitCard(soft, reader)
		if err != nil {
			if soft.Err() != nil || errors.Is(err, errNoRecords) {
				return nil
			}
			return err
		}
		if soft.Err() != nil {
			return nil // stopped: no new card
		}
		rec := b.take()
		if rec == nil {
			return nil
		}
		if err := b.encode(ctx, reader, rec, serial, cycle); err != nil {
			return err
		}
		if b.left() == 0 {
			return nil
		}
		b.display(func(d Display) { d.Prompt(reader, "remove the card from "+quote(reader)) })
		if err := b.waitRemoved(soft, reader); err != nil {
			if soft.Err() != nil || errors.Is(err, errNoRecords) {
				return nil
			}
			return err
		}
	}
}

func quote(s string) string { return `"` + s + `"` }

// left is how many records are still to be taken.
func (b *Batch) left() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue) - b.next
}

func (b *Batch) take() *Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next >= len(b.queue) {
		return nil
	}
	r := b.queue[b.next]
	b.next++
	b.stats.Running++
	return r
}

// waitCard waits for a card in reader that the batch has not used yet and
// returns its serial (nil when the card has none). A used card is refused
// with a prompt to remove it: a card is never encoded twice. A card whose
// serial cannot be read unreadableTries times in a row is asked out too.
func (b *Batch) waitCard(ctx context.Context, reader string) ([]byte, error) {
	asked := false
	failed := 0
	for {
		if b.left() == 0 {
			return nil, errNoRecords
		}
		present, err := b.present(ctx, reader)
		if err != nil {
			return nil, err
		}
		if !present {
			if !asked {
				b.display(func(d Display) { d.Prompt(reader, "insert the next card in "+quote(reader)) })
				asked = true
			}
			if err := sleep(ctx, b.Poll); err != nil {
				return nil, err
			}
			continue
		}
		serial, err := b.serial(ctx, reader)
		if err != nil {
			// Pulled out while being read, or not answering: wait for it
			// to settle; a card that never answers is asked out.
			if failed++; failed >= unreadableTries {
				b.display(func(d Display) { d.Prompt(reader, "cannot read the card in "+quote(reader)+": remove it") })
				if err := b.waitRemoved(ctx, reader); err != nil {
					return nil, err
				}
				failed, asked = 0, false
				continue
			}
			if err := sleep(ctx, b.Poll); err != nil {
				return nil, err
			}
			continue
		}
		failed = 0
		hexSerial := fmt.Sprintf("%X", serial)
		b.mu.Lock()
		n, used := b.State.Serials[hexSerial]
		b.mu.Unlock()
		if len(serial) > 0 && used {
			b.display(func(d Display) {
				d.Prompt(reader, fmt.Sprintf("the card in %s (serial %s) was used for record %d: remove it", quote(reader), hexSerial, n))
			})
			if err := b.waitRemoved(ctx, reader); err != nil {
				return nil, err
			}
			asked = false
			continue
		}
		return serial, nil
	}
}

// waitRemoved waits until reader holds no card, or no record is left.
func (b *Batch) waitRemoved(ctx context.Context, reader string) error {
	for {
		if b.left() == 0 {
			return errNoRecords
		}
		present, err := b.present(ctx, reader)
		if err != nil {
			return err
		}
		if !present {
			return nil
		}
		if err := sleep(ctx, b.Poll); err != nil {
			return err
		}
	}
}

func (b *Batch) present(ctx context.Context, reader string) (bool, error) {
	l, err := b.Readers.List(ctx)
	if err != nil {
		return false, fmt.Errorf("listing the readers: %w", err)
	}
	for _, r := range l {
		if r.Name == reader {
			return r.Present, nil
		}
	}
	return false, fmt.Errorf("reader %q: not found (unplugged?)", reader)
}

// serial reads the ICCSN of the card in reader, as the runner does at a
// job's start.
func (b *Batch) serial(ctx context.Context, reader string) ([]byte, error) {
	c, err := b.Readers.Connect(ctx, reader)
	if err != nil {
		return nil, fmt.Errorf("connecting to the card in %q: %w", reader, err)
	}
	defer c.Close()
	s, err := c.Serial()
	if err != nil {
		return nil, fmt.Errorf("reading the serial of the card in %q: %w", reader, err)
	}
	return s, nil
}

// encode runs rec on the card in reader (the card whose serial the batch
// read: the runner refuses another one, card_changed). "started" is
// durable before the card is touched; after it, the audit record, then
// "done": a crash between the two leaves the record interrupted, which
// the resume records in the audit log again.
func (b *Batch) encode(ctx context.Context, reader string, rec *Record, serialBytes []byte, cycle time.Time) error {
	started := time.Now()
	serial := fmt.Sprintf("%X", serialBytes)
	se := &Entry{Event: EventStarted, Time: started.UTC(), Record: rec.N, Line: rec.Line, Reader: reader, Serial: serial}
	if err := b.Journal.Write(se); err != nil {
		return err
	}
	b.mu.Lock()
	if serial != "" {
		b.State.Serials[serial] = rec.N
	}
	st := b.statsLocked()
	b.mu.Unlock()
	b.display(func(d Display) { d.Started(reader, rec.N, serial, st) })

	job := b.Job
	job.Fields = make(map[string]secret.Value, len(rec.Fields))
	for k, v := range rec.Fields {
		job.Fields[k] = secret.FromBytes(v.Bytes())
	}
	job.Reader, job.ExpectSerial = reader, serialBytes
	// ctx ends only on the operator's second Ctrl-C: Stop lets a running
	// card finish.
	res := b.Runner.Run(ctx, &job, func(p runner.Progress) {
		b.mu.Lock()
		b.progress[reader] = p
		st := b.statsLocked()
		b.mu.Unlock()
		b.display(func(d Display) { d.Progress(p, st) })
	})
	for _, v := range job.Fields {
		v.Wipe()
	}
	for _, v := range res.Secrets {
		v.Wipe()
	}
	finished := time.Now()

	de := &Entry{Event: EventDone, Time: finished.UTC(), Record: rec.N, Line: rec.Line, Reader: reader,
		Serial: fmt.Sprintf("%X", res.Serial), Result: "ok", MS: jobrecord.MS(finished.Sub(started)),
		Fields: outputs(rec, res.Fields)}
	if de.Serial == "" {
		de.Serial = serial
	}
	de.Steps = jobrecord.Steps(res.Steps)
	if res.Err != nil {
		de.Result, de.Message, de.Step = string(res.Err.Code), res.Err.Message, res.Err.Step
	}
	var auditErr error
	if b.Audit != nil {
		if err := b.Audit.Append(jobrecord.New("batch", "", fmt.Sprint(rec.N), &job, &res, started, finished)); err != nil {
			// A station reports no job it cannot prove: the batch stops.
			// The record is done all the same (its card is written).
			auditErr = fmt.Errorf("writing the audit record of record %d: %w; its result is in the results file %s but not in the audit log", rec.N, err, b.Journal.Path())
		}
	}
	if err := b.Journal.Write(de); err != nil {
		return errors.Join(auditErr, err)
	}
	b.mu.Lock()
	b.State.Done[rec.N] = de
	if de.Serial != "" {
		b.State.Serials[de.Serial] = rec.N
	}
	b.stats.Running--
	b.stats.Done++
	if !de.OK() {
		b.stats.Failed++
	}
	b.stats.Reader[reader]++
	b.cycles[reader] = append(b.cycles[reader], finished.Sub(cycle))
	delete(b.progress, reader)
	st = b.statsLocked()
	b.mu.Unlock()
	b.display(func(d Display) { d.Finished(de, st) })
	return auditErr
}

// outputs are the plain result fields a results file may hold: not a value
// the record gave and the job handed back unchanged (it may be a PIN).
func outputs(rec *Record, fields map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range fields {
		given := false
		for rk, rv := range rec.Fields {
			if strings.EqualFold(rk, k) && !rv.IsZero() && rv.Reveal() == v {
				given = true
			}
		}
		if !given {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// statsLocked computes Stats; b.mu held.
func (b *Batch) statsLocked() Stats {
	s := b.stats
	s.Reader = make(map[string]int, len(b.stats.Reader))
	for k, v := range b.stats.Reader {
		s.Reader[k] = v
	}
	now := time.Since(b.start)
	thisRun := s.Done - s.Earlier
	if thisRun > 0 && now > 0 {
		s.PerHour = float64(thisRun) / now.Hours()
	}
	remaining := len(b.queue) - thisRun // interrupted records not retried are not in the queue
	// Each reader's rate is one card per its mean cycle; readers without a
	// finished card yet count at the mean of the others.
	var rate float64 // cards per second
	known := 0
	for _, c := range b.cycles {
		var sum time.Duration
		for _, d := range c {
			sum += d
		}
		if sum > 0 {
			rate += float64(len(c)) / sum.Seconds()
			known++
		}
	}
	switch {
	case remaining <= 0:
		s.ETA, s.ETAKnown = 0, true
	case known > 0:
		rate *= float64(len(b.ReaderNames)) / float64(known)
		s.ETA, s.ETAKnown = time.Duration(float64(remaining)/rate*float64(time.Second)), true
	default:
		// Before the first card: the runner's learned ETA of a running
		// card, for every round of cards still to come.
		for _, p := range b.progress {
			if p.ETAKnown {
				rounds := (remaining + len(b.ReaderNames) - 1) / len(b.ReaderNames)
				s.ETA, s.ETAKnown = p.ETA*time.Duration(rounds), true
				break
			}
		}
	}
	return s
}

func (b *Batch) display(f func(Display)) {
	if b.Display == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f(b.Display)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
