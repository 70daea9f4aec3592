package agent_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/runner"
)

func getHealth(t *testing.T, url string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// TestHealthFull: /v1/health?full=1 carries the self-test's report, 200
// with status ok, 503 with status fail; concurrent requests share one run;
// plain /v1/health never runs it; a foreign origin is refused as
// everywhere.
func TestHealthFull(t *testing.T) {
	var runs atomic.Int32
	ok := true
	release := make(chan struct{})
	ta := startAgent(t, func(_ *agent.Config, d *agent.Deps) {
		d.SelfTest = func(ctx context.Context, _ agent.SelfTestRequest) (any, bool) {
			runs.Add(1)
			<-release
			return map[string]any{"status": map[bool]string{true: "ok", false: "fail"}[ok]}, ok
		}
	})
	base := "http://" + ta.addr + "/v1/health"
	if code, body := getHealth(t, base, nil); code != 200 || body["status"] != "ok" || body["selftest"] != nil || runs.Load() != 0 {
		t.Fatalf("plain health: %d %v (runs %d)", code, body, runs.Load())
	}
	var wg sync.WaitGroup
	codes := make([]int, 3)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body map[string]any
			codes[i], body = getHealth(t, base+"?full=1", nil)
			if body["status"] != "ok" || body["selftest"].(map[string]any)["status"] != "ok" || body["agent"] != "cardwright/test" {
				t.Errorf("full health: %v", body)
			}
		}()
	}
	for runs.Load() == 0 { // until the first request runs the self-test
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if runs.Load() != 1 || codes[0] != 200 || codes[1] != 200 || codes[2] != 200 {
		t.Errorf("codes %v, runs %d: want three 200s from one run", codes, runs.Load())
	}
	if code, _ := getHealth(t, base+"?full=1", map[string]string{"Origin": "https://evil.example"}); code != http.StatusForbidden {
		t.Errorf("foreign origin: %d", code)
	}

	ok = false
	ta2 := startAgent(t, func(_ *agent.Config, d *agent.Deps) {
		d.SelfTest = func(context.Context, agent.SelfTestRequest) (any, bool) {
			return map[string]any{"status": "fail"}, false
		}
	})
	code, body := getHealth(t, "http://"+ta2.addr+"/v1/health?full=1", nil)
	if code != http.StatusServiceUnavailable || body["status"] != "fail" {
		t.Errorf("failing self-test: %d %v", code, body)
	}
	ta3 := startAgent(t)
	if code, _ := getHealth(t, "http://"+ta3.addr+"/v1/health?full=1", nil); code != http.StatusNotImplemented {
		t.Errorf("no self-test: %d", code)
	}
}

// TestHealthFullKeygen: full=1 asks the self-test for no key generation
// (monitoring scrapes it often); &keygen=1 asks for it; the two reports
// are kept apart (a plain full=1 is never answered with a keygen run's
// report, nor the other way), and keygen takes only 1 or 0.
func TestHealthFullKeygen(t *testing.T) {
	var asked []bool
	ta := startAgent(t, func(_ *agent.Config, d *agent.Deps) {
		d.SelfTest = func(_ context.Context, req agent.SelfTestRequest) (any, bool) {
			asked = append(asked, req.Keygen)
			return map[string]any{"keygen": req.Keygen}, true
		}
	})
	base := "http://" + ta.addr + "/v1/health?full=1"
	for _, c := range []struct {
		query  string
		keygen bool
		runs   int
	}{
		{"", false, 1},
		{"&keygen=1", true, 2},
		{"", false, 2},         // the plain report, reused
		{"&keygen=1", true, 2}, // the keygen report, reused
		{"&keygen=0", false, 2},
	} {
		code, body := getHealth(t, base+c.query, nil)
		rep, _ := body["selftest"].(map[string]any)
		if code != 200 || rep["keygen"] != c.keygen || len(asked) != c.runs {
			t.Errorf("full=1%s: %d %v, runs %v; want keygen %v after %d runs", c.query, code, body, asked, c.keygen, c.runs)
		}
	}
	if len(asked) == 2 && (asked[0] || !asked[1]) {
		t.Errorf("the self-test was asked %v, want [false true]", asked)
	}
	if code, body := getHealth(t, base+"&keygen=yes", nil); code != http.StatusBadRequest || body["error"] == nil {
		t.Errorf("keygen=yes: %d %v", code, body)
	}
	if len(asked) != 2 {
		t.Errorf("runs %v", asked)
	}
}

// TestHealthJobsCountsCardJobs: the plain health's "jobs" counts POST
// /CardJob jobs as well as WebSocket ones (the CLI self-test beside the
// agent reads it to leave the readers alone).
func TestHealthJobsCountsCardJobs(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	ta := startAgent(t, func(c *agent.Config, d *agent.Deps) {
		c.AllowedModules = []string{"/usr/lib/softhsm/libsofthsm2.so"}
		d.Runner = agent.RunnerFunc(func(ctx context.Context, job *runner.Job, _ func(runner.Progress)) runner.Result {
			close(started)
			<-release
			return runner.Result{Reader: "Fake Reader 1"}
		})
	})
	d := dsz(t, "[Description]\nPKCS11Library=#/usr/lib/softhsm/libsofthsm2.so\n")
	done := make(chan struct{})
	go func() {
		defer close(done)
		postCardJob(t, ta, `<card_job id="7"><reader>Fake Reader 1</reader><applications><application name="demo">`+d+`</application></applications></card_job>`)
	}()
	<-started
	_, body := getHealth(t, "http://"+ta.addr+"/v1/health", nil)
	close(release)
	<-done
	if body["jobs"] != float64(1) {
		t.Errorf("health during a CardJob job: %v, want jobs 1", body)
	}
	if _, body = getHealth(t, "http://"+ta.addr+"/v1/health", nil); body["jobs"] != float64(0) {
		t.Errorf("health after it: %v, want jobs 0", body)
	}
}
