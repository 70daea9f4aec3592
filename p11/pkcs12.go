package p11

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"math/big"

	"github.com/cardwright/cardwright/secret"
	"github.com/miekg/pkcs11"
	"software.sslmate.com/src/go-pkcs12"
)

// Imported is what ImportPKCS12 wrote.
type Imported struct {
	Key   *Key
	Cert  Object
	Chain []Object // CA certificates, CKA_CERTIFICATE_CATEGORY authority
}

// ImportPKCS12 decodes a PKCS#12 file (RFC 7292) and writes its private
// key (sensitive, not extractable), a public key object, its certificate
// and the CA certificates of its chain, all with C_CreateObject. The key,
// public key and certificate share CKA_ID id (empty: KeyID of the public
// key) and CKA_LABEL label. The user must be logged in.
func (s *Session) ImportPKCS12(data []byte, password secret.Value, label string, id []byte) (*Imported, error) {
	key, cert, chain, err := pkcs12.DecodeChain(data, password.Reveal())
	if err != nil {
		return nil, fmt.Errorf("decoding the PKCS#12 file: %w", err)
	}
	if len(id) == 0 {
		if id, err = KeyID(cert.PublicKey); err != nil {
			return nil, err
		}
	}
	common := func(class uint) []*pkcs11.Attribute {
		return []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		}
	}
	priv := append(common(pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_SUBJECT, cert.RawSubject))
	pub := append(common(pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_SUBJECT, cert.RawSubject))
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if !samePublic(&k.PublicKey, cert.PublicKey) {
			return nil, fmt.Errorf("importing the PKCS#12 file: its key does not match its certificate")
		}
		k.Precompute()
		e := big.NewInt(int64(k.E)).Bytes()
		priv = append(priv,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, k.N.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, e),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE_EXPONENT, k.D.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PRIME_1, k.Primes[0].Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PRIME_2, k.Primes[1].Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_EXPONENT_1, k.Precomputed.Dp.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_EXPONENT_2, k.Precomputed.Dq.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_COEFFICIENT, k.Precomputed.Qinv.Bytes()))
		pub = append(pub,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, k.N.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, e))
	case *ecdsa.PrivateKey:
		if !samePublic(&k.PublicKey, cert.PublicKey) {
			return nil, fmt.Errorf("importing the PKCS#12 file: its key does not match its certificate")
		}
		params, err := curveParams(k.Curve)
		if err != nil {
			return nil, fmt.Errorf("importing the PKCS#12 key: %w", err)
		}
		d, err := k.Bytes()
		if err != nil {
			return nil, fmt.Errorf("importing the PKCS#12 key: %w", err)
		}
		q, err := k.PublicKey.Bytes()
		if err != nil {
			return nil, fmt.Errorf("importing the PKCS#12 key: %w", err)
		}
		point, err := asn1.Marshal(q) // DER OCTET STRING, v2.40 §2.3.3
		if err != nil {
			return nil, err
		}
		priv = append(priv,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_DERIVE, true), // ECDH (Key.ECDH)
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, d))
		pub = append(pub,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, point))
	default:
		return nil, fmt.Errorf("importing the PKCS#12 file: key type %T is not supported", key)
	}

	var hpriv, hpub pkcs11.ObjectHandle
	s.mu.Lock()
	err = s.relogin(func() (err error) {
		if hpriv, err = s.t.m.ctx.CreateObject(s.h, priv); err != nil {
			return err
		}
		hpub, err = s.t.m.ctx.CreateObject(s.h, pub)
		return err
	})
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("writing the PKCS#12 key to token %q: %w", s.t.label, err)
	}
	out := &Imported{Key: &Key{s: s, priv: hpriv, pub: hpub, ID: id, Label: label, public: cert.PublicKey}}
	if out.Cert, err = s.writeCert(cert, label, id, certCategoryUser); err != nil {
		return nil, err
	}
	for _, ca := range chain {
		caID, err := KeyID(ca.PublicKey)
		if err != nil {
			return nil, err
		}
		o, err := s.writeCert(ca, ca.Subject.CommonName, caID, certCategoryAuthority)
		if err != nil {
			return nil, err
		}
		out.Chain = append(out.Chain, o)
	}
	return out, nil
}

// CertificateRequest builds a PKCS#10 request (RFC 2986) for the token key
// with crypto/x509, signed on the token.
func (k *Key) CertificateRequest(tmpl *x509.CertificateRequest) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, k)
	if err != nil {
		return nil, fmt.Errorf("building the certificate request for key %q: %w", k.Label, err)
	}
	return der, nil
}
