package agent_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/prompt"
)

// fakeRaiser counts raises; err is what it answers.
type fakeRaiser struct {
	n   atomic.Int32
	err error
}

func (r *fakeRaiser) Raise() error { r.n.Add(1); return r.err }

func withRaiser(r agent.Raiser) agentOpt {
	return func(_ *agent.Config, d *agent.Deps) { d.Raiser = r }
}

// raise sends a raise request and returns its status and JSON body.
func raise(t *testing.T, ta *testAgent, method, host string, hdr map[string]string) (int, map[string]string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+ta.addr+"/v1/raise", nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	json.NewDecoder(resp.Body).Decode(&body) // the Host check's refusal is text
	return resp.StatusCode, body
}

// TestRaiseRefusesBrowsers: POST /v1/raise raises the desktop app for a
// local program (no Origin) on a loopback Host; a request with an Origin
// header — an allowed portal's, an unknown page's, "null", empty — or
// with a browser's Sec-Fetch headers, a foreign Host (DNS rebinding) and
// a GET are refused and never reach the desktop app; the allowed portal's
// CORS preflight does not open the door either.
func TestRaiseRefusesBrowsers(t *testing.T) {
	r := &fakeRaiser{}
	ta := startAgent(t, withRaiser(r))
	_, port, _ := net.SplitHostPort(ta.addr)

	if code, body := raise(t, ta, "POST", "", nil); code != http.StatusOK || body["status"] != "raised" {
		t.Fatalf("a local program's raise: %d %v", code, body)
	}
	if code, _ := raise(t, ta, "POST", "localhost:"+port, nil); code != http.StatusOK {
		t.Fatalf("raise with Host localhost: %d", code)
	}
	if n := r.n.Load(); n != 2 {
		t.Fatalf("%d raises reached the desktop app, want 2", n)
	}

	for _, tc := range []struct {
		name, method, host string
		hdr                map[string]string
		want               int
	}{
		{"allowed portal", "POST", "", map[string]string{"Origin": testOrigin}, http.StatusForbidden},
		{"unknown page", "POST", "", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"null origin", "POST", "", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"empty origin", "POST", "", map[string]string{"Origin": ""}, http.StatusForbidden},
		{"huge origin", "POST", "", map[string]string{"Origin": "https://" + strings.Repeat("a", 20000) + ".example"}, http.StatusForbidden},
		{"sec-fetch-site", "POST", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"sec-fetch-mode", "POST", "", map[string]string{"Sec-Fetch-Mode": "no-cors"}, http.StatusForbidden},
		{"allowed portal's preflight", "OPTIONS", "", map[string]string{"Origin": testOrigin, "Access-Control-Request-Method": "POST"}, 0},
		{"rebinding host", "POST", "evil.example:" + port, nil, http.StatusForbidden},
		{"loopback name on another port", "POST", "127.0.0.1:1", nil, http.StatusForbidden},
		{"GET", "GET", "", nil, http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _ := raise(t, ta, tc.method, tc.host, tc.hdr)
			if tc.want != 0 && code != tc.want {
				t.Errorf("HTTP %d, want %d", code, tc.want)
			}
			if tc.method == "OPTIONS" { // whatever the preflight says, the POST it announces is refused
				if code, _ := raise(t, ta, "POST", "", tc.hdr); code != http.StatusForbidden {
					t.Errorf("the POST after the preflight: HTTP %d, want 403", code)
				}
			}
			if n := r.n.Load(); n != 2 {
				t.Errorf("the refused request reached the desktop app (%d raises)", n)
			}
		})
	}
	log := ta.log.String()
	if !strings.Contains(log, "raise refused: a browser") || !strings.Contains(log, "https://evil.example") {
		t.Errorf("refusals not logged:\n%s", log)
	}
	if strings.Contains(log, strings.Repeat("a", 1000)) {
		t.Error("the huge Origin was logged whole")
	}
}

// TestRaiseHeadless: without a desktop app (serve, the service) raise
// answers 409 no_desktop_app; with one that is not up, 503
// desktop_app_unavailable.
func TestRaiseHeadless(t *testing.T) {
	ta := startAgent(t)
	if code, body := raise(t, ta, "POST", "", nil); code != http.StatusConflict || body["error"] != agent.RaiseNoDesktop || !strings.Contains(body["message"], "headless") {
		t.Errorf("headless: %d %v", code, body)
	}
	down := &fakeRaiser{err: fmt.Errorf("the desktop app is not running: %w", prompt.ErrUnavailable)}
	ta = startAgent(t, withRaiser(down))
	if code, body := raise(t, ta, "POST", "", nil); code != http.StatusServiceUnavailable || body["error"] != agent.RaiseUnavailable {
		t.Errorf("desktop app down: %d %v", code, body)
	}
	broken := &fakeRaiser{err: errors.New("broken pipe")}
	ta = startAgent(t, withRaiser(broken))
	if code, body := raise(t, ta, "POST", "", nil); code != http.StatusInternalServerError || body["error"] != agent.RaiseUnavailable {
		t.Errorf("desktop app broken: %d %v", code, body)
	}
}
