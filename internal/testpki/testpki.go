// Package testpki holds helpers shared by tests: a test CA that issues
// certificates for given public keys, key generation by name, file
// writing and a SoftHSM2 token set-up. It does not import testing:
// failures go to a T, which *testing.T and *testing.B satisfy.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/p11/allowlist"
	"github.com/cardwright/cardwright/secret"
)

// T is the part of testing.TB the helpers use.
type T interface {
	Helper()
	Fatal(args ...any)
	Errorf(format string, args ...any)
}

// CA issues test certificates.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes a self-signed P-256 CA, "Example CA" of "Example company".
func NewCA(t T) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Example CA", Organization: []string{"Example company"}},
		NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{Cert: cert, Key: key}
}

// Issue certifies pub for subject CN cn (OUs Signers and Staff) with the
// given serial number, for digital signatures and client authentication.
func (ca *CA) Issue(t T, cn string, serial int64, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, OrganizationalUnit: []string{"Signers", "Staff"}},
		NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// GenKey generates a key of kind rsa1024, rsa2048, p256 or p384.
func GenKey(t T, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "rsa1024":
		k, err = rsa.GenerateKey(rand.Reader, 1024)
	case "rsa2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "p256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	default:
		err = fmt.Errorf("testpki: unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// WriteFile writes data to dir/name and returns that path.
func WriteFile(t T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// NoSecrets reports an error when one of the non-empty secrets shows in
// text.
func NoSecrets(t T, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("a secret shows in %q", text)
		}
	}
}

// SoftHSMConf writes, in dir, a SoftHSM2 configuration whose token
// directory is dir/tokens, and returns its path (for SOFTHSM2_CONF).
func SoftHSMConf(t T, dir string) string {
	t.Helper()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	return WriteFile(t, dir, "softhsm2.conf", []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"))
}

// SoftHSMSession loads module (allowed by name), initialises a token
// labelled label with the SO PIN so and user PIN pin, and returns the
// module, the token and a session on it logged in as the user.
func SoftHSMSession(t T, module string, so, pin secret.Value, label string) (*p11.Module, *p11.Token, *p11.Session) {
	t.Helper()
	m, err := p11.Load(module, allowlist.Modules{module}.Allows)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := m.InitTokenAndPIN(nil, so, pin, label)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Login(pin); err != nil {
		t.Fatal(err)
	}
	return m, tok, s
}
