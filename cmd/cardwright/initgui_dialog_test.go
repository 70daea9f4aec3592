package main

// initgui_dialog_test.go: the card-initialization window with the parts a
// portal's job would not use in it — a description that asks for its PIN in
// the desktop app's PIN window (opened by the window's own process), and
// certificate requests answered by the local issuer of the configuration
// ([issuer] ca_dir) instead of files.

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A new PIN typed twice in the PIN window the description asks for
// (!FROM_USER_DIALOG_2_FIELD): the window opens over the initialization
// window, the job lays the card out with that PIN, and an independent
// VERIFY finds it on the card.
func TestInitWindowPINDialogOnStack(t *testing.T) {
	e := newStackEnv(t)
	display := requireX(t, e.s)
	dir := t.TempDir()
	for src, name := range map[string]string{
		filepath.Join(desktopData, "newpin.dsc"): "newpin.dsc",
		filepath.Join(demoDir, "demo.cpf"):       "demo.cpf",
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, dir, name, string(b))
	}
	p := startInitGUI(t, e, display, []string{"LANGUAGE=en"}, "--config", initConfig(t, e, ""), filepath.Join(dir, "newpin.dsc"))
	p.waitLog(`description opened .*errors=0 runnable=true`, 10*time.Second)
	p.waitLog(`card in reader reader="`+regexp.QuoteMeta(e.own[1])+`".*iccsn=[0-9A-F]+`, 15*time.Second)

	// The form: the PUK (masked) and the holder; the PIN is not a field.
	typeText(t, display, demoPUK)
	key(t, display, "Tab")
	typeText(t, display, "Erika Mustermann")
	click(t, display, p.Window, 90, 210) // the second own-card reader
	key(t, display, "ctrl+r")
	p.waitLog(`job started dry_run=false reader="`+regexp.QuoteMeta(e.own[1])+`"`, 10*time.Second)

	const newPIN = "735180"
	pin := waitWindow(t, display, pinWindowName)
	onScreen(t, display, pin)
	typeText(t, display, newPIN)
	key(t, display, "Return")
	typeText(t, display, newPIN)
	key(t, display, "Return")
	line := p.waitLog(`job finished dry_run=false`, 30*time.Second)
	if !strings.Contains(line, "code=ok") {
		t.Fatalf("the job: %s", line)
	}
	if err := verifyOnCard(t, e.own[1], newPIN); err != nil {
		t.Errorf("the PIN typed in the window is not the card's: %v", err)
	}
	for _, s := range []string{newPIN, demoPUK} {
		if strings.Contains(p.Logs(), s) {
			t.Error("the window's log holds a secret")
		}
	}
}

// With [issuer] ca_dir the configuration's CA answers the certificate
// requests: the job runs through without the request panel.
func TestInitWindowLocalIssuerOnStack(t *testing.T) {
	e := newStackEnv(t)
	display := requireX(t, e.s)
	cfg := initConfig(t, e, "[issuer]\nca_dir = "+e.ca+"\n")
	p := startInitGUI(t, e, display, []string{"LANGUAGE=en"}, "--config", cfg, demoPath(t))
	p.waitLog(`description opened .*runnable=true`, 10*time.Second)
	p.waitLog(`card in reader reader="`+regexp.QuoteMeta(e.own[0])+`".*iccsn=[0-9A-F]+`, 15*time.Second)
	fillDemo(t, display)
	click(t, display, p.Window, 90, 171)
	key(t, display, "ctrl+r")
	line := p.waitLog(`job finished dry_run=false`, 60*time.Second)
	m := regexp.MustCompile(`code=ok reader="` + regexp.QuoteMeta(e.own[0]) + `" iccsn=([0-9A-F]+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("the job did not end ok on %q: %s", e.own[0], line)
	}
	if strings.Contains(p.Logs(), "certificate request") {
		t.Error("the window asked the officer although a local issuer is configured")
	}
	wantDemoState(t, e, e.own[0], "cardwright demo 1", m[1])
}
