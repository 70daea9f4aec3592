// Package issuer answers certificate requests made during an encoding job.
//
// In production the portal issues certificates (the agent forwards each
// PKCS#10 request over the WebSocket). For demos, tests and offline stations,
// LocalCA is a small certificate authority kept in a directory: it signs
// every request it is given, with the subject of the request, for a year.
// It is a test CA — nothing here checks who asked. It also answers
// key-archival requests (Archiver): it makes the key itself and returns it
// with its certificate as a PKCS#12.
package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/cardwright/cardwright/secret"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Request is one certificate request of a job.
type Request struct {
	// CSR is the DER PKCS#10 request (RFC 2986), signed by the card's key.
	CSR []byte
	// Application names the description's [Application_X] section, for
	// issuers that pick a certificate template by it.
	Application string
	// Template is that application's CertTempl: the certificate template
	// the portal issues with.
	Template string
	// KeyArchival marks a key-archival request (KeyArchivalRequest,
	// spec/dsc.md): the issuer makes the key itself, archives it and
	// answers with a PKCS#12 (Archiver.Archive). CSR is then empty.
	KeyArchival bool
	// Subject is, for a key-archival request, the subject the runner
	// would have put in a PKCS#10 request (CN = the template or
	// application label, serialNumber = CardSerialNumberField). A portal
	// chooses the subject itself; LocalCA uses this one.
	Subject pkix.Name
}

// Issuer turns a certificate request into a certificate (DER) and,
// optionally, its chain.
type Issuer interface {
	Issue(ctx context.Context, req Request) (cert []byte, chain [][]byte, err error)
}

// Archived is the answer to a key-archival request: a DER PKCS#12 (RFC
// 7292) holding the key the issuer made, its certificate and chain, and
// the password that opens it. The receiver wipes Password after use.
type Archived struct {
	PKCS12   []byte
	Password secret.Value
}

// Archiver is an Issuer that also answers key-archival requests: the
// portal over the WebSocket (request with key_archival, answer with
// pkcs12 and password) and LocalCA. Wrappers of an Issuer keep the
// Archiver when the wrapped one is one.
type Archiver interface {
	Issuer
	Archive(ctx context.Context, req Request) (Archived, error)
}

// File names inside a LocalCA directory.
const (
	CertFile = "ca.pem"
	KeyFile  = "ca-key.pem"
)

// LocalCA is a certificate authority whose certificate and key live in a
// directory (ca.pem, ca-key.pem, PEM). It is safe for concurrent use.
type LocalCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	now  func() time.Time
}

// OpenLocalCA loads the CA in dir, creating dir and a new CA (ECDSA P-256,
// ten years) when it holds none.
func OpenLocalCA(dir string) (*LocalCA, error) {
	ca, err := loadLocalCA(dir)
	if errors.Is(err, errNoCA) {
		return createLocalCA(dir)
	}
	return ca, err
}

// CheckLocalCA reports whether OpenLocalCA(dir) would succeed without
// creating anything: dir is absent, or a directory holding no CA (one is
// made at start), or one whose ca.pem and ca-key.pem load, form a CA
// certificate and its key.
func CheckLocalCA(dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking test CA directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("test CA %s: not a directory", dir)
	}
	if _, err := loadLocalCA(dir); err != nil && !errors.Is(err, errNoCA) {
		return err
	}
	return nil
}

// errNoCA: the directory holds neither ca.pem nor ca-key.pem.
var errNoCA = errors.New("no test CA")

func loadLocalCA(dir string) (*LocalCA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CertFile))
	if errors.Is(err, fs.ErrNotExist) {
		if _, kerr := os.Stat(filepath.Join(dir, KeyFile)); kerr == nil {
			return nil, fmt.Errorf("test CA in %s: %s without %s", dir, KeyFile, CertFile)
		}
		return nil, errNoCA
	}
	if err != nil {
		return nil, fmt.Errorf("reading test CA: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("reading test CA key: %w", err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("test CA in %s: %s or %s is not PEM", dir, CertFile, KeyFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", filepath.Join(dir, CertFile), err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", filepath.Join(dir, KeyFile), err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: key of type %T cannot sign", filepath.Join(dir, KeyFile), k)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s: not a CA certificate", filepath.Join(dir, CertFile))
	}
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("test CA in %s: %s is not the key of %s", dir, KeyFile, CertFile)
	}
	return newLocalCA(cert, signer)
}

func createLocalCA(dir string) (*LocalCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating test CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cardwright test CA", Organization: []string{"cardwright"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating test CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding test CA key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating test CA directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, KeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, fmt.Errorf("writing test CA key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, CertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, fmt.Errorf("writing test CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return newLocalCA(cert, key)
}

func newLocalCA(cert *x509.Certificate, key crypto.Signer) (*LocalCA, error) {
	return &LocalCA{cert: cert, key: key, now: time.Now}, nil
}

// Certificate returns the CA certificate.
func (ca *LocalCA) Certificate() *x509.Certificate { return ca.cert }

// Issue verifies the request's self-signature and signs a one-year
// end-entity certificate for its subject and public key, for digital
// signature and key encipherment (or key agreement, for EC keys) and client
// authentication.
func (ca *LocalCA) Issue(ctx context.Context, req Request) ([]byte, [][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	csr, err := x509.ParseCertificateRequest(req.CSR)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, nil, fmt.Errorf("checking certificate request signature: %w", err)
	}
	der, err := ca.sign(csr.Subject, csr.PublicKey, csr.DNSNames, csr.EmailAddresses)
	if err != nil {
		return nil, nil, err
	}
	return der, [][]byte{ca.cert.Raw}, nil
}

// sign makes the one-year end-entity certificate of Issue for subject and
// pub.
func (ca *LocalCA) sign(subject pkix.Name, pub crypto.PublicKey, dns, emails []string) ([]byte, error) {
	// 128 random bits (RFC 5280 §4.1.2.2 allows up to 20 octets): no
	// collisions between processes sharing the CA directory.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("choosing serial number: %w", err)
	}
	serial.SetBit(serial, 127, 1) // always 16 octets, positive
	usage := x509.KeyUsageDigitalSignature
	if _, isEC := pub.(*ecdsa.PublicKey); isEC {
		usage |= x509.KeyUsageKeyAgreement
	} else {
		usage |= x509.KeyUsageKeyEncipherment
	}
	now := ca.now()
	tmpl := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        subject,
		NotBefore:      now.Add(-5 * time.Minute),
		NotAfter:       now.AddDate(1, 0, 0),
		KeyUsage:       usage,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:       dns,
		EmailAddresses: emails,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("signing certificate for %q: %w", subject.String(), err)
	}
	return der, nil
}

// Archive answers a key-archival request: it generates an ECDSA P-256
// key, certifies it for req.Subject as Issue would, and returns key,
// certificate and the CA certificate as a PKCS#12 (PBES2 with AES-256 and
// PBKDF2, go-pkcs12's Modern encoder) under a new random password. This
// test CA keeps no copy of the key: "archived" here means only that the
// key left the CA inside the PKCS#12.
func (ca *LocalCA) Archive(ctx context.Context, req Request) (Archived, error) {
	if err := ctx.Err(); err != nil {
		return Archived{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Archived{}, fmt.Errorf("generating the archived key: %w", err)
	}
	subject := req.Subject
	if subject.CommonName == "" {
		subject.CommonName = req.Template
	}
	if subject.CommonName == "" {
		subject.CommonName = "Application_" + req.Application
	}
	der, err := ca.sign(subject, key.Public(), nil, nil)
	if err != nil {
		return Archived{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Archived{}, fmt.Errorf("parsing the archived key's certificate: %w", err)
	}
	pw, err := newPassword()
	if err != nil {
		return Archived{}, err
	}
	p12, err := pkcs12.Modern.Encode(key, cert, []*x509.Certificate{ca.cert}, pw.Reveal())
	if err != nil {
		pw.Wipe()
		return Archived{}, fmt.Errorf("encoding the PKCS#12: %w", err)
	}
	return Archived{PKCS12: p12, Password: pw}, nil
}

// newPassword is a random PKCS#12 password: 18 random bytes, base64url
// (24 characters, 144 bits).
func newPassword() (secret.Value, error) {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return secret.Value{}, fmt.Errorf("choosing a PKCS#12 password: %w", err)
	}
	out := make([]byte, base64.RawURLEncoding.EncodedLen(len(b)))
	base64.RawURLEncoding.Encode(out, b[:])
	clear(b[:])
	v := secret.FromBytes(out)
	clear(out)
	return v, nil
}
