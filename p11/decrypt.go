package p11

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/cardwright/cardwright/secret"
	"github.com/miekg/pkcs11"
)

// Session is the session the key was found or made in. Closing it ends
// the key's use.
func (k *Key) Session() *Session { return k.s }

// DecryptRaw is the bare RSA private-key operation m = c^d mod n with
// CKM_RSA_X_509 (PKCS#11 v2.40 §2.1.8): no padding is checked or removed.
// It lets software remove a padding the token's own mechanism cannot
// handle (pinblob.OAEPDecrypter does RSA-OAEP-SHA-256 this way on SoftHSM2
// 2.6). The key must allow CKA_DECRYPT and the token CKM_RSA_X_509; one
// that does not gives an error wrapping ErrNotSupported. The result is as
// long as the module makes it (at most the modulus length; leading zero
// bytes may be missing).
func (k *Key) DecryptRaw(c []byte) ([]byte, error) {
	pub, ok := k.public.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("decrypting: key %q is not an RSA key", k.Label)
	}
	if len(c) > pub.Size() {
		return nil, fmt.Errorf("decrypting with key %q: input of %d bytes is longer than the %d-byte modulus", k.Label, len(c), pub.Size())
	}
	out, err := k.run(pkcs11.NewMechanism(pkcs11.CKM_RSA_X_509, nil), c, k.s.t.m.ctx.DecryptInit, k.s.t.m.ctx.Decrypt)
	if err != nil {
		if isUnsupported(err) || is(err, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED) {
			err = &unsupportedError{what: "raw RSA (CKM_RSA_X_509)", err: err}
		}
		return nil, fmt.Errorf("decrypting with key %q: %w", k.Label, err)
	}
	return out, nil
}

// OAEPSupported reports whether the token decrypts RSA-OAEP with hash h
// (for both the label hash and MGF1) with this key. PKCS#11 has no way to
// ask for mechanism parameters, so it tries: a random 32-byte value is
// encrypted in software to the key's public key and decrypted with
// CKM_RSA_PKCS_OAEP (one private-key operation). A token that refuses
// the parameters gives false and no error; SoftHSM2 2.6 does for SHA-256.
func (k *Key) OAEPSupported(h crypto.Hash) (bool, error) {
	pub, ok := k.public.(*rsa.PublicKey)
	if !ok {
		return false, fmt.Errorf("probing RSA-OAEP: key %q is not an RSA key", k.Label)
	}
	if !h.Available() {
		return false, fmt.Errorf("probing RSA-OAEP: hash %v is not available", h)
	}
	msg := make([]byte, 32)
	if _, err := rand.Read(msg); err != nil {
		return false, fmt.Errorf("probing RSA-OAEP: %w", err)
	}
	ct, err := rsa.EncryptOAEP(h.New(), rand.Reader, pub, msg, nil)
	if err != nil {
		return false, fmt.Errorf("probing RSA-OAEP with key %q: %w", k.Label, err)
	}
	got, err := k.Decrypt(nil, ct, &rsa.OAEPOptions{Hash: h, MGFHash: h})
	switch {
	case errors.Is(err, ErrNotSupported):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("probing RSA-OAEP: %w", err)
	case !bytes.Equal(got, msg):
		return false, fmt.Errorf("probing RSA-OAEP with key %q: the token decrypted to a different value", k.Label)
	}
	return true, nil
}

// ECDH computes the ECDH shared secret with a peer's public key on the
// token: C_DeriveKey with CKM_ECDH1_DERIVE, CKD_NULL and the peer's
// uncompressed point as public data (PKCS#11 v2.40 §2.3.15), into a
// CKK_GENERIC_SECRET session object (not on the token, not sensitive,
// extractable, CKA_VALUE_LEN the field size), whose CKA_VALUE is read and
// which is then destroyed. The result is the x-coordinate of the shared
// point (SEC 1 §3.3.1), what crypto/ecdh gives, so *Key satisfies
// pinblob.ECDHKey. The private key needs CKA_DERIVE (GenerateKeyPair and
// ImportPKCS12 set it for EC keys); a key without it, or a token without
// the mechanism, gives an error wrapping ErrNotSupported.
func (k *Key) ECDH(remote *ecdh.PublicKey) ([]byte, error) {
	pub, ok := k.public.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("deriving an ECDH secret: key %q is not an EC key", k.Label)
	}
	mine, err := pub.ECDH()
	if err != nil {
		return nil, fmt.Errorf("deriving an ECDH secret with key %q: %w", k.Label, err)
	}
	if remote == nil || remote.Curve() != mine.Curve() {
		return nil, fmt.Errorf("deriving an ECDH secret with key %q: the peer's key is not on %s", k.Label, pub.Curve.Params().Name)
	}
	size := (pub.Curve.Params().BitSize + 7) / 8
	mech := pkcs11.NewMechanism(pkcs11.CKM_ECDH1_DERIVE, pkcs11.NewECDH1DeriveParams(pkcs11.CKD_NULL, nil, remote.Bytes()))
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, size),
	}
	s := k.s
	var out []byte
	err = k.retry(func() error {
		h, err := s.t.m.ctx.DeriveKey(s.h, []*pkcs11.Mechanism{mech}, k.priv, tmpl)
		if err != nil {
			return err
		}
		a, err := s.t.m.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if derr := s.t.m.ctx.DestroyObject(s.h, h); err == nil && derr != nil {
			err = fmt.Errorf("destroying the derived secret: %w", derr)
		}
		if err != nil {
			if a != nil {
				clear(a[0].Value)
			}
			return err
		}
		out = a[0].Value
		return nil
	})
	if err != nil {
		if isUnsupported(err) || is(err, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED) {
			err = &unsupportedError{what: "ECDH (CKM_ECDH1_DERIVE)", err: err}
		}
		return nil, fmt.Errorf("deriving an ECDH secret with key %q: %w", k.Label, err)
	}
	if len(out) != size {
		clear(out)
		return nil, fmt.Errorf("deriving an ECDH secret with key %q: the token gave %d bytes, want %d", k.Label, len(out), size)
	}
	return out, nil
}

// Certificate finds the key's certificate on the token: a CKO_CERTIFICATE
// with the key's CKA_ID (any certificate when the key has none) whose
// public key is the key's.
func (k *Key) Certificate() (*x509.Certificate, error) {
	s := k.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil, errClosed
	}
	t := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE)}
	if len(k.ID) > 0 {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_ID, k.ID))
	}
	hs, err := s.find(t, 0)
	if err != nil {
		return nil, err
	}
	for _, h := range hs {
		a, err := s.t.m.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if err != nil {
			continue
		}
		if c, err := x509.ParseCertificate(a[0].Value); err == nil && samePublic(k.public, c.PublicKey) {
			return c, nil
		}
	}
	return nil, fmt.Errorf("finding the certificate of key %q (id %X): %w", k.Label, k.ID, ErrObjectNotFound)
}

// OpenKey opens the private key a configured key descriptor names (a
// module, a slot, a key label, a PIN: the HSM decryption keys of
// config.DecryptKey): it finds the token, opens a session, logs in with
// pin and finds the private key labelled label, or else the one whose
// certificate or public key object is labelled label (same CKA_ID). The
// PIN comes from the configuration, so the login is LoginShared: while
// this process holds the token logged in with that same PIN, the session
// joins the login; with another PIN it fails with ErrLoggedInElsewhere.
//
// slot is a slot ID, or -1 for any: then the only initialised token, or
// else the one token whose public objects (certificates, public keys,
// looked up before any login) carry the label. The PIN is only ever
// offered to that one token. The key keeps its session, logged in, for
// re-login and later use; close it with k.Session().Close().
func (m *Module) OpenKey(slot int, label string, pin secret.Value) (*Key, error) {
	if label == "" {
		return nil, errors.New("opening a token key: no key label")
	}
	tok, err := m.tokenForKey(slot, label)
	if err != nil {
		return nil, fmt.Errorf("opening key %q: %w", label, err)
	}
	s, err := tok.Open()
	if err != nil {
		return nil, err
	}
	if err := s.LoginShared(pin); err != nil {
		s.Close()
		return nil, err
	}
	k, err := s.FindKey(nil, label)
	if errors.Is(err, ErrObjectNotFound) {
		var id []byte
		if id, err = s.idOfLabel(label); err == nil {
			k, err = s.FindKey(id, "")
		}
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("opening key %q on token %q: %w", label, tok.label, err)
	}
	return k, nil
}

// idOfLabel is the CKA_ID of the certificates and public keys labelled
// label; they must agree on one.
func (s *Session) idOfLabel(label string) ([]byte, error) {
	var id []byte
	for _, class := range []uint{ClassCertificate, ClassPublicKey} {
		objs, err := s.Find(Criteria{ClassIs(class), LabelIs(label)})
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			switch {
			case len(o.ID) == 0:
			case id == nil:
				id = o.ID
			case !bytes.Equal(id, o.ID):
				return nil, fmt.Errorf("finding the key labelled %q: objects with IDs %X and %X carry the label: %w", label, id, o.ID, ErrAmbiguous)
			}
		}
	}
	if id == nil {
		return nil, fmt.Errorf("finding the key labelled %q: %w", label, ErrObjectNotFound)
	}
	return id, nil
}

// tokenForKey picks the token for OpenKey.
func (m *Module) tokenForKey(slot int, label string) (*Token, error) {
	if slot >= 0 {
		t, err := m.TokenInSlot(uint(slot))
		if err != nil {
			return nil, err
		}
		if !t.info.Initialized() {
			return nil, fmt.Errorf("the token in slot %d is not initialised: %w", slot, ErrTokenNotFound)
		}
		return t, nil
	}
	toks, err := m.Tokens()
	if err != nil {
		return nil, err
	}
	var inited, found []*Token
	for _, t := range toks {
		if t.info.Initialized() {
			inited = append(inited, t)
		}
	}
	if len(inited) == 1 {
		return inited[0], nil
	}
	for _, t := range inited {
		s, err := t.Open()
		if err != nil {
			return nil, err
		}
		_, err = s.idOfLabel(label)
		s.Close()
		switch {
		case err == nil:
			found = append(found, t)
		case !errors.Is(err, ErrObjectNotFound):
			return nil, fmt.Errorf("looking at token %q: %w", t.label, err)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no token shows a certificate or public key labelled %q: %w", label, ErrTokenNotFound)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%d tokens show a certificate or public key labelled %q, name the slot: %w", len(found), label, ErrAmbiguous)
}
