package agent

// report.go: what the agent tells the station's audit log and metrics of
// each job that ran (spec/station.md "Audit", "Observability").

import (
	"fmt"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/audit"
	"github.com/cardwright/cardwright/runner"
)

// AuditLog keeps the audit log: Append returns once the record is durable
// (audit.Log).
type AuditLog interface {
	Append(rec *audit.Record) error
}

// JobObserver is told of each job that ran, after its record is durable.
// It must not block.
type JobObserver interface {
	JobFinished(rec *audit.Record)
}

// Report is the audit record of a job: how it came (via, origin, id), what
// it ran and how it ended. It holds no field value.
func Report(via, origin, id string, job *runner.Job, res *runner.Result, started, finished time.Time) *audit.Record {
	rec := &audit.Record{Time: finished.UTC(), Started: started.UTC(), Via: via, Origin: origin, Job: id,
		Reader: res.Reader, Result: "ok"}
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
	for _, st := range res.Steps {
		rec.Steps = append(rec.Steps, audit.Step{Name: st.Name, Kind: st.Kind, MS: ms(st.Duration), WaitedMS: ms(st.Waited), OK: st.OK})
	}
	if res.Err != nil {
		rec.Result = string(res.Err.Code)
	}
	return rec
}

// report hands a finished job to the audit log and the observers. An audit
// log that cannot keep the record ends the job's report with internal: a
// station reports no job it cannot prove (the result itself stays in the
// journal).
func (s *Server) report(rec *audit.Record) *api.JobError {
	if s.deps.Audit != nil {
		if err := s.deps.Audit.Append(rec); err != nil {
			s.log.Error("writing the audit record", "job", rec.Job, "err", err)
			return &api.JobError{Code: api.CodeInternal, Message: "the job ran but its audit record could not be written; see the agent's log"}
		}
	}
	for _, o := range s.deps.Observers {
		o.JobFinished(rec)
	}
	return nil
}
