package agent_test

import (
	"encoding/xml"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/agent/journal"
	"github.com/cardwright/cardwright/audit"
)

// failingAudit is an audit log whose writes fail from the nth Append on
// (0: never), and which is then unusable (Err), as audit.Log after a
// failed write or fsync.
type failingAudit struct {
	mu     sync.Mutex
	failAt int
	n      int
	broken error
	recs   []audit.Record
}

func (a *failingAudit) Append(rec *audit.Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.broken != nil {
		return a.broken
	}
	a.n++
	if a.failAt > 0 && a.n >= a.failAt {
		a.broken = errors.New("writing the audit record: no space left on device")
		return a.broken
	}
	a.recs = append(a.recs, *rec)
	return nil
}

func (a *failingAudit) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.broken
}

func (a *failingAudit) records() []audit.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]audit.Record(nil), a.recs...)
}

// TestAuditAppendFailsKeepsResult: a job that ran when its audit record
// cannot be written keeps its real result — fields and the declared
// secret output, journaled and sent, not internal — and the failure is
// logged as an error without the secret. The next job (WebSocket and
// POST /CardJob) is refused with audit_unavailable before the runner
// sees it.
func TestAuditAppendFailsKeepsResult(t *testing.T) {
	al := &failingAudit{failAt: 2}
	ta := startAgent(t, func(_ *agentConfig, d *agentDeps) { d.Audit = al })
	ctx := ctxT(t)
	c := ta.dial(client.Options{})
	job := func(id string) *api.Job {
		return &api.Job{ID: id, Description: "x", Fields: map[string]string{"Echo": "Ada", "PIN": "3141"}, Secret: []string{"PIN1"}, Reader: "Fake Reader 0"}
	}
	res, err := c.Run(ctx, job("recorded"), nil, nil)
	if err != nil || !res.OK || len(al.records()) != 1 || al.records()[0].Job != "recorded" {
		t.Fatalf("first job: %+v %v, records %+v", res, err, al.records())
	}
	res, err = c.Run(ctx, job("unrecorded"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Error != nil || res.Fields["Echo"] != "Ada" || !strings.HasPrefix(res.Fields["ICCSN"], "FAKE") || res.Secrets["PIN1"] != "3141" {
		t.Fatalf("the job whose record failed: %+v (want its real result)", res)
	}
	if recs, _ := ta.journal.All(); len(recs) != 2 {
		t.Fatalf("journal holds %d records", len(recs))
	} else {
		for _, r := range recs {
			if r.ReqID == "unrecorded" && (r.Result == nil || !r.Result.OK) {
				t.Fatalf("journaled: %+v", r.Result)
			}
		}
	}
	logs := ta.log.String()
	if !strings.Contains(logs, `"level":"ERROR","msg":"AUDIT RECORD NOT WRITTEN`) || !strings.Contains(logs, `"id":"unrecorded"`) {
		t.Fatalf("no error line for the lost record:\n%s", logs)
	}
	if strings.Contains(logs, "3141") || strings.Contains(logs, "Ada") {
		t.Fatal("a field value or secret reached the log")
	}

	calls := ta.runner.Calls()
	_, err = c.Submit(ctx, job("refused"))
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != api.CodeAuditUnavailable {
		t.Fatalf("job while the audit log is unusable: %v, want %s", err, api.CodeAuditUnavailable)
	}
	code, out := postCardJob(t, ta, `<card_job id="x1"><applications><application>`+dsz(t, "[Description]\n")+`</application></applications></card_job>`)
	var st agent.StatusResponse
	if err := xml.Unmarshal([]byte(out), &st); err != nil || code != http.StatusServiceUnavailable || st.Code != api.CodeAuditUnavailable {
		t.Fatalf("POST /CardJob while the audit log is unusable: HTTP %d %s (%v)", code, out, err)
	}
	if ta.runner.Calls() != calls {
		t.Fatalf("the runner ran %d refused jobs", ta.runner.Calls()-calls)
	}
	if recs, _ := ta.journal.All(); len(recs) != 2 {
		t.Fatalf("refused jobs were journaled: %d records", len(recs))
	}
}

// TestAuditCardJobSecondApplication: a card_job whose first application's
// record fails runs no second application (refused before the runner).
func TestAuditCardJobSecondApplication(t *testing.T) {
	al := &failingAudit{failAt: 1}
	ta := startAgent(t, func(_ *agentConfig, d *agentDeps) { d.Audit = al })
	app := `<application>` + dsz(t, "[Description]\n") + `</application>`
	_, out := postCardJob(t, ta, `<card_job id="two"><applications>`+app+app+`</applications></card_job>`)
	var st agent.StatusResponse
	if err := xml.Unmarshal([]byte(out), &st); err != nil || st.Code != api.CodeAuditUnavailable {
		t.Fatalf("got %s (%v)", out, err)
	}
	if n := ta.runner.Calls(); n != 1 {
		t.Fatalf("the runner ran %d applications, want 1", n)
	}
}

// TestAuditInterruptedRecords: the jobs a dead agent left running (one
// over the WebSocket, one over POST /CardJob) come back from journal.Open
// as interrupted, and InterruptedRecord makes their audit records: via,
// origin, id, reader, result interrupted, no description digest (unknown).
func TestAuditInterruptedRecords(t *testing.T) {
	dir := t.TempDir()
	j, _, err := journal.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Begin(testOrigin, "sess-1", "ws-job", "Reader A"); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Begin("https://erp.example", "cardjob-http-session", "42#0", ""); err != nil { // agent's cardJobSession
		t.Fatal(err)
	}
	done, err := j.Begin(testOrigin, "sess-1", "done-job", "Reader A")
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Finish(done, &api.Result{Type: api.TypeResult, ID: "done-job", OK: true}); err != nil {
		t.Fatal(err)
	}
	j.Close()

	j, n, err := journal.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	got := j.Interrupted()
	if n != 2 || len(got) != 2 {
		t.Fatalf("%d interrupted, %d records", n, len(got))
	}
	var recs []*audit.Record
	for _, r := range got {
		recs = append(recs, agent.InterruptedRecord(r))
	}
	want := []audit.Record{
		{Via: "ws", Origin: testOrigin, Job: "ws-job", Reader: "Reader A", Result: "interrupted"},
		{Via: "cardjob", Origin: "https://erp.example", Job: "42#0", Result: "interrupted"},
	}
	for i, r := range recs {
		w := want[i]
		if r.Via != w.Via || r.Origin != w.Origin || r.Job != w.Job || r.Reader != w.Reader || r.Result != w.Result || r.Description != "" ||
			r.Started.IsZero() || r.Time.Before(r.Started) {
			t.Errorf("record %d: %+v, want %+v", i, r, w)
		}
	}
	// They chain like any record.
	l, err := audit.Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, r := range recs {
		if err := l.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if rep, err := audit.Verify(l.Dir()); err != nil || !rep.OK() || rep.Records != 2 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	if j, n, err := journal.Open(t.TempDir()); err != nil || n != 0 || len(j.Interrupted()) != 0 {
		t.Fatalf("a new journal: %d interrupted (%v)", n, err)
	} else {
		j.Close()
	}
}
