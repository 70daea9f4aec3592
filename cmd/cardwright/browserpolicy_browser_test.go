package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cardwright/cardwright/browserpolicy"
	"github.com/cardwright/cardwright/internal/stacktest"
)

// chromiumPolicyDir is Debian Chromium's managed-policy folder, the one
// browser-policy install writes on Linux.
const chromiumPolicyDir = "/etc/chromium/policies/managed"

// lnaProbe, evaluated in a page, opens the agent's socket once and reports
// how it ended and the page's local-network permissions, as the table in
// docs/protocol.md "Local Network Access" gives them.
const lnaProbe = `(async () => {
  const perm = async name => { try { return (await navigator.permissions.query({name})).state; } catch (e) { return "unknown"; } };
  const ws = await new Promise(r => { let open = false; const w = new WebSocket(AGENT);
    w.onopen = () => { open = true; w.close(); r("open"); };
    w.onclose = ev => { if (!open) r("closed " + ev.code + " before open"); }; });
  return ws + "; loopback-network " + await perm("loopback-network") + ", local-network-access " + await perm("local-network-access");
})()`

// TestLocalNetworkAccessBrowser: Debian's Chromium opens the demo portal
// on an https origin that Chromium's testing switch
// --ip-address-space-overrides makes public, as a real portal is
// (https://cms.example.com), while the agent is on 127.0.0.1.
//   - local https page (no switch): connects (unchanged); an origin the
//     agent does not allow gets origin_not_allowed, no agent at the port
//     agent_not_running;
//   - public, no policy: web/cardwright.js says local_network_blocked
//     (headless Chromium cannot ask the user, so the permission is denied);
//   - after `cardwright browser-policy install --origin https://127.0.0.1:<port>`
//     the same page runs the demo job end to end; after uninstall it is
//     blocked again, and a foreign file in the policy folder is untouched
//     byte for byte throughout.
func TestLocalNetworkAccessBrowser(t *testing.T) {
	stacktest.Require(t)
	if os.Geteuid() != 0 {
		t.Fatal("needs root: it writes " + chromiumPolicyDir + " (CI runs tests as root)")
	}
	// The https front of the demo portal: its port must be known before
	// serve starts, to allow its origin.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	origin := fmt.Sprintf("https://127.0.0.1:%d", port)
	agentURL, demo, stop, logs := startServe(t, "--fake-runner", "--config", "/dev/null", "--listen", "127.0.0.1:0",
		"--journal", t.TempDir(), "--demo-portal", "--allow-origin", origin)
	defer stop()
	front := tlsFront(t, ln, demo)
	defer front.Close()
	page := origin + "/demo.html?fake=1&agent=" + url.QueryEscape(agentURL)
	// A second https origin the agent does not allow.
	other := tlsFront(t, nil, demo)
	defer other.Close()

	var table []string
	measure := func(ctx context.Context, what string) {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](strings.Replace(lnaProbe, "AGENT", `"`+agentURL+`"`, 1), chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: probe: %v", what, err)
		}
		table = append(table, fmt.Sprintf("| %s | %s |", what, v))
	}
	status := func(ctx context.Context, u string) (code, text string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(u),
			chromedp.WaitVisible(chromedp.CSS(`#status.ok, #status.bad`))); err != nil {
			t.Fatalf("opening %s: %v\n%s", u, err, logs())
		}
		code, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("status").dataset.code || "connected"`))
		text, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#status`)))
		return code, text
	}

	// The local https page, as before.
	ctx, done := newLNABrowser(t)
	if code, text := status(ctx, page); code != "connected" {
		t.Fatalf("local https page: %s %q\n%s", code, text, logs())
	}
	measure(ctx, "https, local, no policy")
	if code, text := status(ctx, other.URL+"/demo.html?agent="+url.QueryEscape(agentURL)); code != "origin_not_allowed" {
		t.Fatalf("page of an origin not allowed: %s %q", code, text)
	}
	dead := deadPort(t)
	if code, text := status(ctx, origin+"/demo.html?agent="+url.QueryEscape(fmt.Sprintf("ws://127.0.0.1:%d/v1/ws", dead))); code != "agent_not_running" {
		t.Fatalf("no agent at the port: %s %q", code, text)
	}
	done()

	// Public, no policy: blocked, and said so.
	ctx, done = newLNABrowser(t, port)
	if code, text := status(ctx, page); code != "local_network_blocked" {
		t.Fatalf("public page without policy: %s %q", code, text)
	}
	if why, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#why`))); !strings.Contains(why, "browser-policy install") {
		t.Fatalf("the page does not explain: %q", why)
	}
	measure(ctx, "https, public, no policy")
	done()

	// The policy folder: a foreign file must survive install and uninstall.
	restore := keepPolicyFolder(t)
	defer restore()
	foreign := filepath.Join(chromiumPolicyDir, "zz-foreign-test.json")
	foreignBody := []byte("{\"DefaultBrowserSettingEnabled\": false}\n")
	if err := os.WriteFile(foreign, foreignBody, 0o644); err != nil {
		t.Fatal(err)
	}
	policyCmd := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		env := &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		if code := browserPolicyCmd.dispatch(context.Background(), env, args); code != exitOK {
			t.Fatalf("browser-policy %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
		}
		if b, err := os.ReadFile(foreign); err != nil || !bytes.Equal(b, foreignBody) {
			t.Fatalf("browser-policy %s changed a foreign policy file: %q %v", args[0], b, err)
		}
		return out.String()
	}
	if out := policyCmd("install", "--origin", origin, "--config", "/dev/null"); !strings.Contains(out, "Chromium: installed") {
		t.Fatalf("install said %q", out)
	}
	if out := policyCmd("show", "--origin", origin, "--config", "/dev/null"); !strings.Contains(out, origin+": connects without asking") {
		t.Fatalf("show said %q", out)
	}
	ctx, done = newLNABrowser(t, port)
	if code, text := status(ctx, page); code != "connected" {
		t.Fatalf("public page with the policy: %s %q\n%s", code, text, logs())
	}
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#name`), "Ada Lovelace"),
		chromedp.Click(chromedp.CSS(`#encode`)),
		chromedp.WaitVisible(chromedp.Search(`//span[@id="count" and text()="1"]`)),
	)
	if err != nil {
		t.Fatalf("the demo job from the public page: %v\n%s", err, logs())
	}
	if result, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#result`))); !strings.HasPrefix(result, "OK ") || !strings.Contains(result, "Certificate=") {
		t.Fatalf("result on the public page: %q", result)
	}
	measure(ctx, "https, public, "+browserpolicy.PolicyLoopback+" (browser-policy install)")
	done()

	policyCmd("uninstall")
	if _, err := os.Stat(filepath.Join(chromiumPolicyDir, browserpolicy.FileName)); !os.IsNotExist(err) {
		t.Fatalf("our policy file is still there: %v", err)
	}
	ctx, done = newLNABrowser(t, port)
	if code, text := status(ctx, page); code != "local_network_blocked" {
		t.Fatalf("public page after uninstall: %s %q", code, text)
	}
	done()

	// The older, wider policy, written by hand as an administrator would.
	lnaFile := filepath.Join(chromiumPolicyDir, "zz-lna-test.json")
	os.WriteFile(lnaFile, []byte(fmt.Sprintf(`{%q: [%q]}`, browserpolicy.PolicyLNA, origin)), 0o644)
	ctx, done = newLNABrowser(t, port)
	if code, text := status(ctx, page); code != "connected" {
		t.Fatalf("public page with %s: %s %q", browserpolicy.PolicyLNA, code, text)
	}
	measure(ctx, "https, public, "+browserpolicy.PolicyLNA)
	done()
	os.Remove(lnaFile)
	t.Logf("Chromium %s, measured:\n%s", chromiumVersion(), strings.Join(table, "\n"))
}

// newLNABrowser starts headless Chromium that takes any certificate (the
// fronts' are httptest's) and, for each port, sees 127.0.0.1:port as a
// public address.
func newLNABrowser(t *testing.T, publicPorts ...int) (context.Context, func()) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("ignore-certificate-errors", true))
	var over []string
	for _, p := range publicPorts {
		over = append(over, fmt.Sprintf("127.0.0.1:%d=public", p))
	}
	if over != nil {
		opts = append(opts, chromedp.Flag("ip-address-space-overrides", strings.Join(over, ",")))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	return ctx, func() { cancel(); cancelBrowser(); cancelAlloc() }
}

// tlsFront serves the demo portal at demo over https on ln (nil: a new
// port), so the page has an https origin of its own.
func tlsFront(t *testing.T, ln net.Listener, demo string) *httptest.Server {
	t.Helper()
	target, err := url.Parse(demo)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	srv.Config.ErrorLog = nil
	if ln != nil {
		srv.Listener.Close()
		srv.Listener = ln
	}
	srv.StartTLS()
	return srv
}

func deadPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// keepPolicyFolder returns a function that puts /etc/chromium/policies
// back as it found it: folders it made removed, files it holds unchanged.
func keepPolicyFolder(t *testing.T) func() {
	t.Helper()
	var made []string
	for d := chromiumPolicyDir; d != "/etc/chromium"; d = filepath.Dir(d) {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			made = append(made, d)
		}
	}
	if err := os.MkdirAll(chromiumPolicyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	before := map[string][]byte{}
	ents, _ := os.ReadDir(chromiumPolicyDir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(chromiumPolicyDir, e.Name()))
		before[e.Name()] = b
	}
	return func() {
		ents, _ := os.ReadDir(chromiumPolicyDir)
		for _, e := range ents {
			if _, ok := before[e.Name()]; !ok {
				os.Remove(filepath.Join(chromiumPolicyDir, e.Name()))
			}
		}
		for name, b := range before {
			if now, err := os.ReadFile(filepath.Join(chromiumPolicyDir, name)); err != nil || !bytes.Equal(now, b) {
				t.Errorf("%s changed in %s", name, chromiumPolicyDir)
			}
		}
		for _, d := range made { // deepest first
			os.Remove(d)
		}
	}
}

func chromiumVersion() string {
	out, err := exec.Command(chromiumPath, "--version").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}
