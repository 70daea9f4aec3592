package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
)

// startServe runs `cardwright serve args…` in-process and returns the agent
// URL, the demo URL (if any), a stop function returning the exit code, and
// the stderr collected so far.
func startServe(t *testing.T, args ...string) (agentURL, demoURL string, stop func() int, logs func() string) {
	t.Helper()
	pr, pw := io.Pipe()
	var buf strings.Builder
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	env := &cmdEnv{stdin: strings.NewReader(""), stdout: io.Discard, stderr: pw, getenv: func(string) string { return "" }}
	go func() { code <- runServe(ctx, env, args); pw.Close() }()
	deadline := time.After(10 * time.Second)
	for agentURL == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("serve ended early:\n%s", buf.String())
			}
			buf.WriteString(l + "\n")
			if a, d := serveAnnounced(l); a != "" {
				agentURL = a
			} else if d != "" {
				demoURL = d
			}
		case <-deadline:
			cancel()
			t.Fatalf("serve did not start:\n%s", buf.String())
		}
	}
	done := make(chan struct{})
	go func() {
		for l := range lines {
			buf.WriteString(l + "\n") // read only after done
		}
		close(done)
	}()
	stopped := false
	var rc int
	stop = func() int {
		if !stopped {
			stopped = true
			cancel()
			rc = <-code
			<-done
		}
		return rc
	}
	t.Cleanup(func() { stop() })
	return agentURL, demoURL, stop, func() string { stop(); return buf.String() }
}

func TestServe(t *testing.T) {
	dir := t.TempDir()
	url, demo, stop, logs := startServe(t, "--fake-runner", "--config", "/dev/null", "--listen", "127.0.0.1:0",
		"--journal", dir, "--allow-origin", "https://portal.example", "--demo-portal")
	host := strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/v1/ws")
	resp, err := http.Get("http://" + host + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if h["status"] != "ok" {
		t.Fatalf("health: %v", h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, origin := range []string{"https://portal.example", strings.TrimSuffix(demo, "/")} {
		c, err := client.Dial(ctx, url, client.Options{Origin: origin})
		if err != nil {
			t.Fatalf("origin %s: %v", origin, err)
		}
		res, err := c.Run(ctx, &api.Job{Description: "x", Fields: map[string]string{"PIN": "60606060"}, Secret: []string{"PIN1"}}, nil, nil)
		if err != nil || !res.OK || res.Secrets["PIN1"] != "60606060" {
			t.Fatalf("job: %+v %v", res, err)
		}
		c.Close()
	}
	// The demo origin serves the page and points it at the agent.
	resp, err = http.Get(demo)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Request.URL.RawQuery, "agent=") {
		t.Fatalf("demo portal: %d %s", resp.StatusCode, resp.Request.URL)
	}
	if _, err := client.Dial(ctx, url, client.Options{Origin: "https://evil.example"}); err == nil {
		t.Fatal("an unconfigured origin connected to the headless agent")
	}
	if code := stop(); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	out := logs()
	for _, want := range []string{`"msg":"agent ready"`, `"msg":"agent stopped"`, `"msg":"job finished"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "60606060") {
		t.Error("PIN in the log")
	}
}

func TestServeErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"extra"}, exitUsage, "unexpected argument"},
		{[]string{"--config", "/dev/null", "--journal", "JOURNAL", "--fake-runner", "--listen", "0.0.0.0:0"}, exitFailure, "loopback only"},
		{[]string{"--config", "/dev/null", "--journal", "JOURNAL", "--fake-runner", "--allow-origin", "https://*.example"}, exitFailure, "wildcard"},
		{[]string{"--config", "/nonexistent/cardwright.cfg"}, exitFailure, "loading configuration"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			for i, a := range tc.args {
				if a == "JOURNAL" {
					tc.args[i] = t.TempDir()
				}
			}
			var stderr strings.Builder
			env := &cmdEnv{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }}
			if code := runServe(context.Background(), env, tc.args); code != tc.code || !strings.Contains(stderr.String(), tc.msg) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.code, tc.msg)
			}
		})
	}
}
