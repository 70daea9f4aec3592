package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/internal/stacktest"
	"software.sslmate.com/src/go-pkcs12"
)

// SoftHSM2 reads SOFTHSM2_CONF once per process, so each `cardwright token`
// run here is a child process (this test binary re-executed) with the
// test's own token directory.
func TestTokenHelperProcess(t *testing.T) {
	if os.Getenv("CARDWRIGHT_TOKEN_TEST_CHILD") != "1" {
		t.Skip("helper process for the token tests")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(runMain(context.Background(), &cmdEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, args))
}

type tokenCLI struct {
	t      *testing.T
	module string
	conf   string
	env    map[string]string
	all    bytes.Buffer // every output, to check for secrets
}

func newTokenCLI(t *testing.T) *tokenCLI {
	s := stacktest.Require(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tokenCLI{t: t, module: s.Get(t, "SOFTHSM_MODULE"), conf: conf, env: map[string]string{}}
}

// run runs `cardwright token args…` with --module, the environment set in
// c.env, and stdin from /dev/null.
func (c *tokenCLI) run(args ...string) (string, string, int) {
	c.t.Helper()
	full := append([]string{"-test.run=^TestTokenHelperProcess$", "--", "token", args[0], "--module", c.module}, args[1:]...)
	cmd := exec.Command(os.Args[0], full...)
	cmd.Env = append(os.Environ(), "CARDWRIGHT_TOKEN_TEST_CHILD=1", "SOFTHSM2_CONF="+c.conf)
	for k, v := range c.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	c.all.WriteString(out.String() + errb.String())
	return out.String(), errb.String(), code
}

// runRaw runs `cardwright args…` in a child with the test's SoftHSM2
// configuration and extra environment, without adding --module.
func (c *tokenCLI) runRaw(extraEnv []string, args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestTokenHelperProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "CARDWRIGHT_TOKEN_TEST_CHILD=1", "SOFTHSM2_CONF="+c.conf, "CARDWRIGHT_PKCS11_MODULE=")
	cmd.Env = append(cmd.Env, extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

// ok runs and wants exit 0.
func (c *tokenCLI) ok(args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("cardwright token %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func TestTokenCLIUsage(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.cfg")
	os.WriteFile(empty, nil, 0o600)
	t.Setenv("CARDWRIGHT_CONFIG", empty) // no [pkcs11] module
	var out, errb bytes.Buffer
	env := &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	for _, args := range [][]string{
		{"token"},
		{"token", "frobnicate", "--module", "/x.so"},
		{"token", "list"},
		{"token", "list", "--bogus"},
	} {
		errb.Reset()
		if code := runMain(context.Background(), env, args); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, errb.String())
		}
	}
	if code := runMain(context.Background(), env, []string{"token", "list", "--module", "/nonexistent/libx.so"}); code != exitFailure ||
		!strings.Contains(errb.String(), "/nonexistent/libx.so") {
		t.Errorf("missing module: exit %d, %q", code, errb.String())
	}
}

func TestTokenCLI(t *testing.T) {
	c := newTokenCLI(t)
	const so, pin, pin2, pin3, puk2, p12pw = "so-cli-81723", "pin-cli-44120", "pin-cli-55231", "pin-cli-66342", "so-cli-97531", "p12-cli-3141"
	defer func() {
		for _, s := range []string{so, pin, pin2, pin3, puk2, p12pw} {
			if strings.Contains(c.all.String(), s) {
				t.Errorf("secret %q shows in the output", s)
			}
		}
	}()

	// No PIN in the environment and no terminal: a clear refusal.
	_, errs, code := c.run("init", "--label", "cli")
	if code != exitFailure || !strings.Contains(errs, "CARDWRIGHT_SO_PIN") {
		t.Fatalf("init without a PIN: exit %d, %q", code, errs)
	}
	c.env["CARDWRIGHT_SO_PIN"], c.env["CARDWRIGHT_PIN"] = so, pin
	if out := c.ok("init", "--label", "cli"); !strings.Contains(out, `initialised token "cli"`) {
		t.Errorf("init: %q", out)
	}
	if out := c.ok("list"); !strings.Contains(out, "cli") || !strings.Contains(out, "initialised") || !strings.Contains(out, "empty") {
		t.Errorf("list: %q", out)
	}
	if out := c.ok("info", "--token", "cli"); !strings.Contains(out, "label:        cli") || !strings.Contains(out, "USER_PIN_INITIALIZED") {
		t.Errorf("info: %q", out)
	}
	if out := c.ok("keygen", "--type", "EC-P256", "--label", "auth", "--id", "a1"); !strings.Contains(out, "id A1") {
		t.Errorf("keygen: %q", out)
	}
	dir := t.TempDir()
	csrFile := filepath.Join(dir, "req.pem")
	c.ok("csr", "--id", "A1", "--subject", "CN=Jane Doe,O=Example,C=DE", "--out", csrFile)
	b, _ := os.ReadFile(csrFile)
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("csr file: %q", b)
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil || csr.CheckSignature() != nil || csr.Subject.CommonName != "Jane Doe" {
		t.Fatalf("csr: %v, %v", csr, err)
	}

	// A test CA issues the certificate; write-cert links it to key A1.
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CLI CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: csr.Subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}, caCert, csr.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(dir, "cert.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	if out := c.ok("write-cert", "--cert", certFile); !strings.Contains(out, `"Jane Doe", id A1`) {
		t.Errorf("write-cert: %q", out)
	}
	if out := c.ok("find", "CKO_CERTIFICATE,CKA_ID,HEX,A1"); !strings.Contains(out, "CKO_CERTIFICATE  Jane Doe") {
		t.Errorf("find certificate: %q", out)
	}

	// PKCS#12 import.
	p12Key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p12DER, _ := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "Imported"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}, caCert, p12Key.Public(), caKey)
	p12Cert, _ := x509.ParseCertificate(p12DER)
	pfx, err := pkcs12.Modern.Encode(p12Key, p12Cert, []*x509.Certificate{caCert}, p12pw)
	if err != nil {
		t.Fatal(err)
	}
	p12File := filepath.Join(dir, "id.p12")
	os.WriteFile(p12File, pfx, 0o600)
	c.env["CARDWRIGHT_P12_PASSWORD"] = p12pw
	if out := c.ok("import-p12", "--file", p12File, "--label", "imported"); !strings.Contains(out, "and 1 CA certificates") {
		t.Errorf("import-p12: %q", out)
	}
	if out := c.ok("find", "--login", "CKO_PRIVATE_KEY"); strings.Count(out, "CKO_PRIVATE_KEY") != 2 {
		t.Errorf("find private keys: %q", out)
	}
	if out := c.ok("find"); strings.Contains(out, "CKO_PRIVATE_KEY") {
		t.Errorf("private keys seen without login: %q", out)
	}

	// PINs: wrong PIN, change, unblock with the PUK, change the PUK.
	c.env["CARDWRIGHT_PIN"] = "wrong-pin-000"
	_, errs, code = c.run("find", "--login")
	if code != exitFailure || !strings.Contains(errs, "CKR_PIN_INCORRECT") {
		t.Errorf("wrong PIN: exit %d, %q", code, errs)
	}
	c.env["CARDWRIGHT_PIN"], c.env["CARDWRIGHT_NEW_PIN"] = pin, pin2
	c.ok("set-pin")
	c.env["CARDWRIGHT_PIN"], c.env["CARDWRIGHT_NEW_PIN"] = "", pin3
	c.ok("set-pin", "--unblock")
	c.env["CARDWRIGHT_NEW_SO_PIN"] = puk2
	c.ok("set-pin", "--so")
	c.env["CARDWRIGHT_SO_PIN"] = so // the old PUK no longer works
	if _, errs, code := c.run("set-pin", "--unblock"); code != exitFailure || !strings.Contains(errs, "SO PIN") {
		t.Errorf("old PUK: exit %d, %q", code, errs)
	}
	c.env["CARDWRIGHT_PIN"] = pin3
	if out := c.ok("find", "--login", "--destroy", ",CKA_LABEL,STRING,imported"); !strings.Contains(out, "destroyed 3 objects") {
		t.Errorf("find --destroy: %q", out)
	}
	if _, _, code := c.run("erase"); code != exitUsage {
		t.Errorf("erase without --yes: exit %d", code)
	}
	if out := c.ok("erase", "--yes"); !strings.Contains(out, "erased 4 objects") {
		t.Errorf("erase: %q", out)
	}
	if out := c.ok("find", "--login"); strings.Count(out, "\n") != 1 {
		t.Errorf("objects after erase: %q", out)
	}
}

// TestTokenConfiguredModule: without --module, `cardwright token` uses the
// configuration's [pkcs11] module when it names one — the file of --config
// or of $CARDWRIGHT_CONFIG — and asks for --module when it names several.
func TestTokenConfiguredModule(t *testing.T) {
	c := newTokenCLI(t)
	dir := t.TempDir()
	one := filepath.Join(dir, "one.cfg")
	two := filepath.Join(dir, "two.cfg")
	os.WriteFile(one, []byte("[pkcs11]\nmodule = "+c.module+"\n"), 0o600)
	os.WriteFile(two, []byte("[pkcs11]\nmodule = "+c.module+"\nmodule = /usr/lib/other-pkcs11.so\n"), 0o600)

	c.env["CARDWRIGHT_SO_PIN"], c.env["CARDWRIGHT_PIN"] = "so-cfg-1234", "pin-cfg-5678"
	c.ok("init", "--label", "fromcfg")

	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"--config", nil, []string{"token", "list", "--config", one}},
		{"$CARDWRIGHT_CONFIG", []string{"CARDWRIGHT_CONFIG=" + one}, []string{"token", "list"}},
		{"--config wins over $CARDWRIGHT_CONFIG", []string{"CARDWRIGHT_CONFIG=" + two}, []string{"token", "list", "--config", one}},
	} {
		out, errs, code := c.runRaw(tc.env, tc.args...)
		if code != exitOK || !strings.Contains(out, "fromcfg") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want the token fromcfg listed", tc.name, code, out, errs)
		}
	}

	_, errs, code := c.runRaw([]string{"CARDWRIGHT_CONFIG=" + two}, "token", "list")
	if code != exitUsage || !strings.Contains(errs, "2 PKCS#11 modules") || !strings.Contains(errs, c.module) || !strings.Contains(errs, "--module") {
		t.Errorf("two modules: exit %d, %q; want 2 naming both and --module", code, errs)
	}
	_, errs, code = c.runRaw(nil, "token", "list", "--config", filepath.Join(dir, "missing.cfg"))
	if code != exitFailure || !strings.Contains(errs, "missing.cfg") {
		t.Errorf("missing --config: exit %d, %q", code, errs)
	}
	// --module still wins over the configuration.
	if out, errs, code := c.runRaw([]string{"CARDWRIGHT_CONFIG=" + two}, "token", "list", "--module", c.module); code != exitOK || !strings.Contains(out, "fromcfg") {
		t.Errorf("--module with two configured: exit %d, %q %q", code, out, errs)
	}
}
