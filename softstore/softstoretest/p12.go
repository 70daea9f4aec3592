// Package softstoretest makes PKCS#12 fixtures for soft-token tests.
package softstoretest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// P12 is a fixture: the PKCS#12 and what is inside it.
type P12 struct {
	Data []byte
	Key  *ecdsa.PrivateKey
	Cert *x509.Certificate
}

// NewP12 makes a P-256 key, a self-signed certificate for cn (digital
// signature, client authentication) and their PKCS#12 under passphrase,
// encoded as NSS and OpenSSL 3 read it by default (Modern2023: PBES2,
// AES-256-CBC, PBKDF2-SHA-256). It panics on failure: fixtures only.
func NewP12(cn, passphrase string) *P12 {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"cardwright test"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	data, err := pkcs12.Modern2023.Encode(key, cert, nil, passphrase)
	if err != nil {
		panic(err)
	}
	return &P12{Data: data, Key: key, Cert: cert}
}
