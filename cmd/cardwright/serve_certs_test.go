package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
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
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/secret"
	"github.com/cardwright/cardwright/signing"
)

const certsOrigin = "https://portal.example"

// pinDialog stands in for the tray's PIN dialog (not written yet): it
// answers with pin, or with a wrong PIN while wrong is set, and records the
// origin each request names. Each answer is a fresh value: the signer
// wipes a PIN after use.
type pinDialog struct {
	pin string

	mu      sync.Mutex
	wrong   bool
	origins []string
}

func (d *pinDialog) PIN(_ context.Context, req signing.PINRequest) (secret.Value, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.origins = append(d.origins, req.Origin)
	if d.wrong {
		return secret.New("00000000"), nil
	}
	return secret.New(d.pin), nil
}

// TestServeCertsSoftHSM runs certificates, sign and authenticate over the
// agent's real WebSocket with the certificate service `cardwright serve`
// wires (signing over p11store over SoftHSM2), on a token holding an RSA and
// an EC key with certificates from a test CA. SoftHSM2 reads SOFTHSM2_CONF
// once per process, so the work runs in a child test process.
func TestServeCertsSoftHSM(t *testing.T) {
	module := os.Getenv("CARDWRIGHT_SERVECERTS_TEST_MODULE")
	if module == "" {
		s := stacktest.Require(t)
		module = s.Get(t, "SOFTHSM_MODULE")
		dir := t.TempDir()
		tokens := filepath.Join(dir, "tokens")
		if err := os.Mkdir(tokens, 0o700); err != nil {
			t.Fatal(err)
		}
		conf := writeFile(t, dir, "softhsm2.conf", []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"))
		cmd := exec.Command(os.Args[0], "-test.run=^TestServeCertsSoftHSM$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "CARDWRIGHT_SERVECERTS_TEST_MODULE="+module, "SOFTHSM2_CONF="+conf)
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestServeCertsSoftHSM")) {
			t.Fatalf("child test: %v\n%s", err, out)
		}
		t.Logf("child test:\n%s", out)
		return
	}

	// A token with Samuel's RSA key (CKA_ID 01) and Bob's P-256 key (02).
	m, err := p11.Load(module, p11.AllowList{module}.Allows)
	if err != nil {
		t.Fatal(err)
	}
	const pinText = "pin-serve-7730"
	tok, err := m.InitTokenAndPIN(nil, secret.New("so-serve-5521"), secret.New(pinText), "serve-certs")
	if err != nil {
		t.Fatal(err)
	}
	s, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Login(secret.New(pinText)); err != nil {
		t.Fatal(err)
	}
	ca := newCertsCA(t)
	certs := map[string]*x509.Certificate{}
	for i, k := range []struct {
		cn   string
		spec p11.KeySpec
		id   []byte
	}{{"Samuel", p11.RSA2048, []byte{0x01}}, {"Bob", p11.ECP256, []byte{0x02}}} {
		key, err := s.GenerateKeyPair(k.spec, k.cn, k.id)
		if err != nil {
			t.Fatal(err)
		}
		certs[k.cn] = ca.issue(t, k.cn, int64(200+i), key.Public())
		if _, err := s.WriteCertificate(certs[k.cn], k.cn, k.id); err != nil {
			t.Fatal(err)
		}
	}
	s.Logout()
	s.Close()

	// The agent with the service serve wires, the PIN dialog stand-in and,
	// for the headless case, the prompter serve really uses.
	var logBuf syncLog
	logger := slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dialog := &pinDialog{pin: pinText}
	cfg := &config.Config{Modules: []string{module}}
	svc := newCertService(cfg, runner.Refuse{}, logger)
	svc.prompter = dialog
	url := startCertAgent(t, svc, logger)
	headlessURL := startCertAgent(t, newCertService(cfg, runner.Refuse{}, logger), logger)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Origin: certsOrigin})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// certificates: a filter selects exactly the expected set.
	for _, tc := range []struct {
		filter string
		want   string
	}{
		{"", "Bob,Samuel"},
		{`{"op":"eq","param":"key.type","value":"RSA"}`, "Samuel"},
		{`{"op":"eq","param":"key.id","value":"02"}`, "Bob"},
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
			cns = append(cns, cert.Subject.CommonName)
		}
		sort.Strings(cns)
		if got := strings.Join(cns, ","); got != tc.want {
			t.Errorf("certificates %s = %q, want %q", tc.filter, got, tc.want)
		}
	}
	if _, err := c.Certificates(ctx, json.RawMessage(`{"op":"nope"}`)); err == nil {
		t.Error("a malformed filter was accepted")
	}

	// sign: the signature verifies with the certificate that comes back.
	data := []byte("document to sign")
	for _, tc := range []struct {
		cn, id, alg string
		sigAlg      x509.SignatureAlgorithm
	}{
		{"Samuel", "01", "RS256", x509.SHA256WithRSA},
		{"Samuel", "01", "PS256", x509.SHA256WithRSAPSS},
		{"Bob", "02", "ES256", x509.ECDSAWithSHA256},
		{"Bob", "02", "", x509.ECDSAWithSHA256}, // the key's default
	} {
		sig, err := c.Sign(ctx, api.Sign{Filter: json.RawMessage(`{"op":"eq","param":"key.id","value":"` + tc.id + `"}`),
			Data: base64.StdEncoding.EncodeToString(data), Algorithm: tc.alg})
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
	// Two certificates match: refused, nothing signed.
	if _, err := c.Sign(ctx, api.Sign{Data: base64.StdEncoding.EncodeToString(data)}); !hasCode(err, api.CodeCardAmbiguous) {
		t.Errorf("sign without a filter over two certificates: %v, want %s", err, api.CodeCardAmbiguous)
	}

	// authenticate: the token verifies for this origin and nonce only.
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	nonceBytes := make([]byte, 32)
	rand.Read(nonceBytes)
	nonce := base64.StdEncoding.EncodeToString(nonceBytes)
	auth, err := c.Authenticate(ctx, api.Authenticate{Filter: json.RawMessage(`{"op":"eq","param":"key.id","value":"02"}`), Challenge: nonce})
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	token, _ := json.Marshal(map[string]string{"format": auth.Format, "algorithm": auth.Algorithm,
		"certificate": auth.Certificate, "signature": auth.Signature})
	if cert, err := signing.Verify(token, certsOrigin, nonce, roots); err != nil || cert.Subject.CommonName != "Bob" {
		t.Fatalf("the authentication token does not verify for %s: %v", certsOrigin, err)
	}
	if _, err := signing.Verify(token, "https://evil.example", nonce, roots); err == nil {
		t.Fatal("the authentication token verifies for another origin")
	}
	other := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	if _, err := signing.Verify(token, certsOrigin, other, roots); err == nil {
		t.Fatal("the authentication token verifies for another nonce")
	}

	// Every PIN request named the connection's origin.
	dialog.mu.Lock()
	for _, o := range dialog.origins {
		if o != certsOrigin {
			t.Errorf("a PIN dialog named origin %q, want %q", o, certsOrigin)
		}
	}
	if len(dialog.origins) != 5 {
		t.Errorf("%d PIN dialogs, want 5 (4 signatures, 1 authentication)", len(dialog.origins))
	}
	dialog.wrong = true
	dialog.mu.Unlock()

	// A wrong PIN from the dialog: pin_incorrect, no signature.
	if _, err := c.Sign(ctx, api.Sign{Filter: json.RawMessage(`{"op":"eq","param":"key.id","value":"01"}`),
		Data: base64.StdEncoding.EncodeToString(data)}); !hasCode(err, api.CodePinIncorrect) {
		t.Errorf("sign with a wrong PIN: %v, want %s", err, api.CodePinIncorrect)
	}

	// Headless (what serve runs today): certificates works, signing needs
	// the dialog and is refused.
	h, err := client.Dial(ctx, headlessURL, client.Options{Origin: certsOrigin})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if list, err := h.Certificates(ctx, nil); err != nil || len(list) != 2 {
		t.Errorf("headless certificates: %d, %v", len(list), err)
	}
	if _, err := h.Sign(ctx, api.Sign{Filter: json.RawMessage(`{"op":"eq","param":"key.id","value":"01"}`),
		Data: base64.StdEncoding.EncodeToString(data)}); !hasCode(err, api.CodePromptUnavailable) {
		t.Errorf("headless sign: %v, want %s", err, api.CodePromptUnavailable)
	}
	if _, err := h.Authenticate(ctx, api.Authenticate{Filter: json.RawMessage(`{"op":"eq","param":"key.id","value":"02"}`), Challenge: nonce}); !hasCode(err, api.CodePromptUnavailable) {
		t.Errorf("headless authenticate: %v, want %s", err, api.CodePromptUnavailable)
	}

	if strings.Contains(logBuf.String(), pinText) {
		t.Fatal("the PIN is in the agent log")
	}
}

func hasCode(err error, code api.Code) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Code == code
}

// startCertAgent serves an agent with certs as its certificate service on
// a loopback port and returns its WebSocket URL.
func startCertAgent(t *testing.T, certs agent.CertService, log *slog.Logger) string {
	t.Helper()
	j, _, err := agent.OpenJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := agent.New(agent.Config{AllowedOrigins: []string{certsOrigin}, Headless: true, Version: "test"},
		agent.Deps{Runner: &agent.FakeRunner{}, Journal: j, Certs: certs, Logger: log})
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
