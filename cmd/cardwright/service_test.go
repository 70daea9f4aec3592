//go:build !windows

package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardwright/cardwright/winsvc"
)

// TestServiceOffWindows: every 'cardwright service' command says that
// services are a Windows feature and names the systemd units, and fails;
// bad arguments are usage errors first.
func TestServiceOffWindows(t *testing.T) {
	for _, args := range [][]string{{"run"}, {"run", "--config", "/nonexistent.cfg"}, {"install", "--auto"}, {"uninstall"}, {"set-start", "auto"}, {"set-start", "demand"}} {
		code, stdout, stderr := runArgs(append([]string{"service"}, args...)...)
		if code != exitFailure || stdout != "" {
			t.Errorf("service %q: exit %d, stdout %q; want %d and nothing", args, code, stdout, exitFailure)
		}
		for _, want := range []string{"cardwright service " + args[0] + ": ", "services are a Windows feature", "cardwright.service", "systemctl --user"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("service %q: stderr %q lacks %q", args, stderr, want)
			}
		}
	}
	for _, args := range [][]string{{"set-start"}, {"set-start", "boot"}, {"set-start", "auto", "demand"}, {"run", "extra"}, {"install", "x"}} {
		if code, _, stderr := runArgs(append([]string{"service"}, args...)...); code != exitUsage || !strings.Contains(stderr, "usage: cardwright service "+args[0]) {
			t.Errorf("service %q: exit %d, stderr %q; want a usage error", args, code, stderr)
		}
	}
}

// capture is a slog.Handler keeping the records' messages and attributes.
type capture struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, r.Clone())
	return nil
}
func (c *capture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *capture) WithGroup(string) slog.Handler      { return c }

// attr is the value of key in the first record with message msg, or "".
func (c *capture) attr(msg, key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.recs {
		if r.Message != msg {
			continue
		}
		v := ""
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				v = a.Value.String()
			}
			return true
		})
		return v, true
	}
	return "", false
}

// TestServiceAgent: the agent 'service run' runs under the SCM's protocol
// (fake request channels here, as the windows adapter's svc.Run gives) is
// serve's: StartPending until it listens, then Running with /v1/health
// answering; its log records also reach the service's further handler
// (the event log on Windows); Stop cancels it as SIGINT ends serve —
// "shutting down", the port closed — and it ends with exit code 0.
func TestServiceAgent(t *testing.T) {
	var f serveFlags
	fs := serviceCmd.sub("run").flags(&cmdEnv{stdout: io.Discard, stderr: io.Discard})
	f.define(fs)
	if err := fs.Parse([]string{"--config", "/dev/null", "--fake-runner", "--listen", "127.0.0.1:0", "--journal", t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	events := new(capture)
	f.logTo = events
	env := &cmdEnv{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	s := agentService(env, &f, slog.New(events))
	requests, status := make(chan winsvc.Request), make(chan winsvc.Status)
	result := make(chan uint32, 1)
	go func() {
		_, code := s.Execute(requests, status)
		result <- code
	}()
	next := func(want winsvc.State) {
		t.Helper()
		select {
		case st := <-status:
			if st.State != want {
				t.Fatalf("status %v, want %v", st.State, want)
			}
		case code := <-result:
			t.Fatalf("the service ended with code %d, want %v", code, want)
		case <-time.After(20 * time.Second):
			t.Fatalf("no status %v in 20 s", want)
		}
	}
	next(winsvc.StartPending)
	next(winsvc.Running)
	u, ok := events.attr("agent ready", "url")
	if !ok {
		t.Fatal("Running before the agent logged that it is ready")
	}
	health := "http://" + strings.TrimSuffix(strings.TrimPrefix(u, "ws://"), "/v1/ws") + "/v1/health"
	resp, err := http.Get(health)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", health, resp.Status)
	}
	requests <- winsvc.Request{Cmd: winsvc.Stop}
	next(winsvc.StopPending)
	select {
	case code := <-result:
		if code != 0 {
			t.Fatalf("exit code %d after Stop, want 0", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the service did not end in 30 s after Stop")
	}
	for _, msg := range []string{"service starting", "service running", "service stopping", "shutting down", "service stopped"} {
		if _, ok := events.attr(msg, ""); !ok {
			t.Errorf("no record %q reached the service's handler", msg)
		}
	}
	if _, err := http.Get(health); err == nil {
		t.Errorf("GET %s still answers after the service stopped", health)
	}
}
