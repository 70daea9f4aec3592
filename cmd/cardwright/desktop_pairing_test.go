package main

// Pairing a site in Chromium as a person at the desk does it (spec/gui.md
// property 4; issue 13, "Must show"): a page on an origin that the
// configuration does not name asks `cardwright desktop` to pair; the
// pairing window appears on the test stack's Xvfb with the origin and the
// code; the test answers it with real X key and mouse events (xdotool).
// Then the paired page signs in: `authenticate` with the PIN typed into
// the desktop app's PIN window, on the SoftHSM2 token of the stack's own
// card, and the token verifies for the page's origin only.

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/signing"
	"github.com/cardwright/cardwright/web"
)

// pairWindowTitleDE is the German pairing window's name for xdotool
// search --name (the English names are the harness's; like them it allows
// for the em dash that the window's WM_NAME drops).
const pairWindowTitleDE = `^cardwright .* Website koppeln$`

// pairingPage is a portal page that is not the demo portal: it connects
// to the agent with web/cardwright.js and offers the test pair, a job and
// authenticate, each leaving its outcome in #outcome ("" while it runs).
const pairingPage = `<!doctype html>
<meta charset="utf-8">
<title>pairing test portal</title>
<p id="status">connecting</p>
<p>code: <span id="code"></span></p>
<p id="outcome"></p>
<script type="module">
import { connect } from "/cardwright.js";
const $ = id => document.getElementById(id);
const agentURL = new URLSearchParams(location.search).get("agent");
const settle = p => {
  $("outcome").textContent = "";
  p.then(v => { $("outcome").textContent = "ok " + JSON.stringify(v); },
         e => { $("outcome").textContent = "error " + e.message; }); // an AgentError's: "code: message"
};
// The code the page shows for the user to compare with the window's.
window.startPair = () => { $("code").textContent = ""; settle(agent.pair(code => { $("code").textContent = code; })); };
window.startJob = job => {
  const j = agent.submit(job);
  settle(j.accepted.then(() => j.result).then(async r => { await agent.ack(j.id); return r; }));
};
window.startAuthenticate = (filter, challenge) =>
  settle(agent._call({ type: "authenticate", id: "auth-" + Date.now(), filter, challenge }));
try {
  window.agent = await connect({ url: agentURL, storage: null });
  $("status").textContent = "connected paired=" + agent.welcome.paired;
  $("status").className = "ok";
} catch (e) {
  $("status").textContent = "failed: " + e.message;
  $("status").className = "failed";
}
</script>
`

// pairingPortal serves pairingPage and web/ on a loopback port under the
// name localhost — an origin of its own, http://localhost:PORT, which
// the agent accepts for pairing and authenticate — and returns the origin
// and the page's URL for agentURL.
func pairingPortal(t *testing.T, agentURL string) (origin, page string) {
	t.Helper()
	files := http.FileServer(http.FS(web.Files))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/pair.html" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(pairingPage))
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	origin = "http://localhost:" + u.Port()
	return origin, origin + "/pair.html?" + url.Values{"agent": {agentURL}}.Encode()
}

// openPairingPage opens page in headless Chromium, recording the
// WebSocket frames (portalPage, desktop_harness_test.go), and waits until
// it is connected.
func openPairingPage(t *testing.T, d *desktopProc, page string) *portalPage {
	t.Helper()
	ctx, done := newBrowser(t)
	p := &portalPage{t: t, ctx: ctx, done: done}
	t.Cleanup(done)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	if err := chromedp.Listen(ctx, p.event); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`#status.ok`))); err != nil {
		t.Fatalf("opening %s: %v (status %q)\n%s", page, err, p.Text("#status"), d.Logs())
	}
	return p
}

// call runs a page function (startPair, startJob, startAuthenticate)
// that leaves its outcome in #outcome.
func (p *portalPage) call(js string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.Evaluate[any](js+`; null`)); err != nil {
		p.t.Fatalf("%s: %v", js, err)
	}
}

// outcome waits up to timeout for #outcome and returns it.
func (p *portalPage) outcome(d *desktopProc, timeout time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if o := p.Text("#outcome"); o != "" {
			return o
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no outcome on the page within %v\n%s", timeout, d.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pairingCode waits for the code the page shows.
func (p *portalPage) pairingCode(d *desktopProc) string {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c := p.Text("#code"); len(c) == 6 {
			return c
		}
		if o := p.Text("#outcome"); o != "" {
			p.t.Fatalf("the pairing request ended before a code was shown: %s\n%s", o, d.Logs())
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no pairing code on the page\n%s", d.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFocus fails the test unless window gets the keyboard focus within
// two seconds: a key the test types must reach the window it means.
func waitFocus(t *testing.T, display, window string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for focusedWindow(t, display) != window {
		if time.Now().After(deadline) {
			t.Fatalf("window %s does not have the keyboard focus (%s has)", window, focusedWindow(t, display))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clickAllow clicks where the pairing window's Allow button is: the last
// button of the bottom row, near its right edge (in English and German).
// Not the harness's click: mousemove --sync waits for the pointer to move,
// forever when it is there already (the second click on Allow).
func clickAllow(t *testing.T, display, window string) {
	t.Helper()
	w, h := windowSize(t, display, window)
	x(t, display, 10*time.Second, "xdotool", "mousemove", "--window", window, strconv.Itoa(w-30), strconv.Itoa(h-23), "click", "1")
}

// pairRequested is when the agent logged the last "pairing requested" for
// origin: the pairing window opens after it, so its Allow delay ends later
// than a second after this.
func pairRequested(t *testing.T, d *desktopProc, origin string) time.Time {
	t.Helper()
	var at time.Time
	for _, l := range strings.Split(d.Logs(), "\n") {
		var m struct {
			Time        time.Time
			Msg, Origin string
		}
		if json.Unmarshal([]byte(l), &m) == nil && m.Msg == "pairing requested" && m.Origin == origin {
			at = m.Time
		}
	}
	if at.IsZero() {
		t.Fatalf("no pairing request of %s in the agent's log:\n%s", origin, d.Logs())
	}
	return at
}

// pairingLogged is the code of the last "pairing requested" record for
// origin in the agent's log.
func pairingLogged(t *testing.T, d *desktopProc, origin string) string {
	t.Helper()
	code := ""
	for _, l := range strings.Split(d.Logs(), "\n") {
		var m struct{ Msg, Origin, Code string }
		if json.Unmarshal([]byte(l), &m) == nil && m.Msg == "pairing requested" && m.Origin == origin {
			code = m.Code
		}
	}
	return code
}

// TestDesktopPairingInBrowser: pages on http://localhost:PORT, origins no
// configuration names, in Chromium:
//
//   - one page asks to pair; its window opens with the keyboard focus;
//     1.5 s later, Allow enabled, Tab and Return deny (not_paired);
//   - the page under test runs nothing before it is paired (not_paired);
//   - it asks to pair: the window shows the agent's code, which the page
//     shows too; Return at once denies and the window closes;
//   - it asks again: Return 1.5 s later — Allow enabled — denies too;
//   - it asks a third time: a click on Allow within the delay does
//     nothing (the window stays, the page waits); a click after it pairs;
//   - then it runs a job on the own card, and after a reload is paired
//     from the start;
//   - it signs in: authenticate opens the PIN window naming the token; the
//     test types the token's PIN and Return; the token verifies with the
//     demo CA for the page's origin and nonce, and for no other origin.
//
// The PIN is in no log line, frame, page text or journal file.
func TestDesktopPairingInBrowser(t *testing.T) {
	e := newStackEnv(t)
	display := requireX(t, e.s)
	// The own card's SoftHSM2 token with the demo's two keys and their
	// certificates from the demo CA (user PIN demoPIN).
	if code, stdout, stderr := e.encode("", demoArgs(e.cfg, "--reader", e.own[0], "--issuer-ca", e.ca, "--json")...); code != 0 {
		t.Fatalf("demo job: exit %d\n%s\n%s", code, stdout, stderr)
	}
	d := startDesktop(t, e.s, display, desktopOptions{
		Args: []string{"--config", e.cfg},
		Env:  []string{"SOFTHSM2_CONF=" + e.conf},
	})
	origin, page := pairingPortal(t, d.AgentURL)
	other, otherPage := pairingPortal(t, d.AgentURL)
	iccsn, _ := json.Marshal(map[string]string{"description": iccsnJob, "reader": e.own[0]})

	// Another origin first: Tab (towards Allow) and Return once Allow is
	// enabled deny.
	p := openPairingPage(t, d, otherPage)
	p.call(`startPair()`)
	p.pairingCode(d)
	win := waitWindow(t, display, pairWindowName)
	waitFocus(t, display, win)
	time.Sleep(time.Until(pairRequested(t, d, other).Add(1500 * time.Millisecond)))
	key(t, display, "Tab", "Return")
	if o := p.outcome(d, 5*time.Second); !strings.HasPrefix(o, "error not_paired: the local user did not approve "+other) {
		t.Fatalf("pairing answered with Tab, Return after 1.5 s: %q, want not_paired (denied)", o)
	}
	waitNoWindow(t, display, pairWindowName, 5*time.Second)

	// The origin under test, unpaired: no job.
	p.Do(d, "opening the page", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`#status.ok`)))
	if st := p.Text("#status"); st != "connected paired=false" {
		t.Fatalf("status %q, want an unpaired connection", st)
	}
	p.call(`startJob(` + string(iccsn) + `)`)
	if o := p.outcome(d, 10*time.Second); !strings.HasPrefix(o, "error not_paired:") {
		t.Fatalf("a job from the unpaired page: %q, want not_paired", o)
	}

	// 1. Return at once.
	p.call(`startPair()`)
	code := p.pairingCode(d)
	win = waitWindow(t, display, pairWindowName)
	waitFocus(t, display, win)
	key(t, display, "Return")
	t.Logf("Return %v after the pairing request", time.Since(pairRequested(t, d, origin)).Round(time.Millisecond))
	if o := p.outcome(d, 5*time.Second); !strings.HasPrefix(o, "error not_paired: the local user did not approve "+origin) {
		t.Fatalf("pairing answered with Return at once: %q, want not_paired (denied)", o)
	}
	waitNoWindow(t, display, pairWindowName, 5*time.Second)
	if logged := pairingLogged(t, d, origin); logged != code {
		t.Errorf("the page showed code %s, the agent asked the window for %s", code, logged)
	}

	// 2. Return again once Allow is enabled.
	p.call(`startPair()`)
	p.pairingCode(d)
	win = waitWindow(t, display, pairWindowName)
	waitFocus(t, display, win)
	time.Sleep(time.Until(pairRequested(t, d, origin).Add(1500 * time.Millisecond)))
	docScreenshot(t, display, win, "pairing.png")
	if o := p.Text("#outcome"); o != "" {
		t.Fatalf("the pairing request ended before anyone answered: %q", o)
	}
	key(t, display, "Return")
	if o := p.outcome(d, 5*time.Second); !strings.HasPrefix(o, "error not_paired: the local user did not approve "+origin) {
		t.Fatalf("pairing answered with Return after 1.5 s: %q, want not_paired (denied)", o)
	}
	waitNoWindow(t, display, pairWindowName, 5*time.Second)

	// 3. Allow: a click within the delay does nothing, one after it pairs.
	// (The third dialog of this origin in a minute: the rate limit's
	// last.)
	p.call(`startPair()`)
	code = p.pairingCode(d)
	win = waitWindow(t, display, pairWindowName)
	clickAllow(t, display, win)
	early := time.Since(pairRequested(t, d, origin))
	t.Logf("first click on Allow done %v after the pairing request", early.Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	switch o := p.Text("#outcome"); {
	case early < 900*time.Millisecond && o != "":
		t.Fatalf("a click on Allow %v after the pairing request (the window opened later) answered it: %q", early, o)
	case early < 900*time.Millisecond && len(windows(t, display, pairWindowName)) != 1:
		t.Fatal("the pairing window closed after an early click on Allow")
	case early >= 900*time.Millisecond:
		// Too slow here to click within the delay: what the click did
		// says nothing, the second click below pairs either way.
		t.Logf("the early click came %v after the request, too late to test the delay", early)
	}
	if p.Text("#outcome") == "" {
		time.Sleep(time.Until(pairRequested(t, d, origin).Add(1300 * time.Millisecond)))
		clickAllow(t, display, win)
	}
	if o := p.outcome(d, 5*time.Second); !strings.HasPrefix(o, `ok {"type":"paired"`) || !strings.Contains(o, `"origin":"`+origin+`"`) {
		t.Fatalf("pairing answered with Allow after the delay: %q, want paired", o)
	}
	waitNoWindow(t, display, pairWindowName, 5*time.Second)
	if logged := pairingLogged(t, d, origin); logged != code {
		t.Errorf("the page showed code %s, the agent asked the window for %s", code, logged)
	}

	// Paired: a job, and paired from the start after a reload.
	p.call(`startJob(` + string(iccsn) + `)`)
	if o := p.outcome(d, 30*time.Second); !strings.HasPrefix(o, `ok {"type":"result"`) || !strings.Contains(o, `"ok":true`) || !strings.Contains(o, e.s.Get(t, "SERIAL_OWN_1")) {
		t.Fatalf("a job from the paired page: %q", o)
	}
	p.Do(d, "reloading the page", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#status.ok`)))
	if st := p.Text("#status"); st != "connected paired=true" {
		t.Errorf("after a reload: %q, want paired", st)
	}

	// authenticate with the PIN typed in the PIN window.
	nonceBytes := make([]byte, 32)
	rand.Read(nonceBytes)
	nonce := base64.StdEncoding.EncodeToString(nonceBytes)
	p.call(`startAuthenticate({"op":"eq","param":"key.type","value":"ECC"}, "` + nonce + `")`)
	win = waitWindow(t, display, pinWindowName)
	waitFocus(t, display, win)
	docScreenshot(t, display, win, "pin-authenticate.png")
	typeText(t, display, demoPIN)
	key(t, display, "Return")
	o := p.outcome(d, 20*time.Second)
	waitNoWindow(t, display, pinWindowName, 5*time.Second)
	var auth struct{ Type, Format, Algorithm, Certificate, Signature string }
	if !strings.HasPrefix(o, "ok ") || json.Unmarshal([]byte(strings.TrimPrefix(o, "ok ")), &auth) != nil || auth.Type != "authentication" {
		t.Fatalf("authenticate: %q\n%s", o, d.Logs())
	}
	token, _ := json.Marshal(map[string]string{"format": auth.Format, "algorithm": auth.Algorithm, "certificate": auth.Certificate, "signature": auth.Signature})
	ca, err := issuer.OpenLocalCA(e.ca)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	cert, err := signing.Verify(token, origin, nonce, roots)
	if err != nil {
		t.Fatalf("the authentication token does not verify for %s: %v", origin, err)
	}
	t.Logf("signed in as %s (%s)", cert.Subject, auth.Algorithm)
	if _, err := signing.Verify(token, "https://portal.example", nonce, roots); !errors.Is(err, signing.ErrBadSignature) {
		t.Errorf("the token verifies for another origin: %v", err)
	}

	frames := strings.Join(p.Frames(), "\n")
	pageText := p.Text("body")
	if code := d.Stop(); code != exitOK {
		t.Errorf("cardwright desktop exit %d", code)
	}
	noDesktopSecrets(t, []string{demoPIN}, map[string]string{
		"the agent's log": d.Logs(), "the WebSocket frames": frames, "the page": pageText, "the journal": journalText(t, d.Journal),
	})
	for _, want := range []string{`"msg":"pairing refused"`, `"msg":"origin paired"`} {
		if !strings.Contains(d.Logs(), want) {
			t.Errorf("no %s in the agent's log", want)
		}
	}
}

// TestDesktopPairingGerman: with `[desktop] language = de` the pairing
// window is German; nobody answers it, so at pair_timeout (10 s) it closes
// by itself and the page gets not_paired saying the request timed out.
func TestDesktopPairingGerman(t *testing.T) {
	s := stacktest.Require(t)
	display := requireX(t, s)
	cfg := filepath.Join(t.TempDir(), "cardwright.cfg")
	if err := os.WriteFile(cfg, []byte("[desktop]\nlanguage = de\npair_timeout = 10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDesktop(t, s, display, desktopOptions{Args: []string{"--fake-runner", "--config", cfg}})
	origin, page := pairingPortal(t, d.AgentURL)
	p := openPairingPage(t, d, page)
	p.call(`startPair()`)
	p.pairingCode(d)
	win := waitWindow(t, display, pairWindowTitleDE)
	opened := time.Now()
	time.Sleep(1500 * time.Millisecond) // Allow enabled, as in the English screenshot
	docScreenshot(t, display, win, "pairing-de.png")
	o := p.outcome(d, 15*time.Second)
	if !strings.HasPrefix(o, "error not_paired: the pairing request timed out") || !strings.Contains(o, origin) {
		t.Fatalf("an unanswered pairing: %q, want not_paired (timed out)", o)
	}
	waitNoWindow(t, display, pairWindowTitleDE, 5*time.Second)
	t.Logf("the pairing window closed %v after it opened", time.Since(opened).Round(100*time.Millisecond))
	if code := d.Stop(); code != exitOK {
		t.Errorf("cardwright desktop exit %d", code)
	}
}
