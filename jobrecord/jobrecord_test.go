package jobrecord_test

import (
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/audit"
	"github.com/cardwright/cardwright/internal/depcheck"
	"github.com/cardwright/cardwright/jobrecord"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/secret"
)

// TestNew: the record names the reader and card the job ran on, the
// description's digest (of the .dsz when the job has one), each step's
// timing in milliseconds and the result code; no field value.
func TestNew(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	job := &runner.Job{Description: []byte("[Encoding]\n"), Fields: map[string]secret.Value{"PIN": secret.New("123456")}}
	res := &runner.Result{Reader: "R0", Serial: []byte{0xBA, 0x7C}, ATR: []byte{0x3B, 0x00},
		Steps: []runner.StepTime{{Name: "select", Kind: "select", Duration: 1500 * time.Microsecond, OK: true},
			{Name: "SetPIN", Kind: "pin", Duration: 3 * time.Second, Waited: 2 * time.Second}},
		Err: &api.JobError{Code: api.CodeCardError, Message: "6A82"}}
	rec := jobrecord.New("batch", "", "7", job, res, t0, t0.Add(3*time.Second))
	want := audit.Record{Time: t0.Add(3 * time.Second).UTC(), Started: t0.UTC(), Via: "batch", Job: "7",
		Description: audit.Digest(job.Description), Reader: "R0", ICCSN: "BA7C", ATR: "3B00", Result: "card_error"}
	steps := rec.Steps
	rec.Steps = nil
	if rec.Time != want.Time || rec.Started != want.Started || rec.Via != want.Via || rec.Job != want.Job ||
		rec.Description != want.Description || rec.Reader != want.Reader || rec.ICCSN != want.ICCSN || rec.ATR != want.ATR || rec.Result != want.Result {
		t.Errorf("record %+v\nwant   %+v", *rec, want)
	}
	if len(steps) != 2 || steps[0] != (audit.Step{Name: "select", Kind: "select", MS: 1.5, OK: true}) ||
		steps[1] != (audit.Step{Name: "SetPIN", Kind: "pin", MS: 3000, WaitedMS: 2000}) {
		t.Errorf("steps %+v", steps)
	}

	// Failed before a reader was chosen: the reader the job named; a .dsz
	// is what the digest is of.
	job = &runner.Job{DSZ: []byte("PK\x03\x04"), Reader: "R1"}
	rec = jobrecord.New("ws", "https://cms.example", "j1", job, &runner.Result{Err: &api.JobError{Code: api.CodeNoCard}}, t0, t0)
	if rec.Reader != "R1" || rec.Description != audit.Digest(job.DSZ) || rec.Result != "no_card" || rec.Origin != "https://cms.example" || rec.ICCSN != "" {
		t.Errorf("record of a job that found no card: %+v", *rec)
	}
}

// TestImports: the conversion is shared by the agent and batch without
// bringing the agent (its WebSocket server, journal database) to batch.
func TestImports(t *testing.T) {
	const m = depcheck.Module
	depcheck.Never(t, []string{m + "/jobrecord"}, m+"/agent", m+"/agent/journal", "github.com/gorilla/websocket", "go.etcd.io/bbolt/...")
}
