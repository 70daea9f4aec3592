package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/pcsc"
)

// selftestJSON is `cardwright selftest --json` as the tests read it.
type selftestJSON struct {
	Status string
	Checks []struct{ Name, Status, Detail string }
}

func (r selftestJSON) check(t *testing.T, name string) (status, detail string) {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c.Status, c.Detail
		}
	}
	t.Fatalf("no check %q in %+v", name, r.Checks)
	return "", ""
}

// TestSelftestOnStack runs `cardwright selftest` on the real stack: all
// green with the own-card readers expected, their ATRs mapped, SoftHSM2
// with a token made here, a fresh journal folder, a free port and a TLS
// certificate from `cardwright tls init`; then inside `cardwright serve`
// (GET /v1/health?full=1), and beside it (port and journal held by the
// running agent); then with pcscd stopped, a module file that does not
// exist and the journal folder read-only: each named, exit 1.
func TestSelftestOnStack(t *testing.T) {
	s := stacktest.Require(t)
	c := newTokenCLI(t)
	c.env["CARDWRIGHT_SO_PIN"], c.env["CARDWRIGHT_PIN"] = "so-selftest-5521", "pin-selftest-7730"
	c.ok("init", "--label", "station 1")
	own := []string{s.Get(t, "READER_OWN_1"), s.Get(t, "READER_OWN_2")}
	for _, r := range own {
		freshOwnCard(t, s, r) // a card in each expected reader, whatever tests before did
	}
	dir := t.TempDir()
	tlsDir, jdir := filepath.Join(dir, "tls"), filepath.Join(dir, "journal")
	if code, out, errs := runArgs("tls", "init", "--dir", tlsDir); code != exitOK {
		t.Fatalf("tls init: %d %s %s", code, out, errs)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()

	// Map every card's ATR the stack shows: the own card exactly, the rest
	// by its first two bytes (an ATR pattern with *).
	pc, err := pcsc.Open()
	if err != nil {
		t.Fatal(err)
	}
	st, err := pc.Status(nil)
	pc.Close()
	if err != nil {
		t.Fatal(err)
	}
	dialects := map[string]string{}
	for _, r := range st {
		switch {
		case !r.Present:
		case r.Name == own[0] || r.Name == own[1]:
			dialects[fmt.Sprintf("%X", r.ATR)] = "ISO7816-EXT"
		default:
			dialects[fmt.Sprintf("%X*", r.ATR[:2])] = "ISO7816"
		}
	}
	cfg := fmt.Sprintf("[server]\nlisten = %s\ntls_cert = %s\ntls_key = %s\n[readers]\nexpect = %s\nexpect = %s\n[pkcs11]\nmodule = %s\n[tokens]\n%s = %s, station 1\n[log]\njournal = %s\n[dialects]\n",
		listen, filepath.Join(tlsDir, tlsCertFile), filepath.Join(tlsDir, tlsKeyFile), own[0], own[1], c.module, regexpQuote(own[0]), c.module, jdir)
	for k, v := range dialects {
		cfg += k + " = " + v + "\n"
	}
	cfgFile := writeTestFile(t, dir, "station.cfg", cfg)

	run := func(args ...string) (selftestJSON, string, int) {
		t.Helper()
		out, errs, code := c.runRaw(nil, append([]string{"selftest", "--config", cfgFile}, args...)...)
		var rep selftestJSON
		if len(args) > 0 && args[0] == "--json" {
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("selftest --json: %v\n%s%s", err, out, errs)
			}
		}
		return rep, out + errs, code
	}

	// All green.
	_, text, code := run()
	t.Logf("all green:\n%s", text)
	if code != exitOK || !strings.Contains(text, "self-test passed") || strings.Contains(text, "FAIL") || strings.Contains(text, "warn ") {
		t.Fatalf("all green: exit %d\n%s", code, text)
	}
	rep, _, _ := run("--json")
	for _, w := range []struct{ name, status, detail string }{
		{"pc/sc", "ok", "readers, 0 skipped"},
		{fmt.Sprintf("reader %q", own[0]), "ok", "expected; card, ATR "},
		{fmt.Sprintf("card in %q", own[1]), "ok", "dialect ISO7816-EXT"},
		{"module " + c.module, "ok", `SoftHSM`},
		{`keygen "station 1"`, "ok", "EC P-256 key pair (session objects, destroyed) in "},
		{"journal folder", "ok", "writable"},
		{"journal database", "ok", "not created yet"},
		{"port " + listen, "ok", "free"},
		{"tls certificate", "ok", "names 127.0.0.1 and localhost, key matches"},
	} {
		if st, d := rep.check(t, w.name); st != w.status || !strings.Contains(d, w.detail) {
			t.Errorf("%s: %s %q, want %s with %q", w.name, st, d, w.status, w.detail)
		}
	}
	// The key generation left nothing on the token.
	if out := c.ok("list"); !strings.Contains(out, "station 1") || !strings.Contains(out, "empty") {
		t.Errorf("token after the self-test: %q", out)
	}

	// Inside the agent, and beside it.
	full, stop := selftestServe(t, c, cfgFile, tlsDir, listen)
	if full["status"] != "ok" {
		t.Errorf("/v1/health?full=1: %v", full)
	}
	rep, text, code = run("--json")
	if code != exitOK {
		t.Errorf("beside the agent: exit %d\n%s", code, text)
	}
	if st, d := rep.check(t, "port "+listen); st != "ok" || !strings.Contains(d, "in use by a running agent (cardwright/") {
		t.Errorf("port beside the agent: %s %q", st, d)
	}
	if st, d := rep.check(t, "journal database"); st != "ok" || !strings.Contains(d, "held by a running agent") {
		t.Errorf("journal beside the agent: %s %q", st, d)
	}
	stop() // the helper process has no signal handler: "signal: interrupt" is its end

	// Failures: a module file that does not exist; the journal folder
	// read-only (immutable: root ignores permission bits, not chattr +i);
	// pcscd stopped.
	gone := "/usr/lib/cardwright-test/libgone-pkcs11.so"
	cfgFile = writeTestFile(t, dir, "station.cfg", strings.Replace(cfg, "[pkcs11]\n", "[pkcs11]\nmodule = "+gone+"\n", 1))
	if err := os.MkdirAll(jdir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chattr", "+i", jdir).CombinedOutput(); err != nil {
		t.Fatalf("chattr +i %s (e2fsprogs; a read-only journal folder for root): %v %s", jdir, err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", jdir).Run() })
	s.StopPCSCD(t)
	_, text, code = run()
	t.Logf("failures:\n%s", text)
	if code != exitFailure {
		t.Errorf("failures: exit %d, want 1", code)
	}
	rep, _, _ = run("--json")
	if rep.Status != "fail" {
		t.Errorf("json status %q", rep.Status)
	}
	for _, w := range []struct{ name, detail string }{
		{"pc/sc", "service not reachable"},
		{fmt.Sprintf("reader %q", own[0]), "no PC/SC service"},
		{"module " + gone, "module file not found"},
		{"journal folder", "is not writable"},
	} {
		if st, d := rep.check(t, w.name); st != "fail" || !strings.Contains(d, w.detail) {
			t.Errorf("%s: %s %q, want fail with %q", w.name, st, d, w.detail)
		}
		lines := strings.Split(strings.TrimSpace(text), "\n")
		if !strings.Contains(text, "FAIL  "+w.name) || !strings.Contains(lines[len(lines)-1], w.name) {
			t.Errorf("the text report does not name %q as failed:\n%s", w.name, text)
		}
	}
	if st, _ := rep.check(t, "module "+c.module); st != "ok" {
		t.Errorf("the good module: %s", st)
	}
}

// selftestServe starts `cardwright serve` with the configuration and
// returns its /v1/health?full=1&keygen=1 answer, which must be 200, and a
// function that stops it. full=1 alone must generate no key.
func selftestServe(t *testing.T, c *tokenCLI, cfgFile, tlsDir, listen string) (map[string]any, func() error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestTokenHelperProcess$", "--", "serve", "--config", cfgFile, "--log-format", "json")
	cmd.Env = append(os.Environ(), "CARDWRIGHT_TOKEN_TEST_CHILD=1", "SOFTHSM2_CONF="+c.conf)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stopped error
	done := false
	stop := func() error {
		if !done {
			done = true
			cmd.Process.Signal(os.Interrupt)
			stopped = cmd.Wait()
		}
		return stopped
	}
	t.Cleanup(func() { stop() })
	ready := make(chan string, 1)
	var logs strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if u, _ := serveAnnounced(sc.Text()); u != "" {
				ready <- u
			}
		}
		close(ready)
	}()
	var url string
	select {
	case url = <-ready:
	case <-time.After(20 * time.Second):
	}
	if url != "wss://"+listen+"/v1/ws" {
		t.Fatalf("serve announced %q, want wss://%s/v1/ws", url, listen)
	}
	pem, err := os.ReadFile(filepath.Join(tlsDir, tlsCAFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(query string) (map[string]any, []byte) {
		resp, err := hc.Get("https://" + listen + "/v1/health?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		b, _ := json.MarshalIndent(body, "", "  ")
		t.Logf("GET /v1/health?%s: %s\n%s", query, resp.Status, b)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/health?%s: %s", query, resp.Status)
		}
		return body, b
	}
	// Monitoring's full=1: no key generation.
	body, b := get("full=1")
	if st, d := healthCheck(body, `keygen "station 1"`); st != "skip" || !strings.Contains(d, "not asked for") {
		t.Errorf("full=1 without keygen=1: keygen %s %q, want skip\n%s", st, d, b)
	}
	body, b = get("full=1&keygen=1")
	rep, _ := body["selftest"].(map[string]any)
	checks, _ := rep["checks"].([]any)
	found := 0
	for _, ch := range checks {
		m := ch.(map[string]any)
		switch m["name"] {
		case "port " + listen:
			if m["detail"] == "served by this agent" {
				found++
			}
		case "journal database":
			if m["detail"] == "open in this agent" {
				found++
			}
		case `keygen "station 1"`:
			if m["status"] == "ok" {
				found++
			}
		}
	}
	if found != 3 {
		t.Errorf("the agent's report lacks its port, its journal or the key generation:\n%s", b)
	}
	return body, stop
}

// healthCheck finds a check of a /v1/health?full=1 answer.
func healthCheck(body map[string]any, name string) (status, detail string) {
	rep, _ := body["selftest"].(map[string]any)
	checks, _ := rep["checks"].([]any)
	for _, ch := range checks {
		if m, _ := ch.(map[string]any); m["name"] == name {
			s, _ := m["status"].(string)
			d, _ := m["detail"].(string)
			return s, d
		}
	}
	return "", ""
}

// TestSelftestBusyReaderOnStack: while a demo job holds an own-card reader
// (its portal holds the first certificate request), the agent's
// /v1/health?full=1&keygen=1 leaves the token [tokens] maps to that reader
// alone ("busy with a job"); `cardwright selftest` beside the agent skips
// it too (the agent has a job running), and generates on it once the job
// ended.
func TestSelftestBusyReaderOnStack(t *testing.T) {
	e := newStackEnv(t)
	url, _, _ := e.serve("--allow-origin", memOrigin)
	base := "http" + strings.TrimSuffix(strings.TrimPrefix(url, "ws"), "/v1/ws")
	ca, err := issuer.OpenLocalCA(e.ca)
	if err != nil {
		t.Fatal(err)
	}
	health := func() map[string]any {
		resp, err := http.Get(base + "/v1/health?full=1&keygen=1")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return body
	}
	cliCfg := writeTestFile(t, e.dir, "beside.cfg", mustRead(t, e.cfg)+"[server]\nlisten = "+strings.TrimPrefix(base, "http://")+"\n")
	beside := func() selftestJSON {
		cmd := e.child("cli", "", nil, "selftest", "--config", cliCfg, "--json")
		out, _ := cmd.Output() // exit 1: "cardwright demo 2" is not made here
		var rep selftestJSON
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("selftest --json: %v\n%s", err, out)
		}
		return rep
	}
	token := `keygen "cardwright demo 1"`
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Origin: memOrigin})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var during map[string]any
	var cli selftestJSON
	res, err := c.Run(ctx, demoJobOnStack(t, e.own[0], "cardwright demo 1", "Busy Reader"), func(ctx context.Context, req *api.Request) *api.Answer {
		if during == nil {
			during, cli = health(), beside()
		}
		csr, _ := base64.StdEncoding.DecodeString(req.CSR)
		der, _, err := ca.Issue(ctx, issuer.Request{CSR: csr, Application: req.Application})
		if err != nil {
			return &api.Answer{Error: err.Error()}
		}
		return &api.Answer{Certificate: base64.StdEncoding.EncodeToString(der)}
	}, nil)
	if err != nil || !res.OK {
		t.Fatalf("demo job: %+v %v", res, err)
	}
	b, _ := json.MarshalIndent(during, "", "  ")
	t.Logf("during the job:\n%s", b)
	if st, d := healthCheck(during, token); st != "skip" || !strings.Contains(d, fmt.Sprintf("busy with a job (reader %q)", e.own[0])) {
		t.Errorf("agent during the job: %s %q, want skip busy with a job", st, d)
	}
	for _, ch := range cli.Checks {
		if ch.Name == token && (ch.Status != "skip" || !strings.Contains(ch.Detail, "has 1 job running")) {
			t.Errorf("CLI beside the agent during the job: %s %q", ch.Status, ch.Detail)
		}
	}
	if st, _ := cli.check(t, token); st != "skip" {
		t.Errorf("CLI beside the agent during the job: %s", st)
	}
	// The agent's report of the job's time is reused for 5 s; the CLI
	// asks again. (The agent's keygen=1 on an idle token: TestSelftestOnStack.)
	if st, d := beside().check(t, token); st != "ok" {
		t.Errorf("CLI after the job: %s %q", st, d)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
