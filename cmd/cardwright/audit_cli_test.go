package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/journal"
	"github.com/cardwright/cardwright/audit"
)

// TestServeAuditInterrupted: jobs a dead serve left running (one over the
// WebSocket, one over POST /CardJob) get an audit record when serve starts
// again: via, origin, id, reader, result interrupted, an empty (unknown)
// description digest; serve's log says so.
func TestServeAuditInterrupted(t *testing.T) {
	dir := t.TempDir()
	jdir := filepath.Join(dir, "journal")
	j, _, err := journal.Open(jdir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Begin("https://portal.example", "sess", "left-running", "Fake Reader 0"); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Begin("https://erp.example", "cardjob-http-session", "7#0", ""); err != nil {
		t.Fatal(err)
	}
	j.Close()
	cfg := writeTestFile(t, dir, "cardwright.cfg", "[log]\njournal = "+jdir+"\n")
	_, _, stop, logs := startServe(t, "--fake-runner", "--config", cfg, "--listen", "127.0.0.1:0")
	if code := stop(); code != exitOK {
		t.Fatalf("serve: exit %d\n%s", code, logs())
	}
	code, export, errs := runArgs("audit", "export", "--config", cfg)
	if code != exitOK {
		t.Fatalf("export: exit %d %s", code, errs)
	}
	recs := auditRecords(t, export)
	if len(recs) != 2 {
		t.Fatalf("%d records:\n%s", len(recs), export)
	}
	for i, w := range []audit.Record{
		{Seq: 1, Via: "ws", Origin: "https://portal.example", Job: "left-running", Reader: "Fake Reader 0"},
		{Seq: 2, Via: "cardjob", Origin: "https://erp.example", Job: "7#0"},
	} {
		r := recs[i]
		if r.Seq != w.Seq || r.Via != w.Via || r.Origin != w.Origin || r.Job != w.Job || r.Reader != w.Reader ||
			r.Result != string(api.CodeInterrupted) || r.Description != "" || len(r.Steps) != 0 {
			t.Errorf("record %d: %+v", i, r)
		}
	}
	if n := strings.Count(logs(), "job interrupted by the previous run recorded"); n != 2 {
		t.Errorf("%d log lines for the interrupted records:\n%s", n, logs())
	}
	// A second start finds nothing running: no more records.
	_, _, stop, _ = startServe(t, "--fake-runner", "--config", cfg, "--listen", "127.0.0.1:0")
	stop()
	if _, export, _ := runArgs("audit", "export", "--config", cfg); len(auditRecords(t, export)) != 2 {
		t.Errorf("after a clean restart:\n%s", export)
	}
}

// TestAuditEncode: `cardwright encode` records its job in the station's
// audit log (via cli, the description's digest, the result), here a job
// the runner refuses before any card I/O; an audit folder that cannot be
// opened stops encode before the runner with a message that says why, and
// nothing runs.
func TestAuditEncode(t *testing.T) {
	dir := t.TempDir()
	jdir := filepath.Join(dir, "journal")
	cfg := writeTestFile(t, dir, "cardwright.cfg", "[log]\njournal = "+jdir+"\n")
	src := "[Description]\nNoSuchKey=1\n[Nope\n"
	dsc := writeTestFile(t, dir, "bad.dsc", src)
	code, out, errs := encodeIn(t, "", nil, "--dsc", dsc, "--config", cfg)
	if code != exitFailure || !strings.Contains(out, "ProductionResult=error") {
		t.Fatalf("encode: exit %d\n%s%s", code, out, errs)
	}
	_, export, _ := runArgs("audit", "export", "--dir", filepath.Join(jdir, "audit"))
	recs := auditRecords(t, export)
	if len(recs) != 1 || recs[0].Via != "cli" || recs[0].Description != audit.Digest([]byte(src)) || recs[0].Result == "ok" || recs[0].Result == "" {
		t.Fatalf("records: %+v", recs)
	}

	// The audit folder is a file: encode refuses to start.
	blocked := writeTestFile(t, dir, "not-a-folder", "")
	cfg2 := writeTestFile(t, dir, "blocked.cfg", "[log]\naudit = "+blocked+"\njournal = "+jdir+"\n")
	code, out, errs = encodeIn(t, "", nil, "--dsc", dsc, "--config", cfg2)
	if code != exitFailure || out != "" || !strings.Contains(errs, "opening the audit log") || !strings.Contains(errs, "no job runs without its audit record") {
		t.Fatalf("encode with an unusable audit folder: exit %d\n%s%s", code, out, errs)
	}
	if st, _ := os.Stat(blocked); st.Size() != 0 {
		t.Error("the file was written")
	}
}
