// Package jobrecord turns a runner job and its result into the station's
// audit record (spec/station.md "Audit"): the one conversion the agent and
// `cardwright batch` share, so a job is recorded the same way whoever ran
// it. It imports the runner and the audit log, not the agent: batch uses
// it without the WebSocket server.
package jobrecord

import (
	"fmt"
	"time"

	"github.com/cardwright/cardwright/audit"
	"github.com/cardwright/cardwright/runner"
)

// New is the audit record of a job: how it came (via, origin, id), what
// it ran and how it ended. It holds no field value.
func New(via, origin, id string, job *runner.Job, res *runner.Result, started, finished time.Time) *audit.Record {
	rec := &audit.Record{Time: finished.UTC(), Started: started.UTC(), Via: via, Origin: origin, Job: id,
		Reader: res.Reader, Result: "ok", Steps: Steps(res.Steps)}
	if rec.Reader == "" {
		rec.Reader = job.Reader // failed before a reader was chosen: the one the job named, if any
	}
	if job.DSZ != nil {
		rec.Description = audit.Digest(job.DSZ)
	} else {
		rec.Description = audit.Digest(job.Description)
	}
	if len(res.Serial) > 0 {
		rec.ICCSN = fmt.Sprintf("%X", res.Serial)
	}
	if len(res.ATR) > 0 {
		rec.ATR = fmt.Sprintf("%X", res.ATR)
	}
	if res.Err != nil {
		rec.Result = string(res.Err.Code)
	}
	return rec
}

// Steps is a result's per-step timing (runner.StepTime) as the audit log,
// the results file of a batch and the wire (agent) carry it.
func Steps(steps []runner.StepTime) []audit.Step {
	var out []audit.Step
	for _, st := range steps {
		out = append(out, audit.Step{Name: st.Name, Kind: st.Kind, MS: MS(st.Duration), WaitedMS: MS(st.Waited), OK: st.OK})
	}
	return out
}

// MS is d in milliseconds, to the microsecond.
func MS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
