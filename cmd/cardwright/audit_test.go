package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/audit"
)

// auditRecords decodes an export.
func auditRecords(t *testing.T, data string) []audit.Record {
	t.Helper()
	var recs []audit.Record
	for _, l := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
		var r audit.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("export line %q: %v", l, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// TestServeAudit: serve (fake runner) records every job in <journal>/audit
// and says so in its log; audit verify reads the folder (found from the
// configuration's journal) as whole, audit export writes the records,
// which hold the job's origin, id and result but not its PIN.
func TestServeAudit(t *testing.T) {
	dir := t.TempDir()
	cfg := writeTestFile(t, dir, "cardwright.cfg", "[log]\njournal = "+filepath.Join(dir, "journal")+"\n")
	url, _, stop, logs := startServe(t, "--fake-runner", "--config", cfg, "--listen", "127.0.0.1:0", "--allow-origin", "https://portal.example")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Origin: "https://portal.example"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"job-a", "job-b"} {
		res, err := c.Run(ctx, &api.Job{ID: id, Description: "x", Fields: map[string]string{"PIN": "60606060"}}, nil, nil)
		if err != nil || !res.OK {
			t.Fatalf("job: %+v %v", res, err)
		}
	}
	c.Close()
	// verify reads the folder while serve writes it.
	if code, out, errs := runArgs("audit", "verify", "--config", cfg); code != exitOK || !strings.Contains(out, ": 2 records in 1 file\n") {
		t.Errorf("verify while serving: exit %d\n%s%s", code, out, errs)
	}
	if code := stop(); code != exitOK {
		t.Fatalf("serve: exit %d", code)
	}
	folder := filepath.Join(dir, "journal", "audit")
	if !strings.Contains(logs(), `"msg":"audit log","folder":"`+folder+`"`) {
		t.Errorf("serve's log does not name the audit folder:\n%s", logs())
	}
	code, out, errs := runArgs("audit", "verify", "--config", cfg)
	if code != exitOK || errs != "" {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errs)
	}
	if !regexp.MustCompile(`(?m)^audit log .*audit: 2 records in 1 file\nfirst: seq 1 at \S+Z\nlast:  seq 2 at \S+Z \(anchor 2:[0-9a-f]{64}\)\nthe chain is whole\n$`).MatchString(out) {
		t.Errorf("verify's report:\n%s", out)
	}
	code, export, errs := runArgs("audit", "export", "--dir", folder)
	if code != exitOK || errs != "" {
		t.Fatalf("export: exit %d %s", code, errs)
	}
	recs := auditRecords(t, export)
	if len(recs) != 2 || recs[0].Job != "job-a" || recs[1].Job != "job-b" || recs[0].Origin != "https://portal.example" ||
		recs[0].Via != "ws" || recs[0].Result != "ok" || recs[0].Description != audit.Digest([]byte("x")) || recs[1].Prev != recs[0].Hash {
		t.Errorf("exported records: %+v", recs)
	}
	if strings.Contains(export, "60606060") {
		t.Error("a PIN in the audit log")
	}
	// The anchor of the last line holds; a wrong one does not.
	anchor := regexp.MustCompile(`anchor (\d+:[0-9a-f]+)`).FindStringSubmatch(out)[1]
	if code, out, _ := runArgs("audit", "verify", "--dir", folder, "--anchor", anchor); code != exitOK {
		t.Errorf("verify with its own anchor: exit %d\n%s", code, out)
	}
	if code, out, _ := runArgs("audit", "verify", "--dir", folder, "--anchor", "3:"+strings.Repeat("0", 64)); code != exitFailure ||
		!strings.Contains(out, "seq 3: removed: the anchored record") {
		t.Errorf("verify with an anchor past the end: exit %d\n%s", code, out)
	}
}

// TestAuditVerifyTampered: a changed record is a problem line naming the
// file, line and seq, and exit status 1.
func TestAuditVerifyTampered(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := l.Append(&audit.Record{Time: time.Unix(int64(i), 0).UTC(), Via: "cli", Description: audit.Digest(nil), Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	path := filepath.Join(dir, audit.CurrentFile)
	data, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(data, []byte(`"seq":2,"time":"1970-01-01T00:00:01Z"`), []byte(`"seq":2,"time":"1970-01-01T00:00:09Z"`), 1), 0o600)
	code, out, _ := runArgs("audit", "verify", "--dir", dir)
	if code != exitFailure || !strings.Contains(out, "\naudit.log:2: seq 2: changed: its hash does not match its content\n1 problem: the chain is broken\n") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

// TestAuditExportFile: --out writes the file (0600) and says how many
// records; --since starts at that seq.
func TestAuditExportFile(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.Open(filepath.Join(dir, "audit"), 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := l.Append(&audit.Record{Via: "batch", Description: audit.Digest(nil), Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	out := filepath.Join(dir, "export.jsonl")
	code, stdout, errs := runArgs("audit", "export", "--dir", filepath.Join(dir, "audit"), "--since", "4", "--out", out)
	if code != exitOK || stdout != "2 records written to "+out+"\n" || errs != "" {
		t.Fatalf("exit %d %q %q", code, stdout, errs)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if recs := auditRecords(t, string(data)); len(recs) != 2 || recs[0].Seq != 4 {
		t.Errorf("export since 4: %+v", recs)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
		t.Errorf("export mode %v", st.Mode())
	}
	rep, err := audit.VerifyStream(out, bytes.NewReader(data))
	if err != nil || !rep.OK() || rep.First.Seq != 4 {
		t.Errorf("the export does not verify: %v %+v", err, rep)
	}
}

// TestAuditFolder: --dir, else [log] audit, else audit in the journal
// folder; [log] audit = off has none; bad flags are usage errors.
func TestAuditFolder(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ cfg, want string }{
		{"[log]\naudit = " + filepath.Join(dir, "a") + "\n", filepath.Join(dir, "a")},
		{"[log]\njournal = " + filepath.Join(dir, "j") + "\n", filepath.Join(dir, "j", "audit")},
	} {
		os.MkdirAll(tc.want, 0o700)
		cfg := writeTestFile(t, dir, "c.cfg", tc.cfg)
		if code, out, errs := runArgs("audit", "verify", "--config", cfg); code != exitOK || !strings.HasPrefix(out, "audit log "+tc.want+": 0 records") {
			t.Errorf("%q: exit %d %q %q", tc.cfg, code, out, errs)
		}
	}
	cfg := writeTestFile(t, dir, "off.cfg", "[log]\naudit = off\n")
	if code, _, errs := runArgs("audit", "export", "--config", cfg); code != exitFailure || !strings.Contains(errs, "audit is off") {
		t.Errorf("off: exit %d %q", code, errs)
	}
	if code, _, errs := runArgs("audit", "verify", "--dir", filepath.Join(dir, "none")); code != exitFailure || !strings.Contains(errs, "listing the audit folder") {
		t.Errorf("missing folder: exit %d %q", code, errs)
	}
	for _, args := range [][]string{{"audit", "export", "--since", "x"}, {"audit", "verify", "--anchor", "1:zz"}, {"audit", "verify", "extra"}} {
		if code, _, errs := runArgs(args...); code != exitUsage || !strings.HasPrefix(errs, "cardwright audit ") {
			t.Errorf("%v: exit %d %q", args, code, errs)
		}
	}
}

// TestServeAuditOff: with [log] audit = off serve keeps no audit log and
// warns.
func TestServeAuditOff(t *testing.T) {
	dir := t.TempDir()
	cfg := writeTestFile(t, dir, "cardwright.cfg", "[log]\naudit = off\n")
	_, _, stop, logs := startServe(t, "--fake-runner", "--config", cfg, "--listen", "127.0.0.1:0", "--journal", filepath.Join(dir, "journal"))
	stop()
	if !strings.Contains(logs(), "audit log off") {
		t.Errorf("no warning:\n%s", logs())
	}
	if _, err := os.Stat(filepath.Join(dir, "journal", "audit")); err == nil {
		t.Error("an audit folder with [log] audit = off")
	}
}
