package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"strings"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// TestLocalCAArchive: a key-archival request is answered with a PKCS#12
// that opens with the returned password (and only with it), whose key is
// the certificate's and signs, whose certificate the CA issued for the
// request's subject, with the CA certificate as chain; each answer has its
// own key and password; the password never prints.
func TestLocalCAArchive(t *testing.T) {
	ca, err := OpenLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var ca2 Archiver = ca // LocalCA answers key-archival requests
	req := Request{KeyArchival: true, Application: "B", Template: "EncHardCodedValues",
		Subject: pkix.Name{CommonName: "EncHardCodedValues", SerialNumber: "CW-000042"}}
	a, err := ca2.Archive(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if a.Password.Len() < 20 {
		t.Fatalf("password of %d characters", a.Password.Len())
	}
	if s := fmt.Sprintf("%v %+v", a, a); strings.Contains(s, a.Password.Reveal()) {
		t.Fatal("the password prints")
	}
	if _, _, _, err := pkcs12.DecodeChain(a.PKCS12, "wrong"); err == nil {
		t.Fatal("the PKCS#12 opens with a wrong password")
	}
	key, cert, chain, err := pkcs12.DecodeChain(a.PKCS12, a.Password.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "EncHardCodedValues" || cert.Subject.SerialNumber != "CW-000042" {
		t.Errorf("subject %v", cert.Subject)
	}
	if len(chain) != 1 || !chain[0].Equal(ca.Certificate()) {
		t.Errorf("chain of %d certificates, want the CA's", len(chain))
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("certificate does not chain to the CA: %v", err)
	}
	signer := key.(crypto.Signer)
	if !signer.Public().(*ecdsa.PublicKey).Equal(cert.PublicKey) {
		t.Fatal("the PKCS#12's key is not its certificate's")
	}
	digest := sha256.Sum256([]byte("signed with the archived key"))
	sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil || !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatalf("signature does not verify: %v", err)
	}

	// Without a subject: the template, else the application label.
	b, err := ca.Archive(context.Background(), Request{KeyArchival: true, Application: "C"})
	if err != nil {
		t.Fatal(err)
	}
	_, cert2, _, err := pkcs12.DecodeChain(b.PKCS12, b.Password.Reveal())
	if err != nil {
		t.Fatalf("opening: %v", err)
	}
	if cert2.Subject.CommonName != "Application_C" {
		t.Fatalf("subject %v", cert2.Subject)
	}
	if b.Password.Equal(a.Password) || cert2.PublicKey.(*ecdsa.PublicKey).Equal(cert.PublicKey) {
		t.Error("two answers share a password or a key")
	}
	a.Password.Wipe()
	if !a.Password.IsZero() {
		t.Error("Wipe left the password")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ca.Archive(ctx, req); err != context.Canceled {
		t.Errorf("cancelled: %v", err)
	}
}
