package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
)

// TestServeAuditOnStack: a job on the own card through the real runner
// (pcscd, the virtual reader) is in the audit log with its reader, card
// and steps; serve killed with SIGKILL and started again goes on with the
// same chain; audit verify finds it whole and audit export has both jobs.
func TestServeAuditOnStack(t *testing.T) {
	e := newStackEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	run := func(reader string) {
		url, _, logs := e.serve("--allow-origin", memOrigin)
		c, err := client.Dial(ctx, url, client.Options{Origin: memOrigin})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		res, err := c.Run(ctx, &api.Job{Description: iccsnJob, Reader: reader}, nil, nil)
		if err != nil || !res.OK {
			t.Fatalf("job on %s: %+v %v\n%s", reader, res, err, logs())
		}
		c.Ack(ctx, res.ID)
	}
	run(e.own[0])
	e.served.Process.Kill() // SIGKILL: no clean close of the audit log
	e.served.Wait()
	run(e.own[1])
	e.served.Process.Signal(os.Interrupt)
	e.served.Wait()

	folder := filepath.Join(e.dir, "journal", "audit")
	code, out, errs := runArgs("audit", "verify", "--dir", folder)
	if code != exitOK || !strings.Contains(out, ": 2 records in 1 file\n") || !strings.HasSuffix(out, "the chain is whole\n") {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errs)
	}
	code, export, _ := runArgs("audit", "export", "--dir", folder)
	recs := auditRecords(t, export)
	if code != exitOK || len(recs) != 2 {
		t.Fatalf("export: exit %d\n%s", code, export)
	}
	for i, r := range recs {
		serial := e.s.Get(t, []string{"SERIAL_OWN_1", "SERIAL_OWN_2"}[i])
		if r.Reader != e.own[i] || !strings.EqualFold(r.ICCSN, serial) || r.ATR == "" || r.Result != "ok" ||
			r.Origin != memOrigin || len(r.Steps) == 0 || r.Seq != uint64(i+1) {
			t.Errorf("record %d: %+v (want reader %s, ICCSN %s)", i+1, r, e.own[i], serial)
		}
	}
	if recs[1].Prev != recs[0].Hash {
		t.Error("the restarted serve did not go on with the chain")
	}
}
