package agent_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/dsc"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/runner"
)

func dsz(t testing.TB, dsc string) string {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create("job.dsc")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, dsc)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func postCardJob(t testing.TB, ta *testAgent, body string) (int, string) {
	t.Helper()
	resp, err := http.Post("http://"+ta.addr+"/CardJob", "application/xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestCardJobXML(t *testing.T) {
	ta := startAgent(t, func(c *agentConfig, _ *agentDeps) { c.AllowedModules = []string{"/usr/lib/softhsm/libsofthsm2.so"} })
	d := dsz(t, "[Description]\nPKCS11Library=#/usr/lib/softhsm/libsofthsm2.so\n")
	body := `<?xml version="1.0"?>
<card_job id="42">
  <reader>Fake Reader 1</reader>
  <applications><application name="demo">` + d + `</application></applications>
  <text_fields>
    <text_field name="Echo">Ada Lovelace</text_field>
    <text_field name="PIN">5511</text_field>
    <text_field name="ICCSN" read="true"/>
    <text_field name="PIN1" read="true" secret="true"/>
  </text_fields>
</card_job>`
	code, out := postCardJob(t, ta, body)
	if code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", code, out)
	}
	var resp agent.CardJobResponse
	if err := xml.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	got := map[string]agent.CardJobField{}
	for _, f := range resp.Fields {
		got[f.Name] = f
	}
	if resp.ID != "42" || !got["ICCSN"].Read || !strings.HasPrefix(got["ICCSN"].Value, "FAKE") || got["Echo"].Value != "Ada Lovelace" ||
		got["Reader"].Value != "Fake Reader 1" || got["PIN1"].Value != "5511" || !got["PIN1"].Secret {
		t.Fatalf("response:\n%s", out)
	}
	if !strings.Contains(out, `read="true"`) {
		t.Fatalf("no read=\"true\" in\n%s", out)
	}
	// Acknowledged right after the response was flushed.
	waitFor(t, func() bool { recs, _ := ta.journal.All(); return len(recs) == 0 })

	tests := []struct {
		name, body, want string
	}{
		{"module not allowed", `<card_job id="7"><applications><application>` + dsz(t, "[Description]\nPKCS11Library=#/tmp/evil.so\n") +
			`</application></applications></card_job>`, "module_not_allowed"},
		{"runner error", `<card_job id="8"><applications><application>` + d + `</application></applications>` +
			`<text_fields><text_field name="Fail">no_card</text_field></text_fields></card_job>`, "no_card"},
		{"no application", `<card_job id="9"></card_job>`, "bad_request"},
		{"not xml", `{`, "bad_request"},
		{"cancel unknown", `<cancel_job id="nope"/>`, "unknown_job"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, out := postCardJob(t, ta, tc.body)
			var st agent.StatusResponse
			if err := xml.Unmarshal([]byte(out), &st); err != nil || string(st.Code) != tc.want || st.Status != "error" {
				t.Fatalf("got %s (%v)", out, err)
			}
		})
	}
	if strings.Contains(ta.log.String(), "5511") {
		t.Fatal("the PIN reached the log")
	}
}

// bigDSZ is a .dsz at dsc's container limit: job.dsc and four stored files
// of random bytes, each just under dsc.MaxDSZFile.
func bigDSZ(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, _ := zw.Create("job.dsc")
	io.WriteString(w, "[Description]\n")
	for i := range 4 {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "blob" + itoa(i) + ".bin", Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		blob := make([]byte, dsc.MaxDSZFile-256)
		rand.Read(blob)
		w.Write(blob)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if b.Len() > dsc.MaxDSZSize || b.Len() < dsc.MaxDSZSize-2048 {
		t.Fatalf("container of %d bytes, want just under %d", b.Len(), dsc.MaxDSZSize)
	}
	return b.Bytes()
}

// wrap76 breaks base64 into CRLF-terminated 76-character lines, as MIME
// encoders do.
func wrap76(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	return b.String() + s
}

// TestCardJobBodyLimit: a card_job carrying a .dsz at dsc's size limit,
// base64 in 76-character lines, fits the body cap and runs; a body of
// exactly CardJobMaxBytes is read, one byte more is refused with 413 (with
// or without a Content-Length). Other statuses: 405 for GET, 400 for a body
// that is no card_job or cancel_job, 200 with status_response for a job
// error.
func TestCardJobBodyLimit(t *testing.T) {
	ta := startAgent(t)
	url := "http://" + ta.addr + "/CardJob"
	big := `<card_job id="big"><applications><application>` + wrap76(base64.StdEncoding.EncodeToString(bigDSZ(t))) +
		`</application></applications><text_fields><text_field name="Echo">big</text_field><text_field name="ICCSN" read="true"/></text_fields></card_job>`
	if len(big) > agent.CardJobMaxBytes {
		t.Fatalf("a maximal .dsz makes a body of %d bytes, over the cap of %d", len(big), agent.CardJobMaxBytes)
	}
	code, out := postCardJob(t, ta, big)
	if code != http.StatusOK || !strings.Contains(out, "<card_job_response") || !strings.Contains(out, ">big<") {
		t.Fatalf("maximal .dsz: HTTP %d %.300s", code, out)
	}

	// Exactly the cap is read (then refused as no XML: 400, cheaply); one
	// byte more is not read (413).
	atCap := "< " + strings.Repeat(" ", agent.CardJobMaxBytes-2)
	if code, out := postCardJob(t, ta, atCap); code != http.StatusBadRequest || !strings.Contains(out, "parsing XML") {
		t.Fatalf("body of exactly the cap: HTTP %d %.300s", code, out)
	}
	over := atCap + " "
	if code, out := postCardJob(t, ta, over); code != http.StatusRequestEntityTooLarge || !strings.Contains(out, "<code>message_too_large</code>") {
		t.Fatalf("one byte over the cap: HTTP %d %.300s", code, out)
	}
	d := dsz(t, "[Description]\n")
	// Chunked (no Content-Length): the cap holds while reading.
	req, _ := http.NewRequest(http.MethodPost, url, io.MultiReader(strings.NewReader(over)))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked body over the cap: HTTP %d", resp.StatusCode)
	}

	resp, err = http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: HTTP %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	for body, want := range map[string]int{
		`{`:                  http.StatusBadRequest,
		`<other/>`:           http.StatusBadRequest,
		`<card_job id="9"/>`: http.StatusOK, // no application: status_response
		`<card_job id="10"><applications><application>` + d + `</application></applications><text_fields><text_field name="Fail">no_card</text_field></text_fields></card_job>`: http.StatusOK,
	} {
		if code, out := postCardJob(t, ta, body); code != want || !strings.Contains(out, "<status_response") {
			t.Errorf("%.40s: HTTP %d %s, want %d and a status_response", body, code, out, want)
		}
	}
}

// TestCardJobIssuer: a card job's certificate requests go to the issuer
// given with SetCardJobIssuer; without one, a runner's refusal for want of
// an issuer says how to configure one.
func TestCardJobIssuer(t *testing.T) {
	ca := newTestCA(t)
	var asked []issuer.Request
	ta := startAgent(t)
	ta.srv.SetCardJobIssuer(issuerFunc(func(ctx context.Context, req issuer.Request) ([]byte, [][]byte, error) {
		asked = append(asked, req)
		a := ca.issue(ctx, &api.Request{CSR: base64.StdEncoding.EncodeToString(req.CSR), Template: req.Template})
		der, _ := base64.StdEncoding.DecodeString(a.Certificate)
		if _, err := x509.ParseCertificate(der); err != nil {
			return nil, nil, err
		}
		return der, nil, nil
	}))
	job := `<card_job id="k"><applications><application>` + dsz(t, "[Description]\n") + `</application></applications>` +
		`<text_fields><text_field name="Request">SmartcardLogon</text_field><text_field name="Certificate" read="true"/></text_fields></card_job>`
	code, out := postCardJob(t, ta, job)
	if code != http.StatusOK || !strings.Contains(out, `<text_field name="Certificate" read="true">`) || len(asked) != 1 || asked[0].Template != "SmartcardLogon" {
		t.Fatalf("HTTP %d, %d requests:\n%s", code, len(asked), out)
	}

	// No issuer: the refusal the real runner gives (cmd/cardwright's
	// TestServeCardJobIssuerMemCard runs it) gains the hint.
	refusal := &api.JobError{Code: api.CodeConfig, Key: "CertTempl", Line: 9, Message: "Application_A needs a certificate issuer and none is connected"}
	ta = startAgent(t, func(_ *agentConfig, d *agentDeps) {
		d.Runner = agent.RunnerFunc(func(_ context.Context, job *runner.Job, _ func(runner.Progress)) runner.Result {
			if job.Issuer != nil {
				t.Error("an issuer without SetCardJobIssuer")
			}
			return runner.Result{Err: refusal}
		})
	})
	_, out = postCardJob(t, ta, job)
	var st agent.StatusResponse
	if err := xml.Unmarshal([]byte(out), &st); err != nil || st.Code != api.CodeConfig || st.Line != 9 ||
		!strings.Contains(st.Message, "none is connected; POST /CardJob has no portal") || !strings.Contains(st.Message, "[issuer] ca_dir") {
		t.Fatalf("%v: %s", err, out)
	}
	if refusal.Message != "Application_A needs a certificate issuer and none is connected" {
		t.Fatal("the runner's error was changed in place")
	}
}

type issuerFunc func(ctx context.Context, req issuer.Request) ([]byte, [][]byte, error)

func (f issuerFunc) Issue(ctx context.Context, req issuer.Request) ([]byte, [][]byte, error) {
	return f(ctx, req)
}
