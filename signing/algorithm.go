package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	_ "crypto/sha256" // SHA-256 for RS256, PS256, ES256
	_ "crypto/sha512" // SHA-384 and SHA-512
	"fmt"
	"strings"

	"github.com/cardwright/cardwright/certfilter"
)

// Algorithm is a signature algorithm, named as JSON Web Algorithms name them
// (RFC 7518 §3.1): RS = RSASSA-PKCS1-v1_5, PS = RSASSA-PSS with MGF1 and a salt
// as long as the hash, ES = ECDSA; 256/384/512 = the SHA-2 hash.
type Algorithm string

// The supported algorithms.
const (
	RS256 Algorithm = "RS256"
	RS384 Algorithm = "RS384"
	RS512 Algorithm = "RS512"
	PS256 Algorithm = "PS256"
	PS384 Algorithm = "PS384"
	PS512 Algorithm = "PS512"
	ES256 Algorithm = "ES256"
	ES384 Algorithm = "ES384"
	ES512 Algorithm = "ES512"
)

// Algorithms lists every supported algorithm.
func Algorithms() []Algorithm {
	return []Algorithm{RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512}
}

// ParseAlgorithm checks an algorithm name. Names are case-sensitive, as in
// JWA.
func ParseAlgorithm(name string) (Algorithm, error) {
	if a, ok := lookupAlgorithm(name); ok {
		return a, nil
	}
	names := make([]string, 0, 9)
	for _, a := range Algorithms() {
		names = append(names, string(a))
	}
	return "", fmt.Errorf("%w: unknown algorithm %q (want one of %s)", ErrInvalidRequest, name, strings.Join(names, ", "))
}

func lookupAlgorithm(name string) (Algorithm, bool) {
	for _, a := range Algorithms() {
		if string(a) == name {
			return a, true
		}
	}
	return "", false
}

// Hash is the algorithm's digest function.
func (a Algorithm) Hash() crypto.Hash {
	switch a {
	case RS256, PS256, ES256:
		return crypto.SHA256
	case RS384, PS384, ES384:
		return crypto.SHA384
	case RS512, PS512, ES512:
		return crypto.SHA512
	}
	return 0
}

// KeyType is the key type the algorithm needs, as certfilter names it
// (certfilter.KeyRSA or certfilter.KeyECC).
func (a Algorithm) KeyType() string {
	if strings.HasPrefix(string(a), "ES") {
		return certfilter.KeyECC
	}
	return certfilter.KeyRSA
}

// SignerOpts are the options crypto.Signer needs for a digest made with
// a.Hash().
func (a Algorithm) SignerOpts() crypto.SignerOpts {
	if strings.HasPrefix(string(a), "PS") {
		return &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: a.Hash()}
	}
	return a.Hash()
}

// DefaultAlgorithm is the algorithm used when a request names none:
// RS256 for RSA keys, and for EC keys the ES variant whose hash matches the
// curve (P-256 ES256, P-384 ES384, P-521 ES512), as JWA pairs them.
func DefaultAlgorithm(pub crypto.PublicKey) (Algorithm, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return RS256, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return ES256, nil
		case elliptic.P384():
			return ES384, nil
		case elliptic.P521():
			return ES512, nil
		}
	}
	return "", fmt.Errorf("%w: no algorithm for a %s key", ErrNotSupported, keyTypeName(pub))
}

// keyTypeName names a public key's type as certfilter does.
func keyTypeName(pub crypto.PublicKey) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		return certfilter.KeyRSA
	case *ecdsa.PublicKey:
		return certfilter.KeyECC
	}
	return fmt.Sprintf("%T", pub)
}

// checkKey reports whether the algorithm can be used with the public key.
func (a Algorithm) checkKey(pub crypto.PublicKey) error {
	if t := keyTypeName(pub); t != a.KeyType() {
		return fmt.Errorf("%w: %s needs an %s key and the certificate has an %s key", ErrNotSupported, a, a.KeyType(), t)
	}
	return nil
}

// verifyDigest checks sig (ECDSA as ASN.1 Ecdsa-Sig-Value, RFC 3279
// §2.2.3) over digest with pub.
func (a Algorithm) verifyDigest(pub crypto.PublicKey, digest, sig []byte) error {
	var ok bool
	switch k := pub.(type) {
	case *rsa.PublicKey:
		var err error
		if strings.HasPrefix(string(a), "PS") {
			err = rsa.VerifyPSS(k, a.Hash(), digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: a.Hash()})
		} else {
			err = rsa.VerifyPKCS1v15(k, a.Hash(), digest, sig)
		}
		ok = err == nil
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(k, digest, sig)
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}
