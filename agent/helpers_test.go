package agent_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
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
	"github.com/cardwright/cardwright/agent/api/schema"
	"github.com/cardwright/cardwright/agent/journal"
)

const testOrigin = "https://portal.example"

// testAgent is an agent on a loopback port with the fake runner.
type testAgent struct {
	t       testing.TB
	srv     *agent.Server
	journal *journal.Journal
	dir     string
	runner  *agenttest.FakeRunner
	readers *agenttest.FakeReaders
	url     string
	addr    string
	log     *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type agentOpt func(*agent.Config, *agent.Deps)

func startAgent(t testing.TB, opts ...agentOpt) *testAgent {
	t.Helper()
	dir := t.TempDir()
	return startAgentIn(t, dir, opts...)
}

func startAgentIn(t testing.TB, dir string, opts ...agentOpt) *testAgent {
	t.Helper()
	j, _, err := journal.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ta := &testAgent{t: t, journal: j, dir: dir, runner: &agenttest.FakeRunner{}, log: &syncBuffer{},
		readers: &agenttest.FakeReaders{List: []api.Reader{{Name: "Fake Reader 0", Card: true, ATR: "3B00"}, {Name: "Fake Reader 1"}}}}
	cfg := agent.Config{AllowedOrigins: []string{testOrigin}, Version: "test", RatePerSecond: 10000}
	deps := agent.Deps{Runner: ta.runner, Journal: j, Readers: ta.readers,
		Logger: slog.New(slog.NewJSONHandler(ta.log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	srv, err := agent.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := agent.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ta.srv = srv
	ta.addr = ln.Addr().String()
	ta.url = "ws://" + ta.addr + "/v1/ws"
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln, nil); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	// Until Serve has begun the agent knows no port and refuses every
	// Host (tests that call ServeHTTP directly, or read State's Addr).
	for srv.Port() == 0 {
		time.Sleep(time.Millisecond)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
		j.Close()
	})
	return ta
}

func (ta *testAgent) dial(o client.Options) *client.Client {
	ta.t.Helper()
	if o.Origin == "" {
		o.Origin = testOrigin
	}
	if o.Trace == nil {
		o.Trace = schemaTrace(ta.t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, ta.url, o)
	if err != nil {
		ta.t.Fatal(err)
	}
	ta.t.Cleanup(func() { c.Close() })
	return c
}

// testCA issues certificates for CSRs, as a portal's CA would.
type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	n    int64
	mu   sync.Mutex
}

func newTestCA(t testing.TB) *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{key: key, cert: cert, n: 0x1000}
}

func (ca *testCA) issue(_ context.Context, req *api.Request) *api.Answer {
	der, err := base64.StdEncoding.DecodeString(req.CSR)
	if err != nil {
		return &api.Answer{Error: err.Error()}
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return &api.Answer{Error: err.Error()}
	}
	if err := csr.CheckSignature(); err != nil {
		return &api.Answer{Error: err.Error()}
	}
	ca.mu.Lock()
	ca.n++
	serial := ca.n
	ca.mu.Unlock()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: req.Template},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	cder, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return &api.Answer{Error: err.Error()}
	}
	return &api.Answer{Certificate: base64.StdEncoding.EncodeToString(cder),
		Chain: []string{base64.StdEncoding.EncodeToString(ca.cert.Raw)}}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func itoa(n int) string { return strconv.Itoa(n) }

var _ = net.Dial

type (
	agentConfig = agent.Config
	agentDeps   = agent.Deps
)

// rawConn is a bare WebSocket for frames the Go client would not send.
type rawConn struct {
	ws *websocket.Conn
}

func rawDial(t testing.TB, ta *testAgent, origin string) *rawConn {
	t.Helper()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	ws, resp, err := websocket.DefaultDialer.Dial(ta.url, h)
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Fatalf("dial: %v (HTTP %d)", err, code)
	}
	t.Cleanup(func() { ws.Close() })
	return &rawConn{ws: ws}
}

func (r *rawConn) send(t testing.TB, s string) {
	t.Helper()
	if err := r.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

func (r *rawConn) sendJSON(t testing.TB, v any) {
	t.Helper()
	if err := r.ws.WriteJSON(v); err != nil {
		t.Fatal(err)
	}
}

// read reads one frame, checks it against its schema, and decodes it.
func (r *rawConn) read(t testing.TB) map[string]any {
	t.Helper()
	r.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := r.ws.ReadMessage()
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	if err := schema.Validate(b); err != nil {
		t.Errorf("agent sent a frame outside its schema: %v\n%s", err, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// schemaTrace validates every frame a Go client sends or receives. Errors
// after the test ended are dropped.
func schemaTrace(t testing.TB) func(bool, []byte) { return schemaTraceDir(t, true) }

// schemaTraceReceived checks only frames from the agent (for tests that
// send invalid messages on purpose).
func schemaTraceReceived(t testing.TB) func(bool, []byte) { return schemaTraceDir(t, false) }

func schemaTraceDir(t testing.TB, checkSent bool) func(bool, []byte) {
	var mu sync.Mutex
	over := false
	t.Cleanup(func() { mu.Lock(); over = true; mu.Unlock() })
	return func(sent bool, b []byte) {
		if sent && !checkSent {
			return
		}
		if err := schema.Validate(b); err != nil {
			mu.Lock()
			defer mu.Unlock()
			if !over {
				dir := "received"
				if sent {
					dir = "sent"
				}
				t.Errorf("frame %s outside its schema: %v\n%s", dir, err, b)
			}
		}
	}
}

// hello says hello on a raw connection and returns the welcome.
func (r *rawConn) hello(t testing.TB) map[string]any {
	t.Helper()
	r.send(t, `{"type":"hello","id":"h","versions":[1]}`)
	m := r.read(t)
	if m["type"] != api.TypeWelcome {
		t.Fatalf("welcome: %v", m)
	}
	return m
}

func readJournalFile(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "journal.db"))
	return string(b), err
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
