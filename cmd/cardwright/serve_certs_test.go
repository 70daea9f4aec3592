package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/agenttest"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/agent/journal"
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/internal/testpki"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/p11/allowlist"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/secret"
	"github.com/cardwright/cardwright/signing"
)

const (
	certsOrigin      = "https://portal.example"
	certsOtherOrigin = "https://other.example"
	// Test credentials, easy to grep for in logs and output.
	servePIN   = "pin-serve-7730"
	serveWrong = "pin-serve-wrong-4182"
	serveSO    = "so-serve-5521"
)

// pinDialog stands in for the desktop app's PIN window: it
// answers with pin, or with a wrong PIN while wrong is set, and records the
// origin each request names. Each answer is a fresh value: the signer
// wipes a PIN after use.
type pinDialog struct {
	mu      sync.Mutex
	wrong   bool
	origins []string
}

func (d *pinDialog) Ask(_ context.Context, req prompt.Request) (prompt.Answer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.origins = append(d.origins, req.Origin)
	if d.wrong {
		return prompt.Answer{PIN: secret.New(serveWrong)}, nil
	}
	return prompt.Answer{PIN: secret.New(servePIN)}, nil
}

// serveKey is a key pair to make on a test token and its certificate's
// subject.
type serveKey struct {
	cn, ou string
	spec   p11.KeySpec
	id     byte
}

// makeServeToken initialises a SoftHSM2 token and puts on it, for each
// key, a key pair, a PKCS#10 request signed on the token, and the LocalCA's
// certificate for it under the key's CKA_ID. It returns the token serial.
func makeServeToken(t *testing.T, m *p11.Module, ca *issuer.LocalCA, label string, keys []serveKey, certs map[string]*x509.Certificate) string {
	t.Helper()
	tok, err := m.InitTokenAndPIN(nil, secret.New(serveSO), secret.New(servePIN), label)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Login(secret.New(servePIN)); err != nil {
		t.Fatal(err)
	}
	defer s.Logout()
	for _, k := range keys {
		key, err := s.GenerateKeyPair(k.spec, k.cn, []byte{k.id})
		if err != nil {
			t.Fatal(err)
		}
		csr, err := key.CertificateRequest(&x509.CertificateRequest{Subject: pkix.Name{
			CommonName: k.cn, Organization: []string{"Example company"}, OrganizationalUnit: []string{k.ou}}})
		if err != nil {
			t.Fatal(err)
		}
		der, _, err := ca.Issue(context.Background(), issuer.Request{CSR: csr})
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.WriteCertificate(cert, k.cn, []byte{k.id}); err != nil {
			t.Fatal(err)
		}
		certs[k.cn] = cert
	}
	return tok.Serial()
}

// TestServeCertsSoftHSM runs certificates, sign and authenticate over the
// agent's real WebSocket with the certificate service `cardwright serve`
// wires (signing over p11store over SoftHSM2), on two tokens holding RSA
// and EC keys with certificates from issuer.LocalCA. SoftHSM2 reads
// SOFTHSM2_CONF once per process, so the work runs in a child test process
// with a token directory of its own.
func TestServeCertsSoftHSM(t *testing.T) {
	module := os.Getenv("CARDWRIGHT_SERVECERTS_TEST_MODULE")
	if module == "" {
		s := stacktest.Require(t)
		module = s.Get(t, "SOFTHSM_MODULE")
		conf := testpki.SoftHSMConf(t, t.TempDir())
		cmd := exec.Command(os.Args[0], "-test.run=^TestServeCertsSoftHSM$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "CARDWRIGHT_SERVECERTS_TEST_MODULE="+module, "SOFTHSM2_CONF="+conf)
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestServeCertsSoftHSM")) {
			t.Fatalf("child test: %v\n%s", err, out)
		}
		for _, p := range []string{servePIN, serveWrong, serveSO} {
			if bytes.Contains(out, []byte(p)) {
				t.Errorf("a PIN is in the child test's output")
			}
		}
		t.Logf("child test:\n%s", out)
		return
	}

	// Token A: Samuel (RSA 2048, CKA_ID 01), Bob (P-256, 02), Carol
	// (P-384, 03). Token B: Dave (RSA 2048, 01 — the same key id on
	// another token).
	m, err := p11.Load(module, allowlist.Modules{module}.Allows)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := issuer.OpenLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	certs := map[string]*x509.Certificate{}
	serialA := makeServeToken(t, m, ca, "serve-certs-a", []serveKey{
		{"Samuel", "Signers", p11.RSA2048, 0x01}, {"Bob", "Staff", p11.ECP256, 0x02}, {"Carol", "Staff", p11.ECP384, 0x03}}, certs)
	serialB := makeServeToken(t, m, ca, "serve-certs-b", []serveKey{{"Dave", "Signers", p11.RSA2048, 0x01}}, certs)
	tokenOf := map[string]string{"Samuel": serialA, "Bob": serialA, "Carol": serialA, "Dave": serialB}
	pick := func(cn string) json.RawMessage { // the filter that selects cn's certificate alone
		return json.RawMessage(fmt.Sprintf(`{"value":[{"op":"eq","param":"token.id","value":%q},{"op":"eq","param":"key.id","value":%q}]}`,
			tokenOf[cn], keyIDOf(cn)))
	}

	// The agent with the service serve wires, the PIN dialog stand-in and,
	// for the headless case, the prompter serve really uses.
	var logBuf syncLog
	logger := slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dialog := &pinDialog{}
	cfg := &config.Config{Modules: []string{module}}
	svc := newCertService(cfg, prompt.Refuse{}, logger)
	svc.prompter = dialog
	url := startCertAgent(t, svc, logger)
	headlessURL := startCertAgent(t, newCertService(cfg, prompt.Refuse{}, logger), logger)

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Origin: certsOrigin})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// certificates: a filter selects exactly the expected set, and each
	// entry names its token (serial) and key id.
	for _, tc := range []struct {
		filter string
		want   string
	}{
		{"", "Bob,Carol,Dave,Samuel"},
		{`null`, "Bob,Carol,Dave,Samuel"},
		{`{"op":"eq","param":"key.type","value":"RSA"}`, "Dave,Samuel"},
		{`{"value":[{"op":"eq","param":"key.type","value":"ECC"},{"op":"ge","param":"key.size","value":384}]}`, "Carol"},
		{`{"op":"eq","param":"key.id","value":"01"}`, "Dave,Samuel"},
		{`{"op":"and","value":[{"op":"eq","param":"key.id","value":"01"},{"op":"eq","param":"token.id","value":"` + serialB + `"}]}`, "Dave"},
		{`{"op":"eq","param":"cert.subject.ou","value":"Staff"}`, "Bob,Carol"},
		{`{"op":"eq","param":"cert.issuer.cn","value":"` + ca.Certificate().Subject.CommonName + `"}`, "Bob,Carol,Dave,Samuel"},
		{`{"op":"co","param":"cert.keyusage","value":"keyAgreement"}`, "Bob,Carol"},
		{`{"op":"or","value":[{"op":"eq","param":"cert.subject.cn","value":"Bob"},{"op":"sw","param":"cert.subject.cn","value":"Ca"}]}`, "Bob,Carol"},
		{`{"op":"not","value":[{"op":"sw","param":"cert.subject.cn","value":"S"},{"op":"eq","param":"key.type","value":"ECC"}]}`, "Dave"},
		{`{"op":"eq","param":"cert.subject.cn","value":"samuel"}`, ""}, // eq is case-sensitive
		{`{"op":"eq","param":"cert.subject.cn","value":"Nobody"}`, ""},
	} {
		var f json.RawMessage
		if tc.filter != "" {
			f = json.RawMessage(tc.filter)
		}
		list, err := c.Certificates(ctx, f)
		if err != nil {
			t.Fatalf("certificates %s: %v", tc.filter, err)
		}
		var cns []string
		for _, l := range list {
			der, _ := base64.StdEncoding.DecodeString(l.Certificate)
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			cn := cert.Subject.CommonName
			cns = append(cns, cn)
			if !cert.Equal(certs[cn]) || l.Token != tokenOf[cn] || l.KeyID != keyIDOf(cn) {
				t.Errorf("certificates %s: entry %s: token %q key_id %q, want %q %q", tc.filter, cn, l.Token, l.KeyID, tokenOf[cn], keyIDOf(cn))
			}
		}
		sort.Strings(cns)
		if got := strings.Join(cns, ","); got != tc.want {
			t.Errorf("certificates %s = %q, want %q", tc.filter, got, tc.want)
		}
	}
	_, err = c.Certificates(ctx, json.RawMessage(`{"op":"and","value":[{"op":"eq","param":"key.type","value":"RSA"},{"op":"nope"}]}`))
	if !hasCode(err, api.CodeInvalidField) || !strings.Contains(err.Error(), "value[1].op") {
		t.Errorf("malformed filter: %v, want %s naming value[1].op", err, api.CodeInvalidField)
	}

	// sign: the signature verifies with the certificate that comes back.
	data := []byte("document to sign")
	signs := 0
	for _, tc := range []struct {
		cn, alg string
		sigAlg  x509.SignatureAlgorithm
	}{
		{"Samuel", "RS256", x509.SHA256WithRSA},
		{"Samuel", "PS256", x509.SHA256WithRSAPSS},
		{"Samuel", "RS512", x509.SHA512WithRSA},
		{"Samuel", "", x509.SHA256WithRSA}, // the key's default
		{"Dave", "PS384", x509.SHA384WithRSAPSS},
		{"Bob", "ES256", x509.ECDSAWithSHA256},
		{"Bob", "", x509.ECDSAWithSHA256},
		{"Carol", "", x509.ECDSAWithSHA384}, // P-384's default
		{"Carol", "ES512", x509.ECDSAWithSHA512},
	} {
		sig, err := c.Sign(ctx, api.Sign{Filter: pick(tc.cn), Data: base64.StdEncoding.EncodeToString(data), Algorithm: tc.alg})
		signs++
		if err != nil {
			t.Fatalf("sign with %s %s: %v", tc.cn, tc.alg, err)
		}
		raw, _ := base64.StdEncoding.DecodeString(sig.Signature)
		der, _ := base64.StdEncoding.DecodeString(sig.Certificate)
		if !bytes.Equal(der, certs[tc.cn].Raw) {
			t.Fatalf("sign with %s: answered another certificate", tc.cn)
		}
		if err := certs[tc.cn].CheckSignature(tc.sigAlg, data, raw); err != nil {
			t.Errorf("signature of %s (%s) does not verify: %v", tc.cn, tc.alg, err)
		}
	}

	// Refusals before any PIN: several matches, an RSA algorithm for an EC
	// key, data that starts with the authentication context (a page must
	// not get an authentication value for another site signed as data).
	for _, tc := range []struct {
		name string
		req  api.Sign
		code api.Code
	}{
		{"two certificates with key id 01", api.Sign{Filter: json.RawMessage(`{"op":"eq","param":"key.id","value":"01"}`), Data: base64.StdEncoding.EncodeToString(data)}, api.CodeCardAmbiguous},
		{"no match", api.Sign{Filter: json.RawMessage(`{"op":"eq","param":"cert.subject.cn","value":"Nobody"}`), Data: base64.StdEncoding.EncodeToString(data)}, api.CodeCardNotFound},
		{"RS256 with only EC keys selected", api.Sign{Filter: pick("Bob"), Data: base64.StdEncoding.EncodeToString(data), Algorithm: "RS256"}, api.CodeCardNotFound},
		{"unknown algorithm", api.Sign{Filter: pick("Bob"), Data: base64.StdEncoding.EncodeToString(data), Algorithm: "ECDSA-SHA256"}, api.CodeInvalidField},
		{"authentication context as data", api.Sign{Filter: pick("Bob"), Data: base64.StdEncoding.EncodeToString([]byte("cardwright-auth:1\x00forged"))}, api.CodeInvalidField},
		{"data not base64", api.Sign{Filter: pick("Bob"), Data: "%%%"}, api.CodeInvalidField},
	} {
		if _, err := c.Sign(ctx, tc.req); !hasCode(err, tc.code) {
			t.Errorf("sign, %s: %v, want %s", tc.name, err, tc.code)
		}
	}

	// Concurrent signatures over one connection, on both tokens: each
	// login waits for the other's logout and every signature verifies.
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := 0; i < 12; i++ {
		cn := []string{"Samuel", "Bob", "Carol", "Dave"}[i%4]
		signs++
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := []byte(fmt.Sprintf("document %d", i))
			sig, err := c.Sign(ctx, api.Sign{Filter: pick(cn), Data: base64.StdEncoding.EncodeToString(msg)})
			if err != nil {
				errs <- fmt.Errorf("concurrent sign %d with %s: %w", i, cn, err)
				return
			}
			raw, _ := base64.StdEncoding.DecodeString(sig.Signature)
			alg := map[string]x509.SignatureAlgorithm{"Samuel": x509.SHA256WithRSA, "Dave": x509.SHA256WithRSA,
				"Bob": x509.ECDSAWithSHA256, "Carol": x509.ECDSAWithSHA384}[cn]
			if err := certs[cn].CheckSignature(alg, msg, raw); err != nil {
				errs <- fmt.Errorf("concurrent sign %d with %s does not verify: %w", i, cn, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// authenticate: the token verifies for the connection's origin and the
	// nonce only, whichever key type signs it.
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	newNonce := func() string {
		b := make([]byte, 32)
		rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	authToken := func(a *api.Authentication) []byte {
		tok, _ := json.Marshal(map[string]string{"format": a.Format, "algorithm": a.Algorithm,
			"certificate": a.Certificate, "signature": a.Signature})
		return tok
	}
	auths := 0
	for _, cn := range []string{"Bob", "Samuel", "Carol"} {
		nonce := newNonce()
		auth, err := c.Authenticate(ctx, api.Authenticate{Filter: pick(cn), Challenge: nonce})
		auths++
		if err != nil {
			t.Fatalf("authenticate with %s: %v", cn, err)
		}
		token := authToken(auth)
		if cert, err := signing.Verify(token, certsOrigin, nonce, roots); err != nil || !cert.Equal(certs[cn]) {
			t.Fatalf("%s's authentication token does not verify for %s: %v", cn, certsOrigin, err)
		}
		if _, err := signing.Verify(token, "https://evil.example", nonce, roots); !errors.Is(err, signing.ErrBadSignature) {
			t.Errorf("%s's authentication token for another origin: %v, want %v", cn, err, signing.ErrBadSignature)
		}
		if _, err := signing.Verify(token, certsOrigin, newNonce(), roots); !errors.Is(err, signing.ErrBadSignature) {
			t.Errorf("%s's authentication token for another nonce: %v, want %v", cn, err, signing.ErrBadSignature)
		}
	}
	if _, err := c.Authenticate(ctx, api.Authenticate{Filter: pick("Bob"), Challenge: "c2hvcnQ="}); !hasCode(err, api.CodeInvalidField) {
		t.Errorf("authenticate with a short challenge: %v, want %s", err, api.CodeInvalidField)
	}

	// The origin is the connection's: a page served from another allowed
	// origin gets a token for that origin, never for the portal's.
	o, err := client.Dial(ctx, url, client.Options{Origin: certsOtherOrigin})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	nonce := newNonce()
	auth, err := o.Authenticate(ctx, api.Authenticate{Filter: pick("Bob"), Challenge: nonce})
	auths++
	if err != nil {
		t.Fatalf("authenticate from %s: %v", certsOtherOrigin, err)
	}
	if _, err := signing.Verify(authToken(auth), certsOtherOrigin, nonce, roots); err != nil {
		t.Errorf("token from %s does not verify for it: %v", certsOtherOrigin, err)
	}
	if _, err := signing.Verify(authToken(auth), certsOrigin, nonce, roots); err == nil {
		t.Errorf("token from %s verifies for %s", certsOtherOrigin, certsOrigin)
	}

	// Every PIN request named its connection's origin.
	dialog.mu.Lock()
	for i, o := range dialog.origins {
		want := certsOrigin
		if i == len(dialog.origins)-1 {
			want = certsOtherOrigin
		}
		if o != want {
			t.Errorf("PIN dialog %d named origin %q, want %q", i, o, want)
		}
	}
	if len(dialog.origins) != signs+auths {
		t.Errorf("%d PIN dialogs, want %d (%d signatures, %d authentications)", len(dialog.origins), signs+auths, signs, auths)
	}
	dialog.wrong = true
	dialog.mu.Unlock()

	// A wrong PIN from the dialog: pin_incorrect, no signature, no PIN in
	// the message.
	for _, cn := range []string{"Samuel", "Carol"} {
		_, err := c.Sign(ctx, api.Sign{Filter: pick(cn), Data: base64.StdEncoding.EncodeToString(data)})
		if !hasCode(err, api.CodePinIncorrect) || strings.Contains(err.Error(), serveWrong) {
			t.Errorf("sign with %s and a wrong PIN: %v, want %s", cn, err, api.CodePinIncorrect)
		}
	}
	_, err = c.Authenticate(ctx, api.Authenticate{Filter: pick("Bob"), Challenge: newNonce()})
	if !hasCode(err, api.CodePinIncorrect) {
		t.Errorf("authenticate with a wrong PIN: %v, want %s", err, api.CodePinIncorrect)
	}
	// The wrong PIN did not leave the token logged in: the right one works.
	dialog.mu.Lock()
	dialog.wrong = false
	dialog.mu.Unlock()
	if _, err := c.Sign(ctx, api.Sign{Filter: pick("Samuel"), Data: base64.StdEncoding.EncodeToString(data)}); err != nil {
		t.Errorf("sign with the right PIN after wrong ones: %v", err)
	}

	// Headless (what serve runs today): certificates works, signing needs
	// the dialog and is refused.
	h, err := client.Dial(ctx, headlessURL, client.Options{Origin: certsOrigin})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if list, err := h.Certificates(ctx, nil); err != nil || len(list) != 4 {
		t.Errorf("headless certificates: %d, %v", len(list), err)
	}
	if _, err := h.Sign(ctx, api.Sign{Filter: pick("Samuel"), Data: base64.StdEncoding.EncodeToString(data)}); !hasCode(err, api.CodePromptUnavailable) {
		t.Errorf("headless sign: %v, want %s", err, api.CodePromptUnavailable)
	}
	if _, err := h.Authenticate(ctx, api.Authenticate{Filter: pick("Bob"), Challenge: newNonce()}); !hasCode(err, api.CodePromptUnavailable) {
		t.Errorf("headless authenticate: %v, want %s", err, api.CodePromptUnavailable)
	}

	// A module missing at the first request is tried again later: here a
	// configured path that appears (as a link to SoftHSM2) after it.
	late := filepath.Join(t.TempDir(), "liblate-pkcs11.so")
	lateSvc := newCertService(&config.Config{Modules: []string{late}}, prompt.Refuse{}, logger)
	lateSvc.retryLoad = 0
	if list, err := lateSvc.Certificates(ctx, "", &api.Certificates{}); err != nil || len(list.Certificates) != 0 {
		t.Errorf("certificates without a loadable module: %+v, %v; want an empty list", list, err)
	}
	if err := os.Symlink(module, late); err != nil {
		t.Fatal(err)
	}
	if list, err := lateSvc.Certificates(ctx, "", &api.Certificates{}); err != nil || len(list.Certificates) != 4 {
		t.Errorf("certificates once the module exists: %+v, %v; want 4", list, err)
	}
	if l := logBuf.String(); !strings.Contains(l, "module left out") || !strings.Contains(l, "module loaded") {
		t.Errorf("the log does not tell the module's absence and later load:\n%s", l)
	}

	// `cardwright serve` itself, with these tokens' module configured:
	// the hook in serve.go hands the service to the agent.
	dir := t.TempDir()
	cfgFile := testpki.WriteFile(t, dir, "cardwright.cfg", []byte("[pkcs11]\nmodule = "+module+"\n"))
	serveURL, _, _, serveLogs := startServe(t, "--config", cfgFile, "--listen", "127.0.0.1:0",
		"--journal", dir, "--allow-origin", certsOrigin)
	sc, err := client.Dial(ctx, serveURL, client.Options{Origin: certsOrigin})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if list, err := sc.Certificates(ctx, json.RawMessage(`{"op":"eq","param":"key.type","value":"ECC"}`)); err != nil || len(list) != 2 {
		t.Errorf("serve: certificates: %d, %v; want Bob's and Carol's", len(list), err)
	}
	if _, err := sc.Sign(ctx, api.Sign{Filter: pick("Samuel"), Data: base64.StdEncoding.EncodeToString(data)}); !hasCode(err, api.CodePromptUnavailable) {
		t.Errorf("serve: sign: %v, want %s", err, api.CodePromptUnavailable)
	}
	if _, err := sc.Authenticate(ctx, api.Authenticate{Filter: pick("Bob"), Challenge: newNonce()}); !hasCode(err, api.CodePromptUnavailable) {
		t.Errorf("serve: authenticate: %v, want %s", err, api.CodePromptUnavailable)
	}
	sc.Close()

	for _, p := range []string{servePIN, serveWrong, serveSO} {
		if strings.Contains(logBuf.String(), p) || strings.Contains(serveLogs(), p) {
			t.Fatal("a PIN is in the agent log")
		}
	}
}

// TestServeCertsFake: `cardwright serve --fake-runner` has no tokens and
// no certificate service; the three requests answer not_supported.
func TestServeCertsFake(t *testing.T) {
	url, _, _, _ := startServe(t, "--fake-runner", "--config", "/dev/null", "--listen", "127.0.0.1:0",
		"--journal", t.TempDir(), "--allow-origin", certsOrigin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Origin: certsOrigin})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Certificates(ctx, nil); !hasCode(err, api.CodeNotSupported) {
		t.Errorf("certificates: %v, want %s", err, api.CodeNotSupported)
	}
	if _, err := c.Sign(ctx, api.Sign{Data: "eA=="}); !hasCode(err, api.CodeNotSupported) {
		t.Errorf("sign: %v, want %s", err, api.CodeNotSupported)
	}
	if _, err := c.Authenticate(ctx, api.Authenticate{Challenge: "eA=="}); !hasCode(err, api.CodeNotSupported) {
		t.Errorf("authenticate: %v, want %s", err, api.CodeNotSupported)
	}
}

// keyIDOf is the key id (CKA_ID, upper-case hex) of the test subject's key.
func keyIDOf(cn string) string {
	id := map[string]byte{"Samuel": 0x01, "Bob": 0x02, "Carol": 0x03, "Dave": 0x01}[cn]
	return strings.ToUpper(hex.EncodeToString([]byte{id}))
}

func hasCode(err error, code api.Code) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Code == code
}

// startCertAgent serves an agent with certs as its certificate service on
// a loopback port and returns its WebSocket URL.
func startCertAgent(t *testing.T, certs agent.CertService, log *slog.Logger) string {
	t.Helper()
	j, _, err := journal.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := agent.New(agent.Config{AllowedOrigins: []string{certsOrigin, certsOtherOrigin}, Version: "test"},
		agent.Deps{Runner: &agenttest.FakeRunner{}, Journal: j, Certs: certs, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := agent.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln, nil) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
		j.Close()
	})
	return "ws://" + ln.Addr().String() + "/v1/ws"
}

// syncLog is a log sink safe for concurrent writes.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
