package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/softstore/softstoretest"
)

// TestDesktopSoftTokenInBrowser: a page in Chromium delivers a PKCS#12
// through web/cardwright.js (Agent.softToken) to `cardwright desktop` on
// the stack's Xvfb; the passphrase is typed into the real dialog with
// xdotool. HOME and XDG_DATA_HOME are the test's, so the NSS database and
// the agent's soft-token store are too.
//
//   - store "nss", a wrong passphrase, then Escape in the retry dialog:
//     prompt_refused, the NSS database byte for byte as it was;
//   - store "nss", the right passphrase: NSS's own certutil lists the
//     certificate (-L) and its key (-K);
//   - store "ask": the dialog offers the stores, the agent's preselected;
//     the right passphrase stores it there; certificates with a
//     token.profiletype filter lists it, and sign (the passphrase typed
//     again) gives a signature crypto/x509 verifies with the delivered
//     certificate.
func TestDesktopSoftTokenInBrowser(t *testing.T) {
	s := stacktest.Require(t)
	display := requireX(t, s)
	for _, tool := range []string{"certutil", "pk12util"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: install libnss3-tools (scripts/install-deps)", tool)
		}
	}
	home := t.TempDir()
	nssdb := filepath.Join(home, ".pki", "nssdb")
	os.MkdirAll(nssdb, 0o700)
	if out, err := exec.Command("certutil", "-N", "-d", "sql:"+nssdb, "--empty-password").CombinedOutput(); err != nil {
		t.Fatalf("certutil -N: %v\n%s", err, out)
	}
	const pass = "Tr0ub4dor soft"
	nssP12 := softstoretest.NewP12("Nora NSS", pass)
	agentP12 := softstoretest.NewP12("Sam Agent", pass)

	d := startDesktop(t, s, display, desktopOptions{Args: []string{"--config", "/dev/null", "--demo-portal"},
		Env: []string{"HOME=" + home, "XDG_DATA_HOME=" + filepath.Join(home, "data")}})
	p := openPortal(t, d)
	// run evaluates expr (a promise is awaited) and returns its value.
	run := func(what, expr string) string {
		t.Helper()
		v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v\nagent log:\n%s", what, err, d.Logs())
		}
		return v
	}
	if v := run("connecting cardwright.js", fmt.Sprintf(`window.prompts = [];
		import("./cardwright.js").then(async m => { const a = new m.Agent(%q, {storage: null}); await a.open(); window.st = a; return "ok"; })
		.catch(e => String(e))`, d.AgentURL)); v != "ok" {
		t.Fatalf("connecting cardwright.js: %s", v)
	}
	// start runs a call on the page; wait returns its settled value.
	start := func(call string) {
		t.Helper()
		run("calling "+call, `window.res = undefined; `+call+
			`.then(r => { window.res = r; }, e => { window.res = {error: e.code || String(e)}; }); "started"`)
	}
	wait := func() map[string]any {
		t.Helper()
		js, err := chromedp.Run(p.ctx, chromedp.Poll[string](`window.res && JSON.stringify(window.res)`, chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil {
			t.Fatalf("waiting for the answer: %v\nagent log:\n%s", err, d.Logs())
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(js), &m); err != nil {
			t.Fatalf("answer %s: %v", js, err)
		}
		return m
	}
	onPrompt := `m => window.prompts.push(m.kind + " " + m.state)`
	deliver := func(f *softstoretest.P12, store string) string {
		return fmt.Sprintf(`window.st.softToken({pkcs12: %q, store: %q}, %s)`, base64.StdEncoding.EncodeToString(f.Data), store, onPrompt)
	}
	dbSum := func() [32]byte {
		var all []byte
		for _, f := range []string{"cert9.db", "key4.db"} {
			b, err := os.ReadFile(filepath.Join(nssdb, f))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		return sha256.Sum256(all)
	}

	// 1. NSS, a wrong passphrase, then cancelled.
	before := dbSum()
	start(deliver(nssP12, "nss"))
	win := waitWindow(t, display, pinWindowName)
	typeText(t, display, "not the passphrase")
	key(t, display, "Return")
	// The dialog closes and another opens, saying the passphrase was wrong.
	retry := ""
	for deadline := time.Now().Add(10 * time.Second); retry == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, w := range windows(t, display, pinWindowName) {
			if w != win {
				retry = w
			}
		}
	}
	if retry == "" {
		t.Fatalf("no second passphrase window after a wrong passphrase:\n%s", windowList(display))
	}
	win = retry
	docScreenshot(t, display, win, "softtoken-passphrase-retry.png")
	key(t, display, "Escape")
	if m := wait(); m["error"] != "prompt_refused" {
		t.Fatalf("after a wrong passphrase and Escape: %v", m)
	}
	if dbSum() != before {
		t.Fatal("a wrong passphrase changed the NSS database")
	}
	waitNoWindow(t, display, pinWindowName, 5*time.Second)

	// 2. NSS, the right passphrase.
	start(deliver(nssP12, "nss"))
	waitWindow(t, display, pinWindowName)
	typeText(t, display, pass)
	key(t, display, "Return")
	if m := wait(); m["type"] != "softtoken_stored" || m["store"] != "nss" || m["token"] != nssdb {
		t.Fatalf("nss: %v", m)
	}
	list, err := exec.Command("certutil", "-L", "-d", "sql:"+nssdb).CombinedOutput()
	if err != nil || !strings.Contains(string(list), "Nora NSS") {
		t.Fatalf("certutil -L: %v\n%s", err, list)
	}
	keys, err := exec.Command("certutil", "-K", "-d", "sql:"+nssdb).CombinedOutput()
	if err != nil || !strings.Contains(string(keys), "ec ") {
		t.Fatalf("certutil -K: %v\n%s", err, keys)
	}
	t.Logf("certutil -L:\n%s\ncertutil -K:\n%s", list, keys)
	waitNoWindow(t, display, pinWindowName, 5*time.Second)

	// 3. ask: the dialog offers the stores; the agent's is preselected.
	start(fmt.Sprintf(`window.st.softToken({pkcs12: %q, label: "Sam (signing)"}, %s)`, base64.StdEncoding.EncodeToString(agentP12.Data), onPrompt))
	win = waitWindow(t, display, pinWindowName)
	onScreen(t, display, win)
	docScreenshot(t, display, win, "softtoken-passphrase.png")
	typeText(t, display, pass)
	key(t, display, "Return")
	if m := wait(); m["type"] != "softtoken_stored" || m["store"] != "agent" || m["label"] != "Sam (signing)" || m["profile_type"] != "FILEP12SW" {
		t.Fatalf("ask: %v", m)
	}
	waitNoWindow(t, display, pinWindowName, 5*time.Second)

	filter := `{op: "eq", param: "token.profiletype", value: "FILEP12SW"}`
	start(`window.st.certificates(` + filter + `).then(l => ({list: l}))`)
	m := wait()
	l, _ := m["list"].([]any)
	if len(l) != 1 || l[0].(map[string]any)["certificate"] != base64.StdEncoding.EncodeToString(agentP12.Cert.Raw) {
		t.Fatalf("certificates with token.profiletype FILEP12SW: %v", m)
	}

	data := []byte("signed by a soft token")
	start(fmt.Sprintf(`window.st.sign(%s, %q, %s)`, filter, base64.StdEncoding.EncodeToString(data), onPrompt))
	waitWindow(t, display, pinWindowName)
	typeText(t, display, pass)
	key(t, display, "Return")
	m = wait()
	sig, err := base64.StdEncoding.DecodeString(fmt.Sprint(m["signature"]))
	if err != nil || m["type"] != "signature" {
		t.Fatalf("sign: %v", m)
	}
	if err := agentP12.Cert.CheckSignature(x509.ECDSAWithSHA256, data, sig); err != nil {
		t.Fatalf("the soft token's signature does not verify: %v", err)
	}

	prompts := run("reading the prompt events", `window.prompts.join(",")`)
	if !strings.Contains(prompts, "passphrase waiting,passphrase done") {
		t.Errorf("prompt events on the page: %s", prompts)
	}
	frames := strings.Join(p.Frames(), "\n")
	if code := d.Stop(); code != exitOK {
		t.Errorf("cardwright desktop exit %d", code)
	}
	noDesktopSecrets(t, []string{pass, "not the passphrase"}, map[string]string{
		"the agent's log": d.Logs(), "the WebSocket frames": frames, "the journal": journalText(t, d.Journal)})
}
