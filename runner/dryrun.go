package runner

import (
	"context"
	"errors"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/dsc"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/secret"
)

// DryResult is what a dry run did.
type DryResult struct {
	Steps []DryStep // every step of the job, in order
	// Transcript has one line per command the card was sent, prefixed by
	// its step ("InitToken: …", "connect: " for the ICCSN read when the
	// card is taken): the card profile's lines are cpf's (cpf.Entry.String,
	// one per command with its GET RESPONSEs), the others "APDU ->
	// response". Secret data fields are replaced by "<N secret bytes>": no
	// PIN is in it.
	Transcript []string
	APDUs      int           // command APDUs sent (GET RESPONSE and chained parts included)
	Err        *api.JobError // nil when the dry run got through
}

// DryStep is one step of a dry run.
type DryStep struct {
	Name, Key, File string
	Line            int
	Ran             bool   // executed on the in-memory card
	Note            string // what was not run and why, e.g. "PKCS#11 token: not run in a dry run"
}

// The notes of what a dry run leaves out.
const (
	noteToken       = "PKCS#11 token: not run in a dry run"
	noteTokenIssuer = "PKCS#11 token and certificate issuer: not run in a dry run"
)

// dryStep is a step's part in a dry run: run, if set, is what it does over
// PC/SC (on the dry run's card); note says what is left out. A step with
// neither runs nothing and is reported as not run.
type dryStep struct {
	run  func(ctx context.Context, s *Session) error
	note string
}

// notRun is a dry step's error for a part it finds out only while running
// that it must leave out (the token's serial as the ICCSN).
type notRun string

func (n notRun) Error() string { return string(n) }

// dryStep is ps's part in a dry run: what talks to the card over PC/SC —
// the card erase, the card profile, APDU scripts, the ICCSN — runs; what
// needs the PKCS#11 token or the certificate issuer does not. run is the
// step's own Run, for steps that do no I/O (ClearFields).
func (j *job) dryStep(ps dsc.Step, run func(context.Context, *Session) error) dryStep {
	switch ps := ps.(type) {
	case *dsc.DeleteProfileStep:
		var d dryStep
		if j.ownsCard() && j.deps.Profiles != nil {
			d.run = func(ctx context.Context, s *Session) error { return j.eraseCard(ctx, s) }
		}
		if j.module != "" {
			d.note = "PKCS#11 token erase: not run in a dry run"
		}
		return d
	case *dsc.InitProfileStep:
		init := &ps.Init
		d := dryStep{run: func(ctx context.Context, s *Session) error {
			_, err := j.runProfile(ctx, s, init)
			return err
		}}
		if j.module != "" {
			d.note = "PKCS#11 token (a stand-in token's C_InitToken, C_InitPIN, encrypted PINs): not run in a dry run"
		}
		return d
	case *dsc.ApduScriptStep, *dsc.ClearFieldsStep:
		return dryStep{run: run}
	case *dsc.ReadICCSNStep:
		st := &ps.Finalize
		return dryStep{run: func(ctx context.Context, s *Session) error {
			if st.CMSSerial == "" && len(s.Serial) == 0 && j.module != "" {
				return notRun("the card has no serial (GET DATA 5A) and the PKCS#11 token's serial is not read in a dry run")
			}
			return j.readICCSN(ctx, s, st, false)
		}}
	case *dsc.ApplicationStep:
		if a := ps.App.Action; a == dsc.AppGenerateKey || a == dsc.AppUseObject || a == dsc.AppKeyArchival {
			return dryStep{note: noteTokenIssuer}
		}
	}
	return dryStep{note: noteToken}
}

// DryRun validates job as Validate does and then runs what it does over
// PC/SC on card, an in-memory card the caller makes (iso7816/memcard): the
// card erase of DeleteProfile (when the job lays the card out itself), the
// card profile, APDU scripts and the ICCSN read. Steps that need the
// PKCS#11 token or the certificate issuer are listed, not run. No reader,
// token or issuer is used; PINs the description takes from dialogs are
// asked through the Engine's Prompter, as in a run, with Reader "dry run".
// A job that fails validation has Err and no transcript.
func (r *Runner) DryRun(ctx context.Context, job *Job, card iso7816.Card, progress func(Progress)) (res DryResult) {
	plan, sel, steps, f := r.validate(job)
	if f != nil {
		return DryResult{Err: f.JobError()}
	}
	for _, st := range steps {
		res.Steps = append(res.Steps, DryStep{Name: st.Name, Key: st.Key, File: st.File, Line: st.Line, Note: st.dry.note})
	}
	if sel.AllCards {
		for _, ps := range plan.Steps {
			if ps, ok := ps.(*dsc.RetrieveTokensStep); ok {
				res.Steps = append(res.Steps, DryStep{Name: ps.Name, Key: ps.Key, File: plan.Description.Name, Line: ps.Pos.Line,
					Note: "the ICCSNs of the cards in the readers: not read in a dry run"})
			}
		}
		return res
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const reader = "dry run"
	conn := record(cardConn{card})
	defer func() { res.Transcript, res.APDUs = conn.lines, conn.apdus }()
	s := &Session{Reader: reader, Conn: conn, ATR: conn.ATR(), Outputs: map[string]string{}, Secrets: map[string]secret.Value{},
		origin: job.Origin, notify: job.PromptNotify, cancel: cancel}
	if r.Engine != nil {
		s.Prompter = r.Engine.Prompter
	}
	defer func() {
		s.end()
		for _, v := range s.Secrets {
			v.Wipe()
		}
	}()
	failWith := func(f *Failure) DryResult {
		res.Err = f.JobError()
		return res
	}
	var err error
	if s.Serial, err = conn.Serial(); err != nil {
		return failWith(classify("connect", err))
	}
	for i, st := range steps {
		if err := ctx.Err(); err != nil {
			return failWith(classify(st.Name, err))
		}
		if progress != nil {
			progress(Progress{Step: st.Name, N: i + 1, Total: len(steps), Reader: reader})
		}
		if st.dry.run == nil {
			continue
		}
		conn.at(st.Name)
		err := st.dry.run(ctx, s)
		var nr notRun
		if errors.As(err, &nr) {
			res.Steps[i].Note = string(nr)
			continue
		}
		res.Steps[i].Ran = true
		if err != nil {
			f := classify(st.Name, err)
			if f.Key == "" {
				f.Key = st.Key
			}
			if f.File == "" {
				f.File, f.Line = st.File, st.Line
			}
			for _, d := range res.Steps[:i] {
				if d.Ran {
					f.Done = append(f.Done, d.Name)
				}
			}
			return failWith(f)
		}
	}
	return res
}
