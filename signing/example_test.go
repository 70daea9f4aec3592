package signing_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/secret"
	"github.com/cardwright/cardwright/signing"
)

type fixedPIN string

func (p fixedPIN) Ask(context.Context, prompt.Request) (prompt.Answer, error) {
	return prompt.Answer{PIN: secret.New(string(p))}, nil
}

// The agent answers a challenge; the portal verifies the token for its own
// origin and nonce. The same token is worthless to another site.
func ExampleVerify() {
	// A CA and a user certificate with a software key.
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Example CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	userKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	userDER, _ := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject: pkix.Name{CommonName: "Alice"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		caCert, userKey.Public(), caKey)
	userCert, _ := x509.ParseCertificate(userDER)
	store := &signing.MemStore{Keys: []signing.MemKey{{Cert: userCert, Key: userKey, PIN: secret.New("1234")}}}

	// Agent side: the origin comes from the connection, the nonce from the page.
	nonce := "8Qm1w3b0G3nqv7kqjXW1Zc0yVq2pN5s8Hf4Ld6Tr9aE="
	tok, err := signing.Authenticate(context.Background(), store, fixedPIN("1234"),
		signing.AuthRequest{Origin: "https://portal.example.com", Nonce: nonce})
	if err != nil {
		fmt.Println(err)
		return
	}

	// Portal side.
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	cert, err := signing.Verify(tok.Marshal(), "https://portal.example.com", nonce, roots)
	fmt.Println(cert.Subject.CommonName, err)
	_, err = signing.Verify(tok.Marshal(), "https://elsewhere.example.com", nonce, roots)
	fmt.Println(errors.Is(err, signing.ErrBadSignature))
	// Output:
	// Alice <nil>
	// true
}
