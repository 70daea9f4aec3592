package p11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"

	"github.com/miekg/pkcs11"
)

// KeySpec is a key pair to generate: RSA with Bits 2048/3072/4096, or EC
// on Curve P-256/P-384.
type KeySpec struct {
	RSABits int            // for RSA
	Curve   elliptic.Curve // for EC; nil for RSA
}

// Key specs the encoding descriptions use.
var (
	RSA2048 = KeySpec{RSABits: 2048}
	RSA3072 = KeySpec{RSABits: 3072}
	RSA4096 = KeySpec{RSABits: 4096}
	ECP256  = KeySpec{Curve: elliptic.P256()}
	ECP384  = KeySpec{Curve: elliptic.P384()}
)

func (k KeySpec) String() string {
	if k.Curve != nil {
		return "EC-" + k.Curve.Params().Name
	}
	return "RSA-" + strconv.Itoa(k.RSABits)
}

// ParseKeySpec reads "RSA-2048", "RSA2048", "rsa:3072", "EC-P256", "P-384",
// "ECC_P256" and the like.
func ParseKeySpec(s string) (KeySpec, error) {
	u := strings.NewReplacer("-", "", "_", "", ":", "", " ", "").Replace(strings.ToUpper(s))
	switch u {
	case "RSA2048", "2048":
		return RSA2048, nil
	case "RSA3072", "3072":
		return RSA3072, nil
	case "RSA4096", "4096":
		return RSA4096, nil
	case "ECP256", "ECCP256", "P256", "SECP256R1", "PRIME256V1":
		return ECP256, nil
	case "ECP384", "ECCP384", "P384", "SECP384R1":
		return ECP384, nil
	}
	return KeySpec{}, fmt.Errorf("parsing key type %q: want RSA-2048, RSA-3072, RSA-4096, EC-P256 or EC-P384", s)
}

// Curve OIDs, RFC 5480 §2.1.1.1 (CKA_EC_PARAMS is their DER, PKCS#11 v2.40 §2.3.3).
var (
	oidP256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidP384 = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
	oidP521 = asn1.ObjectIdentifier{1, 3, 132, 0, 35} // keys imported or found (encrypted PINs, alg 04), no KeySpec
)

func curveParams(c elliptic.Curve) ([]byte, error) {
	switch c {
	case elliptic.P256():
		return asn1.Marshal(oidP256)
	case elliptic.P384():
		return asn1.Marshal(oidP384)
	case elliptic.P521():
		return asn1.Marshal(oidP521)
	}
	return nil, fmt.Errorf("curve %s is not supported", c.Params().Name)
}

func curveOf(params []byte) (elliptic.Curve, error) {
	var oid asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(params, &oid); err != nil {
		return nil, fmt.Errorf("reading CKA_EC_PARAMS: %w", err)
	}
	switch {
	case oid.Equal(oidP256):
		return elliptic.P256(), nil
	case oid.Equal(oidP384):
		return elliptic.P384(), nil
	case oid.Equal(oidP521):
		return elliptic.P521(), nil
	}
	return nil, fmt.Errorf("curve %v is not supported", oid)
}

// KeyID is the CKA_ID cardwright gives a key when the caller names none:
// the SHA-1 of the subjectPublicKey bits, as RFC 5280 §4.2.1.2 (1) derives
// a subject key identifier, so certificates issued later match it.
func KeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("computing the key ID: %w", err)
	}
	var spki struct {
		Alg asn1.RawValue
		Key asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("computing the key ID: %w", err)
	}
	h := sha1.Sum(spki.Key.Bytes)
	return h[:], nil
}

// Key is a private key on a token, used through the session that found or
// made it. It implements crypto.Signer and, for RSA, crypto.Decrypter.
type Key struct {
	s          *Session
	priv, pub  pkcs11.ObjectHandle // pub is 0 when the token has no public key object
	ID         []byte
	Label      string
	public     crypto.PublicKey
	alwaysAuth bool // CKA_ALWAYS_AUTHENTICATE: C_Login CKU_CONTEXT_SPECIFIC per use
}

// Public implements crypto.Signer.
func (k *Key) Public() crypto.PublicKey { return k.public }

// GenerateKeyPair makes a key pair on the token (C_GenerateKeyPair) with
// CKA_LABEL label and CKA_ID id; an empty id becomes KeyID(public key),
// set with C_SetAttributeValue after generation. The private key is
// sensitive, not extractable, private, and may sign and decrypt (RSA) or
// sign and derive (EC: ECDH, see Key.ECDH). The user must be logged in.
func (s *Session) GenerateKeyPair(spec KeySpec, label string, id []byte) (*Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pubT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
	privT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
	if len(id) > 0 {
		pubT = append(pubT, pkcs11.NewAttribute(pkcs11.CKA_ID, id))
		privT = append(privT, pkcs11.NewAttribute(pkcs11.CKA_ID, id))
	}
	var mech []*pkcs11.Mechanism
	switch {
	case spec.Curve != nil:
		params, err := curveParams(spec.Curve)
		if err != nil {
			return nil, fmt.Errorf("generating an %v key pair: %w", spec, err)
		}
		mech = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)}
		pubT = append(pubT, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC), pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params))
		privT = append(privT, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC), pkcs11.NewAttribute(pkcs11.CKA_DERIVE, true))
	case spec.RSABits == 2048 || spec.RSABits == 3072 || spec.RSABits == 4096:
		mech = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}
		pubT = append(pubT, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, spec.RSABits),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true))
		privT = append(privT, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA), pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true))
	default:
		return nil, fmt.Errorf("generating a key pair: key spec %v is not supported", spec)
	}
	var pub, priv pkcs11.ObjectHandle
	err := s.relogin(func() (err error) {
		pub, priv, err = s.t.m.ctx.GenerateKeyPair(s.h, mech, pubT, privT)
		return err
	})
	if err != nil {
		if isUnsupported(err) {
			err = &unsupportedError{what: "generating an " + spec.String() + " key pair", err: err}
		}
		return nil, fmt.Errorf("generating an %v key pair on token %q: %w", spec, s.t.label, err)
	}
	k := &Key{s: s, priv: priv, pub: pub, Label: label, ID: id}
	if k.public, err = s.readPublic(pub); err != nil {
		return nil, err
	}
	if len(id) == 0 {
		if k.ID, err = KeyID(k.public); err != nil {
			return nil, err
		}
		for _, h := range []pkcs11.ObjectHandle{pub, priv} {
			if err := s.t.m.ctx.SetAttributeValue(s.h, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, k.ID)}); err != nil {
				return nil, fmt.Errorf("setting CKA_ID of the new key pair: %w", err)
			}
		}
	}
	return k, nil
}

// readPublic reads a public key object (or an RSA private key's public
// parts) into a Go public key.
func (s *Session) readPublic(h pkcs11.ObjectHandle) (crypto.PublicKey, error) {
	a, err := s.t.m.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
	if err != nil {
		return nil, fmt.Errorf("reading CKA_KEY_TYPE: %w", err)
	}
	switch ulong(a[0].Value) {
	case pkcs11.CKK_RSA:
		a, err := s.t.m.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil), pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil)})
		if err != nil {
			return nil, fmt.Errorf("reading the RSA public key: %w", err)
		}
		e := new(big.Int).SetBytes(a[1].Value)
		if !e.IsInt64() || e.Int64() > 1<<31 {
			return nil, errors.New("reading the RSA public key: public exponent too large")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(a[0].Value), E: int(e.Int64())}, nil
	case pkcs11.CKK_EC:
		a, err := s.t.m.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil), pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
		if err != nil {
			return nil, fmt.Errorf("reading the EC public key: %w", err)
		}
		curve, err := curveOf(a[0].Value)
		if err != nil {
			return nil, err
		}
		// CKA_EC_POINT is DER OCTET STRING around the X9.62 point (v2.40
		// §2.3.3); some modules give the bare point.
		pt := a[1].Value
		var inner []byte
		if rest, err := asn1.Unmarshal(pt, &inner); err == nil && len(rest) == 0 {
			pt = inner
		}
		pk, err := ecdsa.ParseUncompressedPublicKey(curve, pt)
		if err != nil {
			return nil, fmt.Errorf("reading CKA_EC_POINT: %w", err)
		}
		return pk, nil
	}
	return nil, fmt.Errorf("key type %#x is not supported", ulong(a[0].Value))
}

// ulong decodes a CK_ULONG attribute value (native size and byte order,
// as the module wrote it).
func ulong(b []byte) uint {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b))
	case 4:
		return uint(binary.NativeEndian.Uint32(b))
	}
	return ^uint(0) // no valid CKO_/CKK_ value
}

// FindKey finds the private key with CKA_ID id (or, with id empty, CKA_LABEL
// label) and its public key (from the public key object or certificate with
// the same CKA_ID, or the RSA private key's own modulus).
func (s *Session) FindKey(id []byte, label string) (*Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY)}
	if len(id) > 0 {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_ID, id))
	} else {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
	}
	privs, err := s.find(t, 2)
	if err != nil {
		return nil, err
	}
	switch len(privs) {
	case 0:
		return nil, fmt.Errorf("finding the private key (id %X, label %q): %w", id, label, ErrObjectNotFound)
	case 2:
		return nil, fmt.Errorf("finding the private key (id %X, label %q): %w", id, label, ErrAmbiguous)
	}
	return s.keyFrom(privs[0])
}

func (s *Session) keyFrom(priv pkcs11.ObjectHandle) (*Key, error) {
	a, err := s.t.m.ctx.GetAttributeValue(s.h, priv, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_ID, nil), pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
	if err != nil {
		return nil, fmt.Errorf("reading the private key's attributes: %w", err)
	}
	k := &Key{s: s, priv: priv, ID: a[0].Value, Label: string(a[1].Value)}
	if aa, err := s.t.m.ctx.GetAttributeValue(s.h, priv, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ALWAYS_AUTHENTICATE, nil)}); err == nil && len(aa[0].Value) == 1 {
		k.alwaysAuth = aa[0].Value[0] != 0
	}
	if len(k.ID) > 0 {
		pubs, err := s.find([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), pkcs11.NewAttribute(pkcs11.CKA_ID, k.ID)}, 1)
		if err != nil {
			return nil, err
		}
		if len(pubs) == 1 {
			k.pub = pubs[0]
			if k.public, err = s.readPublic(pubs[0]); err != nil {
				return nil, err
			}
			return k, nil
		}
		certs, err := s.find([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE), pkcs11.NewAttribute(pkcs11.CKA_ID, k.ID)}, 1)
		if err != nil {
			return nil, err
		}
		if len(certs) == 1 {
			v, err := s.t.m.ctx.GetAttributeValue(s.h, certs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
			if err == nil {
				if c, err := x509.ParseCertificate(v[0].Value); err == nil {
					k.public = c.PublicKey
					return k, nil
				}
			}
		}
	}
	if ulong(a[2].Value) == pkcs11.CKK_RSA {
		if k.public, err = s.readPublic(priv); err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("finding the public key of private key %q (id %X): %w", k.Label, k.ID, ErrObjectNotFound)
}

// DigestInfo prefixes, RFC 8017 §9.2 note 1.
var digestInfo = map[crypto.Hash][]byte{
	crypto.SHA1:   {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
	crypto.SHA224: {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c},
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// hashMech maps a hash to its CKM_ and CKG_MGF1_ values for PSS and OAEP.
func hashMech(h crypto.Hash) (mech, mgf uint, err error) {
	switch h {
	case crypto.SHA1:
		return pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, nil
	case crypto.SHA224:
		return pkcs11.CKM_SHA224, pkcs11.CKG_MGF1_SHA224, nil
	case crypto.SHA256:
		return pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, nil
	case crypto.SHA384:
		return pkcs11.CKM_SHA384, pkcs11.CKG_MGF1_SHA384, nil
	case crypto.SHA512:
		return pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512, nil
	}
	return 0, 0, fmt.Errorf("hash %v is not supported", h)
}

// Sign implements crypto.Signer: CKM_RSA_PKCS over DigestInfo||digest,
// CKM_RSA_PKCS_PSS for *rsa.PSSOptions, CKM_ECDSA (the r||s answer
// re-encoded as an ASN.1 Ecdsa-Sig-Value, RFC 3279 §2.2.3).
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	var mech *pkcs11.Mechanism
	data := digest
	switch k.public.(type) {
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			hm, mgf, err := hashMech(pss.Hash)
			if err != nil {
				return nil, fmt.Errorf("signing: %w", err)
			}
			salt := pss.SaltLength
			if salt == rsa.PSSSaltLengthAuto || salt == rsa.PSSSaltLengthEqualsHash {
				salt = pss.Hash.Size()
			}
			mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, pkcs11.NewPSSParams(hm, mgf, uint(salt)))
			break
		}
		mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)
		if h := opts.HashFunc(); h != 0 {
			prefix, ok := digestInfo[h]
			if !ok {
				return nil, fmt.Errorf("signing: hash %v is not supported", h)
			}
			if len(digest) != h.Size() {
				return nil, fmt.Errorf("signing: digest is %d bytes, %v needs %d", len(digest), h, h.Size())
			}
			data = append(append([]byte(nil), prefix...), digest...)
		}
	case *ecdsa.PublicKey:
		mech = pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)
	default:
		return nil, fmt.Errorf("signing: key type %T is not supported", k.public)
	}
	sig, err := k.run(mech, data, k.s.t.m.ctx.SignInit, k.s.t.m.ctx.Sign)
	if err != nil {
		return nil, fmt.Errorf("signing with key %q: %w", k.Label, err)
	}
	if _, ok := k.public.(*ecdsa.PublicKey); ok {
		if len(sig)%2 != 0 {
			return nil, fmt.Errorf("signing with key %q: ECDSA signature of odd length %d", k.Label, len(sig))
		}
		n := len(sig) / 2
		return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])})
	}
	return sig, nil
}

// Decrypt implements crypto.Decrypter for RSA keys: CKM_RSA_PKCS, or
// CKM_RSA_PKCS_OAEP for *rsa.OAEPOptions (MGFHash 0 means Hash). A token
// that refuses the OAEP parameters (SoftHSM2 2.6 takes SHA-1 only and
// answers CKR_ARGUMENTS_BAD) gives an error wrapping ErrNotSupported; see
// OAEPSupported and DecryptRaw. A ciphertext the token calls invalid
// (CKR_ENCRYPTED_DATA_INVALID, _LEN_RANGE) gives rsa.ErrDecryption too.
func (k *Key) Decrypt(_ io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	if _, ok := k.public.(*rsa.PublicKey); !ok {
		return nil, fmt.Errorf("decrypting: key %q is not an RSA key", k.Label)
	}
	mech := pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)
	o, oaep := opts.(*rsa.OAEPOptions)
	if oaep {
		hm, mgf, err := hashMech(o.Hash)
		if err != nil {
			return nil, fmt.Errorf("decrypting: %w", err)
		}
		if o.MGFHash != 0 && o.MGFHash != o.Hash {
			if _, mgf, err = hashMech(o.MGFHash); err != nil {
				return nil, fmt.Errorf("decrypting: MGF1 %w", err)
			}
		}
		var src []byte
		if len(o.Label) > 0 {
			src = o.Label
		}
		mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP, pkcs11.NewOAEPParams(hm, mgf, pkcs11.CKZ_DATA_SPECIFIED, src))
	}
	out, err := k.run(mech, msg, k.s.t.m.ctx.DecryptInit, k.s.t.m.ctx.Decrypt)
	if err != nil {
		switch {
		case oaep && (isUnsupported(err) || is(err, pkcs11.CKR_ARGUMENTS_BAD) || is(err, pkcs11.CKR_MECHANISM_PARAM_INVALID)):
			err = &unsupportedError{what: fmt.Sprintf("RSA-OAEP with %v", o.Hash), err: err}
		case is(err, pkcs11.CKR_ENCRYPTED_DATA_INVALID) || is(err, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE):
			// Bad padding or size (PKCS#11 v2.40 §5.10): rsa.ErrDecryption
			// as crypto/rsa gives it, the CKR kept in the chain.
			err = fmt.Errorf("%w: %w", rsa.ErrDecryption, err)
		}
		return nil, fmt.Errorf("decrypting with key %q: %w", k.Label, err)
	}
	return out, nil
}

// run does Init then the one-part operation in the key's session, with a
// context-specific login for CKA_ALWAYS_AUTHENTICATE keys (v2.40 §4.9) and
// one re-login when the module logged the user out.
func (k *Key) run(mech *pkcs11.Mechanism, data []byte,
	initf func(pkcs11.SessionHandle, []*pkcs11.Mechanism, pkcs11.ObjectHandle) error,
	opf func(pkcs11.SessionHandle, []byte) ([]byte, error)) ([]byte, error) {
	s := k.s
	var out []byte
	err := k.retry(func() error {
		if err := initf(s.h, []*pkcs11.Mechanism{mech}, k.priv); err != nil {
			return err
		}
		if k.alwaysAuth {
			if pin := s.heldPIN(); !pin.IsZero() {
				err := s.t.m.ctx.Login(s.h, pkcs11.CKU_CONTEXT_SPECIFIC, pin.Reveal())
				pin.Wipe()
				if err != nil {
					return s.pinError(err, false)
				}
			}
		}
		var err error
		out, err = opf(s.h, data)
		return err
	})
	return out, err
}

// retry runs attempt with the session locked and, when the module logged
// the user out (CKR_USER_NOT_LOGGED_IN, or a dead key handle after a
// logout), logs in again with the kept PIN, finds the key again and runs
// attempt once more.
func (k *Key) retry(attempt func() error) error {
	s := k.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return errClosed
	}
	err := attempt()
	if err == nil || !(is(err, pkcs11.CKR_USER_NOT_LOGGED_IN) ||
		is(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) || is(err, pkcs11.CKR_KEY_HANDLE_INVALID)) {
		return err
	}
	// Only a session holding a user login logs in again: its PIN was
	// checked by the token for that login (see Session.Login).
	pin := s.heldPIN()
	defer pin.Wipe()
	if pin.IsZero() {
		return err
	}
	// The module logged the user out (some do after each C_Sign). Private
	// object handles may have died with the login (SoftHSM2 drops them):
	// log in again, find the key again by CKA_ID and class, retry once.
	if info, ierr := s.t.m.ctx.GetSessionInfo(s.h); ierr == nil &&
		(info.State == pkcs11.CKS_RW_USER_FUNCTIONS || info.State == pkcs11.CKS_RO_USER_FUNCTIONS) && !is(err, pkcs11.CKR_USER_NOT_LOGGED_IN) {
		return err // still logged in: the handle is simply bad
	}
	if lerr := s.t.m.ctx.Login(s.h, pkcs11.CKU_USER, pin.Reveal()); lerr != nil && !is(lerr, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		return fmt.Errorf("logging in again after %v: %w", err, s.pinError(lerr, false))
	}
	if len(k.ID) > 0 {
		hs, ferr := s.find([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), pkcs11.NewAttribute(pkcs11.CKA_ID, k.ID)}, 2)
		if ferr == nil && len(hs) == 1 {
			k.priv = hs[0]
		}
	}
	return attempt()
}
