package agent_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/agenttest"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/agent/journal"
)

func TestListenLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", ":0", "192.0.2.1:0", "example.com:0"} {
		if ln, err := agent.Listen(addr); err == nil {
			ln.Close()
			t.Errorf("Listen(%q) accepted a non-loopback address", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		ln, err := agent.Listen(addr)
		if err != nil {
			t.Errorf("Listen(%q): %v", addr, err)
			continue
		}
		ln.Close()
	}
	// Serve refuses a listener that is not on loopback, whoever made it.
	j, _, err := journal.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	srv, err := agent.New(agent.Config{}, agent.Deps{Runner: &agenttest.FakeRunner{}, Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skip("cannot listen on 0.0.0.0 here")
	}
	defer ln.Close()
	if err := srv.Serve(ln, nil); err == nil {
		t.Fatal("Serve accepted a wildcard listener")
	}
}

func httpDo(t testing.TB, method, url, host string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
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
	resp.Body.Close()
	return resp
}

// wsHeaders are those of a WebSocket upgrade request.
func wsHeaders(origin string) map[string]string {
	h := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
		"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
	if origin != "" {
		h["Origin"] = origin
	}
	return h
}

func TestHostCheck(t *testing.T) {
	ta := startAgent(t)
	_, port, _ := net.SplitHostPort(ta.addr)
	tests := []struct {
		host string
		want int
	}{
		{"127.0.0.1:" + port, http.StatusSwitchingProtocols},
		{"localhost:" + port, http.StatusSwitchingProtocols},
		{"LOCALHOST:" + port, http.StatusSwitchingProtocols},
		{"evil.example:" + port, http.StatusForbidden},     // DNS rebinding
		{"127.0.0.1.nip.io:" + port, http.StatusForbidden}, // a name that resolves to loopback
		{"127.0.0.1:1", http.StatusForbidden},              // wrong port
		{"127.0.0.1", http.StatusForbidden},                // no port
		{"evil.example", http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			resp := httpDo(t, "GET", "http://"+ta.addr+"/v1/ws", tc.host, wsHeaders(testOrigin))
			if resp.StatusCode != tc.want {
				t.Fatalf("ws upgrade with Host %q: HTTP %d, want %d", tc.host, resp.StatusCode, tc.want)
			}
			want := http.StatusOK
			if tc.want == http.StatusForbidden {
				want = http.StatusForbidden
			}
			if resp := httpDo(t, "GET", "http://"+ta.addr+"/v1/health", tc.host, nil); resp.StatusCode != want {
				t.Fatalf("health with Host %q: HTTP %d, want %d", tc.host, resp.StatusCode, want)
			}
		})
	}
	if !strings.Contains(ta.log.String(), "evil.example") {
		t.Fatal("refused Host not logged")
	}
}

func TestOriginAllowList(t *testing.T) {
	ta := startAgent(t)
	tests := []struct {
		origin string
		want   int
	}{
		{testOrigin, http.StatusSwitchingProtocols},
		{"", http.StatusSwitchingProtocols}, // no Origin: a local program, not a page
		{"https://portal.example.evil.com", http.StatusForbidden},
		{"https://portal.example:8443", http.StatusForbidden},
		{"http://portal.example", http.StatusForbidden},
		{"https://PORTAL.example", http.StatusForbidden},
		{"https://evil.example", http.StatusForbidden},
		{"null", http.StatusForbidden},
		{"*", http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.origin, func(t *testing.T) {
			resp := httpDo(t, "GET", "http://"+ta.addr+"/v1/ws", "", wsHeaders(tc.origin))
			if resp.StatusCode != tc.want {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tc.want)
			}
			h := map[string]string{}
			if tc.origin != "" {
				h["Origin"] = tc.origin
			}
			want := http.StatusMethodNotAllowed // GET /CardJob
			if tc.want == http.StatusForbidden {
				want = http.StatusForbidden
			}
			if resp := httpDo(t, "GET", "http://"+ta.addr+"/CardJob", "", h); resp.StatusCode != want {
				t.Fatalf("/CardJob: HTTP %d, want %d", resp.StatusCode, want)
			}
		})
	}
	// Two Origin headers are refused.
	req, _ := http.NewRequest("GET", "http://"+ta.addr+"/v1/health", nil)
	req.Header["Origin"] = []string{testOrigin, "https://evil.example"}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("two origins: HTTP %d", resp.StatusCode)
	}
	if !strings.Contains(ta.log.String(), "https://evil.example") {
		t.Fatal("refused origin not logged")
	}
	// The Go client surfaces the refusal.
	if _, err := client.Dial(ctxT(t), ta.url, client.Options{Origin: "https://evil.example"}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("Dial from a wrong origin: %v", err)
	}
	for _, bad := range []string{"*", "https://*.example", "https://a.example/", "https://a.example/path", "ftp://a.example", "https://A.example", "https://u@a.example"} {
		if agent.ValidateOrigin(bad) == nil {
			t.Errorf("ValidateOrigin(%q) accepted it", bad)
		}
		if _, err := agent.New(agent.Config{AllowedOrigins: []string{bad}}, agent.Deps{Runner: ta.runner, Journal: ta.journal}); err == nil {
			t.Errorf("New accepted allowed origin %q", bad)
		}
	}
}

func TestPrivateNetworkPreflight(t *testing.T) {
	ta := startAgent(t)
	pre := map[string]string{"Origin": testOrigin, "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Private-Network": "true"}
	resp := httpDo(t, "OPTIONS", "http://"+ta.addr+"/CardJob", "", pre)
	if resp.StatusCode != http.StatusNoContent ||
		resp.Header.Get("Access-Control-Allow-Private-Network") != "true" ||
		resp.Header.Get("Access-Control-Allow-Origin") != testOrigin ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("allowed preflight: HTTP %d %v", resp.StatusCode, resp.Header)
	}
	pre["Origin"] = "https://evil.example"
	resp = httpDo(t, "OPTIONS", "http://"+ta.addr+"/CardJob", "", pre)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Private-Network") != "" ||
		resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("refused preflight: HTTP %d %v", resp.StatusCode, resp.Header)
	}
	// A plain GET from an allowed origin carries the CORS answer too.
	resp = httpDo(t, "GET", "http://"+ta.addr+"/v1/health", "", map[string]string{"Origin": testOrigin})
	if resp.Header.Get("Access-Control-Allow-Origin") != testOrigin {
		t.Fatalf("health: %v", resp.Header)
	}
}

// fakeApprover approves or refuses, recording the code it was shown.
type fakeApprover struct {
	ok    bool
	mu    sync.Mutex
	codes []string
}

func (a *fakeApprover) Approve(_ context.Context, origin, code string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.codes = append(a.codes, origin+" "+code)
	return a.ok, nil
}

func TestPairing(t *testing.T) {
	const newOrigin = "https://new-portal.example"
	for _, approve := range []bool{true, false} {
		t.Run("approve="+strconv.FormatBool(approve), func(t *testing.T) {
			ap := &fakeApprover{ok: approve}
			ta := startAgent(t, func(_ *agentConfig, d *agentDeps) { d.Approver = ap })
			ctx := ctxT(t)
			c := ta.dial(client.Options{Origin: newOrigin})
			if c.Welcome.Paired {
				t.Fatal("an unknown origin starts paired")
			}
			var ce *client.Error
			if _, err := c.Submit(ctx, &api.Job{Description: "x"}); !errors.As(err, &ce) || ce.Code != api.CodeNotPaired {
				t.Fatalf("job before pairing: %v", err)
			}
			if _, err := c.Readers(ctx); !errors.As(err, &ce) || ce.Code != api.CodeNotPaired {
				t.Fatalf("readers before pairing: %v", err)
			}
			var shown string
			err := c.Pair(ctx, func(code string) { shown = code })
			if len(shown) != 6 || len(ap.codes) != 1 || ap.codes[0] != newOrigin+" "+shown {
				t.Fatalf("page code %q, dialog %q", shown, ap.codes)
			}
			if !approve {
				if !errors.As(err, &ce) || ce.Code != api.CodeNotPaired {
					t.Fatalf("refused pairing: %v", err)
				}
				if _, err := c.Submit(ctx, &api.Job{Description: "x"}); !errors.As(err, &ce) || ce.Code != api.CodeNotPaired {
					t.Fatalf("job after refusal: %v", err)
				}
				if ta.runner.Calls() != 0 {
					t.Fatal("an unpaired origin reached the runner")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Run(ctx, &api.Job{Description: "x"}, nil, nil)
			if err != nil || !res.OK {
				t.Fatalf("job after pairing: %+v %v", res, err)
			}
			// A new connection from the paired origin is paired at once.
			if c2 := ta.dial(client.Options{Origin: newOrigin}); !c2.Welcome.Paired {
				t.Fatal("pairing not remembered")
			}
		})
	}
	t.Run("headless", func(t *testing.T) {
		ta := startAgent(t) // no Approver: configuration only
		resp := httpDo(t, "GET", "http://"+ta.addr+"/v1/ws", "", wsHeaders(newOrigin))
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("headless agent let an unknown origin connect: HTTP %d", resp.StatusCode)
		}
		// A configured origin is paired already; pair just confirms it.
		c := ta.dial(client.Options{})
		if err := c.Pair(ctxT(t), func(string) { t.Error("a code was shown for a configured origin") }); err != nil {
			t.Fatalf("pair from a configured origin: %v", err)
		}
	})
}

// closeCode waits for the agent to close ws and returns the close code.
func closeCode(t testing.TB, ws *websocket.Conn) int {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		t.Fatalf("connection ended without a close frame: %v", err)
	}
}

// TestBadFrameClosesOnlyThatConnection: an oversize, binary or malformed
// frame closes its own connection with a reason; a job on another
// connection finishes normally.
func TestBadFrameClosesOnlyThatConnection(t *testing.T) {
	ta := startAgent(t, func(c *agentConfig, _ *agentDeps) { c.MaxMessageBytes = 64 << 10 })
	ctx := ctxT(t)
	good := ta.dial(client.Options{})
	j, err := good.Submit(ctx, &api.Job{Description: "x", Fields: map[string]string{"Steps": "10", "StepDelayMs": "30"}})
	if err != nil {
		t.Fatal(err)
	}
	frames := []struct {
		name string
		typ  int
		data []byte
		code int
	}{
		{"oversize", websocket.TextMessage, []byte(`{"type":"job","id":"x","description":"` + strings.Repeat("A", 1<<20) + `"}`), websocket.CloseMessageTooBig},
		{"binary", websocket.BinaryMessage, []byte{1, 2, 3}, websocket.CloseUnsupportedData},
		{"malformed", websocket.TextMessage, []byte(`{"type":`), websocket.CloseInvalidFramePayloadData},
		{"no type", websocket.TextMessage, []byte(`[1,2]`), websocket.CloseInvalidFramePayloadData},
	}
	for _, f := range frames {
		t.Run(f.name, func(t *testing.T) {
			bad := rawDial(t, ta, testOrigin)
			bad.hello(t)
			if err := bad.ws.WriteMessage(f.typ, f.data); err != nil {
				t.Fatal(err)
			}
			if got := closeCode(t, bad.ws); got != f.code {
				t.Fatalf("close code %d, want %d", got, f.code)
			}
		})
	}
	for ev := range j.Events() {
		if r, ok := ev.(*api.Result); ok {
			if !r.OK {
				t.Fatalf("the other connection's job: %+v", r.Error)
			}
			if _, err := good.Readers(ctx); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("the other connection lost its job: %v", j.Err())
}

func TestRateLimit(t *testing.T) {
	ta := startAgent(t, func(c *agentConfig, _ *agentDeps) { c.RatePerSecond = 5 })
	raw := rawDial(t, ta, testOrigin)
	raw.hello(t)
	// Burst is twice the rate; the rest are refused one by one.
	for i := 0; i < 12; i++ {
		raw.send(t, `{"type":"readers","id":"r`+strconv.Itoa(i)+`"}`)
	}
	limited := 0
	for i := 0; i < 12; i++ {
		m := raw.read(t)
		if m["code"] == string(api.CodeRateLimited) {
			limited++
			if !strings.HasPrefix(m["id"].(string), "r") {
				t.Fatalf("rate_limited without the request id: %v", m)
			}
		}
	}
	if limited == 0 || limited == 12 {
		t.Fatalf("%d of 12 rate limited", limited)
	}
	// Other connections are not affected.
	if _, err := ta.dial(client.Options{}).Readers(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// A client that keeps going after being told is closed.
	for i := 0; i < 50; i++ {
		if raw.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"readers","id":"f"}`)) != nil {
			break
		}
	}
	if got := closeCode(t, raw.ws); got != websocket.ClosePolicyViolation {
		t.Fatalf("close code %d", got)
	}
}

func TestConnectionLimit(t *testing.T) {
	ta := startAgent(t, func(c *agentConfig, _ *agentDeps) { c.MaxConnections = 2 })
	ta.dial(client.Options{})
	ta.dial(client.Options{})
	resp := httpDo(t, "GET", "http://"+ta.addr+"/v1/ws", "", wsHeaders(testOrigin))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third connection: HTTP %d", resp.StatusCode)
	}
}

func TestModuleAllowList(t *testing.T) {
	ta := startAgent(t, func(c *agentConfig, _ *agentDeps) {
		c.AllowedModules = []string{"/usr/lib/softhsm/libsofthsm2.so", "opensc-pkcs11.so"}
	})
	c := ta.dial(client.Options{})
	ctx := ctxT(t)
	tests := []struct {
		name, dsc string
		fields    map[string]string
		ok        bool
	}{
		{"listed path", "[Description]\nPKCS11Library=#/usr/lib/softhsm/libsofthsm2.so\n", nil, true},
		{"listed name", "[Description]\nPKCS11Library=#opensc-pkcs11.so\n", nil, true},
		// One rule everywhere (allowlist.Modules): a bare entry does not
		// admit a path, which the runner would then refuse.
		{"listed name as a path", "[Description]\nPKCS11Library=#/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so\n", nil, false},
		{"no module", "[Description]\nName=x\n", nil, true},
		{"other path", "[Description]\nPKCS11Library=#/tmp/evil.so\n", nil, false},
		{"listed name in untrusted dir", "[Description]\nPKCS11Library=#/tmp/opensc-pkcs11.so\n", nil, false},
		{"relative path", "[Description]\nPKCS11Library=#../softhsm/libsofthsm2.so\n", nil, false},
		{"dot-dot path", "[Description]\nPKCS11Library=#/usr/lib/softhsm/../../../tmp/evil.so\n", nil, false},
		// A library key is taken as written, by the agent as by the runner:
		// a field cannot smuggle a module in.
		{"via field", "[Fields]\nLib=\n[Description]\nPKCS11Library=Lib\n", map[string]string{"Lib": "/tmp/evil.so"}, false},
		{"platform key wins", "[Description]\nPKCS11Library=#opensc-pkcs11.so\nPKCS11LibraryLinux=#/tmp/evil.so\n", nil, false},
		{"dsz", "", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := ta.runner.Calls()
			job := &api.Job{Description: tc.dsc, Fields: tc.fields}
			if tc.dsc == "" {
				job.DSZ = dsz(t, "[Description]\nPKCS11Library=#/tmp/evil.so\n")
			}
			res, err := c.Run(ctx, job, nil, nil)
			if tc.ok {
				if err != nil || !res.OK {
					t.Fatalf("refused: %v %+v", err, res)
				}
				c.Ack(ctx, job.ID)
				return
			}
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Code != api.CodeModuleNotAllowed || !strings.Contains(ce.Message, "evil.so") && !strings.Contains(ce.Message, "opensc") && !strings.Contains(ce.Message, "softhsm") && !strings.Contains(ce.Message, `"Lib"`) {
				t.Fatalf("got %v", err)
			}
			if ta.runner.Calls() != before {
				t.Fatal("the runner (card I/O) was reached")
			}
		})
	}
}

// TestSecretsNeverLogged runs jobs carrying PINs, a PKCS#12 password and
// secret outputs through every path that logs, at debug level, and greps.
func TestSecretsNeverLogged(t *testing.T) {
	ta := startAgent(t)
	ctx := ctxT(t)
	pins := []string{"86420135", "97531864", "P12-pass-31337", "12121999"}
	c := ta.dial(client.Options{})
	jobs := []*api.Job{
		{Description: "[Description]\nPKCS11Library=#/tmp/evil.so\n", Fields: map[string]string{"PIN": pins[0]}},
		{Description: "x", Fields: map[string]string{"PIN": pins[1], "Fail": "pin_incorrect"}},
		{Description: "x", Fields: map[string]string{"PIN": pins[3], "Echo": "e"}, Secret: []string{"PIN1"}},
		{Description: "x", Fields: map[string]string{"LeakPIN": pins[1]}},
		{Description: "x", Fields: map[string]string{"Request": "T", "PIN": pins[0]}},
	}
	for _, job := range jobs {
		c.Run(ctx, job, func(_ context.Context, r *api.Request) *api.Answer {
			return &api.Answer{PKCS12: "AAAA", Password: pins[2]}
		}, nil)
	}
	// An XML job too, and a client that goes away with an unacked result.
	postCardJob(t, ta, `<card_job id="s"><applications><application>`+dsz(t, "[Description]\n")+
		`</application></applications><text_fields><text_field name="PIN">`+pins[3]+`</text_field>`+
		`<text_field name="PIN1" read="true" secret="true"/></text_fields></card_job>`)
	logs := ta.log.String()
	if len(logs) < 200 {
		t.Fatalf("suspiciously little logged: %q", logs)
	}
	journal, _ := readJournalFile(ta.dir)
	for _, p := range pins {
		if strings.Contains(logs, p) {
			t.Errorf("secret %q in the log", p)
		}
		if strings.Contains(journal, p) {
			t.Errorf("secret %q in the journal file", p)
		}
	}
}
