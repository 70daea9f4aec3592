package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"unicode"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/agenttest"
	"github.com/cardwright/cardwright/agent/journal"
)

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// testOpener is an opener whose start only counts.
func testOpener(addrs ...string) (*opener, *bytes.Buffer, *atomic.Int32) {
	var stderr bytes.Buffer
	starts := new(atomic.Int32)
	env := &cmdEnv{stdin: strings.NewReader(""), stdout: &stderr, stderr: &stderr, getenv: func(string) string { return "" }}
	return &opener{env: env, addrs: addrs, start: func() error { starts.Add(1); return nil }}, &stderr, starts
}

// TestOpenURI: a cardwright: URI, whatever follows the scheme (options,
// paths, queries, fragments), starts the desktop app and nothing else when
// no agent runs; anything else — another scheme, no scheme, over 2048
// bytes, control characters, not UTF-8 — is refused without starting
// anything, and the refusal shows at most a short escaped prefix of it.
func TestOpenURI(t *testing.T) {
	huge := "cardwright:" + strings.Repeat("A", 100000)
	for _, tc := range []struct {
		uri     string
		ok      bool
		ignored int
	}{
		{"cardwright:", true, 0},
		{"cardwright://", true, 2},
		{"CardWright:", true, 0},
		{"cardwright:--config=/tmp/evil.cfg", true, 22},
		{"cardwright:open?job=/tmp/x.dsz&reader=R#--fake-runner", true, 42},
		{"cardwright://localhost/../../etc/passwd", true, 28},
		{"cardwright:" + strings.Repeat("a", maxOpenURI-len("cardwright:")), true, maxOpenURI - len("cardwright:")},
		{"cardwright:" + strings.Repeat("a", maxOpenURI-len("cardwright:")+1), false, 0},
		{huge, false, 0},
		{"", false, 0},
		{"cardwright", false, 0},
		{"--config=/tmp/evil.cfg", false, 0},
		{"https://evil.example/", false, 0},
		{"file:///etc/passwd", false, 0},
		{"javascript:alert(1)", false, 0},
		{"cardwrightx:", false, 0},
		{" cardwright:", false, 0},
		{"cardwright:\n--config=/tmp/evil.cfg", false, 0},
		{"cardwright:\x00", false, 0},
		{"cardwright:\x1b[2J\x1b[31mred", false, 0},
		{"cardwright:\u0085", false, 0},
		{"cardwright:\xff\xfe", false, 0},
		{"cardwright:%zz", true, 3}, // not looked at
	} {
		name := preview(tc.uri)
		o, stderr, starts := testOpener(closedAddr(t))
		code := o.open(context.Background(), tc.uri)
		out := stderr.String()
		switch {
		case tc.ok && (code != exitOK || starts.Load() != 1):
			t.Errorf("%s: exit %d, %d starts; want the desktop app started once:\n%s", name, code, starts.Load(), out)
		case !tc.ok && (code != exitFailure || starts.Load() != 0 || !strings.Contains(out, "refused: not a cardwright: URI")):
			t.Errorf("%s: exit %d, %d starts, %q; want a refusal and nothing started", name, code, starts.Load(), out)
		}
		if tc.ok && tc.ignored > 0 && !strings.Contains(out, fmt.Sprintf("ignoring the %d bytes", tc.ignored)) {
			t.Errorf("%s: %q does not say %d bytes are ignored", name, out, tc.ignored)
		}
		if len(out) > 300 {
			t.Errorf("%s: %d bytes of messages for a URI of %d", name, len(out), len(tc.uri))
		}
		if i := strings.IndexFunc(strings.TrimSuffix(strings.ReplaceAll(out, "\n", " "), " "), unicode.IsControl); i >= 0 {
			t.Errorf("%s: the message echoes a control character: %q", name, out)
		}
		for _, leak := range []string{"/tmp/evil.cfg", "/etc/passwd", "--fake-runner"} {
			if !tc.ok && strings.Contains(tc.uri, leak) && strings.Contains(out, leak) && len(tc.uri) > 40 {
				t.Errorf("%s: the refusal echoes %q beyond its prefix", name, leak)
			}
		}
	}
}

// TestOpenUsage: open takes exactly one argument and no options: a flag
// (a URI handler is never given one) is a usage error that starts nothing.
func TestOpenUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"cardwright:", "cardwright:"}, {"--config=/tmp/evil.cfg", "cardwright:"}, {"--fake-runner"}} {
		code, _, stderr := runArgs(append([]string{"open"}, args...)...)
		if code != exitUsage || !strings.Contains(stderr, "usage: cardwright open URI") {
			t.Errorf("open %q: exit %d, %q; want a usage error", args, code, stderr)
		}
	}
}

// TestOpenAddrs: on the default port the fallback ports are probed too.
func TestOpenAddrs(t *testing.T) {
	if got := agentAddrs("127.0.0.1:27140"); !slices.Equal(got, []string{"127.0.0.1:27140", "127.0.0.1:27141", "127.0.0.1:27142", "127.0.0.1:27143"}) {
		t.Errorf("default port: %q", got)
	}
	if got := agentAddrs("[::1]:9000"); !slices.Equal(got, []string{"[::1]:9000"}) {
		t.Errorf("own port: %q", got)
	}
}

// raiseCount is the desktop app of a test agent: it counts raises.
type raiseCount struct{ n atomic.Int32 }

func (r *raiseCount) Raise() error { r.n.Add(1); return nil }

// openAgent runs a real agent with the fake runner on a loopback port;
// raiser nil is a headless one (serve, the service).
func openAgent(t *testing.T, raiser agent.Raiser) string {
	t.Helper()
	j, _, err := journal.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	deps := agent.Deps{Runner: &agenttest.FakeRunner{}, Journal: j, Logger: slog.New(slog.DiscardHandler)}
	if raiser != nil {
		deps.Raiser = raiser
	}
	srv, err := agent.New(agent.Config{Version: "test"}, deps)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := agent.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(ln, nil); close(done) }()
	t.Cleanup(func() { srv.Shutdown(context.Background()); <-done; j.Close() })
	return ln.Addr().String()
}

// TestOpenRaises: with a desktop agent on one of the addresses — after a
// closed port and a web server that is not cardwright's — open raises its
// desktop app once and starts nothing; a headless agent is reported as
// such, and nothing is started either (a second agent would take the
// fallback port).
func TestOpenRaises(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			t.Errorf("open sent %s %s to a server that is not cardwright's", r.Method, r.URL)
		}
		fmt.Fprint(w, `{"status":"ok","agent":"something-else/1"}`)
	}))
	defer other.Close()
	desk := new(raiseCount)
	addr := openAgent(t, desk)
	o, stderr, starts := testOpener(closedAddr(t), strings.TrimPrefix(other.URL, "http://"), addr)
	if code := o.open(context.Background(), "cardwright:"); code != exitOK || desk.n.Load() != 1 || starts.Load() != 0 {
		t.Fatalf("exit %d, %d raises, %d starts; want 0, 1, 0:\n%s", code, desk.n.Load(), starts.Load(), stderr)
	}
	if !strings.Contains(stderr.String(), addr) {
		t.Errorf("the message does not name the agent's address %s: %q", addr, stderr)
	}

	o, stderr, starts = testOpener(openAgent(t, nil))
	if code := o.open(context.Background(), "cardwright:"); code != exitFailure || starts.Load() != 0 || !strings.Contains(stderr.String(), "runs headless") {
		t.Errorf("headless agent: exit %d, %d starts, %q", code, starts.Load(), stderr)
	}
}

// TestOpenDetached: the desktop app open starts is this executable's
// 'desktop' command with no other argument, its standard input, output and
// error on the null device, in a session of its own.
func TestOpenDetached(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	exe := filepath.Join(dir, "cardwright")
	script := "#!/bin/sh\nexec 3>" + out + "\necho \"args:$*\" >&3\nfor fd in 0 1 2; do echo \"fd$fd:$(readlink /proc/$$/fd/$fd)\" >&3; done\n" +
		"echo \"sid:$(cut -d' ' -f6 /proc/$$/stat) pid:$$\" >&3\n"
	if err := os.WriteFile(exe, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := desktopCommand(exe)
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	want := []string{"args:desktop", "fd0:/dev/null", "fd1:/dev/null", "fd2:/dev/null"}
	if len(lines) != 5 || !slices.Equal(lines[:4], want) {
		t.Fatalf("the started program saw:\n%s\nwant:\n%s\nsid:PID pid:PID", b, strings.Join(want, "\n"))
	}
	var sid, pid int
	if _, err := fmt.Sscanf(lines[4], "sid:%d pid:%d", &sid, &pid); err != nil || sid != pid {
		t.Errorf("%q: not the leader of a session of its own", lines[4])
	}
}
