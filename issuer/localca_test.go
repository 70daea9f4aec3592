package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func csr(t *testing.T, key crypto.Signer, cn string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestLocalCAIssuesAndPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := OpenLocalCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		key   crypto.Signer
		usage x509.KeyUsage
	}{
		{rsaKey, x509.KeyUsageKeyEncipherment},
		{ecKey, x509.KeyUsageKeyAgreement},
	} {
		der, chain, err := ca.Issue(context.Background(), Request{CSR: csr(t, tc.key, "Jane Doe")})
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if cert.Subject.CommonName != "Jane Doe" || cert.KeyUsage&tc.usage == 0 {
			t.Errorf("issued %v usage %b", cert.Subject, cert.KeyUsage)
		}
		if len(chain) != 1 {
			t.Fatalf("chain of %d", len(chain))
		}
		// Reopening the directory gives the same CA, whose certificate verifies the issued one.
		again, err := OpenLocalCA(dir)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(again.Certificate())
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("verifying issued certificate: %v", err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key file mode: %v %v", fi.Mode(), err)
	}
}

func TestLocalCARejectsBadRequests(t *testing.T) {
	ca, err := OpenLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := csr(t, key, "x")
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)-3] ^= 0xFF // inside the signature
	for name, der := range map[string][]byte{"garbage": []byte("not a csr"), "bad signature": tampered} {
		if _, _, err := ca.Issue(context.Background(), Request{CSR: der}); err == nil || !strings.Contains(err.Error(), "certificate request") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := ca.Issue(ctx, Request{CSR: good}); err == nil {
		t.Error("cancelled context: no error")
	}
}

func TestLocalCACorruptDirectory(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, CertFile), []byte("junk"), 0o644)
	os.WriteFile(filepath.Join(dir, KeyFile), []byte("junk"), 0o600)
	if _, err := OpenLocalCA(dir); err == nil || !strings.Contains(err.Error(), "not PEM") {
		t.Errorf("err = %v", err)
	}
}

// TestCheckLocalCA: the start-up check accepts what OpenLocalCA can open or
// create and refuses the rest, creating nothing.
func TestCheckLocalCA(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good")
	if _, err := OpenLocalCA(good); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other")
	if _, err := OpenLocalCA(other); err != nil {
		t.Fatal(err)
	}
	mixed := t.TempDir()
	copyFile(t, filepath.Join(good, CertFile), filepath.Join(mixed, CertFile))
	copyFile(t, filepath.Join(other, KeyFile), filepath.Join(mixed, KeyFile))
	keyOnly := t.TempDir()
	copyFile(t, filepath.Join(good, KeyFile), filepath.Join(keyOnly, KeyFile))
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("x"), 0o600)
	absent := filepath.Join(t.TempDir(), "absent")
	for _, tc := range []struct{ dir, want string }{
		{good, ""},
		{absent, ""},
		{t.TempDir(), ""},
		{mixed, "ca-key.pem is not the key of ca.pem"},
		{keyOnly, "ca-key.pem without ca.pem"},
		{file, "not a directory"},
	} {
		err := CheckLocalCA(tc.dir)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckLocalCA(%s) = %v, want %q", tc.dir, err, tc.want)
		}
		if tc.want != "" {
			if _, err := OpenLocalCA(tc.dir); err == nil {
				t.Errorf("OpenLocalCA(%s) opened what the check refuses", tc.dir)
			}
		}
	}
	if _, err := os.Stat(absent); err == nil {
		t.Error("the check created the directory")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
