package batch_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cardwright/cardwright/audit"
	"github.com/cardwright/cardwright/batch"
	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/runnertest"
	"github.com/cardwright/cardwright/secret"
)

// rig is two in-memory readers, the runner over them with the batch test
// description (testdata/batch), and an operator who swaps cards when asked.
type rig struct {
	t       *testing.T
	readers *runnertest.MemReaders
	run     *runner.Runner
	job     runner.Job
	dir     string

	mu      sync.Mutex
	serial  int
	events  []string
	audited []*audit.Record
	// onStarted, if set, is called as a record starts (under the batch's
	// display lock).
	onStarted func(record int)
	results   string // the results file, once a batch is opened
	auditErr  error  // Append's answer
}

var readerNames = []string{"Reader A", "Reader B"}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, dir: t.TempDir()}
	cards := map[string]*memcard.Card{}
	for _, n := range readerNames {
		cards[n] = r.newCard()
	}
	r.readers = runnertest.NewMemReaders(cards)
	r.run = &runner.Runner{Engine: &runner.Engine{Readers: r.readers}, Deps: runner.Deps{Profiles: runner.CPF{}, Tokens: &runnertest.FakeTokens{}}}
	desc, err := os.ReadFile("../testdata/batch/batch.dsc")
	if err != nil {
		t.Fatal(err)
	}
	r.job = runner.Job{Name: "batch.dsc", Description: desc, Files: os.DirFS("../testdata/batch")}
	return r
}

func (r *rig) newCard() *memcard.Card {
	r.serial++
	return memcard.New(memcard.Config{Serial: []byte{0xBA, 0x7C, byte(r.serial >> 8), byte(r.serial)}})
}

// Prompt plays the operator: a card asked out is pulled, a card asked for
// is a new one.
func (r *rig) Prompt(reader, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "prompt "+msg)
	switch {
	case strings.HasPrefix(msg, "remove the card"), strings.HasSuffix(msg, "remove it"):
		r.readers.Put(reader, nil)
	case strings.HasPrefix(msg, "insert the next card"):
		r.readers.Put(reader, r.newCard())
	}
}

func (r *rig) Started(reader string, record int, serial string, s batch.Stats) {
	r.mu.Lock()
	r.events = append(r.events, fmt.Sprintf("started %d %s %s", record, reader, serial))
	f := r.onStarted
	r.mu.Unlock()
	if f != nil {
		f(record)
	}
}

func (r *rig) Progress(runner.Progress, batch.Stats) {}

func (r *rig) Finished(e *batch.Entry, s batch.Stats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("done %d %s %s", e.Record, e.Result, s.Summary()))
}

// Append keeps the audit record; the results file must not hold the
// record's "done" line yet (the audit record comes first: a crash between
// the two leaves the record interrupted, which a resume audits).
func (r *rig) Append(rec *audit.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.results != "" && rec.Result != "interrupted" {
		// As many done lines of the record as audit records of it before
		// this one (a record --retry-failed runs again has two).
		dones, audits := 0, 0
		for _, e := range entries(r.t, r.results) {
			if e.Event == batch.EventDone && fmt.Sprint(e.Record) == rec.Job {
				dones++
			}
		}
		for _, a := range r.audited {
			if a.Job == rec.Job && a.Result != "interrupted" {
				audits++
			}
		}
		if dones != audits {
			r.t.Errorf("record %s: audited after its done line", rec.Job)
		}
	}
	if r.auditErr != nil {
		return r.auditErr
	}
	r.audited = append(r.audited, rec)
	return nil
}

// records writes n CSV records; each PIN is unique, so a results file
// holding one is caught.
func (r *rig) records(n int) (string, []byte) {
	var b bytes.Buffer
	b.WriteString("HOLDER,PIN_FIELD,PUK_FIELD\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%s,%06d,%08d\n", b64(fmt.Sprintf("Holder %d", i)), 700000+i, 55000000+i)
	}
	path := filepath.Join(r.dir, "cards.csv")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		r.t.Fatal(err)
	}
	return path, b.Bytes()
}

// start opens the journal and returns the batch over the rig.
func (r *rig) batch(path string, src []byte) *batch.Batch {
	r.t.Helper()
	recs, err := batch.ReadRecords(path, src)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := batch.Validate(r.run, r.job, path, recs); err != nil {
		r.t.Fatal(err)
	}
	j, st, err := batch.OpenJournal(path+".results.jsonl", batch.Entry{Records: audit.Digest(src), Description: audit.Digest(r.job.Description), Total: len(recs)})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { j.Close() })
	r.results = path + ".results.jsonl"
	return &batch.Batch{Runner: r.run, Readers: r.readers, Job: r.job, Records: recs, Journal: j, State: st,
		ReaderNames: readerNames, Audit: r, Display: r, Poll: 1}
}

// entries reads the results file back.
func entries(t *testing.T, path string) []batch.Entry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []batch.Entry
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var e batch.Entry
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatalf("results line %q: %v", l, err)
		}
		out = append(out, e)
	}
	return out
}

// TestBatchTwoReaders: every record is done once, on a card of its own,
// on both readers; the results hold the ICCSN read back and no PIN; every
// job is in the audit log.
func TestBatchTwoReaders(t *testing.T) {
	r := newRig(t)
	path, src := r.records(12)
	b := r.batch(path, src)
	st, err := b.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Done != 12 || st.Failed != 0 || st.Reader[readerNames[0]] == 0 || st.Reader[readerNames[1]] == 0 {
		t.Fatalf("stats %+v\nevents:\n%s", st, strings.Join(r.events, "\n"))
	}
	es := entries(t, path+".results.jsonl")
	done := map[int]bool{}
	serials := map[string]int{}
	for _, e := range es {
		if e.Event != batch.EventDone {
			continue
		}
		if done[e.Record] {
			t.Errorf("record %d done twice", e.Record)
		}
		done[e.Record] = true
		if e.Result != "ok" {
			t.Errorf("record %d: %s %s", e.Record, e.Result, e.Message)
		}
		if n, dup := serials[e.Serial]; dup {
			t.Errorf("card %s used for records %d and %d", e.Serial, n, e.Record)
		}
		serials[e.Serial] = e.Record
		if e.Fields["ICCSN"] != e.Serial || e.Serial == "" {
			t.Errorf("record %d: ICCSN %q, card %q", e.Record, e.Fields["ICCSN"], e.Serial)
		}
		if len(e.Steps) == 0 {
			t.Errorf("record %d: no step timing", e.Record)
		}
	}
	if len(done) != 12 {
		t.Errorf("%d records done, want 12", len(done))
	}
	raw, _ := os.ReadFile(path + ".results.jsonl")
	for i := 1; i <= 12; i++ {
		for _, secretVal := range []string{fmt.Sprintf("%06d", 700000+i), fmt.Sprintf("%08d", 55000000+i)} {
			if bytes.Contains(raw, []byte(secretVal)) {
				t.Errorf("the results file holds a PIN or PUK of record %d", i)
			}
		}
	}
	if len(r.audited) != 12 {
		t.Errorf("%d audit records, want 12", len(r.audited))
	}
	for _, a := range r.audited {
		if a.Via != "batch" || a.Job == "" || a.ICCSN == "" || a.Result != "ok" {
			t.Errorf("audit record %+v", a)
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestBatchResume: a batch stopped (Ctrl-C) finishes its running cards; a
// crash leaves a record started and never done and a torn last line; the
// resumed batch reports that record as interrupted, refuses its card, does
// not encode it again and does every other record once; with
// RetryInterrupted a further run encodes it on a new card.
func TestBatchResume(t *testing.T) {
	r := newRig(t)
	path, src := r.records(10)
	results := path + ".results.jsonl"
	b := r.batch(path, src)
	r.onStarted = func(record int) {
		if record == 4 {
			b.Stop()
		}
	}
	st, err := b.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Done < 4 || st.Done >= 10 || st.Running != 0 || st.Failed != 0 {
		t.Fatalf("after Ctrl-C at record 4 (the cards running are finished): %+v", st)
	}
	b.Journal.Close()
	stopped := st.Done

	// The crash: record stopped+1 started on card DEADBEEF, which stays in
	// reader A; the next line was cut off mid-write.
	f, err := os.OpenFile(results, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	lost := stopped + 1
	fmt.Fprintf(f, `{"event":"started","time":"2026-12-06T01:00:00Z","record":%d,"reader":%q,"serial":"DEADBEEF"}`+"\n"+`{"event":"done","rec`, lost, readerNames[0])
	f.Close()
	r.readers.Put(readerNames[0], memcard.New(memcard.Config{Serial: []byte{0xDE, 0xAD, 0xBE, 0xEF}}))

	r.onStarted = nil
	b = r.batch(path, src)
	if e := b.State.Interrupted[lost]; e == nil || e.Serial != "DEADBEEF" {
		t.Fatalf("interrupted records on resume: %+v", b.State.Interrupted)
	}
	st, err = b.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Done != 9 || st.Earlier != stopped {
		t.Errorf("after the resume: %+v", st)
	}
	b.Journal.Close()
	refused := false
	for _, ev := range r.events {
		refused = refused || strings.Contains(ev, "(serial DEADBEEF) was used for record "+fmt.Sprint(lost))
	}
	if !refused {
		t.Errorf("the interrupted card was not refused:\n%s", strings.Join(r.events, "\n"))
	}
	// The interrupted record is in the audit log, once.
	var ia []*audit.Record
	for _, a := range r.audited {
		if a.Result == "interrupted" {
			ia = append(ia, a)
		}
	}
	if len(ia) != 1 || ia[0].Job != fmt.Sprint(lost) || ia[0].ICCSN != "DEADBEEF" || ia[0].Reader != readerNames[0] || ia[0].Via != "batch" {
		t.Errorf("audit records of the interrupted record: %+v", ia)
	}
	checkOnce := func(want int) {
		t.Helper()
		done := map[int]bool{}
		interrupted := 0
		for _, e := range entries(t, results) {
			switch e.Event {
			case batch.EventDone:
				if done[e.Record] {
					t.Errorf("record %d done twice", e.Record)
				}
				done[e.Record] = true
				if e.Serial == "DEADBEEF" {
					t.Errorf("record %d encoded on the interrupted card", e.Record)
				}
			case batch.EventInterrupted:
				interrupted++
				if e.Record != lost || e.Serial != "DEADBEEF" {
					t.Errorf("interrupted line %+v", e)
				}
			}
		}
		if len(done) != want || interrupted != 1 {
			t.Errorf("%d records done (want %d), %d interrupted lines (want 1)", len(done), want, interrupted)
		}
		if want == 9 && done[lost] {
			t.Errorf("the interrupted record %d was encoded again", lost)
		}
	}
	checkOnce(9)

	b = r.batch(path, src)
	b.RetryInterrupted = true
	st, err = b.Run(context.Background())
	if err != nil || st.Done != 10 {
		t.Fatalf("retrying the interrupted record: %+v, %v", st, err)
	}
	checkOnce(10)
	n := 0
	for _, a := range r.audited {
		if a.Result == "interrupted" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d interrupted audit records after a further run, want 1", n)
	}
}

// TestBatchOtherRecords: a results file is not resumed with other records.
func TestBatchOtherRecords(t *testing.T) {
	r := newRig(t)
	path, src := r.records(2)
	r.batch(path, src).Journal.Close()
	_, _, err := batch.OpenJournal(path+".results.jsonl", batch.Entry{Records: audit.Digest([]byte("other")), Description: audit.Digest(r.job.Description)})
	if !errors.Is(err, batch.ErrOtherBatch) {
		t.Fatalf("opening with other records: %v", err)
	}
}

// TestValidateRecords: a record missing a field the description needs,
// or with a value it refuses, is reported at its line before any card
// I/O; a description that does not check is reported once.
func TestValidateRecords(t *testing.T) {
	r := newRig(t)
	src := "HOLDER,PIN_FIELD,PUK_FIELD\n" + b64("A") + ",123456,12345678\n" + b64("B") + ",,12345678\n\n" + b64("C") + ",123456,12345678\n"
	recs, err := batch.ReadRecords("cards.csv", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	err = batch.Validate(r.run, r.job, "cards.csv", recs)
	if err == nil || !strings.HasPrefix(err.Error(), "cards.csv:3: record 2: ") || strings.Contains(err.Error(), "cards.csv:2") {
		t.Fatalf("validating: %v", err)
	}
	jl := `{"HOLDER":"` + b64("A") + `","PUK_FIELD":"12345678"}` + "\n"
	recs, err = batch.ReadRecords("cards.jsonl", []byte(jl))
	if err != nil {
		t.Fatal(err)
	}
	if err := batch.Validate(r.run, r.job, "cards.jsonl", recs); err == nil || !strings.HasPrefix(err.Error(), "cards.jsonl:1: record 1: ") {
		t.Fatalf("validating a record without PIN_FIELD: %v", err)
	}
	bad := r.job
	bad.Description = []byte("[Description]\nFoo=1\n")
	if err := batch.Validate(r.run, bad, "cards.jsonl", recs); err == nil || !strings.Contains(err.Error(), "validating the description") {
		t.Fatalf("validating a broken description: %v", err)
	}
}

// blockingPrompter is a PIN dialog nobody answers: a hung card. It returns
// when the job's context ends.
type blockingPrompter struct{ asked chan string }

func (p *blockingPrompter) Ask(ctx context.Context, r prompt.Request) (prompt.Answer, error) {
	p.asked <- r.Reader
	<-ctx.Done()
	return prompt.Answer{}, ctx.Err()
}

// answer is a PIN dialog that answers at once.
type answer string

func (a answer) Ask(context.Context, prompt.Request) (prompt.Answer, error) {
	return prompt.Answer{PIN: secret.New(string(a))}, nil
}

// TestBatchSecondCtrlC: with both readers' cards hung (a PIN dialog nobody
// answers), the first Ctrl-C (Stop) starts no new card and the second
// (cancelling Run's context) ends the running ones: their records are done
// with result cancelled, card named, in the audit log, and neither a
// resume nor --retry-failed encodes them again (their cards were written
// to).
func TestBatchSecondCtrlC(t *testing.T) {
	r := newRig(t)
	p := &blockingPrompter{asked: make(chan string, 2)}
	r.run.Engine.Prompter = p
	r.job.Description = []byte(strings.Replace(string(r.job.Description), "PIN=PIN_FIELD", "PIN=!FROM_USER_DIALOG_2_FIELD", 1))
	path, src := r.records(4)
	b := r.batch(path, src)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type ran struct {
		st  batch.Stats
		err error
	}
	end := make(chan ran, 1)
	go func() {
		st, err := b.Run(ctx)
		end <- ran{st, err}
	}()
	<-p.asked
	<-p.asked // both cards hang
	b.Stop()
	cancel()
	got := <-end
	if got.err != nil || got.st.Done != 2 || got.st.Failed != 2 || got.st.Running != 0 {
		t.Fatalf("after two Ctrl-Cs: %+v, %v\nevents:\n%s", got.st, got.err, strings.Join(r.events, "\n"))
	}
	b.Journal.Close()
	cancelled := map[int]string{}
	for _, e := range entries(t, r.results) {
		if e.Event == batch.EventDone {
			if e.Result != "cancelled" || e.Serial == "" || batch.Retryable(&e) {
				t.Errorf("done line %+v", e)
			}
			cancelled[e.Record] = e.Serial
		}
	}
	if len(cancelled) != 2 {
		t.Fatalf("cancelled records %v, want the two running", cancelled)
	}
	if len(r.audited) != 2 || r.audited[0].Result != "cancelled" || r.audited[1].Result != "cancelled" {
		t.Errorf("audit records %+v", r.audited)
	}

	// A resume with --retry-failed: the two other records only.
	r.run.Engine.Prompter = answer("123456")
	r.readers.Put(readerNames[0], nil)
	r.readers.Put(readerNames[1], nil)
	b = r.batch(path, src)
	b.RetryFailed = true
	st, err := b.Run(context.Background())
	if err != nil || st.Done != 4 || st.Failed != 2 || st.Earlier != 2 {
		t.Fatalf("resuming: %+v, %v", st, err)
	}
	for _, e := range entries(t, r.results) {
		if e.Event == batch.EventStarted && cancelled[e.Record] != "" && e.Serial != cancelled[e.Record] {
			t.Errorf("cancelled record %d started again on card %s", e.Record, e.Serial)
		}
	}
}

// TestBatchCardSwapped: a card swapped after the batch read its serial is
// refused by the runner (card_changed at select) and left untouched; the
// failure guarantees no card write, so --retry-failed encodes the record
// again, on a new card.
func TestBatchCardSwapped(t *testing.T) {
	r := newRig(t)
	path, src := r.records(3)
	b := r.batch(path, src)
	b.ReaderNames = readerNames[:1]
	swapped := r.newCard()
	swappedSerial := fmt.Sprintf("BA7C%04X", r.serial)
	r.onStarted = func(record int) {
		if record == 2 {
			r.readers.Put(readerNames[0], swapped)
		}
	}
	st, err := b.Run(context.Background())
	if err != nil || st.Done != 3 || st.Failed != 1 {
		t.Fatalf("run: %+v, %v", st, err)
	}
	b.Journal.Close()
	var failed *batch.Entry
	for _, e := range entries(t, r.results) {
		if e.Event == batch.EventDone && e.Record == 2 {
			failed = &e
		}
	}
	if failed == nil || failed.Result != "card_changed" || failed.Step != "select" || !batch.Retryable(failed) {
		t.Fatalf("record 2 on a swapped card: %+v", failed)
	}
	if swapped.Operational() || len(swapped.Transcript()) != 1 {
		t.Errorf("the swapped card was written to: %d APDUs", len(swapped.Transcript()))
	}

	r.onStarted = nil
	b = r.batch(path, src)
	b.ReaderNames = readerNames[:1]
	st, err = b.Run(context.Background())
	if err != nil || st.Done != 3 || st.Failed != 1 || st.Running != 0 {
		t.Fatalf("a resume without --retry-failed: %+v, %v", st, err)
	}
	b.Journal.Close()
	b = r.batch(path, src)
	b.ReaderNames = readerNames[:1]
	b.RetryFailed = true
	st, err = b.Run(context.Background())
	if err != nil || st.Done != 3 || st.Failed != 0 || st.Earlier != 2 {
		t.Fatalf("--retry-failed: %+v, %v", st, err)
	}
	b.Journal.Close()
	var dones []batch.Entry
	for _, e := range entries(t, r.results) {
		if e.Event == batch.EventDone && e.Record == 2 {
			dones = append(dones, e)
		}
	}
	if len(dones) != 2 || !dones[1].OK() || dones[1].Serial == failed.Serial || dones[1].Serial == swappedSerial {
		t.Errorf("record 2's done lines: %+v", dones)
	}
	// The file reads back: a retried record is not "done twice".
	if _, st, err := batch.OpenJournal(r.results, batch.Entry{Records: audit.Digest(src), Description: audit.Digest(r.job.Description)}); err != nil || !st.Done[2].OK() {
		t.Fatalf("reading the results back: %v", err)
	}
}

// TestBatchAuditFails: an audit log that cannot take a record stops the
// batch, saying the record's result is in the results file but not in the
// audit log; the record is done (its card is written) and not encoded
// again.
func TestBatchAuditFails(t *testing.T) {
	r := newRig(t)
	path, src := r.records(4)
	b := r.batch(path, src)
	r.auditErr = errors.New("disk full")
	st, err := b.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "is in the results file "+r.results+" but not in the audit log") {
		t.Fatalf("run: %+v, %v", st, err)
	}
	done := 0
	for _, e := range entries(t, r.results) {
		if e.Event == batch.EventDone {
			done++
		}
	}
	if done == 0 || done != st.Done || done == 4 {
		t.Errorf("%d done lines, stats %+v", done, st)
	}
}

// TestBatchResultsLocked: a second batch on the same results file is
// refused while the first has it open.
func TestBatchResultsLocked(t *testing.T) {
	r := newRig(t)
	path, src := r.records(2)
	b := r.batch(path, src)
	head := batch.Entry{Records: audit.Digest(src), Description: audit.Digest(r.job.Description)}
	if _, _, err := batch.OpenJournal(r.results, head); !errors.Is(err, batch.ErrInUse) || !strings.Contains(err.Error(), r.results) {
		t.Fatalf("a second batch on the file: %v", err)
	}
	b.Journal.Close()
	j, _, err := batch.OpenJournal(r.results, head)
	if err != nil {
		t.Fatalf("after the first closed it: %v", err)
	}
	j.Close()
}

// TestBatchUnreadableCard: a card whose serial cannot be read is asked out
// of its reader after three tries; the reader then goes on with new cards.
func TestBatchUnreadableCard(t *testing.T) {
	r := newRig(t)
	bad := r.newCard()
	bad.FailAfter(0, errors.New("no answer"))
	r.readers.Put(readerNames[0], bad)
	path, src := r.records(6)
	b := r.batch(path, src)
	st, err := b.Run(context.Background())
	if err != nil || st.Done != 6 || st.Failed != 0 {
		t.Fatalf("run: %+v, %v", st, err)
	}
	want := `prompt cannot read the card in "` + readerNames[0] + `": remove it`
	if !slices.Contains(r.events, want) || st.Reader[readerNames[0]] == 0 {
		t.Errorf("no %q, or %q did no card:\n%s", want, readerNames[0], strings.Join(r.events, "\n"))
	}
}
