package pinblob

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"encoding/hex"

	"github.com/cardwright/cardwright/secret"
	"software.sslmate.com/src/go-pkcs12"
)

// KeyIDLen is the length of a key id in bytes.
const KeyIDLen = 20

// KeyID is the key id of a certificate: the first 20 bytes of SHA-256 over
// its DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
func KeyID(cert *x509.Certificate) []byte {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return sum[:KeyIDLen]
}

// ECDHKey is the private half of a static EC key pair, able to compute the
// ECDH shared secret (SEC 1 §3.3.1: the x-coordinate of the product, as
// PKCS#11 CKM_ECDH1_DERIVE with CKD_NULL yields it) with a peer's public
// key. *ecdh.PrivateKey implements it; a PKCS#11 key implements it with
// C_DeriveKey.
type ECDHKey interface {
	ECDH(remote *ecdh.PublicKey) ([]byte, error)
}

// Key is a decryption key with its certificate. Build it with NewKey or
// LoadPKCS12.
type Key struct {
	id    []byte
	cert  *x509.Certificate
	rsa   crypto.Decrypter // RSA keys: RSA-OAEP-SHA-256 decryption
	ec    ECDHKey          // EC keys
	curve ecdh.Curve       // the EC key's curve
}

// ID is the key's key id (see KeyID).
func (k Key) ID() []byte { return append([]byte(nil), k.id...) }

// Certificate is the key's certificate.
func (k Key) Certificate() *x509.Certificate { return k.cert }

// String names the key by its id; it never shows key material.
func (k Key) String() string { return "#" + strings.ToUpper(hex.EncodeToString(k.id)) }

// NewKey pairs a certificate with its private key. For an RSA certificate
// priv is a crypto.Decrypter that accepts *rsa.OAEPOptions (an
// *rsa.PrivateKey, or a PKCS#11 key); for an EC certificate it is an
// *ecdsa.PrivateKey, an *ecdh.PrivateKey or any ECDHKey. Where priv can say
// its public key, it must be the certificate's.
func NewKey(cert *x509.Certificate, priv any) (Key, error) {
	if cert == nil {
		return Key{}, errors.New("pairing a key: no certificate")
	}
	k := Key{id: KeyID(cert), cert: cert}
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		d, ok := priv.(crypto.Decrypter)
		if !ok {
			return Key{}, fmt.Errorf("pairing key %s: the certificate has an RSA key but the private key is a %T", k, priv)
		}
		if p, ok := d.Public().(*rsa.PublicKey); !ok || !p.Equal(pub) {
			return Key{}, fmt.Errorf("pairing key %s: the private key does not match the certificate", k)
		}
		k.rsa = d
	case *ecdsa.PublicKey:
		epub, err := pub.ECDH()
		if err != nil {
			return Key{}, fmt.Errorf("pairing key %s: %w", k, err)
		}
		k.curve = epub.Curve()
		switch p := priv.(type) {
		case *ecdsa.PrivateKey:
			ep, err := p.ECDH()
			if err != nil {
				return Key{}, fmt.Errorf("pairing key %s: %w", k, err)
			}
			k.ec = ep
		case ECDHKey:
			k.ec = p
		default:
			return Key{}, fmt.Errorf("pairing key %s: the certificate has an EC key but the private key is a %T", k, priv)
		}
		if p, ok := k.ec.(interface{ PublicKey() *ecdh.PublicKey }); ok && !p.PublicKey().Equal(epub) {
			return Key{}, fmt.Errorf("pairing key %s: the private key does not match the certificate", k)
		}
	default:
		return Key{}, fmt.Errorf("pairing key %s: %w: %T public key", k, ErrUnsupported, cert.PublicKey)
	}
	return k, nil
}

// LoadPKCS12 decodes a PKCS#12 file (RFC 7292) holding one private key and
// its certificate. The password is used, never shown.
func LoadPKCS12(data []byte, password secret.Value) (Key, error) {
	priv, cert, _, err := pkcs12.DecodeChain(data, password.Reveal())
	if err != nil {
		return Key{}, fmt.Errorf("decoding PKCS#12: %w", err)
	}
	return NewKey(cert, priv)
}
