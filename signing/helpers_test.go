package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/secret"
)

// testCA issues the test certificates.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pool *x509.CertPool
}

func newTestCA(t testing.TB, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{"Example company"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

var serial struct {
	sync.Mutex
	n int64
}

func (ca *testCA) issue(t testing.TB, cn string, pub crypto.PublicKey, eku ...x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	serial.Lock()
	serial.n++
	n := serial.n
	serial.Unlock()
	if eku == nil {
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(100 + n), Subject: pkix.Name{CommonName: cn, Organization: []string{"Example company"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: eku,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// keys are generated once per test binary: RSA generation is slow.
var keyCache sync.Map

func testKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	if k, ok := keyCache.Load(kind); ok {
		return k.(crypto.Signer)
	}
	var k crypto.Signer
	var err error
	switch kind {
	case "rsa2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "rsa3072":
		k, err = rsa.GenerateKey(rand.Reader, 3072)
	case "p256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "p521":
		k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	keyCache.Store(kind, k)
	return k
}

// Test PIN: distinct so a leak is easy to grep for.
var testPIN = secret.New("pin-sig-739146")

// pinPrompter answers every prompt with a fixed PIN (or error) and records
// the requests.
type pinPrompter struct {
	pin  secret.Value
	err  error
	mu   sync.Mutex
	reqs []prompt.Request
}

func (p *pinPrompter) Ask(_ context.Context, req prompt.Request) (prompt.Answer, error) {
	p.mu.Lock()
	p.reqs = append(p.reqs, req)
	p.mu.Unlock()
	if p.err != nil {
		return prompt.Answer{}, p.err
	}
	return prompt.Answer{PIN: secret.FromBytes(p.pin.Bytes())}, nil
}

// choosingPrompter also picks the candidate with the given CN.
type choosingPrompter struct {
	pinPrompter
	cn      string
	offered int
}

func (p *choosingPrompter) Choose(_ context.Context, _ prompt.Kind, cands []*Candidate) (*Candidate, error) {
	p.offered = len(cands)
	for _, c := range cands {
		if c.Cert.Subject.CommonName == p.cn {
			return c, nil
		}
	}
	return nil, prompt.ErrRefused
}

// x509Alg is the crypto/x509 name of an algorithm: the test oracle.
func x509Alg(a Algorithm) x509.SignatureAlgorithm {
	return map[Algorithm]x509.SignatureAlgorithm{
		RS256: x509.SHA256WithRSA, RS384: x509.SHA384WithRSA, RS512: x509.SHA512WithRSA,
		PS256: x509.SHA256WithRSAPSS, PS384: x509.SHA384WithRSAPSS, PS512: x509.SHA512WithRSAPSS,
		ES256: x509.ECDSAWithSHA256, ES384: x509.ECDSAWithSHA384, ES512: x509.ECDSAWithSHA512,
	}[a]
}

// nonce returns a fresh random challenge (32 bytes, base64).
func nonce(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func ecPub(c *x509.Certificate) *ecdsa.PublicKey { return c.PublicKey.(*ecdsa.PublicKey) }

var wrongPINValue = secret.New("pin-wrong-881204")
