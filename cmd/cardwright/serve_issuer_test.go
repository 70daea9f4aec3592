package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/issuer"
)

// demoDSZ is testdata/demo's description and profile as a base64 .dsz,
// key applications included.
func demoDSZ(t *testing.T) string {
	t.Helper()
	files := map[string][]byte{}
	for _, name := range []string{"demo.dsc", "demo.cpf"} {
		b, err := os.ReadFile(filepath.Join(demoDir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	return dszOf(t, files)
}

// dszOf zips files into a base64 .dsz.
func dszOf(t *testing.T, files map[string][]byte) string {
	t.Helper()
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	for name, b := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(z.Bytes())
}

func demoCardJobXML(t *testing.T, id, reader, holder string) string {
	return `<card_job id="` + id + `"><reader>` + reader + `</reader>
<applications><application name="demo">` + demoDSZ(t) + `</application></applications>
<text_fields>
<text_field name="PIN_FIELD">` + demoPIN + `</text_field>
<text_field name="PUK_FIELD">` + demoPUK + `</text_field>
<text_field name="HOLDER">` + base64.StdEncoding.EncodeToString([]byte(holder)) + `</text_field>
<text_field name="CARD_SERIAL">CW-11</text_field>
<text_field name="TOKEN_LABEL">sdk</text_field>
<text_field name="ICCSN" read="true"/>
</text_fields></card_job>`
}

func postXML(t *testing.T, addr, body string) (int, string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/CardJob", "application/xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeCardJobIssuerMemCard: the full demo job (two key applications)
// as a POST /CardJob on an in-memory card with the real runner. Without an
// issuer it is refused with config, saying how to configure one, before the
// card sees an APDU; with serve's local-CA issuer both certificates are
// issued and the job returns the ICCSN.
func TestServeCardJobIssuerMemCard(t *testing.T) {
	ma := startMemAgent(t, 1)
	reader := memReader(0)
	code, out := postXML(t, ma.addr, demoCardJobXML(t, "no-issuer", reader, "No Issuer"))
	var st agent.StatusResponse
	if err := xml.Unmarshal([]byte(out), &st); err != nil || code != http.StatusOK || st.Code != api.CodeConfig ||
		!strings.Contains(st.Message, "Application_A needs a certificate issuer") || !strings.Contains(st.Message, "[issuer] ca_dir") ||
		!strings.Contains(st.Message, "--issuer-ca") {
		t.Fatalf("without an issuer: HTTP %d %v\n%s", code, err, out)
	}
	if tr := ma.cards[reader].Transcript(); len(tr) != 0 {
		t.Fatalf("the refused job sent %d APDUs to the card", len(tr))
	}

	var logBuf lockedBuffer
	ca, err := issuer.OpenLocalCA(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	ma.srv.SetCardJobIssuer(localCAIssuer(ca, slog.New(slog.NewJSONHandler(&logBuf, nil))))
	code, out = postXML(t, ma.addr, demoCardJobXML(t, "with-issuer", reader, "Card SDK Keys"))
	var r agent.CardJobResponse
	if err := xml.Unmarshal([]byte(out), &r); err != nil || code != http.StatusOK || len(r.Fields) != 1 ||
		r.Fields[0].Value != strings.ToUpper(hex.EncodeToString(memSerial(0))) {
		t.Fatalf("with the local CA: HTTP %d %v\n%s", code, err, out)
	}
	if n := strings.Count(logBuf.String(), "certificate issued by the local CA"); n != 2 {
		t.Fatalf("%d certificates issued, want 2:\n%s", n, logBuf.String())
	}
	if err := checkMemCard(ma.cards[reader], "Card SDK Keys"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out+ma.log.String()+logBuf.String(), demoPIN) {
		t.Fatal("a PIN in the response or the log")
	}
}

// TestLocalCAIssuer: the local CA's refusals are issuer_error naming the
// application, a cancelled job stays cancelled, and a good request is
// issued with the template logged.
func TestLocalCAIssuer(t *testing.T) {
	ca, err := issuer.OpenLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	iss := localCAIssuer(ca, slog.New(slog.NewTextHandler(&log, nil)))
	_, _, err = iss.Issue(context.Background(), issuer.Request{Application: "A", CSR: []byte("not a CSR")})
	if je, ok := err.(*api.JobError); !ok || je.Code != api.CodeIssuerError || !strings.Contains(je.Message, "Application_A") {
		t.Errorf("garbage: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := iss.Issue(ctx, issuer.Request{Application: "A"}); err == nil || err.(*api.JobError).Code != api.CodeCancelled {
		t.Errorf("cancelled: %v", err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "card"}}, key)
	if der, _, err := iss.Issue(context.Background(), issuer.Request{Application: "B", Template: "Logon", CSR: csr}); err != nil || len(der) == 0 {
		t.Fatalf("issuing: %v", err)
	}
	if !strings.Contains(log.String(), "template=Logon") {
		t.Errorf("log: %s", log.String())
	}
}

// TestServeIssuerConfig: `serve` takes the CardJob CA from [issuer] ca_dir
// or --issuer-ca and refuses a bad one at start with its file:line or flag;
// --demo-ca and --demo-job without --demo-portal are usage errors; an
// http:// origin other than the loopback names is refused.
func TestServeIssuerConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "ca")
	cfg := filepath.Join(dir, "good.cfg")
	os.WriteFile(cfg, []byte("[server]\nmax_message_bytes = 1048576\nmax_jobs = 2\nmax_rate_per_second = 30\n[issuer]\nca_dir = "+good+"\n"), 0o600)
	other := t.TempDir()
	if _, err := issuer.OpenLocalCA(other); err != nil {
		t.Fatal(err)
	}
	if _, err := issuer.OpenLocalCA(good); err != nil {
		t.Fatal(err)
	}
	mismatched := t.TempDir()
	for from, name := range map[string]string{good: issuer.CertFile, other: issuer.KeyFile} {
		b, _ := os.ReadFile(filepath.Join(from, name))
		os.WriteFile(filepath.Join(mismatched, name), b, 0o600)
	}
	bad := filepath.Join(dir, "bad.cfg")
	os.WriteFile(bad, []byte("# CardJob CA\n[issuer]\nca_dir = "+mismatched+"\n"), 0o600)
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--demo-ca", dir}, exitUsage, "--demo-ca and --demo-job need --demo-portal"},
		{[]string{"--demo-job", cfg}, exitUsage, "--demo-ca and --demo-job need --demo-portal"},
		{[]string{"--config", bad, "--journal", "JOURNAL", "--fake-runner", "--listen", "127.0.0.1:0"}, exitFailure,
			bad + ":3: ca_dir: test CA in " + mismatched + ": ca-key.pem is not the key of ca.pem"},
		{[]string{"--config", "/dev/null", "--journal", "JOURNAL", "--fake-runner", "--listen", "127.0.0.1:0", "--issuer-ca", mismatched}, exitFailure,
			"--issuer-ca: test CA in " + mismatched + ": ca-key.pem is not the key of ca.pem"},
		{[]string{"--config", "/dev/null", "--journal", "JOURNAL", "--fake-runner", "--allow-origin", "http://cms.example.com"}, exitFailure,
			"http:// only for localhost, 127.0.0.1 and [::1]"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			for i, a := range tc.args {
				if a == "JOURNAL" {
					tc.args[i] = t.TempDir()
				}
			}
			var stderr strings.Builder
			env := &cmdEnv{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }}
			if code := runServe(context.Background(), env, tc.args); code != tc.code || !strings.Contains(stderr.String(), tc.msg) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.code, tc.msg)
			}
		})
	}

	// The configured CA answers a CardJob's certificate request (the fake
	// runner makes one for Request=…); the log names the CA.
	url, _, stop, logs := startServe(t, "--fake-runner", "--config", cfg, "--listen", "127.0.0.1:0", "--journal", t.TempDir(),
		"--allow-origin", "http://localhost:3000")
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/v1/ws")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Origin: "http://localhost:3000"})
	if err != nil {
		t.Fatal(err)
	}
	if l := c.Welcome.Limits; l.MaxMessageBytes != 1<<20 || l.MaxJobs != 2 || l.MaxRate != 30 {
		t.Errorf("welcome limits %+v, want the configured ones", l)
	}
	c.Close()
	d := dszOf(t, map[string][]byte{"job.dsc": []byte("[Description]\n")})
	code, out := postXML(t, addr, `<card_job id="1"><applications><application>`+d+`</application></applications>`+
		`<text_fields><text_field name="Request">SmartcardLogon</text_field><text_field name="Certificate" read="true"/></text_fields></card_job>`)
	if code != http.StatusOK || !strings.Contains(out, `<text_field name="Certificate" read="true">`) {
		t.Fatalf("HTTP %d\n%s", code, out)
	}
	stop()
	if l := logs(); !strings.Contains(l, "POST /CardJob certificates are issued by a local CA") || !strings.Contains(l, "certificate issued by the local CA") {
		t.Fatalf("log:\n%s", l)
	}
}
