package cardinit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/runner"
)

// Engine runs the window's jobs: the runner cmd/cardwright wires (real
// readers, configured PKCS#11 modules, the desktop's PIN dialogs), and the
// certificate issuer of the configuration, if any.
type Engine struct {
	Runner *runner.Runner
	// Issuer answers certificate requests when the configuration names a
	// local issuer ([issuer] ca_dir); nil: the officer answers from files.
	Issuer issuer.Issuer
	// Audit, if set, records every job Run ran (cmd/cardwright: the
	// station's audit log, spec/station.md "Audit"); while its Err is not
	// nil Run refuses jobs with audit_unavailable before any card I/O.
	Audit Auditor

	mu     sync.Mutex
	serial map[string]string // reader + ATR → ICCSN, read once per card
}

// Reader is one reader as the window lists it.
type Reader struct {
	Name    string
	Present bool
	ATR     []byte
	ICCSN   string // hex; empty when unknown (no card, no serial, busy)
}

// Readers lists the readers, reading each new card's ICCSN once (GET DATA
// over a shared connection; a reader busy with a job is not touched).
// Readers the configuration skips are left out.
func (e *Engine) Readers(ctx context.Context) ([]Reader, error) {
	rd := e.Runner.Engine.Readers
	list, err := rd.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing readers: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.serial == nil {
		e.serial = map[string]string{}
	}
	var out []Reader
	seen := map[string]bool{}
	for _, r := range list {
		if skip := e.Runner.Deps.Skip; skip != nil && skip(r.Name) {
			continue
		}
		rr := Reader{Name: r.Name, Present: r.Present, ATR: r.ATR}
		if r.Present {
			key := fmt.Sprintf("%s\x00%X", r.Name, r.ATR)
			seen[key] = true
			s, ok := e.serial[key]
			if !ok && !e.Runner.Engine.Busy(r.Name) {
				s = readSerial(ctx, rd, r.Name)
				e.serial[key] = s
			}
			rr.ICCSN = s
		}
		out = append(out, rr)
	}
	for k := range e.serial {
		if !seen[k] {
			delete(e.serial, k) // the card left: read the next one again
		}
	}
	return out, nil
}

func readSerial(ctx context.Context, rd runner.Readers, name string) string {
	c, err := rd.Connect(ctx, name)
	if err != nil {
		return ""
	}
	defer c.Close()
	s, err := c.Serial()
	if err != nil {
		return ""
	}
	return strings.ToUpper(fmt.Sprintf("%X", s))
}

// Validate is the runner's validation of job, before any card I/O (nil:
// the job would start). It uses the configured issuer, or the officer's.
func (e *Engine) Validate(job *runner.Job, officer Officer) *api.JobError {
	e.issuer(job, officer)
	if err := e.Runner.Validate(job); err != nil {
		var f *runner.Failure
		if errors.As(err, &f) {
			return f.JobError()
		}
		return &api.JobError{Code: api.CodeInternal, Message: err.Error()}
	}
	return nil
}

// Auditor keeps the record of each job the window ran.
type Auditor interface {
	// Err is nil while records can be kept.
	Err() error
	// Record keeps the record of a job that ran; a failure is the
	// Auditor's to report (the job's result stands).
	Record(job *runner.Job, res *runner.Result, started, finished time.Time)
}

// Run runs job on its reader; certificate requests go to the configured
// issuer, else to officer. The job's record goes to Audit.
func (e *Engine) Run(ctx context.Context, job *runner.Job, officer Officer, progress func(runner.Progress)) runner.Result {
	if e.Audit != nil {
		if err := e.Audit.Err(); err != nil {
			return runner.Result{Err: &api.JobError{Code: api.CodeAuditUnavailable, Message: "the station's audit log cannot record jobs (" + err.Error() + "); no card was touched"}}
		}
	}
	e.issuer(job, officer)
	started := time.Now()
	res := e.Runner.Run(ctx, job, progress)
	if e.Audit != nil {
		e.Audit.Record(job, &res, started, time.Now())
	}
	return res
}

// DryRun validates job and runs its card part on a new in-memory card
// (runner.DryRun): nothing reaches a reader or a token.
func (e *Engine) DryRun(ctx context.Context, job *runner.Job, progress func(runner.Progress)) runner.DryResult {
	e.issuer(job, nil)
	return e.Runner.DryRun(ctx, job, memcard.New(memcard.Config{}), progress)
}

func (e *Engine) issuer(job *runner.Job, officer Officer) {
	switch {
	case e.Issuer != nil:
		job.Issuer = e.Issuer
	case officer != nil:
		job.Issuer = FileIssuer{Officer: officer}
	default:
		// A dry run never issues; validation needs to know that a
		// request would be answered.
		job.Issuer = FileIssuer{Officer: func(context.Context, issuer.Request) (Issued, error) {
			return Issued{}, fmt.Errorf("no certificate in a dry run")
		}}
	}
}
