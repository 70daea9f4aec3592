package main

import (
	"context"
	"encoding/base64"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/pcsc"
)

// The outside tester's findings (issue 11, items 1–5), each on the real
// stack: pcscd, the own virtual card, SoftHSM2, `cardwright serve` or
// `cardwright encode` in a child process. Each failed on the code before
// the fix.

// TestJobWaitsOnStack: what happens to a job while it waits for the portal.
func TestJobWaitsOnStack(t *testing.T) {
	e := newStackEnv(t)
	url, _, logs := e.serve("--allow-origin", "https://portal.example")
	ca, err := issuer.OpenLocalCA(e.ca)
	if err != nil {
		t.Fatal(err)
	}
	dial := func(t *testing.T) (context.Context, *client.Client) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		t.Cleanup(cancel)
		c, err := client.Dial(ctx, url, client.Options{Origin: "https://portal.example"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return ctx, c
	}
	issue := func(ctx context.Context, req *api.Request) *api.Answer {
		csr, _ := base64.StdEncoding.DecodeString(req.CSR)
		der, _, err := ca.Issue(ctx, issuer.Request{CSR: csr, Application: req.Application})
		if err != nil {
			return &api.Answer{Error: err.Error()}
		}
		return &api.Answer{Certificate: base64.StdEncoding.EncodeToString(der)}
	}

	// Item 1: the card is pulled while the portal holds the first request;
	// the job used to answer ok with the ICCSN cached at selection.
	t.Run("card pulled during a request", func(t *testing.T) {
		ctx, c := dial(t)
		pulled := false
		res, err := c.Run(ctx, demoJobOnStack(t, e.own[0], "cardwright demo 1", "Pulled"), func(ctx context.Context, req *api.Request) *api.Answer {
			if !pulled {
				e.s.StopCard(t, e.own[0]) // a fresh card goes back in when the subtest ends
				pulled = true
			}
			return issue(ctx, req)
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.OK || res.Error == nil || res.Error.Code != api.CodeCardRemoved {
			t.Fatalf("result %+v (error %+v), want card_removed", res, res.Error)
		}
		if res.Fields["ICCSN"] != "" {
			t.Errorf("a removed card reported its ICCSN: %v", res.Fields)
		}
	})

	// Item 2: the portal answers with a certificate for another key (its
	// CA's own); the token must not store it.
	t.Run("certificate for another key", func(t *testing.T) {
		ctx, c := dial(t)
		res, err := c.Run(ctx, demoJobOnStack(t, e.own[0], "cardwright demo 1", "Other Key"), func(ctx context.Context, req *api.Request) *api.Answer {
			return &api.Answer{Certificate: base64.StdEncoding.EncodeToString(ca.Certificate().Raw)}
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.OK || res.Error == nil || res.Error.Code != api.CodeIssuerError || !strings.Contains(res.Error.Message, "key id") {
			t.Fatalf("result %+v (error %+v), want issuer_error naming the key ids", res, res.Error)
		}
		if rep := e.readBack("cardwright demo 1", demoPIN); rep.Error != "" || len(rep.Certs) != 0 {
			t.Errorf("token after the refused answer: %+v, want no certificate", rep)
		}
	})

	// Item 3: cancel while a request is pending ends cancelled, not
	// issuer_error.
	t.Run("cancel during a request", func(t *testing.T) {
		ctx, c := dial(t)
		j, err := c.Submit(ctx, demoJobOnStack(t, e.own[0], "cardwright demo 1", "Cancelled"))
		if err != nil {
			t.Fatal(err)
		}
		var res *api.Result
		for ev := range j.Events() {
			switch ev := ev.(type) {
			case *api.Request:
				if err := c.Cancel(ctx, j.ID); err != nil {
					t.Fatal(err)
				}
			case *api.Result:
				res = ev
			}
		}
		if res == nil || res.Error == nil || res.Error.Code != api.CodeCancelled {
			t.Fatalf("result %+v, want cancelled (%v)", res, j.Err())
		}
	})

	// And the same job with honest answers still works on this agent.
	t.Run("demo job", func(t *testing.T) {
		ctx, c := dial(t)
		res, err := c.Run(ctx, demoJobOnStack(t, e.own[0], "cardwright demo 1", "Honest"), issue, nil)
		if err != nil || !res.OK || res.Fields["ICCSN"] != e.s.Get(t, "SERIAL_OWN_1") {
			t.Fatalf("%+v %v", res, err)
		}
		readCard(t, e.own[0], "Honest", demoPIN)
	})
	noPINs(t, logs())
}

// TestValidateBeforeEraseOnStack: jobs that could never finish are refused
// before DeleteProfile; the card and token personalised before keep
// everything (items 4 and 5).
func TestValidateBeforeEraseOnStack(t *testing.T) {
	e := newStackEnv(t)
	// The vicc readers are not ours (as in testdata/demo/cardwright.cfg).
	cfg, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = writeTestFile(t, e.dir, "skip.cfg", string(cfg)+"[readers]\nskip = Virtual PCD vicc .*\n")
	if code, stdout, stderr := e.encode("", demoArgs(e.cfg, "--reader", e.own[0], "--issuer-ca", e.ca, "--json")...); code != 0 {
		t.Fatalf("personalising: exit %d\n%s\n%s", code, stdout, stderr)
	}
	const holder = "Erika Mustermann"
	unchanged := func(t *testing.T) {
		t.Helper()
		readCard(t, e.own[0], holder, demoPIN)
		if rep := e.readBack("cardwright demo 1", demoPIN); rep.Error != "" || len(rep.Certs) != 2 || rep.Linked != 2 {
			t.Errorf("token after the refused job: %+v", rep)
		}
	}
	// with replaces the demo's value of a field.
	with := func(field, value string, extra ...string) []string {
		a := demoArgs(e.cfg, append([]string{"--issuer-ca", e.ca, "--json"}, extra...)...)
		for i := range a {
			if strings.HasPrefix(a[i], field+"=") {
				a[i] = field + "=" + value
			}
			if a[i] == "--field-env" && strings.HasPrefix(a[i+1], field+"=") {
				a[i], a[i+1] = "--field", field+"="+value
			}
		}
		return a
	}
	for _, tc := range []struct {
		name  string
		args  []string
		code  api.Code
		inMsg string
	}{
		{"label other than the reader's token", with("TOKEN_LABEL", "another label", "--reader", e.own[0]), api.CodeConfig, "maps this reader to token"},
		{"PIN shorter than the profile's minlen", with("PIN_FIELD", "12", "--reader", e.own[0]), api.CodeInvalidField, "PIN_FIELD"},
		{"empty PIN field", with("PIN_FIELD", "", "--reader", e.own[0]), api.CodeInvalidField, "PIN_FIELD"},
		{"PUK longer than the card takes", with("PUK_FIELD", strings.Repeat("7", 300), "--reader", e.own[0]), api.CodeInvalidField, "PUK_FIELD"},
		// The profile sets no minlen for the PUK; SoftHSM2 takes 4 to 255.
		{"PUK shorter than the token takes", with("PUK_FIELD", "123", "--reader", e.own[0]), api.CodeInvalidField, "token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := e.encode("", tc.args...)
			je := jobError(t, stdout)
			if code != 1 || je == nil || je.Code != tc.code || !strings.Contains(je.Message, tc.inMsg) || strings.Contains(je.Message, "done before") {
				t.Fatalf("exit %d, error %+v; want %s mentioning %q, nothing done\n%s", code, je, tc.code, tc.inMsg, stderr)
			}
			noPINs(t, stdout, stderr)
			unchanged(t)
		})
	}

	// The runner picks the reader itself (the only card not skipped).
	t.Run("label other than the token of the chosen reader", func(t *testing.T) {
		e.s.StopCard(t, e.own[1])
		waitNoCard(t, e.own[1]) // card-stop kills the emulator; pcscd notices on its next poll
		code, stdout, stderr := e.encode("", with("TOKEN_LABEL", "another label")...)
		if je := jobError(t, stdout); code != 1 || je == nil || je.Code != api.CodeConfig || je.Step != "validate" {
			t.Fatalf("exit %d, error %+v; want config in validate\n%s", code, je, stderr)
		}
		unchanged(t)
	})

	// Item 5: an explicit reader on the skip list (the configuration skips
	// the vicc readers) is not used: DeleteProfile used to run on vicc.
	t.Run("explicit reader on the skip list", func(t *testing.T) {
		vicc := e.s.Get(t, "READER_VICC_1")
		code, stdout, stderr := e.encode("", with("TOKEN_LABEL", "cardwright demo 1", "--reader", vicc)...)
		je := jobError(t, stdout)
		if code != 1 || je == nil || je.Code != api.CodeReaderUnavailable || !strings.Contains(je.Message, "skip") {
			t.Fatalf("exit %d, error %+v; want reader_unavailable naming the skip list\n%s", code, je, stderr)
		}
		pc, err := pcsc.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		k, err := pc.Connect(vicc, pcsc.Shared)
		if err != nil {
			t.Fatalf("vicc after the refused job: %v", err)
		}
		defer k.Close()
		if _, err := k.Transmit([]byte{0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00}); err != nil {
			t.Errorf("vicc does not answer after the refused job: %v", err)
		}
	})
}

// waitNoCard waits until pcscd reports reader empty.
func waitNoCard(t *testing.T, reader string) {
	t.Helper()
	pc, err := pcsc.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := pc.Status(nil)
		if err != nil {
			t.Fatal(err)
		}
		present := false
		for _, r := range st {
			present = present || (r.Name == reader && r.Present)
		}
		if !present {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pcscd still sees a card in %q 10 s after it was stopped", reader)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
