package cardinit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/runner"
)

// recorder is a cardinit.Auditor that keeps what it is told.
type recorder struct {
	err  error
	jobs []*runner.Result
}

func (r *recorder) Err() error { return r.err }
func (r *recorder) Record(_ *runner.Job, res *runner.Result, started, finished time.Time) {
	if finished.Before(started) {
		panic("finished before started")
	}
	r.jobs = append(r.jobs, res)
}

// TestRunAudited: every job Run ran reaches the Auditor with its result
// (init-gui's audit record); while the Auditor cannot keep records, Run
// refuses with audit_unavailable and the card is not touched. A dry run
// is no job on a card and is not recorded.
func TestRunAudited(t *testing.T) {
	d := open(t, demo)
	e, card, tokens := testEngine(t, nil)
	rec := &recorder{}
	e.Audit = rec
	job, _ := d.Job(demoInputs(), "R0")
	if res := e.DryRun(context.Background(), job, nil); res.Err != nil || len(rec.jobs) != 0 {
		t.Fatalf("dry run: %+v, %d records", res.Err, len(rec.jobs))
	}
	job, _ = d.Job(demoInputs(), "R0")
	res := e.Run(context.Background(), job, nil, nil)
	if res.Err == nil { // the demo asks for certificates; no officer: issuer_error after card I/O
		t.Fatal("the demo job ran without an issuer")
	}
	if len(rec.jobs) != 1 || rec.jobs[0].Err == nil || rec.jobs[0].Err.Code != res.Err.Code {
		t.Fatalf("records %+v for result %+v", rec.jobs, res.Err)
	}
	before := len(card.Transcript())
	calls := len(tokens.Calls())
	rec.err = errors.New("writing the audit record: no space left on device")
	job, _ = d.Job(demoInputs(), "R0")
	res = e.Run(context.Background(), job, nil, nil)
	if res.Err == nil || res.Err.Code != api.CodeAuditUnavailable {
		t.Fatalf("run with the audit log unusable: %+v", res.Err)
	}
	if len(card.Transcript()) != before || len(tokens.Calls()) != calls || len(rec.jobs) != 1 {
		t.Fatal("a refused job touched the card or the token, or was recorded")
	}
}
