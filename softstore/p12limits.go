package softstore

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
)

// Limits on a PKCS#12 a page delivers, checked before it is decoded.
//
// Every key derivation in a PKCS#12 runs as many rounds as the file
// says, and a page writes the file: one with 2^31 rounds would keep the
// agent's CPU busy for hours at each passphrase the user tries.
// go-pkcs12 (v0.7) takes the counts as they come and has no hook to
// bound them, so CheckP12 walks the same structures with encoding/asn1
// (the parser go-pkcs12 itself uses, so it reads no file differently)
// and refuses a file whose visible key derivations are over the limits:
// the MAC's (RFC 7292 §5.1 MacData iterations, or PBMAC1's PBKDF2, RFC
// 9579), each encrypted content's (PKCS#12 PBE or PBES2/PBKDF2, RFC 8018)
// and each shrouded key bag's outside encrypted content.
//
// Bags inside an encrypted content cannot be read before it is decrypted:
// their rounds are bounded only by MaxP12Bytes. go-pkcs12 checks the MAC
// first, so those are reached only with the right passphrase, one the
// user typed.
const (
	MaxP12Bytes = 64 << 10 // a key, its certificate and a chain of a few CAs fit many times
	// MaxIterations bounds one derivation: above OWASP's 600,000 rounds
	// for PBKDF2-HMAC-SHA256 (2023), far above OpenSSL's and Windows'
	// 2,048 and 2,000.
	MaxIterations = 1_000_000
	// MaxTotalIterations bounds them all together (the MAC's, each
	// encrypted content's, each visible key's).
	MaxTotalIterations = 2_000_000
	maxContents        = 8  // ContentInfos in the AuthenticatedSafe
	maxBags            = 32 // bags in the unencrypted contents
)

var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEncryptedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidShroudedKey   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidPKCS12PBE     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1} // .1 to .6
	oidPBES2         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBMAC1        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	oidPBKDF2        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
)

// The shapes go-pkcs12 reads (RFC 7292 Appendix D, RFC 8018 Appendix A).
type (
	p12PFX struct {
		Version  int
		AuthSafe p12ContentInfo
		MacData  p12MacData `asn1:"optional"`
	}
	p12ContentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
	}
	p12MacData struct {
		Mac struct {
			Algorithm pkix.AlgorithmIdentifier
			Digest    []byte
		}
		MacSalt    []byte
		Iterations int `asn1:"optional,default:1"`
	}
	p12EncryptedData struct {
		Version              int
		EncryptedContentInfo struct {
			ContentType                asn1.ObjectIdentifier
			ContentEncryptionAlgorithm pkix.AlgorithmIdentifier
			EncryptedContent           asn1.RawValue `asn1:"tag:0,optional"`
		}
	}
	p12SafeBag struct {
		ID         asn1.ObjectIdentifier
		Value      asn1.RawValue   `asn1:"tag:0,explicit"`
		Attributes []asn1.RawValue `asn1:"set,optional"`
	}
	p12EncryptedKey struct {
		Algorithm pkix.AlgorithmIdentifier
		Data      []byte
	}
	p12PBEParams struct {
		Salt       []byte
		Iterations int
	}
	p12PBES2Params struct {
		Kdf, Scheme pkix.AlgorithmIdentifier
	}
	p12PBKDF2Params struct {
		Salt       asn1.RawValue
		Iterations int
		KeyLength  int                      `asn1:"optional"`
		Prf        pkix.AlgorithmIdentifier `asn1:"optional"`
	}
)

// CheckP12 refuses (ErrMalformed) a PKCS#12 larger than MaxP12Bytes or
// whose key derivations ask for more rounds than MaxIterations each or
// MaxTotalIterations together. It does no key derivation itself.
func CheckP12(der []byte) error {
	if len(der) > MaxP12Bytes {
		return fmt.Errorf("%w: the PKCS#12 is %d bytes, over %d", ErrMalformed, len(der), MaxP12Bytes)
	}
	c := &roundCount{}
	var pfx p12PFX
	if err := unmarshalAll(der, &pfx); err != nil {
		return fmt.Errorf("%w: reading the PKCS#12: %w", ErrMalformed, err)
	}
	if !pfx.AuthSafe.ContentType.Equal(oidData) {
		return nil // go-pkcs12 refuses it without deriving a key
	}
	if alg := pfx.MacData.Mac.Algorithm; alg.Algorithm.Equal(oidPBMAC1) {
		var p p12PBES2Params // PBMAC1-params has the same shape: KDF, then MAC scheme
		if err := unmarshalAll(alg.Parameters.FullBytes, &p); err != nil {
			return fmt.Errorf("%w: reading the PBMAC1 parameters: %w", ErrMalformed, err)
		}
		if err := c.kdf(p.Kdf, "the MAC"); err != nil {
			return err
		}
	} else if len(alg.Algorithm) > 0 {
		if err := c.add(pfx.MacData.Iterations, "the MAC"); err != nil {
			return err
		}
	}
	var safe []byte
	if err := unmarshalAll(pfx.AuthSafe.Content.Bytes, &safe); err != nil {
		return fmt.Errorf("%w: reading the authenticated safe: %w", ErrMalformed, err)
	}
	var contents []p12ContentInfo
	if err := unmarshalAll(safe, &contents); err != nil {
		return fmt.Errorf("%w: reading the authenticated safe: %w", ErrMalformed, err)
	}
	if len(contents) > maxContents {
		return fmt.Errorf("%w: %d contents in the PKCS#12, over %d", ErrMalformed, len(contents), maxContents)
	}
	bags := 0
	for i, ci := range contents {
		switch {
		case ci.ContentType.Equal(oidEncryptedData):
			var ed p12EncryptedData
			if err := unmarshalAll(ci.Content.Bytes, &ed); err != nil {
				return fmt.Errorf("%w: reading content %d: %w", ErrMalformed, i+1, err)
			}
			if err := c.pbe(ed.EncryptedContentInfo.ContentEncryptionAlgorithm, fmt.Sprintf("content %d", i+1)); err != nil {
				return err
			}
		case ci.ContentType.Equal(oidData):
			var data []byte
			var sb []p12SafeBag
			if err := unmarshalAll(ci.Content.Bytes, &data); err != nil {
				return fmt.Errorf("%w: reading content %d: %w", ErrMalformed, i+1, err)
			}
			if err := unmarshalAll(data, &sb); err != nil {
				return fmt.Errorf("%w: reading content %d: %w", ErrMalformed, i+1, err)
			}
			if bags += len(sb); bags > maxBags {
				return fmt.Errorf("%w: over %d bags in the PKCS#12", ErrMalformed, maxBags)
			}
			for j, b := range sb {
				if !b.ID.Equal(oidShroudedKey) {
					continue
				}
				var k p12EncryptedKey
				if err := unmarshalAll(b.Value.Bytes, &k); err != nil {
					return fmt.Errorf("%w: reading key bag %d: %w", ErrMalformed, j+1, err)
				}
				if err := c.pbe(k.Algorithm, fmt.Sprintf("key bag %d", j+1)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// roundCount adds up the rounds of the derivations seen.
type roundCount struct{ total int }

func (c *roundCount) add(n int, what string) error {
	if n < 0 || n > MaxIterations {
		return fmt.Errorf("%w: %s asks for %d key-derivation rounds, over %d", ErrMalformed, what, n, MaxIterations)
	}
	if c.total += n; c.total > MaxTotalIterations {
		return fmt.Errorf("%w: the PKCS#12 asks for over %d key-derivation rounds in all", ErrMalformed, MaxTotalIterations)
	}
	return nil
}

// pbe counts an encryption algorithm's rounds: a PKCS#12 PBE (RFC 7292
// Appendix B derives the key and the IV, each the full count) or PBES2.
// Other algorithms derive nothing here (go-pkcs12 refuses them).
func (c *roundCount) pbe(alg pkix.AlgorithmIdentifier, what string) error {
	switch {
	case len(alg.Algorithm) == len(oidPKCS12PBE)+1 && alg.Algorithm[:len(oidPKCS12PBE)].Equal(oidPKCS12PBE):
		var p p12PBEParams
		if err := unmarshalAll(alg.Parameters.FullBytes, &p); err != nil {
			return fmt.Errorf("%w: reading the PBE parameters of %s: %w", ErrMalformed, what, err)
		}
		if err := c.add(p.Iterations, what); err != nil {
			return err
		}
		return c.add(p.Iterations, what)
	case alg.Algorithm.Equal(oidPBES2):
		var p p12PBES2Params
		if err := unmarshalAll(alg.Parameters.FullBytes, &p); err != nil {
			return fmt.Errorf("%w: reading the PBES2 parameters of %s: %w", ErrMalformed, what, err)
		}
		return c.kdf(p.Kdf, what)
	}
	return nil
}

// kdf counts a PBKDF2's rounds.
func (c *roundCount) kdf(alg pkix.AlgorithmIdentifier, what string) error {
	if !alg.Algorithm.Equal(oidPBKDF2) {
		return nil
	}
	var p p12PBKDF2Params
	if err := unmarshalAll(alg.Parameters.FullBytes, &p); err != nil {
		return fmt.Errorf("%w: reading the PBKDF2 parameters of %s: %w", ErrMalformed, what, err)
	}
	return c.add(p.Iterations, what)
}

func unmarshalAll(der []byte, v any) error {
	rest, err := asn1.Unmarshal(der, v)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%d bytes after the value", len(rest))
	}
	return err
}
