package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
)

// buildPinLimit builds p11's test module (p11/testdata/pinlimit), which
// forwards to SoftHSM2 and, with $PINLIMIT_PAD, plays a PIN-pad reader
// (p11/pinlock_test.go builds it the same way for p11's own tests).
func buildPinLimit(t *testing.T) string {
	t.Helper()
	inc, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/miekg/pkcs11").Output()
	if err != nil {
		t.Fatalf("finding the PKCS#11 headers: %v", err)
	}
	lib := filepath.Join(t.TempDir(), "libpinlimit.so")
	out, err := exec.Command("gcc", "-shared", "-fPIC", "-Wall", "-Werror", "-I"+strings.TrimSpace(string(inc)),
		"-o", lib, filepath.Join("..", "..", "p11", "testdata", "pinlimit", "pinlimit.c"), "-ldl").CombinedOutput()
	if err != nil {
		t.Fatalf("building the pinlimit module: %v\n%s", err, out)
	}
	return lib
}

// TestEncodePinPadOnStack: a description whose PIN comes from the PIN pad
// (!FROM_PROTECTED_AUTHENTICATION_PATH) runs through `cardwright encode`
// against a token with a keypad (the pinlimit module over the SoftHSM2
// token of the own card); the test types on the pad as the person at the
// reader would: the right PIN (the token gets a new certificate, read back
// independently), a wrong one (pin_incorrect), the cancel key
// (prompt_refused).
func TestEncodePinPadOnStack(t *testing.T) {
	e := newStackEnv(t)
	if code, stdout, stderr := e.encode("", demoArgs(e.cfg, "--reader", e.own[0], "--issuer-ca", e.ca, "--json")...); code != 0 {
		t.Fatalf("demo job: exit %d\n%s\n%s", code, stdout, stderr)
	}
	lib := buildPinLimit(t)
	fifo := filepath.Join(e.dir, "keypad")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeTestFile(t, e.dir, "pad.cfg", fmt.Sprintf("[pkcs11]\nmodule = %s\n[tokens]\n%s = %s, cardwright demo 1\n", lib, regexpQuote(e.own[0]), lib))
	dsc := writeTestFile(t, e.dir, "pad.dsc", "[Encoding]\nType=1024,Chip\n[Fields]\nCARD_SERIAL=\n[Description]\nPKCS11LibraryLinux="+lib+
		"\nPIN=!FROM_PROTECTED_AUTHENTICATION_PATH\n[Application_C]\nCertTempl=PinPad\nKeyType=EC\nKeySize=256\nCardSerialNumberField=CARD_SERIAL\n")

	// encode runs the job while the test types on the pad.
	encode := func(typed string) (int, string, string) {
		t.Helper()
		cmd := e.child("cli", "", []string{"PINLIMIT_TARGET=" + e.module, "PINLIMIT_PAD=" + fifo},
			"encode", "--dsc", dsc, "--config", cfg, "--reader", e.own[0], "--issuer-ca", e.ca, "--field", "CARD_SERIAL=CW-PAD", "--json")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wrote := make(chan error, 1)
		go func() { wrote <- os.WriteFile(fifo, []byte(typed+"\n"), 0o600) }() // blocks until the module reads the pad
		err := cmd.Wait()
		select {
		case werr := <-wrote:
			if werr != nil {
				t.Fatal(werr)
			}
		case <-time.After(time.Second):
			// The job never read the pad: release the writer.
			if f, ferr := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); ferr == nil {
				<-wrote
				f.Close()
			}
			t.Errorf("the job did not read the PIN pad")
		}
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		noPINs(t, out.String(), errb.String())
		return code, out.String(), errb.String()
	}

	t.Run("wrong PIN", func(t *testing.T) {
		code, stdout, stderr := encode("000000")
		if je := jobError(t, stdout); code != 1 || je == nil || je.Code != api.CodePinIncorrect || je.Step != "Application_C" {
			t.Fatalf("exit %d: %+v\n%s", code, je, stderr)
		}
	})
	t.Run("cancel on the pad", func(t *testing.T) {
		code, stdout, stderr := encode("CANCEL")
		if je := jobError(t, stdout); code != 1 || je == nil || je.Code != api.CodePromptRefused || je.Step != "Application_C" {
			t.Fatalf("exit %d: %+v\n%s", code, je, stderr)
		}
	})
	t.Run("right PIN", func(t *testing.T) {
		if code, stdout, stderr := encode(demoPIN); code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		rep := e.readBack("cardwright demo 1", demoPIN)
		slices.Sort(rep.Certs)
		if rep.Error != "" || !slices.Contains(rep.Certs, "PinPad") || len(rep.Certs) != 3 || rep.Linked != 3 || rep.Chained != 3 {
			t.Fatalf("token after the pad job: %+v (want the demo's two certificates and PinPad, linked, issued by the CA)", rep)
		}
	})
}
