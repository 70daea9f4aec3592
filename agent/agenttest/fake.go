// Package agenttest holds test doubles for package agent: FakeRunner, a
// Runner that touches no card, FakeReaders, a ReaderSource with a fixed
// reader list, and Approver, a pairing dialog the test answers. Tests and benchmarks use them, and so does `cardwright serve
// --fake-runner`, the demo mode for the browser before hardware is wired.
package agenttest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/secret"
)

// FakeRunner is an in-memory agent.Runner for tests, benchmarks and the browser
// demo before hardware is wired (`cardwright serve --fake-runner`). It
// touches no card; its behaviour is steered by the job's fields:
//
//	Steps=N          number of progress steps (default 3)
//	StepDelayMs=N    sleep per step (default 0), cancellable
//	Fail=CODE        end with that error code after the steps
//	Request=TEMPL    make a P-256 key and CSR and ask the portal to issue it;
//	                 the answer's public key must match
//	Prompt=KIND      report a local prompt (waiting, then done)
//	RemoveAt=N       the card is "pulled" during step N: card_removed
//	Echo=TEXT        copied to the output field Echo
//	PIN=TEXT         copied to the secret output PIN1 when the job declares
//	                 PIN1 secret (tests grep logs for it)
//	LeakPIN=TEXT     returns TEXT as secret output LEAK whether declared or
//	                 not (to test the agent's own check)
//
// Outputs: ICCSN (a per-runner counter), Reader, Echo, Certificate (the
// issued certificate's serial, hex) when Request ran. Jobs on the same
// reader are serialised: a second one ends at once with busy.
type FakeRunner struct {
	Readers  []string // the reader used when a job names none (default "Fake Reader 0")
	Headless bool     // no dialogs: Prompt=KIND fails with prompt_unavailable

	serial atomic.Uint64
	mu     sync.Mutex
	inUse  map[string]bool
	calls  atomic.Int64
}

// Calls counts jobs that reached Run.
func (f *FakeRunner) Calls() int64 { return f.calls.Load() }

// Run implements agent.Runner.
func (f *FakeRunner) Run(ctx context.Context, job *runner.Job, progress func(runner.Progress)) (res runner.Result) {
	f.calls.Add(1)
	field := func(name string) string {
		v, ok := job.Fields[name]
		if !ok {
			return ""
		}
		return v.Reveal()
	}
	reader := job.Reader
	if reader == "" {
		reader = "Fake Reader 0"
		if len(f.Readers) > 0 {
			reader = f.Readers[0]
		}
	}
	if !f.lock(reader) {
		return runner.Result{Err: &api.JobError{Code: api.CodeBusy, Message: fmt.Sprintf("reader %q is running another job", reader)}}
	}
	defer f.unlock(reader)
	defer func() { res.Reader = reader }() // the reader the job ran on, as the runner reports it

	steps := 3
	if s := field("Steps"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 1000 {
			return runner.Result{Err: &api.JobError{Code: api.CodeInvalidField, Message: "field Steps is not a number 0..1000", Key: "Steps"}}
		}
		steps = n
	}
	var delay time.Duration
	if s := field("StepDelayMs"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return runner.Result{Err: &api.JobError{Code: api.CodeInvalidField, Message: "field StepDelayMs is not a number", Key: "StepDelayMs"}}
		}
		delay = time.Duration(n) * time.Millisecond
	}
	removeAt := -1
	if s := field("RemoveAt"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return runner.Result{Err: &api.JobError{Code: api.CodeInvalidField, Message: "field RemoveAt is not a number", Key: "RemoveAt"}}
		}
		removeAt = n
	}
	out := map[string]string{"Reader": reader}
	secrets := map[string]secret.Value{}

	if kind := field("Prompt"); kind != "" {
		if f.Headless {
			return runner.Result{Err: &api.JobError{Code: api.CodePromptUnavailable, Message: "a " + kind + " dialog is needed but the agent runs headless", Step: "prompt"}}
		}
		if job.PromptNotify != nil {
			job.PromptNotify(kind, api.PromptWaiting, reader)
			job.PromptNotify(kind, api.PromptDone, reader)
		}
	}
	for i := 1; i <= steps; i++ {
		if progress != nil {
			progress(runner.Progress{Step: "fake step " + strconv.Itoa(i), N: i, Total: steps, Reader: reader})
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return runner.Result{Err: &api.JobError{Code: api.CodeCancelled, Message: "job cancelled", Step: "fake step " + strconv.Itoa(i)}}
		}
		if i == removeAt {
			return runner.Result{Err: &api.JobError{Code: api.CodeCardRemoved, Message: "the card was removed from " + reader, Step: "fake step " + strconv.Itoa(i)}}
		}
	}
	if tmpl := field("Request"); tmpl != "" {
		serial, jerr := f.request(ctx, tmpl, job.Issuer)
		if jerr != nil {
			return runner.Result{Err: jerr}
		}
		out["Certificate"] = serial
	}
	if code := field("Fail"); code != "" {
		return runner.Result{Err: &api.JobError{Code: api.Code(code), Message: "fake failure requested", Step: "fake"}}
	}
	out["ICCSN"] = fmt.Sprintf("FAKE%08X", f.serial.Add(1))
	if e := field("Echo"); e != "" {
		out["Echo"] = e
	}
	if pin, ok := job.Fields["PIN"]; ok && slices.ContainsFunc(job.SecretOutputs, func(s string) bool { return strings.EqualFold(s, "PIN1") }) {
		secrets["PIN1"] = secret.FromBytes(pin.Bytes())
	}
	if leak, ok := job.Fields["LeakPIN"]; ok {
		secrets["LEAK"] = secret.FromBytes(leak.Bytes())
	}
	return runner.Result{Fields: out, Secrets: secrets}
}

func (f *FakeRunner) request(ctx context.Context, tmpl string, iss issuer.Issuer) (string, *api.JobError) {
	if iss == nil {
		return "", &api.JobError{Code: api.CodeIssuerError, Message: "no certificate issuer", Step: "request"}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", &api.JobError{Code: api.CodeInternal, Message: err.Error()}
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "cardwright fake card"},
	}, key)
	if err != nil {
		return "", &api.JobError{Code: api.CodeInternal, Message: err.Error()}
	}
	der, _, err := iss.Issue(ctx, issuer.Request{Application: "A", Template: tmpl, CSR: csr})
	if err != nil {
		if je, ok := err.(*api.JobError); ok {
			return "", je
		}
		return "", &api.JobError{Code: api.CodeIssuerError, Message: err.Error(), Step: "request"}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", &api.JobError{Code: api.CodeIssuerError, Message: "the portal answered without a certificate", Step: "request"}
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return "", &api.JobError{Code: api.CodeIssuerError, Message: "the issued certificate is not for the card's key", Step: "request"}
	}
	return fmt.Sprintf("%X", cert.SerialNumber), nil
}

func (f *FakeRunner) lock(reader string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inUse == nil {
		f.inUse = map[string]bool{}
	}
	if f.inUse[reader] {
		return false
	}
	f.inUse[reader] = true
	return true
}

func (f *FakeRunner) unlock(reader string) {
	f.mu.Lock()
	delete(f.inUse, reader)
	f.mu.Unlock()
}

// FakeReaders is an agent.ReaderSource with a fixed reader list and events pushed
// by Emit.
type FakeReaders struct {
	List []api.Reader
	// WatchStarted, when set, receives a value (if it has room) each time
	// a watch has registered, so a test knows Emit will reach it.
	WatchStarted chan struct{}

	mu       sync.Mutex
	watchers map[int]func(any)
	next     int
}

// Readers implements agent.ReaderSource.
func (f *FakeReaders) Readers(context.Context) ([]api.Reader, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.Reader(nil), f.List...), nil
}

// Watch implements agent.ReaderSource.
func (f *FakeReaders) Watch(ctx context.Context, fn func(any)) error {
	f.mu.Lock()
	if f.watchers == nil {
		f.watchers = map[int]func(any){}
	}
	id := f.next
	f.next++
	f.watchers[id] = fn
	started := f.WatchStarted
	f.mu.Unlock()
	if started != nil {
		select {
		case started <- struct{}{}:
		default:
		}
	}
	<-ctx.Done()
	f.mu.Lock()
	delete(f.watchers, id)
	f.mu.Unlock()
	return nil
}

// Emit sends ev (api.ReaderEvent or api.CardEvent) to every watcher.
func (f *FakeReaders) Emit(ev any) {
	f.mu.Lock()
	fns := make([]func(any), 0, len(f.watchers))
	for _, fn := range f.watchers {
		fns = append(fns, fn)
	}
	f.mu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}

// Approver is an agent.Approver whose dialogs the test answers: each
// Approve call appears on Asks and waits for Ask.Answer or for the agent to
// withdraw it (its ctx ends). Make it with NewApprover.
type Approver struct {
	Asks chan *Ask
}

// NewApprover returns an Approver whose Asks holds up to n unread dialogs.
func NewApprover(n int) *Approver { return &Approver{Asks: make(chan *Ask, n)} }

// Ask is one open pairing dialog.
type Ask struct {
	Origin, Code string

	ctx    context.Context
	answer chan bool
}

// Answer approves (true) or denies the dialog. It does not block.
func (a *Ask) Answer(ok bool) {
	select {
	case a.answer <- ok:
	default:
	}
}

// Done is closed when the agent withdraws the dialog (timeout, the page
// went away, shutdown).
func (a *Ask) Done() <-chan struct{} { return a.ctx.Done() }

// Approve implements agent.Approver.
func (ap *Approver) Approve(ctx context.Context, origin, code string) (bool, error) {
	a := &Ask{Origin: origin, Code: code, ctx: ctx, answer: make(chan bool, 1)}
	select {
	case ap.Asks <- a:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case ok := <-a.answer:
		return ok, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}
