package main

import (
	"context"
	"encoding/base64"
	"io"
	"maps"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/issuer"
)

// TestServeMetricsOnStack: `cardwright serve` (real runner) runs jobs that
// end well and jobs that fail; GET /v1/metrics, parsed by Prometheus's own
// text parser, counts exactly those jobs by result, one step observation
// per step the results carried (by kind), the key generations that
// succeeded, the cards of the hour, the readers the stack has, the APDUs
// exchanged, and the results not yet acknowledged (spec/station.md
// "Observability").
func TestServeMetricsOnStack(t *testing.T) {
	e := newStackEnv(t)
	wsURL, _, logs := e.serve("--allow-origin", memOrigin)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, wsURL, client.Options{Origin: memOrigin})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ca, err := issuer.OpenLocalCA(e.ca)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ctx context.Context, req *api.Request) *api.Answer {
		csr, _ := base64.StdEncoding.DecodeString(req.CSR)
		der, _, err := ca.Issue(ctx, issuer.Request{CSR: csr, Application: req.Application})
		if err != nil {
			return &api.Answer{Error: err.Error()}
		}
		return &api.Answer{Certificate: base64.StdEncoding.EncodeToString(der)}
	}
	jobs := []*api.Job{
		{Description: iccsnJob, Reader: e.own[0]},
		demoJobOnStack(t, e.own[1], "cardwright demo 2", "Metrics Holder"),
		{Description: iccsnJob, Reader: e.own[0]},
		{Description: iccsnJob, Reader: "No Such Reader 99"}, // fails choosing the card
		{Description: "[Encoding]\nType=nonsense\n"},         // fails validation
	}
	results := map[string]float64{} // "ok" or code → jobs
	steps := map[string]uint64{}    // kind → steps on the wire
	var keygens uint64
	var ok float64
	for i, job := range jobs {
		res, err := c.Run(ctx, job, issue, nil)
		if err != nil {
			t.Fatalf("job %d: %v\n%s", i, err, logs())
		}
		code := "ok"
		if res.Error != nil {
			code = string(res.Error.Code)
		} else {
			ok++
		}
		results[code]++
		for _, st := range res.Steps {
			steps[st.Kind]++
			if st.Kind == "keygen" && st.OK {
				keygens++
			}
		}
		if i == 0 { // acknowledged: out of the backlog
			if err := c.Ack(ctx, res.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ok != 3 || len(results) != 3 || keygens == 0 {
		t.Fatalf("jobs ended %v with %d key generations; want 3 ok and two failures with distinct codes, keys generated\n%s", results, keygens, logs())
	}
	stackReaders, err := c.Readers(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Scraped as Prometheus does: GET, no Origin, Host 127.0.0.1:port.
	metricsURL := "http" + strings.TrimSuffix(strings.TrimPrefix(wsURL, "ws"), "/v1/ws") + "/v1/metrics"
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", metricsURL, resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parsing the exposition: %v\n%s", err, body)
	}

	gotResults := map[string]float64{}
	for _, m := range fams["cardwright_jobs_total"].GetMetric() {
		if label(m, "via") != "ws" {
			t.Errorf("a job counted via %q", label(m, "via"))
		}
		gotResults[label(m, "result")] += m.GetCounter().GetValue()
	}
	if !maps.Equal(gotResults, results) {
		t.Errorf("jobs_total by result = %v; the jobs ran %v", gotResults, results)
	}
	gotSteps := map[string]uint64{}
	for _, m := range fams["cardwright_step_duration_seconds"].GetMetric() {
		gotSteps[label(m, "kind")] += m.GetHistogram().GetSampleCount()
		if md := label(m, "model"); md != "none" && !strings.HasPrefix(md, "3B") {
			t.Errorf("step model %q is not an ATR", md)
		}
	}
	if !maps.Equal(gotSteps, steps) {
		t.Errorf("step_duration_seconds counts by kind = %v; the results carried %v", gotSteps, steps)
	}
	var gotKeygens uint64
	for _, m := range fams["cardwright_keygen_duration_seconds"].GetMetric() {
		gotKeygens += m.GetHistogram().GetSampleCount()
	}
	if gotKeygens != keygens {
		t.Errorf("keygen_duration_seconds count = %d, want %d", gotKeygens, keygens)
	}
	if n := histogramCount(fams, "cardwright_job_duration_seconds"); n != uint64(len(jobs)) {
		t.Errorf("job_duration_seconds count = %d, want %d", n, len(jobs))
	}
	if n := histogramCount(fams, "cardwright_apdu_round_trip_seconds"); n == 0 {
		t.Errorf("no APDU round trip counted")
	}
	for name, want := range map[string]float64{
		"cardwright_cards_per_hour":     ok,
		"cardwright_readers_present":    float64(len(stackReaders)),
		"cardwright_journal_backlog":    float64(len(jobs) - 1),
		"process_open_fds":              -1, // present (any value)
		"go_goroutines":                 -1,
		"process_resident_memory_bytes": -1,
	} {
		ms := fams[name].GetMetric()
		if len(ms) != 1 {
			t.Errorf("%s: %d series", name, len(ms))
			continue
		}
		if got := ms[0].GetGauge().GetValue(); want >= 0 && got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// promtool (Debian's prometheus package) lints it too where installed.
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(string(body))
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool not installed: the scrape was checked by expfmt only")
	}
	t.Logf("scrape excerpt:\n%s", excerpt(string(body)))
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

func histogramCount(fams map[string]*dto.MetricFamily, name string) uint64 {
	var n uint64
	for _, m := range fams[name].GetMetric() {
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

// excerpt is the cardwright_ lines of an exposition, for the log
// (docs/station.md quotes it).
func excerpt(body string) string {
	var b strings.Builder
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, "cardwright_") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
