package agent_test

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/runner"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// archivingRunner stands in for the runner's KeyArchivalRequest step: it
// asks the job's issuer for a key-archival answer, opens the PKCS#12 with
// the password and returns the certificate's CN and serial (or the
// issuer's error), wiping the password.
func archivingRunner(t *testing.T) agent.RunnerFunc {
	return func(ctx context.Context, job *runner.Job, _ func(runner.Progress)) runner.Result {
		a, ok := job.Issuer.(issuer.Archiver)
		if !ok {
			return runner.Result{Err: &api.JobError{Code: api.CodeConfig, Message: fmt.Sprintf("the job's issuer %T cannot archive keys", job.Issuer)}}
		}
		ans, err := a.Archive(ctx, issuer.Request{KeyArchival: true, Application: "B", Template: "EncHardCodedValues"})
		defer ans.Password.Wipe()
		if err != nil {
			var je *api.JobError
			if errors.As(err, &je) {
				return runner.Result{Err: je}
			}
			return runner.Result{Err: &api.JobError{Code: api.CodeIssuerError, Message: err.Error()}}
		}
		_, cert, _, err := pkcs12.DecodeChain(ans.PKCS12, ans.Password.Reveal())
		if err != nil {
			return runner.Result{Err: &api.JobError{Code: api.CodeIssuerError, Message: "opening: " + err.Error()}}
		}
		return runner.Result{Fields: map[string]string{"CN": cert.Subject.CommonName, "Serial": fmt.Sprintf("%X", cert.SerialNumber)}}
	}
}

// TestKeyArchivalOverWebSocket: a key-archival request reaches the portal
// as a request with key_archival true and no csr (every frame checked
// against the schema by the test client); the portal's PKCS#12 and
// password come back to the runner, the password as a secret that no log
// line holds. Answers without a pkcs12 — an error text, a certificate,
// nothing, or a pkcs12 that is not base64 — end the job with
// issuer_error.
func TestKeyArchivalOverWebSocket(t *testing.T) {
	ca, err := issuer.OpenLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ta := startAgent(t, func(_ *agentConfig, d *agentDeps) { d.Runner = archivingRunner(t) })
	c := ta.dial(client.Options{})
	ctx := ctxT(t)
	var mu sync.Mutex
	var passwords []string
	portal := func(ctx context.Context, r *api.Request) *api.Answer {
		if !r.KeyArchival || r.CSR != "" || r.Application != "B" || r.Template != "EncHardCodedValues" {
			return &api.Answer{Error: fmt.Sprintf("unexpected request %+v", r)}
		}
		a, err := ca.Archive(ctx, issuer.Request{KeyArchival: true, Application: r.Application, Template: r.Template})
		if err != nil {
			return &api.Answer{Error: err.Error()}
		}
		mu.Lock()
		passwords = append(passwords, a.Password.Reveal())
		mu.Unlock()
		return &api.Answer{PKCS12: base64.StdEncoding.EncodeToString(a.PKCS12), Password: a.Password.Reveal()}
	}
	res, err := c.Run(ctx, &api.Job{Description: "x"}, portal, nil)
	if err != nil || !res.OK || res.Fields["CN"] != "EncHardCodedValues" || res.Fields["Serial"] == "" {
		t.Fatalf("key archival: %+v %v", res, err)
	}
	c.Ack(ctx, res.ID)

	for _, tc := range []struct {
		name   string
		answer *api.Answer
		text   string
	}{
		{"error text", &api.Answer{Error: "template EncHardCodedValues is not allowed"}, "could not archive the key of Application_B: template EncHardCodedValues is not allowed"},
		{"certificate instead", &api.Answer{Certificate: "MIIB"}, "with a certificate"},
		{"no pkcs12", &api.Answer{Password: "only-a-password-4471"}, "has no pkcs12"},
		{"pkcs12 not base64", &api.Answer{PKCS12: "AAA", Password: "pw-not-base64-8812"}, "not base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.answer.Password != "" {
				mu.Lock()
				passwords = append(passwords, tc.answer.Password)
				mu.Unlock()
			}
			res, err := c.Run(ctx, &api.Job{Description: "x"}, func(context.Context, *api.Request) *api.Answer {
				a := *tc.answer
				return &a
			}, nil)
			if err != nil || res.OK || res.Error.Code != api.CodeIssuerError || !strings.Contains(res.Error.Message, tc.text) {
				t.Fatalf("%+v %v; want issuer_error saying %q", res, err, tc.text)
			}
			c.Ack(ctx, res.ID)
			for _, p := range passwords {
				if strings.Contains(res.Error.Message, p) {
					t.Errorf("a PKCS#12 password is in the error: %s", res.Error.Message)
				}
			}
		})
	}
	logs := ta.log.String()
	journal, _ := readJournalFile(ta.dir)
	for _, p := range passwords {
		if strings.Contains(logs, p) || strings.Contains(journal, p) {
			t.Errorf("a PKCS#12 password is in the log or the journal")
		}
	}
}

// TestCardJobKeyArchival: POST /CardJob has no portal; its local CA
// (SetCardJobIssuer with an issuer.LocalCA) answers the key-archival
// request itself, and the job ends well.
func TestCardJobKeyArchival(t *testing.T) {
	ca, err := issuer.OpenLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ta := startAgent(t, func(_ *agentConfig, d *agentDeps) { d.Runner = archivingRunner(t) })
	ta.srv.SetCardJobIssuer(ca)
	job := `<card_job id="ka"><applications><application>` + dsz(t, "[Description]\n") + `</application></applications>` +
		`<text_fields><text_field name="CN" read="true"/><text_field name="Serial" read="true"/></text_fields></card_job>`
	code, out := postCardJob(t, ta, job)
	var resp agent.CardJobResponse
	if err := xml.Unmarshal([]byte(out), &resp); code != http.StatusOK || err != nil {
		t.Fatalf("HTTP %d %v:\n%s", code, err, out)
	}
	got := map[string]string{}
	for _, f := range resp.Fields {
		got[f.Name] = f.Value
	}
	if got["CN"] != "EncHardCodedValues" || len(got["Serial"]) != 32 {
		t.Fatalf("fields %v:\n%s", got, out)
	}
}
