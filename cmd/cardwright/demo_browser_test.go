package main

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cardwright/cardwright/agent/journal"
	"github.com/cardwright/cardwright/internal/stacktest"
)

const chromiumPath = "/usr/bin/chromium"

// TestDemoPortalBrowser drives Debian's Chromium to the demo portal, which
// connects to `cardwright serve`, runs two jobs in a row from the same page
// (no reload), answers each job's certificate request from the demo CA,
// shows and acknowledges the results. Runner: the fake runner for now (the
// hardware runner is wired by cmd/cardwright's wiring file).
func TestDemoPortalBrowser(t *testing.T) {
	stacktest.Require(t)
	dir := t.TempDir()
	_, demo, stop, logs := startServe(t, "--fake-runner", "--config", "/dev/null", "--listen", "127.0.0.1:0",
		"--journal", dir, "--demo-portal")
	ctx, done := newBrowser(t)
	defer done()
	text := func(sel string) string {
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v\n%s", sel, err, logs())
		}
		return v
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(demo),
		chromedp.WaitVisible(chromedp.CSS(`#status.ok`)),
	); err != nil {
		t.Fatalf("opening the demo portal: %v\n%s", err, logs())
	}
	if status := text("#status"); !strings.Contains(status, "connected to cardwright/") {
		t.Fatalf("status %q", status)
	}
	// A marker that a reload would wipe.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.sameDocument = 4711`)); err != nil {
		t.Fatal(err)
	}
	iccsn := regexp.MustCompile(`ICCSN=(FAKE[0-9A-F]{8})`)
	seen := map[string]bool{}
	for i, name := range []string{"Ada Lovelace", "Grace Hopper"} {
		err := chromedp.Do(ctx,
			chromedp.SetValue(chromedp.CSS(`#name`), name),
			chromedp.Click(chromedp.CSS(`#encode`)),
			chromedp.WaitVisible(chromedp.Search(`//span[@id="count" and text()="`+strconv.Itoa(i+1)+`"]`)),
		)
		if err != nil {
			t.Fatalf("job %d: %v\n%s", i+1, err, logs())
		}
		result, log := text("#result"), text("#log")
		m := iccsn.FindStringSubmatch(result)
		if !strings.HasPrefix(result, "OK ") || !strings.Contains(result, "Echo="+name) ||
			!regexp.MustCompile(`Certificate=[0-9A-F]+`).MatchString(result) || m == nil || seen[m[1]] {
			t.Fatalf("job %d result on the page: %q\nlog:\n%s", i+1, result, log)
		}
		seen[m[1]] = true
		if !strings.Contains(log, "certificate request 1 (DemoLogon)") {
			t.Fatalf("job %d: the page saw no certificate request:\n%s", i+1, log)
		}
	}
	marker, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.sameDocument`))
	if err != nil || marker != 4711 {
		t.Fatalf("the page was reloaded between jobs (%d, %v)", marker, err)
	}
	done()
	if code := stop(); code != exitOK {
		t.Fatalf("serve exit %d", code)
	}
	out := logs()
	if n := strings.Count(out, `"msg":"job finished"`); n != 2 {
		t.Fatalf("%d jobs finished in the agent log, want 2:\n%s", n, out)
	}
	// Both results were acknowledged from the page: the journal is empty.
	j, _, err := journal.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if recs, _ := j.All(); len(recs) != 0 {
		t.Fatalf("journal holds %d unacknowledged results", len(recs))
	}
}

// newBrowser starts headless Chromium for one test.
func newBrowser(t *testing.T) (context.Context, func()) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("needs Chromium at %s (apt-get install chromium): %v", chromiumPath, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	return ctx, func() { cancel(); cancelBrowser(); cancelAlloc() }
}

// TestDemoPortalJobFile: with --demo-job the page submits that job (its
// description, fields, secret outputs and reader) instead of the form's.
func TestDemoPortalJobFile(t *testing.T) {
	stacktest.Require(t)
	jobFile := filepath.Join(t.TempDir(), "job.json")
	os.WriteFile(jobFile, []byte(`{"description":"[Description]\nName=from the job file\n","fields":{"HOLDER_NAME":"","PIN":"24682468","Steps":"2"},"secret":["PIN1"],"reader":"Fake Reader 7"}`), 0o600)
	_, demo, stop, logs := startServe(t, "--fake-runner", "--config", "/dev/null", "--listen", "127.0.0.1:0",
		"--journal", t.TempDir(), "--demo-portal", "--demo-job", jobFile, "--demo-ca", t.TempDir())
	ctx, done := newBrowser(t)
	defer done()
	err := chromedp.Do(ctx,
		chromedp.Navigate(demo),
		chromedp.WaitVisible(chromedp.CSS(`#status.ok`)),
		chromedp.SetValue(chromedp.CSS(`#name`), "Alan Turing"),
		chromedp.Click(chromedp.CSS(`#encode`)),
		chromedp.WaitVisible(chromedp.Search(`//span[@id="count" and text()="1"]`)),
	)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs())
	}
	desc, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#description`)))
	result, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#result`)))
	if !strings.Contains(desc, "Name=from the job file") || !strings.Contains(result, "Reader=Fake Reader 7") || !strings.Contains(result, "Echo=Alan Turing") {
		t.Fatalf("description %q, result %q", desc, result)
	}
	// The secret output is not shown on the page.
	if strings.Contains(result, "24682468") {
		t.Fatalf("the page shows the secret output: %q", result)
	}
	done()
	stop()
	if strings.Contains(logs(), "24682468") {
		t.Fatal("PIN in the agent log")
	}
}

// TestDemoPortalRealJobOnStack is the browser end to end with the real
// runner: Chromium opens the demo portal of `cardwright serve --demo-portal
// --demo-job`, which runs the demo encoding job on the own virtual card
// twice without reloading, each time answering the agent's two certificate
// requests from the demo test CA; the test then reads the card and the
// token independently.
func TestDemoPortalRealJobOnStack(t *testing.T) {
	e := newStackEnv(t)
	// HOLDER empty: the page fills it with the name from its form.
	job, _ := json.Marshal(demoJobOnStack(t, e.own[0], "cardwright demo 1", ""))
	jobFile := writeTestFile(t, e.dir, "demo-job.json", string(job))
	_, demo, logs := e.serve("--demo-portal", "--demo-job", jobFile, "--demo-ca", e.ca)
	ctx, done := newBrowser(t)
	defer done()
	text := func(sel string) string {
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v\n%s", sel, err, logs())
		}
		return v
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(demo), chromedp.WaitVisible(chromedp.CSS(`#status.ok`))); err != nil {
		t.Fatalf("opening the demo portal: %v\n%s", err, logs())
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.sameDocument = 4711`)); err != nil {
		t.Fatal(err)
	}
	serial := e.s.Get(t, "SERIAL_OWN_1")
	names := []string{"Ada Lovelace", "Grace Hopper"}
	for i, name := range names {
		err := chromedp.Do(ctx,
			chromedp.SetValue(chromedp.CSS(`#name`), name),
			chromedp.Click(chromedp.CSS(`#encode`)),
			chromedp.WaitVisible(chromedp.Search(`//span[@id="count" and text()="`+strconv.Itoa(i+1)+`"]`)),
		)
		if err != nil {
			t.Fatalf("job %d: %v\nresult: %s\npage log:\n%s\nagent log:\n%s", i+1, err, text("#result"), text("#log"), logs())
		}
		result, log := text("#result"), text("#log")
		if result != "OK ICCSN="+serial {
			t.Fatalf("job %d result on the page: %q, want %q", i+1, result, "OK ICCSN="+serial)
		}
		for _, tmpl := range []string{"DigitalSignature", "Encryption"} {
			if !strings.Contains(log, "("+tmpl+")") {
				t.Fatalf("job %d: the page answered no %s certificate request:\n%s", i+1, tmpl, log)
			}
		}
		noPINs(t, result, log)
	}
	if marker, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.sameDocument`)); err != nil || marker != 4711 {
		t.Fatalf("the page was reloaded between jobs (%d, %v)", marker, err)
	}
	done()
	noPINs(t, logs())
	// The card holds the second job's holder name and PIN; the token its two
	// keys with certificates from the demo CA.
	readCard(t, e.own[0], names[1], demoPIN)
	rep := e.readBack("cardwright demo 1", demoPIN)
	if rep.Error != "" || rep.Label != "cardwright demo 1" || len(rep.Certs) != 2 || rep.Linked != 2 || rep.Chained != 2 {
		t.Fatalf("token after the browser's jobs: %+v", rep)
	}
}

// TestDemoPortalReloadRedelivers: the page is reloaded while its job runs.
// The reloaded page resumes its session (kept in sessionStorage by
// web/cardwright.js), receives the job's result as an earlier result,
// shows and acknowledges it: nothing is left in the journal.
func TestDemoPortalReloadRedelivers(t *testing.T) {
	stacktest.Require(t)
	dir := t.TempDir()
	jobFile := filepath.Join(t.TempDir(), "job.json")
	os.WriteFile(jobFile, []byte(`{"description":"x","fields":{"Steps":"20","StepDelayMs":"100","Echo":"across the reload"}}`), 0o600)
	agentURL, demo, stop, logs := startServe(t, "--fake-runner", "--config", "/dev/null", "--listen", "127.0.0.1:0",
		"--journal", dir, "--demo-portal", "--demo-job", jobFile)
	// Without fake=1 the page submits the job file's fields as they are:
	// twenty steps of 100 ms.
	page := demo + "demo.html?agent=" + url.QueryEscape(agentURL)
	ctx, done := newBrowser(t)
	defer done()
	if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`#status.ok`))); err != nil {
		t.Fatalf("opening the demo portal: %v\n%s", err, logs())
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.sameDocument = 4711`)); err != nil {
		t.Fatal(err)
	}
	err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#encode`)),
		chromedp.WaitVisible(chromedp.Search(`//span[@id="step" and starts-with(text(), "3/20")]`)),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#status.ok`)),
		chromedp.WaitVisible(chromedp.Search(`//div[@id="log" and contains(., "delivered again") and contains(., "acknowledged")]`)),
	)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs())
	}
	if fresh, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.sameDocument === undefined`)); err != nil || !fresh {
		t.Fatalf("the page was not reloaded (%v)", err)
	}
	result, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#result`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(result, "OK ") || !strings.Contains(result, "Echo=across the reload") {
		t.Fatalf("result on the reloaded page: %q", result)
	}
	done()
	stop()
	if n := strings.Count(logs(), `"msg":"job finished"`); n != 1 {
		t.Fatalf("%d jobs finished, want 1:\n%s", n, logs())
	}
	j, _, err := journal.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if recs, _ := j.All(); len(recs) != 0 {
		t.Fatalf("the journal holds %d results: the reloaded page did not acknowledge", len(recs))
	}
}
