package main

// The desktop app end to end, as a person at the desk uses it (issue 13,
// "Browser end to end, as a person would"): Chromium runs a portal job
// through `cardwright desktop`; the agent's GUI process opens its PIN or
// PIN-pad window on the test stack's Xvfb; the test finds the window with
// xdotool and types into it with real X key events; the page shows how the
// job ended and the card or token is checked independently. No PIN may
// reach the agent's log, a WebSocket frame, the page or the journal.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/pcsc"
)

// The PIN and PUK these tests type and send; none of the outputs checked
// by noDesktopSecrets may contain them.
const (
	desktopPIN = "583016"
	desktopPUK = "90817263"
)

var desktopData = filepath.Join("testdata", "desktop")

// desktopJob writes the job the demo portal submits (--demo-job): the
// description testdata/desktop/dsc with each old string of replace
// replaced by its new one, the demo card profile when it names one,
// fields and reader. The page fills HOLDER with the name typed on it.
func desktopJob(t *testing.T, dsc, reader string, fields map[string]string, replace ...string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(desktopData, dsc))
	if err != nil {
		t.Fatal(err)
	}
	desc := strings.NewReplacer(replace...).Replace(string(src))
	job := api.Job{Description: desc, Fields: fields, Reader: reader}
	if strings.Contains(desc, "ChipProfile=demo.cpf") {
		cpf, err := os.ReadFile(filepath.Join(demoDir, "demo.cpf"))
		if err != nil {
			t.Fatal(err)
		}
		job.Files = map[string]string{"demo.cpf": base64.StdEncoding.EncodeToString(cpf)}
	}
	b, err := json.Marshal(&job)
	if err != nil {
		t.Fatal(err)
	}
	return writeTestFile(t, t.TempDir(), "job.json", string(b))
}

// personalize lays out the card in reader with the newpin description
// through `cardwright encode` (its PIN read from standard input, as a
// terminal dialog): the card then has holder and desktopPIN.
func personalize(t *testing.T, e *stackEnv, reader, holder string) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{filepath.Join(desktopData, "newpin.dsc"), filepath.Join(demoDir, "demo.cpf")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, dir, filepath.Base(f), string(b))
	}
	code, stdout, stderr := e.encode(desktopPIN+"\n"+desktopPIN+"\n", "--dsc", filepath.Join(dir, "newpin.dsc"), "--config", "/dev/null",
		"--reader", reader, "--field", "PUK_FIELD="+desktopPUK, "--field", "HOLDER="+base64.StdEncoding.EncodeToString([]byte(holder)), "--json")
	if code != 0 {
		t.Fatalf("personalizing the card: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// verifyOnCard sends VERIFY of pin for the user PIN (reference 81 in the
// demo profile's DF 5015) to the card in reader over PC/SC, outside
// cardwright's runner, and returns the card's answer as an error.
func verifyOnCard(t *testing.T, reader, pin string) error {
	t.Helper()
	pc, err := pcsc.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	k, err := pc.Connect(reader, pcsc.Shared)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if _, err := iso7816.Send(k, iso7816.SelectPath(true, 0x5015)); err != nil {
		t.Fatalf("selecting DF 5015: %v", err)
	}
	_, err = iso7816.Send(k, iso7816.Verify(0x81, []byte(pin)))
	return err
}

// hasFocus waits up to two seconds for window to have the keyboard focus,
// as spec/gui.md asks of every dialog ("the window takes focus when it
// opens").
func hasFocus(t *testing.T, display, window string) bool {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		if focusedWindow(t, display) == window {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// noDesktopSecrets fails the test when a secret appears in one of the
// named outputs.
func noDesktopSecrets(t *testing.T, secrets []string, outputs map[string]string) {
	t.Helper()
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("a PIN or PUK (%s…) is in %s:\n%s", s[:2], name, out)
			}
		}
	}
}

// journalText is every file of the agent's journal directory, concatenated.
func journalText(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			data, _ := os.ReadFile(p)
			b.Write(data)
		}
		return nil
	})
	return b.String()
}

// TestDesktopNewPINTwiceInBrowser: the portal in Chromium runs a job whose
// description asks for a new PIN twice (!FROM_USER_DIALOG_2_FIELD) on the
// own virtual card. The desktop app's PIN window appears with two fields
// and the keyboard focus; the test types the PIN, Tab, the PIN again,
// Return — real key events, no mouse. The page shows the job ended ok with
// the card's ICCSN, the window is gone, and a VERIFY of that PIN sent to
// the card over PC/SC, outside cardwright, succeeds. The PIN appears in no
// log line, WebSocket frame, page text or journal file.
func TestDesktopNewPINTwiceInBrowser(t *testing.T) {
	s := stacktest.Require(t)
	display := requireX(t, s)
	reader := s.Get(t, "READER_OWN_1")
	freshOwnCard(t, s, reader)
	job := desktopJob(t, "newpin.dsc", reader, map[string]string{"PUK_FIELD": desktopPUK, "HOLDER": ""})
	d := startDesktop(t, s, display, desktopOptions{Args: []string{"--config", "/dev/null", "--demo-portal", "--demo-job", job}})
	p := openPortal(t, d)

	clicked := time.Now()
	p.Do(d, "starting the job", chromedp.SetValue(chromedp.CSS(`#name`), "Ada Lovelace"), chromedp.Click(chromedp.CSS(`#encode`)))
	win := waitWindow(t, display, pinWindowName)
	t.Logf("PIN window %s mapped %v after the click on Encode", win, time.Since(clicked).Round(time.Millisecond))
	onScreen(t, display, win)
	if n := len(windows(t, display, pinWindowName)); n != 1 {
		t.Errorf("%d PIN windows, want 1", n)
	}
	if !hasFocus(t, display, win) {
		t.Errorf("the PIN window %s does not have the keyboard focus (%s has): spec/gui.md wants it to take focus when it opens",
			win, focusedWindow(t, display))
	}
	docScreenshot(t, display, win, "pin-new.png")

	typeText(t, display, desktopPIN)
	key(t, display, "Tab")
	typeText(t, display, desktopPIN)
	typed := filepath.Join(t.TempDir(), "pin-new-typed.png")
	screenshot(t, display, win, typed)
	if p := docScreenshot(t, display, win, "pin-new-typed.png"); p != "" {
		typed = p
	}
	key(t, display, "Return")

	p.Do(d, "waiting for the job's result", chromedp.WaitVisible(chromedp.Search(`//span[@id="count" and text()="1"]`)))
	if got, want := p.Text("#result"), "OK ICCSN="+s.Get(t, "SERIAL_OWN_1"); got != want {
		t.Errorf("result on the page %q, want %q", got, want)
	}
	pageLog := p.Text("#log")
	for _, ev := range []string{"prompt FROM_USER_DIALOG_2_FIELD: waiting", "prompt FROM_USER_DIALOG_2_FIELD: done"} {
		if !strings.Contains(pageLog, ev) {
			t.Errorf("the page was not told %q:\n%s", ev, pageLog)
		}
	}
	waitNoWindow(t, display, pinWindowName, 5*time.Second)

	// The card, read and checked without cardwright's runner: a wrong PIN
	// is refused with tries left, then the holder file the profile wrote
	// and a VERIFY of the PIN typed in the window.
	var wrong *iso7816.AuthError
	if err := verifyOnCard(t, reader, "000000"); !errors.As(err, &wrong) {
		t.Errorf("VERIFY of a wrong PIN: %v, want 63Cx", err)
	}
	readCard(t, reader, "Ada Lovelace", desktopPIN)

	frames := strings.Join(p.Frames(), "\n")
	if !strings.Contains(frames, `"type":"prompt"`) {
		t.Errorf("no prompt event among the recorded WebSocket frames: the recorder missed the job's frames:\n%s", frames)
	}
	if code := d.Stop(); code != exitOK {
		t.Errorf("cardwright desktop exit %d", code)
	}
	noDesktopSecrets(t, []string{desktopPIN}, map[string]string{
		"the agent's log": d.Logs(), "the WebSocket frames": frames, "the page's log": pageLog,
		"the page's result": p.Text("#result"), "the journal": journalText(t, d.Journal),
	})
	// The screenshot after typing: the bytes of the PNG hold no PIN text
	// (a weak check: the entries' dots are pixels, read by a person in
	// docs/img/gui/pin-new-typed.png).
	if b, err := os.ReadFile(typed); err != nil || strings.Contains(string(b), desktopPIN) {
		t.Errorf("screenshot %s: %v, or it holds the PIN as text", typed, err)
	}
}

// TestDesktopCancelWhileDialogOpen: the card holds a holder name and a PIN
// (personalized beforehand). The portal starts a job that erases the card
// after asking for the PIN once (!FROM_USER_DIALOG_1_FIELD); while the PIN
// window is open, the page cancels the job. The window closes by itself,
// the page shows the job ended `cancelled`, and the card is as it was:
// the window opens before the job touches the card.
func TestDesktopCancelWhileDialogOpen(t *testing.T) {
	e := newStackEnv(t)
	display := requireX(t, e.s)
	reader := e.own[0]
	personalize(t, e, reader, "Grace Hopper")
	job := desktopJob(t, "erase.dsc", reader, map[string]string{})
	d := startDesktop(t, e.s, display, desktopOptions{Args: []string{"--config", "/dev/null", "--demo-portal", "--demo-job", job}})
	p := openPortal(t, d)

	p.Do(d, "starting the job", chromedp.Click(chromedp.CSS(`#encode`)))
	win := waitWindow(t, display, pinWindowName)
	if !hasFocus(t, display, win) {
		t.Errorf("the PIN window %s does not have the keyboard focus (%s has)", win, focusedWindow(t, display))
	}
	docScreenshot(t, display, win, "pin.png")
	// Half a PIN typed, then the portal cancels.
	typeText(t, display, desktopPIN[:3])
	cancelled := time.Now()
	p.Do(d, "cancelling the job", chromedp.Click(chromedp.CSS(`#cancel`)))
	waitNoWindow(t, display, pinWindowName, 5*time.Second)
	t.Logf("PIN window gone %v after the click on Cancel", time.Since(cancelled).Round(time.Millisecond))
	p.Do(d, "waiting for the job's result", chromedp.WaitVisible(chromedp.Search(`//p[@id="result" and starts-with(text(), "FAILED")]`)))
	if got := p.Text("#result"); !strings.HasPrefix(got, "FAILED cancelled:") {
		t.Errorf("result on the page %q, want FAILED cancelled: …", got)
	}
	if got := p.Text("#count"); got != "0" {
		t.Errorf("jobs completed on the page: %s, want 0", got)
	}
	// Nothing was erased: holder file and PIN are still there.
	readCard(t, reader, "Grace Hopper", desktopPIN)
	// The agent is still good for the next job: it asks again.
	p.Do(d, "starting the job again", chromedp.Click(chromedp.CSS(`#encode`)))
	waitWindow(t, display, pinWindowName)
	key(t, display, "Escape")
	waitNoWindow(t, display, pinWindowName, 5*time.Second)
	p.Do(d, "waiting for the second job's result", chromedp.WaitVisible(chromedp.Search(`//p[@id="result" and starts-with(text(), "FAILED prompt_refused")]`)))

	frames := strings.Join(p.Frames(), "\n")
	d.Stop()
	noDesktopSecrets(t, []string{desktopPIN}, map[string]string{
		"the agent's log": d.Logs(), "the WebSocket frames": frames, "the page's log": p.Text("#log"),
	})
}

// TestDesktopPinPadLogin: the PIN-pad job of TestServePinPadOnStack
// (!FROM_PROTECTED_AUTHENTICATION_PATH: the pinlimit module plays a token
// with a keypad over the own card's SoftHSM2 token) from the portal in
// Chromium. While the token waits for its keypad, the desktop app shows
// its PIN-pad window (no fields); the test types the PIN on the pad (the
// module's FIFO), the window closes, the page answers the certificate
// request and shows the job ended ok, and the token holds the new
// certificate, read back independently. No PIN in log, frames or page.
func TestDesktopPinPadLogin(t *testing.T) {
	e := newStackEnv(t)
	display := requireX(t, e.s)
	if code, stdout, stderr := e.encode("", demoArgs(e.cfg, "--reader", e.own[0], "--issuer-ca", e.ca, "--json")...); code != 0 {
		t.Fatalf("demo job: exit %d\n%s\n%s", code, stdout, stderr)
	}
	lib := buildPinLimit(t)
	fifo := filepath.Join(e.dir, "keypad")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeTestFile(t, e.dir, "pad.cfg", fmt.Sprintf("[pkcs11]\nmodule = %s\n[tokens]\n%s = %s, cardwright demo 1\n", lib, regexpQuote(e.own[0]), lib))
	job := desktopJob(t, "pinpad.dsc", e.own[0], map[string]string{"CARD_SERIAL": "CW-PAD"}, "@PINLIMIT@", lib)
	d := startDesktop(t, e.s, display, desktopOptions{
		Args: []string{"--config", cfg, "--demo-portal", "--demo-job", job, "--demo-ca", e.ca},
		Env:  []string{"SOFTHSM2_CONF=" + e.conf, "PINLIMIT_TARGET=" + e.module, "PINLIMIT_PAD=" + fifo},
	})
	p := openPortal(t, d)

	p.Do(d, "starting the job", chromedp.Click(chromedp.CSS(`#encode`)))
	win := waitWindow(t, display, padWindowName)
	if !hasFocus(t, display, win) {
		t.Errorf("the PIN-pad window %s does not have the keyboard focus (%s has)", win, focusedWindow(t, display))
	}
	docScreenshot(t, display, win, "pinpad.png")
	// The person at the reader types on its keypad. The write blocks until
	// the module reads the pad.
	wrote := make(chan error, 1)
	go func() { wrote <- os.WriteFile(fifo, []byte(demoPIN+"\n"), 0o600) }()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		if f, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil { // release the writer
			<-wrote
			f.Close()
		}
		t.Fatalf("the token did not read its keypad within 10 s of the PIN-pad window\n%s", d.Logs())
	}
	waitNoWindow(t, display, padWindowName, 10*time.Second)
	p.Do(d, "waiting for the job's result", chromedp.WaitVisible(chromedp.Search(`//span[@id="count" and text()="1"]`)))
	if got := p.Text("#result"); !strings.HasPrefix(got, "OK") {
		t.Errorf("result on the page %q, want OK", got)
	}
	pageLog := p.Text("#log")
	for _, want := range []string{"prompt FROM_PROTECTED_AUTHENTICATION_PATH: waiting", "prompt FROM_PROTECTED_AUTHENTICATION_PATH: done", "(PinPad)"} {
		if !strings.Contains(pageLog, want) {
			t.Errorf("no %q in the page's log:\n%s", want, pageLog)
		}
	}
	frames := strings.Join(p.Frames(), "\n")
	d.Stop()
	rep := e.readBack("cardwright demo 1", demoPIN)
	if rep.Error != "" || len(rep.Certs) != 3 || rep.Linked != 3 || rep.Chained != 3 {
		t.Errorf("token after the pad job: %+v (want the demo's two certificates and PinPad, linked, issued by the CA)", rep)
	}
	noDesktopSecrets(t, []string{demoPIN, demoPUK}, map[string]string{
		"the agent's log": d.Logs(), "the WebSocket frames": frames, "the page's log": pageLog, "the journal": journalText(t, d.Journal),
	})
}
