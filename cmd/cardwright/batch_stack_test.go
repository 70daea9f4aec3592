package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cardwright/cardwright/batch"
	"github.com/cardwright/cardwright/internal/stacktest"
)

// batchOperator plays the operator of `cardwright batch` on the stack's two
// own-card readers: it takes the stack's cards out, and when the batch asks
// for a card it "inserts" a new one (starts bin/vcard on the reader's port
// with a serial never used before); when the batch asks for the card to be
// removed it stops that emulator.
type batchOperator struct {
	t       testing.TB
	s       *stacktest.Stack
	bin     string // cardwright
	vcard   string
	dir     string
	readers []string
	port    map[string]string

	mu     sync.Mutex
	cards  map[string]*exec.Cmd // the card in each reader
	serial int
}

func newBatchOperator(t testing.TB, s *stacktest.Stack, bin string) *batchOperator {
	t.Helper()
	o := &batchOperator{t: t, s: s, bin: bin, vcard: filepath.Join(s.Root, "bin", "vcard"), dir: t.TempDir(),
		port: map[string]string{}, cards: map[string]*exec.Cmd{}}
	if _, err := os.Stat(o.vcard); err != nil {
		t.Fatalf("bin/vcard is missing (make build): %v", err)
	}
	for _, k := range []string{"OWN_1", "OWN_2"} {
		r := s.Get(t, "READER_"+k)
		o.readers = append(o.readers, r)
		o.port[r] = s.Get(t, "PORT_"+k)
		// StopCard puts the stack's card back when the test ends, after
		// the cleanup below has stopped ours (cleanups run last first).
		s.StopCard(t, k)
	}
	cfg := fmt.Sprintf("[readers]\nskip = Virtual PCD vicc .*\n[log]\njournal = %s\naudit = %s\n",
		filepath.Join(o.dir, "journal"), filepath.Join(o.dir, "audit"))
	if err := os.WriteFile(filepath.Join(o.dir, "cardwright.cfg"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return o
}

// insert starts a new card in reader.
func (o *batchOperator) insert(reader string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cards[reader] != nil {
		o.t.Errorf("asked for a card in %q, which holds one", reader)
		return
	}
	o.serial++
	cmd := exec.Command(o.vcard, "--port", o.port[reader], "--serial", fmt.Sprintf("BA7C%010d", o.serial))
	if err := cmd.Start(); err != nil {
		o.t.Errorf("starting bin/vcard: %v", err)
		return
	}
	o.cards[reader] = cmd
}

// remove stops the card in reader.
func (o *batchOperator) remove(reader string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if cmd := o.cards[reader]; cmd != nil {
		cmd.Process.Kill()
		cmd.Wait()
		delete(o.cards, reader)
	}
}

var (
	insertRE  = regexp.MustCompile(`^insert the next card in "(.*)"$`)
	removeRE  = regexp.MustCompile(`^(?:remove the card from "(.*)"|the card in "(.*)" \(serial [0-9A-F]*\) was used for record \d+: remove it)$`)
	startedRE = regexp.MustCompile(`^record (\d+) started in "`)
)

// run runs `cardwright batch` with args to its end, answering its prompts;
// onStarted (if set) is told of each record started and may kill the
// process. It returns the exit code, stdout and stderr.
func (o *batchOperator) run(onStarted func(n int, p *os.Process), args ...string) (int, string, string) {
	o.t.Helper()
	cmd := exec.Command(o.bin, append([]string{"batch", "--config", filepath.Join(o.dir, "cardwright.cfg")}, args...)...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	pr, err := cmd.StderrPipe()
	if err != nil {
		o.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		o.t.Fatal(err)
	}
	var stderr strings.Builder
	sc := bufio.NewScanner(pr)
	started := 0
	for sc.Scan() {
		line := sc.Text()
		stderr.WriteString(line + "\n")
		if m := insertRE.FindStringSubmatch(line); m != nil {
			o.insert(m[1])
		} else if m := removeRE.FindStringSubmatch(line); m != nil {
			o.remove(m[1] + m[2])
		} else if startedRE.MatchString(line) && onStarted != nil {
			started++
			onStarted(started, cmd.Process)
		}
	}
	io.Copy(io.Discard, pr)
	err = cmd.Wait()
	// The operator takes the last cards out, as the next batch would
	// otherwise meet them (encoded already, by a batch it knows nothing of).
	for _, r := range o.readers {
		o.remove(r)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		o.t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// writeRecords writes n CSV records for testdata/batch/batch.dsc.
func writeRecords(t testing.TB, dir, name string, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("HOLDER,PIN_FIELD,PUK_FIELD\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%s,%06d,%08d\n", base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("Holder %d", i))), 400000+i, 66000000+i)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func readResults(t testing.TB, path string) []batch.Entry {
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

var perHourRE = regexp.MustCompile(`this run (\d+) cards, (\d+) cards/h`)

// TestBatchStack: 40 records on the two own-card readers with the real
// binary, SIGKILLed mid-card after 15 records started, resumed (the
// interrupted record reported with its card, not encoded again), then
// finished with --retry-interrupted: 40 records done, each once, on 40
// distinct cards whose serials were read back; each in the audit log. Then
// the same description on one reader and on two, for throughput (logged).
func TestBatchStack(t *testing.T) {
	s := stacktest.Require(t)
	o := newBatchOperator(t, s, desktopBinary(t, s))
	dsc := filepath.Join(s.Root, "testdata", "batch", "batch.dsc")
	recs := writeRecords(t, o.dir, "cards.csv", 40)
	results := recs + ".results.jsonl"
	args := []string{"--dsc", dsc, "--records", recs, "--reader", o.readers[0], "--reader", o.readers[1]}

	killed := false
	code, out, errs := o.run(func(n int, p *os.Process) {
		if n == 16 && !killed {
			killed = true
			p.Signal(syscall.SIGKILL)
		}
	}, args...)
	if !killed || code != -1 {
		t.Fatalf("first run: exit %d, killed %v\nstdout:\n%s\nstderr:\n%s", code, killed, out, errs)
	}
	t.Logf("first run, killed as record 16 started; its last lines:\n%s", lastLines(errs, 4))

	code, out, errs = o.run(nil, args...)
	t.Logf("resumed:\nstdout:\n%s\nstderr (start):\n%s", out, firstLines(errs, 4))
	if code != exitFailure || !strings.Contains(out, "interrupted: record ") || !strings.Contains(errs, "was interrupted on card BA7C") {
		t.Fatalf("resume: exit %d (want 1 with the interrupted record reported)\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	interrupted := map[int]string{}
	for _, e := range readResults(t, results) {
		if e.Event == batch.EventInterrupted {
			interrupted[e.Record] = e.Serial
		}
	}
	if len(interrupted) == 0 || len(interrupted) > 2 {
		t.Fatalf("interrupted records: %v (want the one or two killed mid-card)", interrupted)
	}
	done := checkResults(t, results, interrupted, false)
	if len(done)+len(interrupted) != 40 {
		t.Errorf("after the resume: %d done + %d interrupted, want 40", len(done), len(interrupted))
	}
	// The batch learned the card's step times (learned timeouts, and the
	// ETA before the first card), as encode and serve do.
	checkPaceLearned(t, filepath.Join(o.dir, "journal", "pace.json"))

	code, out, errs = o.run(nil, append(args, "--retry-interrupted")...)
	if code != exitOK {
		t.Fatalf("retrying the interrupted: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	done = checkResults(t, results, interrupted, true)
	if len(done) != 40 {
		t.Errorf("%d records done, want 40", len(done))
	}
	audited, auditedInterrupted := auditBatchRecords(t, filepath.Join(o.dir, "audit"))
	if audited != 40 {
		t.Errorf("%d batch records in the audit log, want 40", audited)
	}
	for n, serial := range interrupted {
		if auditedInterrupted[n] != serial {
			t.Errorf("interrupted record %d (card %s): audited as %q", n, serial, auditedInterrupted[n])
		}
	}

	// Throughput: the same cards on one reader, then on two.
	for _, n := range []int{1, 2} {
		recs := writeRecords(t, o.dir, fmt.Sprintf("tp%d.csv", n), 8)
		a := []string{"--dsc", dsc, "--records", recs}
		for _, r := range o.readers[:n] {
			a = append(a, "--reader", r)
		}
		code, out, errs := o.run(nil, a...)
		if code != exitOK {
			t.Fatalf("%d reader(s): exit %d\n%s\n%s", n, code, out, errs)
		}
		m := perHourRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no cards/h in %q", out)
		}
		t.Logf("throughput on %d reader(s): %s cards/h (8 cards, swaps included)", n, m[2])
	}
}

// checkResults: each record done at most once, each on a card of its own
// (serial read back as ICCSN), the interrupted cards never used again;
// retried says whether the interrupted records may be done (on new cards).
func checkResults(t *testing.T, path string, interrupted map[int]string, retried bool) map[int]bool {
	t.Helper()
	done := map[int]bool{}
	cards := map[string]int{}
	for _, s := range interrupted {
		cards[s] = 0
	}
	for _, e := range readResults(t, path) {
		if e.Event != batch.EventDone {
			continue
		}
		if done[e.Record] {
			t.Errorf("record %d done twice", e.Record)
		}
		done[e.Record] = true
		if e.Result != "ok" {
			t.Errorf("record %d: %s: %s", e.Record, e.Result, e.Message)
		}
		if _, ok := interrupted[e.Record]; ok && !retried {
			t.Errorf("interrupted record %d encoded again without --retry-interrupted", e.Record)
		}
		if n, used := cards[e.Serial]; used {
			t.Errorf("card %s used for record %d, already used (record %d; 0: an interrupted one)", e.Serial, e.Record, n)
		}
		cards[e.Serial] = e.Record
		if !strings.HasPrefix(e.Serial, "BA7C") || e.Fields["ICCSN"] != e.Serial {
			t.Errorf("record %d: card %q, ICCSN read back %q", e.Record, e.Serial, e.Fields["ICCSN"])
		}
	}
	return done
}

// auditBatchRecords counts the batch's ok records in an audit folder and
// returns the card of each record audited as interrupted.
func auditBatchRecords(t *testing.T, dir string) (int, map[int]string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	interrupted := map[int]string{}
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var r struct{ Via, Job, ICCSN, Result string }
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		if r.Via != "batch" {
			continue
		}
		rec, err := strconv.Atoi(r.Job)
		switch {
		case err != nil || r.ICCSN == "":
			t.Errorf("audit record %s", l)
		case r.Result == "ok":
			n++
		case r.Result == "interrupted":
			interrupted[rec] = r.ICCSN
		default:
			t.Errorf("audit record %s", l)
		}
	}
	return n, interrupted
}

// checkPaceLearned: the pace book at path has learned from at least one
// card step.
func checkPaceLearned(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("batch did not keep the learned step times: %v", err)
	}
	var book struct {
		Stats map[string]struct{ N int } `json:"stats"`
	}
	if err := json.Unmarshal(b, &book); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	learned := 0
	for _, s := range book.Stats {
		learned += s.N
	}
	if learned == 0 {
		t.Errorf("%s learned nothing: %s", path, b)
	}
}

func firstLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[:min(n, len(l))], "\n")
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// BenchmarkBatchStack is the figure of batch throughput on the stack's
// own-card readers, one and two, card swaps included (bin/vcard stopped and
// a new one started per card, as the operator does):
//
//	CARDWRIGHT_BIN=/tmp/cardwright go test -tags nogui ./cmd/cardwright -run '^$' -bench BatchStack -benchtime 3x
//
// It reports cards/h; each iteration is one batch of 8 records.
func BenchmarkBatchStack(b *testing.B) {
	s := stacktest.Require(b)
	bin := os.Getenv("CARDWRIGHT_BIN")
	if bin == "" {
		bin = filepath.Join(b.TempDir(), "cardwright")
		if out, err := exec.Command("go", "build", "-tags", "nogui", "-o", bin, ".").CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
	}
	o := newBatchOperator(b, s, bin)
	dsc := filepath.Join(s.Root, "testdata", "batch", "batch.dsc")
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("readers=%d", n), func(b *testing.B) {
			var cards int
			var elapsed time.Duration
			for i := 0; b.Loop(); i++ {
				recs := writeRecords(b, o.dir, fmt.Sprintf("bench%d-%d.csv", n, i), 8)
				args := []string{"--dsc", dsc, "--records", recs}
				for _, r := range o.readers[:n] {
					args = append(args, "--reader", r)
				}
				start := time.Now()
				if code, out, errs := o.run(nil, args...); code != exitOK {
					b.Fatalf("exit %d\n%s\n%s", code, out, errs)
				}
				elapsed += time.Since(start)
				cards += 8
			}
			b.ReportMetric(float64(cards)/elapsed.Hours(), "cards/h")
		})
	}
}
