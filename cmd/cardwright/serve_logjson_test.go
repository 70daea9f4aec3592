package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/internal/jsonline"
)

// serveAnnounced reads serve's address records from a stderr line: the
// agent's URL from "agent ready", the demo portal's from "demo portal".
func serveAnnounced(line string) (agentURL, demoURL string) {
	var m struct{ Msg, URL string }
	if json.Unmarshal([]byte(line), &m) != nil {
		return "", ""
	}
	switch m.Msg {
	case "agent ready":
		return m.URL, ""
	case "demo portal":
		return "", m.URL
	}
	return "", ""
}

func checkStderrLines(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("nothing on stderr")
	}
	for i, l := range lines {
		if err := jsonline.Check(l); err != nil {
			t.Errorf("stderr line %d: %v:\n%s", i+1, err, l)
		}
	}
}

// TestServeStderrIsJSONLines: everything `cardwright serve` writes to
// stderr — start-up with the demo portal, refused jobs, request errors, a
// malformed frame, a failing and a finished job, shutdown, and a start
// that fails — is one JSON object per line with no key twice.
func TestServeStderrIsJSONLines(t *testing.T) {
	dir := t.TempDir()
	url, demo, stop, logs := startServe(t, "--fake-runner", "--config", "/dev/null", "--listen", "127.0.0.1:0",
		"--journal", dir, "--allow-origin", "https://portal.example", "--demo-portal")
	if url == "" || demo == "" {
		t.Fatalf("addresses not announced: agent %q demo %q", url, demo)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Origin: "https://portal.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(ctx, &api.Job{Description: "x", DSZ: "eA=="}); err == nil {
		t.Fatal("a job with description and dsz was accepted")
	}
	if _, err := c.Submit(ctx, &api.Job{DSZ: "not base64"}); err == nil {
		t.Fatal("a job with a bad dsz was accepted")
	}
	if err := c.Ack(ctx, "nope"); err == nil {
		t.Fatal("ack of an unknown job succeeded")
	}
	if res, err := c.Run(ctx, &api.Job{Description: "x", Fields: map[string]string{"Fail": "card_error"}}, nil, nil); err != nil || res.OK {
		t.Fatalf("failing job: %+v %v", res, err)
	}
	if res, err := c.Run(ctx, &api.Job{Description: "x"}, nil, nil); err != nil || !res.OK {
		t.Fatalf("job: %+v %v", res, err)
	}
	c.Close()
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, map[string][]string{"Origin": {"https://portal.example"}})
	if err != nil {
		t.Fatal(err)
	}
	ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","id":1}`))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			break
		}
	}
	ws.Close()
	if code := stop(); code != exitOK {
		t.Fatalf("serve exit %d:\n%s", code, logs())
	}
	out := logs()
	for _, want := range []string{`"msg":"job refused"`, `"msg":"agent ready"`, `"msg":"demo portal"`, `"msg":"agent stopped"`} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %s:\n%s", want, out)
		}
	}
	checkStderrLines(t, out)

	// A start that fails says why in a JSON line too.
	var stderr strings.Builder
	env := &cmdEnv{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }}
	if code := runServe(context.Background(), env, []string{"--config", "/nonexistent/cardwright.cfg"}); code != exitFailure {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stderr.String(), "loading configuration") {
		t.Errorf("stderr %q", stderr.String())
	}
	checkStderrLines(t, stderr.String())
}
