package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cardwright/cardwright/audit"
	"github.com/cardwright/cardwright/metrics"
	"github.com/cardwright/cardwright/runner"
)

const atrA = "3B8F8001804F0CA000000306030001000000006A"

// Scrape fetches h's exposition in the text format and parses it with the
// Prometheus text parser, as a Prometheus server would.
func Scrape(t testing.TB, body io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(body)
	if err != nil {
		t.Fatalf("parsing the exposition: %v", err)
	}
	return fams
}

func scrape(t *testing.T, st *metrics.Station) map[string]*dto.MetricFamily {
	t.Helper()
	rr := httptest.NewRecorder()
	st.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/v1/metrics", nil))
	if rr.Code != 200 || !strings.HasPrefix(rr.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: %d %q", rr.Code, rr.Header().Get("Content-Type"))
	}
	return Scrape(t, rr.Body)
}

// find is the metric of fam whose labels are exactly labels.
func find(fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	fam := fams[name]
	if fam == nil {
		return nil
	}
next:
	for _, m := range fam.Metric {
		if len(m.Label) != len(labels)/2 {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

func counter(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	m := find(fams, name, labels...)
	if m == nil || m.Counter == nil {
		t.Fatalf("%s%v: missing", name, labels)
	}
	return m.Counter.GetValue()
}

func histCount(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) (uint64, float64) {
	t.Helper()
	m := find(fams, name, labels...)
	if m == nil || m.Histogram == nil {
		t.Fatalf("%s%v: missing", name, labels)
	}
	return m.Histogram.GetSampleCount(), m.Histogram.GetSampleSum()
}

func gauge(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	m := find(fams, name)
	if m == nil || m.Gauge == nil {
		t.Fatalf("%s: missing", name)
	}
	return m.Gauge.GetValue()
}

func job(via, result, atr string, at time.Time, steps ...audit.Step) *audit.Record {
	return &audit.Record{Via: via, Result: result, ATR: atr, Time: at, Started: at.Add(-2 * time.Second), Steps: steps}
}

// TestStation: jobs, steps, key generations, APDUs, cards per hour and
// the gauges, as a Prometheus server parses them.
func TestStation(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
	readers, backlog := 3, 7
	st := metrics.New(metrics.Options{
		Now:     func() time.Time { return now },
		Readers: func(context.Context) (int, error) { return readers, nil },
		Backlog: func() (int, error) { return backlog, nil },
	})
	sel := audit.Step{Name: "select", Kind: runner.KindSelect, MS: 30, OK: true}
	pin := audit.Step{Name: "PIN", Kind: "set_pin", MS: 5000, WaitedMS: 4900, OK: true} // 100 ms of work
	gen := audit.Step{Name: "App", Kind: runner.KindKeygen, MS: 42000, OK: true}
	fin := audit.Step{Name: "finish", Kind: runner.KindFinish, MS: 20, OK: true}
	badGen := audit.Step{Name: "App", Kind: runner.KindKeygen, MS: 9000, OK: false}

	st.JobFinished(job("ws", "ok", atrA, now, sel, pin, gen, fin))
	st.JobFinished(job("ws", "ok", atrA, now.Add(-59*time.Minute), sel, fin))
	st.JobFinished(job("cardjob", "ok", atrA, now.Add(-61*time.Minute), sel, fin)) // out of the hour
	st.JobFinished(job("ws", "pin_incorrect", atrA, now, sel, badGen))
	st.JobFinished(job("ws", "no_card", "", now))
	for range 5 {
		st.APDU(3 * time.Millisecond)
	}

	fams := scrape(t, st)
	for _, c := range []struct {
		via, result string
		want        float64
	}{{"ws", "ok", 2}, {"cardjob", "ok", 1}, {"ws", "pin_incorrect", 1}, {"ws", "no_card", 1}} {
		if got := counter(t, fams, "cardwright_jobs_total", "via", c.via, "result", c.result); got != c.want {
			t.Errorf("jobs_total{%s,%s} = %v, want %v", c.via, c.result, got, c.want)
		}
	}
	if n, _ := histCount(t, fams, "cardwright_step_duration_seconds", "kind", "select", "model", atrA); n != 4 {
		t.Errorf("select steps = %d, want 4", n)
	}
	if n, sum := histCount(t, fams, "cardwright_step_duration_seconds", "kind", "set_pin", "model", atrA); n != 1 || math.Abs(sum-0.1) > 1e-9 {
		t.Errorf("set_pin steps = %d, sum %v; want 1 of 0.1 s (waits left out)", n, sum)
	}
	if n, _ := histCount(t, fams, "cardwright_step_duration_seconds", "kind", "keygen", "model", atrA); n != 2 {
		t.Errorf("keygen steps = %d, want 2 (failed ones too)", n)
	}
	if n, sum := histCount(t, fams, "cardwright_keygen_duration_seconds", "model", atrA); n != 1 || sum != 42 {
		t.Errorf("keygen durations = %d, sum %v; want the one that succeeded, 42 s", n, sum)
	}
	if n, sum := histCount(t, fams, "cardwright_job_duration_seconds"); n != 5 || sum != 10 {
		t.Errorf("job durations = %d, sum %v; want 5 of 2 s", n, sum)
	}
	if n, _ := histCount(t, fams, "cardwright_apdu_round_trip_seconds"); n != 5 {
		t.Errorf("apdu round trips = %d, want 5", n)
	}
	if got := gauge(t, fams, "cardwright_cards_per_hour"); got != 2 {
		t.Errorf("cards_per_hour = %v, want 2", got)
	}
	if got := gauge(t, fams, "cardwright_readers_present"); got != 3 {
		t.Errorf("readers_present = %v", got)
	}
	if got := gauge(t, fams, "cardwright_journal_backlog"); got != 7 {
		t.Errorf("journal_backlog = %v", got)
	}
	if fams["go_goroutines"] == nil || fams["process_start_time_seconds"] == nil {
		t.Errorf("the Go and process collectors are missing")
	}

	// An hour on, the window has emptied; the gauges follow their sources.
	now = now.Add(61 * time.Minute)
	readers, backlog = 1, 0
	fams = scrape(t, st)
	if got := gauge(t, fams, "cardwright_cards_per_hour"); got != 0 {
		t.Errorf("cards_per_hour an hour later = %v, want 0", got)
	}
	if gauge(t, fams, "cardwright_readers_present") != 1 || gauge(t, fams, "cardwright_journal_backlog") != 0 {
		t.Errorf("gauges did not follow their sources")
	}
}

// TestModelCap: past MaxModels distinct ATRs, and for anything that is not
// an ATR, the model is "other"; no ATR is "none".
func TestModelCap(t *testing.T) {
	st := metrics.New(metrics.Options{MaxModels: 2, NoRuntime: true})
	step := audit.Step{Name: "select", Kind: "select", MS: 1, OK: true}
	now := time.Now()
	for i := range 5 {
		st.JobFinished(job("ws", "ok", fmt.Sprintf("3B%02X", i), now, step))
	}
	st.JobFinished(job("ws", "ok", "3B00", now, step))                   // known: keeps its name
	st.JobFinished(job("ws", "ok", `3B"}\n`, now, step))                 // not hex
	st.JobFinished(job("ws", "ok", strings.Repeat("AB", 34), now, step)) // longer than an ATR
	st.JobFinished(job("ws", "ok", "", now, step))
	fams := scrape(t, st)
	want := map[string]uint64{"3B00": 2, "3B01": 1, metrics.ModelOther: 5, metrics.ModelNone: 1}
	fam := fams["cardwright_step_duration_seconds"]
	if len(fam.GetMetric()) != len(want) {
		t.Errorf("%d series, want %d", len(fam.GetMetric()), len(want))
	}
	for model, n := range want {
		if got, _ := histCount(t, fams, "cardwright_step_duration_seconds", "kind", "select", "model", model); got != n {
			t.Errorf("model %s: %d steps, want %d", model, got, n)
		}
	}
}

// TestGaugeErrors: a source that fails shows NaN, and the scrape still
// works.
func TestGaugeErrors(t *testing.T) {
	st := metrics.New(metrics.Options{NoRuntime: true,
		Readers: func(context.Context) (int, error) { return 0, errors.New("no PC/SC service") },
		Backlog: func() (int, error) { return 0, errors.New("journal closed") },
	})
	fams := scrape(t, st)
	if !math.IsNaN(gauge(t, fams, "cardwright_readers_present")) || !math.IsNaN(gauge(t, fams, "cardwright_journal_backlog")) {
		t.Errorf("failing sources should read NaN")
	}
	if fams["go_goroutines"] != nil {
		t.Errorf("NoRuntime still exports the Go collector")
	}
}

// TestKindNames: the kinds the Station treats apart are the runner's.
func TestKindNames(t *testing.T) {
	if runner.KindKeygen != "keygen" {
		t.Errorf("runner.KindKeygen is %q; metrics.JobFinished compares with \"keygen\"", runner.KindKeygen)
	}
}

// FuzzJobFinished: whatever a record holds, the exposition stays valid
// Prometheus text and the model labels stay capped.
func FuzzJobFinished(f *testing.F) {
	f.Add("ws", "ok", atrA, "select", 12.5, 0.0, true)
	f.Add("cardjob", "pin_incorrect", "", "keygen", 1e9, 2e9, false)
	f.Add("", "", "3b", "\xff\x00", math.NaN(), math.Inf(1), true)
	f.Add("ws\n", "ok\"", "3B{x=\"1\"}", "set_pin", -1.0, 0.0, true)
	f.Fuzz(func(t *testing.T, via, result, atr, kind string, ms, waited float64, ok bool) {
		st := metrics.New(metrics.Options{MaxModels: 2, NoRuntime: true})
		now := time.Now()
		st.JobFinished(job(via, result, atr, now, audit.Step{Kind: kind, MS: ms, WaitedMS: waited, OK: ok}))
		st.JobFinished(job(via, result, atr+"00", now, audit.Step{Kind: kind, MS: ms, OK: ok}))
		st.JobFinished(job(via, result, "AA"+atr, now, audit.Step{Kind: kind, MS: ms, OK: ok}))
		rr := httptest.NewRecorder()
		st.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/v1/metrics", nil))
		if rr.Code != 200 {
			t.Fatalf("scrape: %d %s", rr.Code, rr.Body)
		}
		fams := Scrape(t, rr.Body)
		models := map[string]bool{}
		for _, m := range fams["cardwright_step_duration_seconds"].GetMetric() {
			for _, lp := range m.Label {
				if lp.GetName() == "model" {
					models[lp.GetValue()] = true
				}
			}
		}
		delete(models, metrics.ModelOther)
		delete(models, metrics.ModelNone)
		if len(models) > 2 {
			t.Errorf("%d models past a cap of 2: %v", len(models), models)
		}
	})
}

// BenchmarkJobFinished: what the metrics cost a job: one record of seven
// steps (two of them key generations) on one card model.
func BenchmarkJobFinished(b *testing.B) {
	st := metrics.New(metrics.Options{NoRuntime: true})
	now := time.Now()
	rec := job("ws", "ok", atrA, now,
		audit.Step{Name: "select", Kind: runner.KindSelect, MS: 30, OK: true},
		audit.Step{Name: "init", Kind: "init_profile", MS: 200, OK: true},
		audit.Step{Name: "PIN", Kind: "set_pin", MS: 3000, WaitedMS: 2900, OK: true},
		audit.Step{Name: "App_A", Kind: runner.KindKeygen, MS: 4000, OK: true},
		audit.Step{Name: "App_B", Kind: runner.KindKeygen, MS: 9000, OK: true},
		audit.Step{Name: "Cert", Kind: "application", MS: 80, OK: true},
		audit.Step{Name: "finish", Kind: runner.KindFinish, MS: 20, OK: true})
	b.ReportAllocs()
	for b.Loop() {
		st.JobFinished(rec)
	}
}

// BenchmarkScrape: one scrape of a station that has seen jobs on 32 card
// models, in the text format, without the Go and process collectors.
func BenchmarkScrape(b *testing.B) {
	st := metrics.New(metrics.Options{NoRuntime: true,
		Readers: func(context.Context) (int, error) { return 4, nil }, Backlog: func() (int, error) { return 0, nil }})
	now := time.Now()
	for i := range 32 {
		st.JobFinished(job("ws", "ok", fmt.Sprintf("3B%02X", i), now,
			audit.Step{Kind: runner.KindSelect, MS: 30, OK: true}, audit.Step{Kind: runner.KindKeygen, MS: 4000, OK: true}))
	}
	req := httptest.NewRequest("GET", "/v1/metrics", nil)
	h := st.Handler()
	b.ReportAllocs()
	for b.Loop() {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
	}
}
