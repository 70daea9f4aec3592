package agent

// report.go: what the agent tells the station's audit log and metrics of
// each job that ran (spec/station.md "Audit", "Observability").

import (
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/journal"
	"github.com/cardwright/cardwright/audit"
	"github.com/cardwright/cardwright/jobrecord"
	"github.com/cardwright/cardwright/runner"
)

// AuditLog keeps the audit log (audit.Log): Append returns once the
// record is durable; Err is nil while the log takes records. While it is
// not, the agent refuses new jobs with audit_unavailable before any card
// I/O: a station runs no job it cannot record (spec/station.md "Audit").
type AuditLog interface {
	Append(rec *audit.Record) error
	Err() error
}

var _ AuditLog = (*audit.Log)(nil)

// JobObserver is told of each job that ran, after its record was appended
// (or failed to be). It must not block.
type JobObserver interface {
	JobFinished(rec *audit.Record)
}

// Report is the audit record of a job: how it came (via, origin, id), what
// it ran and how it ended. It holds no field value.
func Report(via, origin, id string, job *runner.Job, res *runner.Result, started, finished time.Time) *audit.Record {
	return jobrecord.New(via, origin, id, job, res, started, finished)
}

// auditUnusable is the refusal of a new job while the audit log cannot
// take records, nil while it can (or when there is none).
func (s *Server) auditUnusable() *api.JobError {
	if s.deps.Audit == nil {
		return nil
	}
	if err := s.deps.Audit.Err(); err != nil {
		s.log.Error("job refused: the audit log cannot record jobs", "err", err)
		return &api.JobError{Code: api.CodeAuditUnavailable, Message: "the station's audit log cannot record jobs, so no job runs; no card was touched. Ask the station's administrator (the agent's log says why)"}
	}
	return nil
}

// report hands a finished job to the audit log and the observers. A record
// that cannot be appended does not change the job's result: the job ran,
// and a card that was encoded is reported as encoded (journaled and sent).
// The failure is logged as an error (the record's ids and result, never a
// field), and the audit log's Err then refuses the next jobs.
func (s *Server) report(rec *audit.Record) {
	if s.deps.Audit != nil {
		if err := s.deps.Audit.Append(rec); err != nil {
			s.log.Error("AUDIT RECORD NOT WRITTEN: the job ran and its result is reported, but the station's audit log has no record of it",
				"via", rec.Via, "origin", rec.Origin, "id", rec.Job, "reader", rec.Reader, "iccsn", rec.ICCSN, "result", rec.Result, "err", err)
		}
	}
	for _, o := range s.deps.Observers {
		o.JobFinished(rec)
	}
}

// InterruptedRecord is the audit record of a job the journal found still
// running at start (journal.Journal.Interrupted): the agent stopped before
// the job ended, so it has no steps, card or description digest (the
// journal does not keep the description: Description is empty, meaning
// unknown), and its result is interrupted.
func InterruptedRecord(r journal.Record) *audit.Record {
	via := "ws"
	if r.Session == cardJobSession {
		via = "cardjob"
	}
	return &audit.Record{Time: r.Finished.UTC(), Started: r.Started.UTC(), Via: via, Origin: r.Origin, Job: r.ReqID,
		Reader: r.Reader, Result: string(api.CodeInterrupted)}
}
