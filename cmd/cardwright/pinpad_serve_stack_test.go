package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/issuer"
)

// TestServePinPadOnStack: the PIN-pad job of TestEncodePinPadOnStack
// (PIN=!FROM_PROTECTED_AUTHENTICATION_PATH, the pinlimit module playing a
// keypad over the own card's SoftHSM2 token) submitted by a portal to
// `cardwright serve` over the WebSocket. The portal is told while the pad
// waits (prompt waiting, then done, with the kind the runner passes); the
// test types the PIN on the pad only once it has seen "waiting", answers
// the certificate request, and the token gets the new certificate, read
// back independently. No PIN reaches serve's log.
func TestServePinPadOnStack(t *testing.T) {
	e := newStackEnv(t)
	if code, stdout, stderr := e.encode("", demoArgs(e.cfg, "--reader", e.own[0], "--issuer-ca", e.ca, "--json")...); code != 0 {
		t.Fatalf("demo job: exit %d\n%s\n%s", code, stdout, stderr)
	}
	lib := buildPinLimit(t)
	fifo := filepath.Join(e.dir, "keypad")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	e.cfg = writeTestFile(t, e.dir, "pad.cfg", fmt.Sprintf("[pkcs11]\nmodule = %s\n[tokens]\n%s = %s, cardwright demo 1\n", lib, regexpQuote(e.own[0]), lib))
	dsc := "[Encoding]\nType=1024,Chip\n[Fields]\nCARD_SERIAL=\n[Description]\nPKCS11LibraryLinux=" + lib +
		"\nPIN=!FROM_PROTECTED_AUTHENTICATION_PATH\n[Application_C]\nCertTempl=PinPad\nKeyType=EC\nKeySize=256\nCardSerialNumberField=CARD_SERIAL\n"

	// The serve child inherits the environment (stackEnv.child); serve
	// takes no extra variables, so they are set here for the test's span.
	t.Setenv("PINLIMIT_TARGET", e.module)
	t.Setenv("PINLIMIT_PAD", fifo)
	url, _, logs := e.serve("--allow-origin", "https://portal.example")

	ca, err := issuer.OpenLocalCA(e.ca)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Origin: "https://portal.example"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var prompts []string
	wrote := make(chan error, 1)
	typed := false
	job := &api.Job{Description: dsc, Fields: map[string]string{"CARD_SERIAL": "CW-PAD"}, Reader: e.own[0]}
	res, err := c.Run(ctx, job, func(ctx context.Context, req *api.Request) *api.Answer {
		csr, _ := base64.StdEncoding.DecodeString(req.CSR)
		der, _, err := ca.Issue(ctx, issuer.Request{CSR: csr, Application: req.Application})
		if err != nil {
			return &api.Answer{Error: err.Error()}
		}
		return &api.Answer{Certificate: base64.StdEncoding.EncodeToString(der)}
	}, func(ev any) {
		p, ok := ev.(*api.Prompt)
		if !ok {
			return
		}
		prompts = append(prompts, p.Kind+" "+p.State+" "+p.Reader)
		if p.State == api.PromptWaiting && !typed {
			// The person at the reader types once the portal says it waits.
			typed = true
			go func() { wrote <- os.WriteFile(fifo, []byte(demoPIN+"\n"), 0o600) }() // blocks until the module reads the pad
		}
	})
	if !typed {
		// The job never waited for the pad; nothing to release.
		t.Errorf("no prompt waiting event: the test never typed on the pad")
	} else {
		select {
		case werr := <-wrote:
			if werr != nil {
				t.Fatal(werr)
			}
		case <-time.After(5 * time.Second):
			if f, ferr := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); ferr == nil {
				<-wrote
				f.Close()
			}
			t.Errorf("the job did not read the PIN pad")
		}
	}
	if err != nil {
		t.Fatalf("pad job: %v\n%s", err, logs())
	}
	if !res.OK {
		t.Fatalf("pad job: %+v (error %+v)\n%s", res, res.Error, logs())
	}
	const kind = "FROM_PROTECTED_AUTHENTICATION_PATH"
	if want := []string{kind + " waiting " + e.own[0], kind + " done " + e.own[0]}; !slices.Equal(prompts, want) {
		t.Errorf("prompt events %q, want %q", prompts, want)
	}
	rep := e.readBack("cardwright demo 1", demoPIN)
	slices.Sort(rep.Certs)
	if rep.Error != "" || !slices.Contains(rep.Certs, "PinPad") || len(rep.Certs) != 3 || rep.Linked != 3 || rep.Chained != 3 {
		t.Fatalf("token after the pad job: %+v (want the demo's two certificates and PinPad, linked, issued by the CA)", rep)
	}
	noPINs(t, logs())
}
