package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/secret"
)

// Step is one unit of a job's execution plan, built from the dsc plan.
type Step struct {
	Name string // e.g. "InitToken", "Application_A"
	Kind string // StepKind: what it does, for timing (pace.go)
	Key  string // description key that caused it
	File string // description file
	Line int    // and line
	// Check, if set, runs before any step's Run, once the card is chosen
	// and held: the validation that needs the chosen reader (its token
	// mapping, the token's PIN rules). It must not change card or token.
	Check func(ctx context.Context, s *Session) error
	// Run does the work. It returns a *Failure for a stable code, or any
	// error, which classify maps.
	Run func(ctx context.Context, s *Session) error

	dry dryStep // the step in a dry run (Runner.DryRun); Build sets it
}

// Session is the state of one running job on one card.
type Session struct {
	Reader   string
	Conn     Conn
	ATR      []byte
	Serial   []byte
	Prompter prompt.Prompter
	Outputs  map[string]string
	Secrets  map[string]secret.Value

	notify   func(kind, state, reader string) // Job.PromptNotify
	origin   string                           // Job.Origin, for dialogs
	cancel   context.CancelFunc               // ends the job (a PIN-pad window's Cancel)
	readers  Readers                          // to tell a removed card from a swapped one
	waited   bool                             // the job waited (dialog, portal) since the last identity check
	watch    *watch                           // the running step's clock (pace.go)
	cleanups []func()                         // run at the end of the job, last first
}

// OnEnd registers f to run when the job ends, whatever the outcome (closing
// a token session, wiping a prompted PIN). Functions run last first.
func (s *Session) OnEnd(f func()) { s.cleanups = append(s.cleanups, f) }

func (s *Session) end() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
	s.cleanups = nil
}

// Ask asks the local user (the Engine's Prompter) and marks the card for
// re-identification before the next write (the user may have swapped cards
// while the dialog was open). The request is completed with what the agent
// itself knows: the job's checked origin, the reader and the card's ICCSN
// (spec/gui.md property 3).
func (s *Session) Ask(ctx context.Context, r prompt.Request) (prompt.Answer, error) {
	p := s.Prompter
	if p == nil {
		p = prompt.Refuse{}
	}
	r.Origin, r.Reader = s.origin, s.Reader
	if r.Card == "" && len(s.Serial) > 0 {
		r.Card = fmt.Sprintf("%X", s.Serial)
	}
	notify := s.notify
	if _, refuse := p.(prompt.Refuse); refuse {
		notify = nil // no dialog opens
	}
	if notify != nil {
		notify(string(r.Kind), api.PromptWaiting, s.Reader)
	}
	defer s.Hold()()
	a, err := p.Ask(ctx, r)
	if notify != nil {
		notify(string(r.Kind), api.PromptDone, s.Reader)
	}
	s.waited = true
	return a, err
}

// PadWait runs login, which waits for a PIN typed on the PIN pad of the
// reader or token (kind is the dsc source, FROM_PROTECTED_AUTHENTICATION_PATH).
// The portal is told while the pad waits (Job.PromptNotify, waiting then
// done), whatever the Prompter: no local dialog opens, so a headless agent
// does it too. As after a dialog, the card is re-identified before the
// next write.
func (s *Session) PadWait(r prompt.Request, login func() error) error {
	r.Kind, r.Origin, r.Reader = prompt.Pad, s.origin, s.Reader
	if r.Card == "" && len(s.Serial) > 0 {
		r.Card = fmt.Sprintf("%X", s.Serial)
	}
	if s.notify != nil {
		s.notify(string(r.Kind), api.PromptWaiting, s.Reader)
	}
	defer s.Hold()()
	if p, ok := s.Prompter.(prompt.PadShower); ok {
		// The window's Cancel ends the job; the pad returns when its
		// reader gives control back.
		done := p.ShowPad(r, s.cancel)
		defer done()
	}
	err := login()
	if s.notify != nil {
		s.notify(string(r.Kind), api.PromptDone, s.Reader)
	}
	s.waited = true
	return err
}

// Hold stops the running step's work clock until the returned function is
// called: the step waits for a person or the portal, which counts neither
// toward its timeout nor toward what is learned of the card (pace.go).
func (s *Session) Hold() (resume func()) { return s.watch.hold() }

// Waited records that the job waited for someone else (the portal's answer
// to a certificate request): the card is identified again before the next
// write and before the job reports.
func (s *Session) Waited() { s.waited = true }

// BeforeWrite re-identifies the card if the job waited since the last check.
func (s *Session) BeforeWrite() error {
	if !s.waited {
		return nil
	}
	return s.Reidentify()
}

// Reidentify reads the card's ICCSN (an APDU inside the job's transaction)
// and ATR again and compares them with those of the card the job chose. A
// card that left the reader ends the job with card_removed; another card in
// the reader now, with card_changed. A card that was pulled and put back is
// removed too: it was reset, and the job's logins and selections are gone.
func (s *Session) Reidentify() error {
	s.waited = false
	serial, err := s.Conn.Serial()
	if err != nil {
		return s.lost(err)
	}
	if atr := s.Conn.ATR(); !bytes.Equal(atr, s.ATR) || !bytes.Equal(serial, s.Serial) {
		return fail(api.CodeCardChanged, nil, "a different card is in reader %q", s.Reader)
	}
	return nil
}

// lost says what happened to a card that no longer answers: removed, or
// replaced by another one.
func (s *Session) lost(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || s.readers == nil {
		return err
	}
	if c, cerr := s.readers.Connect(context.Background(), s.Reader); cerr == nil {
		serial, serr := c.Serial()
		atr := c.ATR()
		c.Close()
		switch {
		case serr != nil:
		case !bytes.Equal(serial, s.Serial) || !bytes.Equal(atr, s.ATR):
			return fail(api.CodeCardChanged, err, "another card is in reader %q now", s.Reader)
		default:
			return fail(api.CodeCardRemoved, err, "the card was removed from reader %q and put back; the job cannot go on with a reset card", s.Reader)
		}
	}
	return fail(api.CodeCardRemoved, err, "the card was removed from reader %q", s.Reader)
}

// Engine runs jobs. Its zero value is not usable: set Readers.
type Engine struct {
	Readers  Readers
	Prompter prompt.Prompter // nil: prompt.Refuse
	// Pace, if set, gives each step its timeout and each progress event
	// its ETA, and learns from every step that ends well (pace.go).
	Pace  Pace
	locks lockSet
}

// Exec chooses the card, locks its reader, opens a transaction and runs the
// steps in order, reporting progress. It never panics on a step failure and
// always returns a Result.
func (e *Engine) Exec(ctx context.Context, sel Selection, steps []Step, progress func(Progress)) Result {
	return e.exec(ctx, sel, steps, progress, nil)
}

func (e *Engine) exec(ctx context.Context, sel Selection, steps []Step, progress func(Progress), job *Job) (res Result) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var notify func(kind, state, reader string)
	var origin string
	if job != nil {
		notify, origin = job.PromptNotify, job.Origin
	}
	res = Result{Fields: map[string]string{}, Secrets: map[string]secret.Value{}}
	failWith := func(f *Failure) Result {
		res.Err = f.JobError()
		return res
	}
	if err := ctx.Err(); err != nil {
		return failWith(classify("select", err))
	}
	selStart := time.Now()
	reader, err := e.choose(ctx, sel)
	if err != nil {
		return failWith(classify("select", err))
	}
	res.Reader = reader
	if !e.locks.tryLock(reader) {
		return failWith(&Failure{Code: api.CodeBusy, Message: "reader " + reader + " is running another job", Step: "select"})
	}
	defer e.locks.unlock(reader)

	conn, err := e.Readers.Connect(ctx, reader)
	if err != nil {
		return failWith(classify("connect", err))
	}
	var rec *recorder // the job's transcript (Job.Transcript)
	if job != nil && job.Transcript {
		rec = record(conn)
		conn = rec
		defer func() { res.Transcript, res.APDUs = rec.lines, rec.apdus }()
	}
	defer conn.Close()
	if err := conn.Begin(); err != nil {
		return failWith(classify("connect", err))
	}
	defer conn.End()
	s := &Session{Reader: reader, Conn: conn, ATR: conn.ATR(), Prompter: e.Prompter, Outputs: res.Fields, Secrets: res.Secrets,
		readers: e.Readers, notify: notify, origin: origin, cancel: cancel}
	defer s.end()
	if s.Serial, err = conn.Serial(); err != nil {
		return failWith(classify("connect", err))
	}
	res.ATR, res.Serial = s.ATR, s.Serial
	if job != nil && len(job.ExpectSerial) > 0 && !bytes.Equal(s.Serial, job.ExpectSerial) {
		return failWith(&Failure{Code: api.CodeCardChanged, Step: "select", Message: fmt.Sprintf(
			"the card in reader %q is %X, not the card %X the job is for (swapped?)", reader, s.Serial, job.ExpectSerial)})
	}
	model := Model(s.ATR)
	res.Steps = append(res.Steps, StepTime{Name: KindSelect, Kind: KindSelect, Duration: time.Since(selStart), OK: true})
	// Validation that needs the chosen reader comes before the first step:
	// a job that cannot finish never starts erasing.
	rec.at("validate")
	for _, st := range steps {
		if st.Check == nil {
			continue
		}
		if err := st.Check(ctx, s); err != nil {
			f := classify("validate", err)
			f.Step = "validate"
			if f.Key == "" {
				f.Key = st.Key
			}
			if f.File == "" {
				f.File, f.Line = st.File, st.Line
			}
			return failWith(f)
		}
	}
	for i, st := range steps {
		if err := ctx.Err(); err != nil {
			return failWith(classify(st.Name, err))
		}
		if progress != nil {
			p := Progress{Step: st.Name, N: i + 1, Total: len(steps), Reader: reader}
			p.ETA, p.ETAKnown = eta(e.Pace, model, steps, i)
			progress(p)
		}
		rec.at(st.Name)
		if err := e.runStep(ctx, s, st, model, &res); err != nil {
			f := classify(st.Name, err)
			if f.Key == "" {
				f.Key = st.Key
			}
			if f.File == "" {
				f.File, f.Line = st.File, st.Line
			}
			if ctx.Err() != nil && !errors.Is(err, ctx.Err()) && f.Code == api.CodeCardError {
				f = classify(st.Name, ctx.Err())
			}
			// Say what the card already holds: a failed job is never a
			// silent half-personalisation.
			for _, d := range steps[:i] {
				f.Done = append(f.Done, d.Name)
			}
			return failWith(f)
		}
	}
	// The result is the card's: identify it once more, so a card pulled
	// after its last APDU (while the token or the portal worked) is never
	// reported as encoded.
	rec.at("finish")
	finStart := time.Now()
	err = s.Reidentify()
	res.Steps = append(res.Steps, StepTime{Name: KindFinish, Kind: KindFinish, Duration: time.Since(finStart), OK: err == nil})
	if err == nil && e.Pace != nil {
		e.Pace.Observe(model, KindFinish, time.Since(finStart))
	}
	if err != nil {
		f := classify("finish", err)
		clear(res.Fields)
		for k, v := range res.Secrets {
			v.Wipe()
			delete(res.Secrets, k)
		}
		for _, d := range steps {
			f.Done = append(f.Done, d.Name)
		}
		return failWith(f)
	}
	return res
}

// runStep runs one step under its clock: a timeout from Pace on its work
// time, its timing appended to res.Steps, a step that ended well observed.
// A step that outlives its timeout ends with api.CodeTimeout.
func (e *Engine) runStep(ctx context.Context, s *Session, st Step, model string, res *Result) error {
	var limit time.Duration
	if e.Pace != nil {
		limit = e.Pace.Timeout(model, st.Kind)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.watch = newWatch(limit, cancel)
	err := st.Run(sctx, s)
	total, waited, expired := s.watch.stop()
	s.watch = nil
	res.Steps = append(res.Steps, StepTime{Name: st.Name, Kind: st.Kind, Duration: total, Waited: waited, OK: err == nil})
	if err == nil {
		if e.Pace != nil {
			e.Pace.Observe(model, st.Kind, total-waited)
		}
		return nil
	}
	if expired && ctx.Err() == nil && errors.Is(err, context.Canceled) {
		return &Failure{Code: api.CodeTimeout, Message: fmt.Sprintf(
			"%s worked longer than its timeout of %s for this card model (learned from earlier cards, never below the [timeouts] floor)",
			st.Name, limit.Round(time.Millisecond))}
	}
	return err
}

// Retrieve lists the ICCSNs of all present cards (not skipped, not busy
// with another job) into field, comma-separated and sorted by reader
// (RetrieveAllTokens); nothing else runs. A card's ICCSN is as selection
// sees it (cardID): its CMS serial unless sel.ChipSerial, else its chip
// serial. A card that cannot be read is left out.
func (e *Engine) Retrieve(ctx context.Context, sel Selection, field string) Result {
	res := Result{Fields: map[string]string{}, Secrets: map[string]secret.Value{}}
	if sel.Reader != "" && sel.Skip != nil && sel.Skip(sel.Reader) {
		res.Err = skipped(sel.Reader).JobError()
		return res
	}
	list, err := e.Readers.List(ctx)
	if err != nil {
		res.Err = classify("retrieve", err).JobError()
		return res
	}
	sort.Slice(list, func(a, b int) bool { return list[a].Name < list[b].Name })
	var ids []string
	for _, r := range list {
		if err := ctx.Err(); err != nil {
			res.Err = classify("retrieve", err).JobError()
			return res
		}
		if !r.Present || (sel.Skip != nil && sel.Skip(r.Name)) || (sel.Reader != "" && sel.Reader != r.Name) {
			continue
		}
		if !e.locks.tryLock(r.Name) {
			continue
		}
		if id, err := cardID(ctx, e.Readers, r.Name, sel); err == nil {
			ids = append(ids, id)
		}
		e.locks.unlock(r.Name)
	}
	if field != "" {
		res.Fields[field] = strings.Join(ids, ",")
	}
	return res
}

// Busy reports whether a job holds the reader.
func (e *Engine) Busy(reader string) bool {
	e.locks.mu.Lock()
	defer e.locks.mu.Unlock()
	return e.locks.busy[reader]
}
