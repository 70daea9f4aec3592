package pinblob

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"io"

	"github.com/cardwright/cardwright/secret"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Blob header fields (version 1).
const (
	magic    = "CWPB"
	version1 = 1

	// alg values.
	algRSAOAEP   = 0x01 // RSA-OAEP-SHA-256 key wrap, AES-256-GCM
	algECDHP256  = 0x02 // ECDH-ES on P-256, HKDF-SHA-256, AES-256-GCM
	algECDHP384  = 0x03 // ECDH-ES on P-384, HKDF-SHA-256, AES-256-GCM
	algECDHP521  = 0x04 // ECDH-ES on P-521, HKDF-SHA-256, AES-256-GCM
	aesKeyLen    = 32
	nonceLen     = 12
	tagLen       = 16
	minRSABits   = 2048
	headerFixed  = len(magic) + 1 + 1 + KeyIDLen + 2 // up to the key field
	maxScalarTry = 64
)

// curveOf maps an ECDH alg to its curve.
func curveOf(alg byte) ecdh.Curve {
	switch alg {
	case algECDHP256:
		return ecdh.P256()
	case algECDHP384:
		return ecdh.P384()
	case algECDHP521:
		return ecdh.P521()
	}
	return nil
}

func algOf(c ecdh.Curve) (byte, bool) {
	switch c {
	case ecdh.P256():
		return algECDHP256, true
	case ecdh.P384():
		return algECDHP384, true
	case ecdh.P521():
		return algECDHP521, true
	}
	return 0, false
}

// Seal encrypts pins for the recipient certificate's public key and returns
// the card file content: a data object labelled "Encrypted PINs" holding
// the blob. All randomness (content key, nonce, ephemeral EC key) is read
// from rand; RSA-OAEP padding randomness comes from crypto/rand, as
// crypto/rsa has used since Go 1.26.
func Seal(rand io.Reader, recipient *x509.Certificate, pins []PIN) ([]byte, error) {
	blob, err := SealBlob(rand, recipient, pins)
	if err != nil {
		return nil, err
	}
	return MarshalDataObject(Label, blob)
}

// SealBlob is Seal without the data object around the blob.
func SealBlob(rand io.Reader, recipient *x509.Certificate, pins []PIN) ([]byte, error) {
	if recipient == nil {
		return nil, errors.New("sealing PINs: no recipient certificate")
	}
	pt, err := marshalPINs(pins)
	if err != nil {
		return nil, fmt.Errorf("sealing PINs: %w", err)
	}
	defer clear(pt)
	return sealPlaintext(rand, recipient, pt)
}

// sealPlaintext encrypts an encoded plaintext for the recipient.
func sealPlaintext(rand io.Reader, recipient *x509.Certificate, pt []byte) ([]byte, error) {
	id := KeyID(recipient)
	var err error

	var alg byte
	var keyField, cek []byte
	switch pub := recipient.PublicKey.(type) {
	case *rsa.PublicKey:
		if n := pub.N.BitLen(); n < minRSABits {
			return nil, fmt.Errorf("sealing PINs: %w: RSA key of %d bits (need at least %d)", ErrUnsupported, n, minRSABits)
		}
		alg = algRSAOAEP
		cek = make([]byte, aesKeyLen)
		if _, err := io.ReadFull(rand, cek); err != nil {
			return nil, fmt.Errorf("sealing PINs: reading randomness: %w", err)
		}
		// RFC 8017 §7.1.1, empty label.
		keyField, err = rsa.EncryptOAEP(sha256.New(), rand, pub, cek, nil)
		if err != nil {
			return nil, fmt.Errorf("sealing PINs: wrapping the content key: %w", err)
		}
	case *ecdsa.PublicKey:
		rpub, err := pub.ECDH()
		if err != nil {
			return nil, fmt.Errorf("sealing PINs: %w: %w", ErrUnsupported, err)
		}
		var ok bool
		if alg, ok = algOf(rpub.Curve()); !ok {
			return nil, fmt.Errorf("sealing PINs: %w: curve %s", ErrUnsupported, pub.Curve.Params().Name)
		}
		eph, err := ephemeralKey(rand, rpub.Curve())
		if err != nil {
			return nil, fmt.Errorf("sealing PINs: %w", err)
		}
		shared, err := eph.ECDH(rpub)
		if err != nil {
			return nil, fmt.Errorf("sealing PINs: computing ECDH: %w", err)
		}
		keyField = eph.PublicKey().Bytes()
		cek, err = deriveKey(shared, headerPrefix(alg, id, keyField))
		clear(shared)
		if err != nil {
			return nil, fmt.Errorf("sealing PINs: %w", err)
		}
	default:
		return nil, fmt.Errorf("sealing PINs: %w: %T public key", ErrUnsupported, recipient.PublicKey)
	}
	defer clear(cek)

	nonce := make([]byte, nonceLen)
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("sealing PINs: reading randomness: %w", err)
	}
	hdr := append(headerPrefix(alg, id, keyField), nonce...)
	aead, err := newGCM(cek)
	if err != nil {
		return nil, fmt.Errorf("sealing PINs: %w", err)
	}
	return aead.Seal(hdr, nonce, pt, hdr), nil
}

// headerPrefix is the header up to and including the key field.
func headerPrefix(alg byte, id, keyField []byte) []byte {
	h := make([]byte, 0, headerFixed+len(keyField)+nonceLen)
	h = append(h, magic...)
	h = append(h, version1, alg)
	h = append(h, id...)
	h = append(h, byte(len(keyField)>>8), byte(len(keyField)))
	return append(h, keyField...)
}

// ephemeralKey draws an EC private key from rand: a scalar of the curve's
// byte length, redrawn while out of range (FIPS 186-5 §A.4.2, rejection
// sampling). crypto/ecdh's GenerateKey ignores its reader since Go 1.26;
// reading the scalar here keeps Seal's randomness in the caller's hands.
func ephemeralKey(rand io.Reader, c ecdh.Curve) (*ecdh.PrivateKey, error) {
	n, mask := 32, byte(0xFF)
	switch c {
	case ecdh.P384():
		n = 48
	case ecdh.P521():
		n, mask = 66, 0x01
	}
	b := make([]byte, n)
	defer clear(b)
	for range maxScalarTry {
		if _, err := io.ReadFull(rand, b); err != nil {
			return nil, fmt.Errorf("reading randomness: %w", err)
		}
		b[0] &= mask
		if k, err := c.NewPrivateKey(b); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("drawing an ephemeral key: the random source gives no valid scalar")
}

// deriveKey is HKDF-SHA-256 (RFC 5869) with no salt and the header up to
// the key field as info.
func deriveKey(shared, info []byte) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, shared, nil, string(info), aesKeyLen)
	if err != nil {
		return nil, fmt.Errorf("deriving the content key: %w", err)
	}
	return k, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// header is a parsed blob.
type header struct {
	alg      byte
	id       []byte
	keyField []byte
	nonce    []byte
	aad      []byte // header bytes up to and including the nonce
	ct       []byte // ciphertext and tag
}

func parseBlob(blob []byte) (*header, error) {
	s := cryptobyte.String(blob)
	var m []byte
	var ver byte
	h := new(header)
	if !s.ReadBytes(&m, len(magic)) || string(m) != magic {
		return nil, fmt.Errorf("%w: no %q magic", ErrMalformed, magic)
	}
	if !s.ReadUint8(&ver) {
		return nil, fmt.Errorf("%w: truncated header", ErrMalformed)
	}
	if ver != version1 {
		return nil, fmt.Errorf("%w: version %d", ErrUnsupported, ver)
	}
	var kf cryptobyte.String
	if !s.ReadUint8(&h.alg) || !s.ReadBytes(&h.id, KeyIDLen) ||
		!s.ReadUint16LengthPrefixed(&kf) || !s.ReadBytes(&h.nonce, nonceLen) {
		return nil, fmt.Errorf("%w: truncated header", ErrMalformed)
	}
	if h.alg != algRSAOAEP && curveOf(h.alg) == nil {
		return nil, fmt.Errorf("%w: algorithm 0x%02X", ErrUnsupported, h.alg)
	}
	h.keyField = kf
	if len(s) < tagLen {
		return nil, fmt.Errorf("%w: truncated ciphertext", ErrMalformed)
	}
	h.aad = blob[:len(blob)-len(s)]
	h.ct = s
	return h, nil
}

// Open finds the "Encrypted PINs" data object in a card file's content and
// decrypts it with the key whose id it names. Errors: ErrNoBlob when the
// content holds no such object; *NoKeyError when no key has the blob's
// id; ErrAuthentication, ErrMalformed or ErrUnsupported (wrapped) when the
// blob does not decrypt. No error ever contains a secret.
func Open(content []byte, keys []Key) ([]PIN, error) {
	blob, err := FindDataObject(content, Label)
	if err != nil {
		return nil, err
	}
	return OpenBlob(blob, keys)
}

// OpenBlob is Open for a bare blob.
func OpenBlob(blob []byte, keys []Key) ([]PIN, error) {
	h, err := parseBlob(blob)
	if err != nil {
		return nil, fmt.Errorf("opening encrypted PINs: %w", err)
	}
	var key *Key
	for i := range keys {
		if subtle.ConstantTimeCompare(keys[i].id, h.id) == 1 {
			key = &keys[i]
			break
		}
	}
	if key == nil {
		return nil, &NoKeyError{ID: append([]byte(nil), h.id...)}
	}
	cek, err := key.contentKey(h)
	if err != nil {
		return nil, fmt.Errorf("opening encrypted PINs with key %s: %w", key, err)
	}
	defer clear(cek)
	aead, err := newGCM(cek)
	if err != nil {
		return nil, fmt.Errorf("opening encrypted PINs with key %s: %w", key, err)
	}
	pt, err := aead.Open(nil, h.nonce, h.ct, h.aad)
	if err != nil {
		return nil, fmt.Errorf("opening encrypted PINs with key %s: %w", key, ErrAuthentication)
	}
	defer clear(pt)
	pins, err := parsePINs(pt)
	if err != nil {
		return nil, fmt.Errorf("opening encrypted PINs with key %s: %w", key, err)
	}
	return pins, nil
}

// contentKey recovers the AES key of the blob.
func (k *Key) contentKey(h *header) ([]byte, error) {
	switch {
	case h.alg == algRSAOAEP:
		if k.rsa == nil {
			return nil, fmt.Errorf("%w: an RSA blob for an EC key", ErrMalformed)
		}
		cek, err := k.rsa.Decrypt(rand.Reader, h.keyField, &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA256})
		if err != nil {
			if errors.Is(err, rsa.ErrDecryption) {
				return nil, fmt.Errorf("unwrapping the content key: %w (%w)", ErrAuthentication, err)
			}
			return nil, fmt.Errorf("unwrapping the content key: %w", err)
		}
		if len(cek) != aesKeyLen {
			clear(cek)
			return nil, fmt.Errorf("unwrapping the content key: %w", ErrAuthentication)
		}
		return cek, nil
	default:
		c := curveOf(h.alg)
		if k.ec == nil || c != k.curve {
			return nil, fmt.Errorf("%w: the blob's algorithm does not fit the key", ErrMalformed)
		}
		eph, err := c.NewPublicKey(h.keyField)
		if err != nil {
			return nil, fmt.Errorf("%w: ephemeral key: %w", ErrMalformed, err)
		}
		shared, err := k.ec.ECDH(eph)
		if err != nil {
			return nil, fmt.Errorf("computing ECDH: %w", err)
		}
		defer clear(shared)
		return deriveKey(shared, h.aad[:len(h.aad)-nonceLen])
	}
}

// marshalPINs encodes the plaintext: SEQUENCE OF SEQUENCE { UTF8String,
// OCTET STRING } (X.690 DER).
func marshalPINs(pins []PIN) ([]byte, error) {
	if len(pins) == 0 {
		return nil, errors.New("no PINs to seal")
	}
	seen := map[string]bool{}
	for _, p := range pins {
		if !ValidName(p.Name) {
			return nil, fmt.Errorf("unknown secret name %q (want one of PIN1, PIN2, PIN3, PUK, PUK1, PUK2, OP, MAN)", p.Name)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("secret %s given twice", p.Name)
		}
		seen[p.Name] = true
		if p.Value.IsZero() {
			return nil, fmt.Errorf("secret %s is empty", p.Name)
		}
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, p := range pins {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(p.Name)) })
				b.AddASN1OctetString(p.Value.Bytes())
			})
		}
	})
	return b.Bytes()
}

// parsePINs decodes the plaintext. Its errors never quote the content.
func parsePINs(pt []byte) ([]PIN, error) {
	s := cryptobyte.String(pt)
	var list cryptobyte.String
	if !s.ReadASN1(&list, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, fmt.Errorf("%w: the decrypted content is not a list of secrets", ErrMalformed)
	}
	var pins []PIN
	seen := map[string]bool{}
	for i := 0; !list.Empty(); i++ {
		var e, name, val cryptobyte.String
		if !list.ReadASN1(&e, cbasn1.SEQUENCE) || !e.ReadASN1(&name, cbasn1.UTF8String) ||
			!e.ReadASN1(&val, cbasn1.OCTET_STRING) || !e.Empty() {
			return nil, fmt.Errorf("%w: decrypted secret %d is not well formed", ErrMalformed, i+1)
		}
		n := string(name)
		if !ValidName(n) {
			return nil, fmt.Errorf("%w: decrypted secret %d has an unknown name", ErrMalformed, i+1)
		}
		if seen[n] {
			return nil, fmt.Errorf("%w: decrypted secret %s appears twice", ErrMalformed, n)
		}
		seen[n] = true
		pins = append(pins, PIN{Name: n, Value: secret.FromBytes(val)})
	}
	if len(pins) == 0 {
		return nil, fmt.Errorf("%w: the decrypted content holds no secrets", ErrMalformed)
	}
	return pins, nil
}
