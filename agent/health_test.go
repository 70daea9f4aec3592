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
		d.SelfTest = func(ctx context.Context) (any, bool) {
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
		d.SelfTest = func(context.Context) (any, bool) { return map[string]any{"status": "fail"}, false }
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
