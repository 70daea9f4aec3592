package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
)

// demoJobFile is the job docs/protocol.md ("The browser client and the demo
// portal") hands to `serve --demo-job`.
var demoJobFile = filepath.Join(demoDir, "demo-job.json")

// wantDemoJob builds that job from testdata/demo: demo.dsc as description,
// demo.cpf in files, the fields the description needs (HOLDER empty: the
// page fills it) and the first own virtual reader.
func wantDemoJob(t *testing.T) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(demoDir, "demo.dsc"))
	if err != nil {
		t.Fatal(err)
	}
	cpfSrc, err := os.ReadFile(filepath.Join(demoDir, "demo.cpf"))
	if err != nil {
		t.Fatal(err)
	}
	job := api.Job{Type: api.TypeJob, ID: "demo", Description: string(src),
		Files: map[string]string{"demo.cpf": base64.StdEncoding.EncodeToString(cpfSrc)},
		Fields: map[string]string{"PIN_FIELD": demoPIN, "PUK_FIELD": demoPUK, "CARD_SERIAL": "CW-0042",
			"TOKEN_LABEL": "cardwright demo 1", "HOLDER": ""},
		Reader: "Virtual PCD own 00 00"}
	b, err := json.MarshalIndent(&job, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestDemoJobFile: testdata/demo/demo-job.json is the job built from
// testdata/demo (-update rewrites it), a `job` message the agent's types
// read without unknown fields; the documented command serves it to the
// demo page; and it runs, with the page's holder name, on an in-memory
// card through the real runner.
func TestDemoJobFile(t *testing.T) {
	want := wantDemoJob(t)
	if updateGolden() {
		if err := os.WriteFile(demoJobFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(demoJobFile)
	if err != nil {
		t.Fatalf("%v (go test -run TestDemoJobFile -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not the job testdata/demo makes; go test -run TestDemoJobFile -update rewrites it", demoJobFile)
	}
	var job api.Job
	dec := json.NewDecoder(bytes.NewReader(got))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&job); err != nil {
		t.Fatal(err)
	}

	// The command of docs/protocol.md, with a free port and its own journal.
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	const documented = "cardwright serve --config testdata/demo/cardwright.cfg --demo-portal --demo-job testdata/demo/demo-job.json"
	if !strings.Contains(string(doc), documented) {
		t.Fatalf("docs/protocol.md no longer shows %q", documented)
	}
	_, demo, _, _ := startServe(t, "--config", filepath.Join(demoDir, "cardwright.cfg"), "--demo-portal", "--demo-job", demoJobFile,
		"--listen", "127.0.0.1:0", "--journal", t.TempDir())
	resp, err := http.Get(strings.TrimSuffix(demo, "/") + "/demo-job.json")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(served, got) {
		t.Fatalf("the demo portal serves HTTP %d:\n%.200s", resp.StatusCode, served)
	}

	// What the page does with it: the holder name into HOLDER, then submit.
	ma := startMemAgent(t, 1)
	c := ma.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	job.Reader = memReader(0)
	job.Fields["HOLDER"] = base64.StdEncoding.EncodeToString([]byte("Demo Job File"))
	res, err := c.Run(ctx, &job, ma.issue, nil)
	if err != nil || !res.OK {
		t.Fatalf("the demo job: %+v %v", res, err)
	}
	if err := checkMemCard(ma.cards[memReader(0)], "Demo Job File"); err != nil {
		t.Fatal(err)
	}
}
