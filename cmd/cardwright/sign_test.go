package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/internal/testpki"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/secret"
	"github.com/cardwright/cardwright/signing"
)

// signRun runs the sign command in-process with pin as $CARDWRIGHT_PIN
// ("" unset) and stdin as standard input.
func signRun(t *testing.T, pin, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cmdEnv{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(k string) string {
		if k == pinEnv {
			return pin
		}
		return ""
	}}
	code = runMain(context.Background(), env, append([]string{"sign"}, args...))
	return code, out.String(), errb.String()
}

func TestSignUsage(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.WriteFile(data, []byte("x"), 0o644)
	badFilter := filepath.Join(dir, "bad.json")
	os.WriteFile(badFilter, []byte(`{"op":"xor"}`), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "exactly one of"},
		{[]string{"--data", data, "--digest", "00"}, "exactly one of"},
		{[]string{"--data", data, "--origin", "https://a.example"}, "exactly one of"},
		{[]string{"--data", data, "extra"}, "unexpected argument"},
		{[]string{"--data", filepath.Join(dir, "missing")}, "reading the data"},
		{[]string{"--digest", "zz", "--alg", "RS256"}, "not hex"},
		{[]string{"--digest", "0011", "--alg", "RS256"}, "digest of 2 bytes, want 32"},
		{[]string{"--digest", strings.Repeat("00", 32)}, "needs an algorithm"},
		{[]string{"--data", data, "--alg", "rs256"}, "unknown algorithm"},
		{[]string{"--data", data, "--cert-id", "xyz"}, "not hex"},
		{[]string{"--data", data, "--filter", badFilter}, "bad.json:1:"},
		{[]string{"--origin", "http://portal.example.com", "--nonce", strings.Repeat("A", 44)}, "plain http is allowed for localhost only"},
		{[]string{"--origin", "https://portal.example.com", "--nonce", "AAAA"}, "at least 32"},
		{[]string{"--bogus"}, "flag provided but not defined"},
	} {
		code, out, errs := signRun(t, "", "", tc.args...)
		if code != exitUsage || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, out, errs, tc.want)
		}
	}
	if code, out, errs := signRun(t, "", "", "-h"); code != exitOK || !strings.Contains(out, "CARDWRIGHT_PIN") || errs != "" {
		t.Errorf("-h: exit %d\n%s%s", code, out, errs)
	}
}

// TestSignSoftHSM runs the sign command against SoftHSM2 tokens holding
// LocalCA certificates, in a child process with a token directory of its
// own (SoftHSM2 reads its configuration once per process).
func TestSignSoftHSM(t *testing.T) {
	module := os.Getenv("CARDWRIGHT_SIGN_TEST_MODULE")
	if module == "" {
		s := stacktest.Require(t)
		module = s.Get(t, "SOFTHSM_MODULE")
		conf := testpki.SoftHSMConf(t, t.TempDir())
		cmd := exec.Command(os.Args[0], "-test.run=^TestSignSoftHSM$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "CARDWRIGHT_SIGN_TEST_MODULE="+module, "SOFTHSM2_CONF="+conf)
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestSignSoftHSM")) {
			t.Fatalf("child test: %v\n%s", err, out)
		}
		t.Logf("child test:\n%s", out)
		return
	}

	so, pin := secret.New("so-sign-cli-61734"), secret.New("pin-sign-cli-90551")
	_, _, s := testpki.SoftHSMSession(t, module, so, pin, "sign-cli")
	ca, err := issuer.OpenLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	certs := map[string]*x509.Certificate{}
	for _, k := range []struct {
		cn   string
		spec p11.KeySpec
		id   []byte
	}{{"Grace RSA", p11.RSA2048, []byte{0x0A}}, {"Grace EC", p11.ECP256, []byte{0x0E, 0xC0}}} {
		key, err := s.GenerateKeyPair(k.spec, k.cn, k.id)
		if err != nil {
			t.Fatal(err)
		}
		csr, err := key.CertificateRequest(&x509.CertificateRequest{Subject: pkix.Name{CommonName: k.cn}})
		if err != nil {
			t.Fatal(err)
		}
		der, _, err := ca.Issue(context.Background(), issuer.Request{CSR: csr})
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := x509.ParseCertificate(der)
		if _, err := s.WriteCertificate(cert, k.cn, key.ID); err != nil {
			t.Fatal(err)
		}
		certs[k.cn] = cert
	}
	s.Close()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "empty.cfg")
	os.WriteFile(cfg, nil, 0o644)
	dataFile := filepath.Join(dir, "doc.txt")
	data := []byte("signed by the CLI\n")
	os.WriteFile(dataFile, data, 0o644)
	rsaFilter := filepath.Join(dir, "rsa.json")
	os.WriteFile(rsaFilter, []byte(`{"op":"eq","param":"key.type","value":"RSA"}`), 0o644)
	base := []string{"--config", cfg, "--module", module}
	noPIN := func(t *testing.T, text string) {
		t.Helper()
		for _, v := range []secret.Value{pin, so} {
			if strings.Contains(text, v.Reveal()) {
				t.Errorf("a PIN in the output:\n%s", text)
			}
		}
	}

	for _, tc := range []struct {
		name  string
		args  []string
		cn    string
		alg   x509.SignatureAlgorithm
		stdin bool // PIN on standard input instead of $CARDWRIGHT_PIN
	}{
		{"filter data", []string{"--filter", rsaFilter, "--data", dataFile}, "Grace RSA", x509.SHA256WithRSA, false},
		{"filter PS512", []string{"--filter", rsaFilter, "--data", dataFile, "--alg", "PS512"}, "Grace RSA", x509.SHA512WithRSAPSS, false},
		{"cert id", []string{"--cert-id", "0EC0", "--data", dataFile, "--alg", "ES384"}, "Grace EC", x509.ECDSAWithSHA384, true},
		{"digest", []string{"--cert-id", "0e:c0", "--digest", sha256Hex(data), "--alg", "ES256"}, "Grace EC", x509.ECDSAWithSHA256, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, stdin := pin.Reveal(), ""
			if tc.stdin {
				env, stdin = "", pin.Reveal()+"\n"
			}
			code, out, errs := signRun(t, env, stdin, append(base, tc.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s", code, errs)
			}
			sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
			if err != nil {
				t.Fatalf("stdout %q: %v", out, err)
			}
			if err := certs[tc.cn].CheckSignature(tc.alg, data, sig); err != nil {
				t.Errorf("signature does not verify with %s: %v", tc.cn, err)
			}
			noPIN(t, out+errs)
		})
	}

	t.Run("authenticate", func(t *testing.T) {
		b := make([]byte, 32)
		rand.Read(b)
		nonce := base64.RawURLEncoding.EncodeToString(b)
		const origin = "https://portal.example.com"
		code, out, errs := signRun(t, pin.Reveal(), "", append(base, "--cert-id", "0A", "--origin", origin, "--nonce", nonce)...)
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, errs)
		}
		roots := x509.NewCertPool()
		roots.AddCert(ca.Certificate())
		cert, err := signing.Verify([]byte(out), origin, nonce, roots)
		if err != nil || !cert.Equal(certs["Grace RSA"]) {
			t.Errorf("Verify: %v\n%s", err, out)
		}
		if _, err := signing.Verify([]byte(out), "https://other.example.com", nonce, roots); !errors.Is(err, signing.ErrBadSignature) {
			t.Errorf("other origin: %v", err)
		}
		noPIN(t, out+errs)
	})

	for _, tc := range []struct {
		name, pin string
		args      []string
		want      string
	}{
		{"wrong PIN", "pin-sign-cli-wrong-8", []string{"--cert-id", "0A", "--data", dataFile}, "pin_incorrect: "},
		{"no PIN", "", []string{"--cert-id", "0A", "--data", dataFile}, "prompt_refused: "},
		{"ambiguous", pin.Reveal(), []string{"--data", dataFile}, "card_ambiguous: "},
		{"no match", pin.Reveal(), []string{"--cert-id", "FF", "--data", dataFile}, "card_not_found: "},
		{"wrong key type", pin.Reveal(), []string{"--filter", rsaFilter, "--data", dataFile, "--alg", "ES256"}, "card_not_found: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := signRun(t, tc.pin, "", append(base, tc.args...)...)
			if code != exitFailure || out != "" || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant 1 and %q", code, out, errs, tc.want)
			}
			if tc.name == "ambiguous" && (!strings.Contains(errs, "Grace RSA") || !strings.Contains(errs, "Grace EC")) {
				t.Errorf("ambiguous: the matches are not listed:\n%s", errs)
			}
			noPIN(t, out+errs)
			if strings.Contains(errs, "pin-sign-cli-wrong-8") {
				t.Errorf("the wrong PIN shows:\n%s", errs)
			}
		})
	}
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
