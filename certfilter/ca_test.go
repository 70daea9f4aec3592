package certfilter

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"sync"
	"testing"
	"time"
)

// A test CA issuing certificates with the subjects, keys and usages the
// tests need. Keys are generated once per process.

var (
	oidEmail = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidUID   = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
)

var keyCache sync.Map // kind → crypto.Signer

func testKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	if k, ok := keyCache.Load(kind); ok {
		return k.(crypto.Signer)
	}
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
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := keyCache.LoadOrStore(kind, k)
	return k2.(crypto.Signer)
}

type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newTestCA(t testing.TB, subject pkix.Name) *testCA {
	t.Helper()
	key := testKey(t, "p384")
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               subject,
		NotBefore:             time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

type certSpec struct {
	subject pkix.Name
	key     string // testKey kind
	serial  int64
	ku      x509.KeyUsage
	eku     []x509.ExtKeyUsage
	ekuOIDs []asn1.ObjectIdentifier
	emails  []string // subjectAltName rfc822Name
}

func (ca *testCA) issue(t testing.TB, s certSpec) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:       big.NewInt(s.serial),
		Subject:            s.subject,
		NotBefore:          time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:           time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:           s.ku,
		ExtKeyUsage:        s.eku,
		UnknownExtKeyUsage: s.ekuOIDs,
		EmailAddresses:     s.emails,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, testKey(t, s.key).Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
