package agent_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/metrics"
	"github.com/cardwright/cardwright/runner"
)

func withMetrics(st *metrics.Station) agentOpt {
	return func(_ *agent.Config, d *agent.Deps) {
		d.Observers = append(d.Observers, st)
		d.Metrics = st.Handler()
	}
}

func getMetrics(t *testing.T, ta *testAgent, method, host, origin string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+ta.addr+"/v1/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestMetricsEndpoint: GET /v1/metrics serves the station's metrics, parsed
// as Prometheus parses them, with the jobs the agent ran counted by result;
// it follows the Host and Origin rules of every endpoint and takes GET only.
func TestMetricsEndpoint(t *testing.T) {
	ta := startAgent(t, func(c *agent.Config, d *agent.Deps) {
		withMetrics(metrics.New(metrics.Options{Backlog: d.Journal.Backlog}))(c, d)
	})
	c := ta.dial(client.Options{})
	ctx := ctxT(t)
	var last string
	for _, fail := range []string{"", "", "", "card_error", "pin_incorrect"} {
		job := &api.Job{Description: "x", Fields: map[string]string{"Steps": "1"}}
		if fail != "" {
			job.Fields["Fail"] = fail
		}
		res, err := c.Run(ctx, job, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		last = res.ID
	}
	if err := c.Ack(ctx, last); err != nil {
		t.Fatal(err)
	}

	resp, body := getMetrics(t, ta, "GET", "", "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /v1/metrics: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the exposition: %v", err)
	}
	got := map[string]float64{}
	for _, m := range fams["cardwright_jobs_total"].GetMetric() {
		var via, result string
		for _, lp := range m.GetLabel() {
			switch lp.GetName() {
			case "via":
				via = lp.GetValue()
			case "result":
				result = lp.GetValue()
			}
		}
		got[via+"/"+result] = m.GetCounter().GetValue()
	}
	want := map[string]float64{"ws/ok": 3, "ws/card_error": 1, "ws/pin_incorrect": 1}
	if len(got) != len(want) {
		t.Errorf("jobs_total = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("jobs_total{%s} = %v, want %v", k, got[k], v)
		}
	}
	if m := fams["cardwright_journal_backlog"].GetMetric(); len(m) != 1 || m[0].GetGauge().GetValue() != 4 {
		t.Errorf("journal_backlog = %v, want 4 (five results, one acknowledged)", m)
	}

	// The rules of every endpoint.
	_, port, _ := net.SplitHostPort(ta.addr)
	for _, tc := range []struct {
		name, method, host, origin string
		want                       int
	}{
		{"localhost", "GET", "localhost:" + port, "", 200},
		{"allowed origin", "GET", "", testOrigin, 200},
		{"foreign origin", "GET", "", "https://evil.example", 403},
		{"null origin", "GET", "", "null", 403},
		{"rebound host", "GET", "evil.example:" + port, "", 403},
		{"wrong port", "GET", "127.0.0.1:1", "", 403},
		{"POST", "POST", "", "", 405},
		{"DELETE", "DELETE", "", "", 405},
	} {
		resp, body := getMetrics(t, ta, tc.method, tc.host, tc.origin)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: HTTP %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if tc.want != 200 && strings.Contains(body, "cardwright_jobs_total") {
			t.Errorf("%s: refused but the metrics were sent", tc.name)
		}
	}
	if !strings.Contains(ta.log.String(), "evil.example") {
		t.Errorf("refused requests not logged")
	}
}

// TestMetricsAbsent: an agent without metrics answers 404.
func TestMetricsAbsent(t *testing.T) {
	ta := startAgent(t)
	if resp, _ := getMetrics(t, ta, "GET", "", ""); resp.StatusCode != 404 {
		t.Errorf("GET /v1/metrics without metrics: HTTP %d, want 404", resp.StatusCode)
	}
}

// stepRunner ends each job ok after reporting the steps of a typical
// encoding (select, PINs, two keys, a certificate, finish) on one card
// model: what the metrics count per job, without a card.
type stepRunner struct{}

func (stepRunner) Run(_ context.Context, job *runner.Job, _ func(runner.Progress)) runner.Result {
	ms := time.Millisecond
	return runner.Result{Reader: "R0", ATR: []byte{0x3B, 0x8F, 0x80, 0x01}, Serial: []byte{1, 2, 3, 4},
		Fields: map[string]string{"ICCSN": "01020304"},
		Steps: []runner.StepTime{
			{Name: "select", Kind: runner.KindSelect, Duration: 30 * ms, OK: true},
			{Name: "init", Kind: "init_profile", Duration: 200 * ms, OK: true},
			{Name: "PIN", Kind: "set_pin", Duration: 3 * time.Second, Waited: 2900 * ms, OK: true},
			{Name: "App_A", Kind: runner.KindKeygen, Duration: 4 * time.Second, OK: true},
			{Name: "App_B", Kind: runner.KindKeygen, Duration: 9 * time.Second, OK: true},
			{Name: "Cert", Kind: "application", Duration: 80 * ms, OK: true},
			{Name: "finish", Kind: runner.KindFinish, Duration: 20 * ms, OK: true},
		}}
}

// BenchmarkJobMetrics: a job's round trip over the socket (submit, result,
// two journal fsyncs; ack outside the timer) with the runner reporting
// seven steps, without metrics (off) and with the station's metrics
// observing every job (on), in the same run. The difference is the
// metrics' overhead per job; metrics.BenchmarkJobFinished isolates it.
func BenchmarkJobMetrics(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			opts := []agentOpt{func(c *agent.Config, d *agent.Deps) { c.RatePerSecond = 1 << 30; d.Runner = stepRunner{} }}
			if on {
				opts = append(opts, withMetrics(metrics.New(metrics.Options{})))
			}
			ta := startAgent(b, opts...)
			c := benchClient(b, ta)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := c.Run(ctx, &api.Job{Description: "x"}, nil, nil)
				if err != nil || !res.OK {
					b.Fatal(res, err)
				}
				b.StopTimer()
				if err := c.Ack(ctx, res.ID); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
