// Package decryptkeys adapts the configured PIN-decryption keys ([pins]
// decrypt_p12…, decrypt_module…; docs/config.md, docs/pinblob.md) to
// pinblob.Key, the port the runner opens encrypted-PIN blobs with: a
// PKCS#12 file is read into memory, a PKCS#11 key is used on its token
// through package p11. It is an adapter beside pinblob (as signing/p11store
// is beside signing): cmd/cardwright (and later the GUI) call Load, the
// runner sees only []pinblob.Key.
package decryptkeys

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/pinblob"
	"github.com/cardwright/cardwright/secret"
)

// Load loads the configured decryption keys for encrypted PINs
// ([pins] decrypt_p12…, decrypt_module…; docs/config.md, docs/pinblob.md),
// in configuration order. It is called once, when a command builds its
// runner: a missing file, a wrong password or PIN, or a key that is not on
// its token stops start-up with an error naming the descriptor, never its
// secret.
//
// A PKCS#11 key is opened here (session, login, key, certificate) to learn
// its key id and what the token can do, then closed again: the token is
// logged in only while a card's PINs are being decrypted (tokenKey).
func Load(cfg *config.Config) ([]pinblob.Key, error) {
	var keys []pinblob.Key
	for i, d := range cfg.DecryptKeys {
		var k pinblob.Key
		var err error
		if d.P12File != "" {
			k, err = loadPKCS12(d)
		} else {
			k, err = openTokenKey(d, cfg.ModuleAllowed)
		}
		if err != nil {
			return nil, fmt.Errorf("loading PIN decryption key %d (%s): %w", i+1, describe(d), err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// describe names a descriptor without its secret.
func describe(d config.DecryptKey) string {
	if d.P12File != "" {
		return "PKCS#12 " + d.P12File
	}
	slot := "any slot"
	if d.Slot >= 0 {
		slot = fmt.Sprintf("slot %d", d.Slot)
	}
	return fmt.Sprintf("PKCS#11 %s, %s, label %q", d.Module, slot, d.Label)
}

func loadPKCS12(d config.DecryptKey) (pinblob.Key, error) {
	b, err := os.ReadFile(d.P12File)
	if err != nil {
		return pinblob.Key{}, err
	}
	return pinblob.LoadPKCS12(b, d.P12Password)
}

// openTokenKey opens the token key once to pair it with its certificate
// (or, when the token holds none, with its public key: the key id is a
// hash of the DER SubjectPublicKeyInfo, the same bytes a certificate
// carries) and, for RSA, to learn whether the token decrypts
// RSA-OAEP-SHA-256 itself (SoftHSM2 2.6 does not: the padding is then
// removed in software over CKM_RSA_X_509, pinblob.OAEPDecrypter).
func openTokenKey(d config.DecryptKey, allowed func(string) bool) (pinblob.Key, error) {
	m, err := p11.Load(d.Module, allowed)
	if err != nil {
		return pinblob.Key{}, err
	}
	k, err := m.OpenKey(d.Slot, d.Label, d.PIN)
	if err != nil {
		return pinblob.Key{}, err
	}
	defer k.Session().Close()
	cert, err := k.Certificate()
	if errors.Is(err, p11.ErrObjectNotFound) {
		cert, err = publicKeyOnly(k.Public())
	}
	if err != nil {
		return pinblob.Key{}, err
	}
	tk := &tokenKey{m: m, slot: d.Slot, label: d.Label, pin: d.PIN, pub: k.Public()}
	switch k.Public().(type) {
	case *rsa.PublicKey:
		if tk.nativeOAEP, err = k.OAEPSupported(crypto.SHA256); err != nil {
			return pinblob.Key{}, err
		}
	case *ecdsa.PublicKey:
	default:
		return pinblob.Key{}, fmt.Errorf("%w: %T key", pinblob.ErrUnsupported, k.Public())
	}
	if err := probe(k, tk.nativeOAEP); err != nil {
		return pinblob.Key{}, err
	}
	return pinblob.NewKey(cert, tk)
}

// probe runs the key's decryption step once on a value made here,
// the way a blob will need it, so that a key the token will not use that
// way (no CKA_DECRYPT or CKA_DERIVE, no CKM_RSA_X_509 or CKM_ECDH1_DERIVE)
// stops start-up instead of the first finalization job.
func probe(k *p11.Key, nativeOAEP bool) error {
	switch pub := k.Public().(type) {
	case *rsa.PublicKey:
		if nativeOAEP {
			return nil // OAEPSupported has just decrypted with it
		}
		want := make([]byte, 32)
		rand.Read(want)
		c, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, want, nil)
		if err != nil {
			return fmt.Errorf("trying the key: %w", err)
		}
		d, err := pinblob.OAEPDecrypter(k)
		if err != nil {
			return err
		}
		got, err := d.Decrypt(nil, c, &rsa.OAEPOptions{Hash: crypto.SHA256})
		if err != nil {
			return fmt.Errorf("trying the key (RSA-OAEP-SHA-256 over the raw RSA operation): %w", err)
		}
		if !bytes.Equal(got, want) {
			return errors.New("trying the key: the token decrypted to another value")
		}
	case *ecdsa.PublicKey:
		mine, err := pub.ECDH()
		if err != nil {
			return fmt.Errorf("trying the key: %w", err)
		}
		eph, err := mine.Curve().GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("trying the key: %w", err)
		}
		want, err := eph.ECDH(mine)
		if err != nil {
			return fmt.Errorf("trying the key: %w", err)
		}
		got, err := k.ECDH(eph.PublicKey())
		if err != nil {
			return fmt.Errorf("trying the key (ECDH): %w", err)
		}
		if !bytes.Equal(got, want) {
			return errors.New("trying the key: the token derived another ECDH secret")
		}
	}
	return nil
}

// publicKeyOnly stands in for the certificate of a key that has none on its
// token: pinblob needs only the SubjectPublicKeyInfo and the public key.
func publicKeyOnly(pub crypto.PublicKey) (*x509.Certificate, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding the public key: %w", err)
	}
	return &x509.Certificate{RawSubjectPublicKeyInfo: spki, PublicKey: pub}, nil
}

// tokenKey is a configured PKCS#11 decryption key. Each use opens it
// afresh (C_OpenSession, C_Login, find) and closes the session afterwards,
// so the token is not held logged in between cards and a token that was
// pulled or restarted meanwhile is found again. The login ends with the
// last session of this process on the token (PKCS#11 v2.40 §5.6); no
// C_Logout, which would also log out another session of this process
// working on the same token. It is a crypto.Decrypter for RSA keys and a
// pinblob.ECDHKey for EC keys.
type tokenKey struct {
	mu         sync.Mutex // one use at a time
	m          *p11.Module
	slot       int
	label      string
	pin        secret.Value
	pub        crypto.PublicKey // as found at start
	nativeOAEP bool             // the token does RSA-OAEP-SHA-256 itself
}

func (t *tokenKey) Public() crypto.PublicKey { return t.pub }

// use opens the key, checks it is still the one found at start, and runs f.
func (t *tokenKey) use(f func(k *p11.Key) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	k, err := t.m.OpenKey(t.slot, t.label, t.pin)
	if err != nil {
		return err
	}
	defer k.Session().Close()
	if p, ok := t.pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !p.Equal(k.Public()) {
		return fmt.Errorf("the key labelled %q is no longer the key found at start", t.label)
	}
	return f(k)
}

// Decrypt does RSA-OAEP on the token, or over its raw RSA operation.
func (t *tokenKey) Decrypt(r io.Reader, c []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	var out []byte
	err := t.use(func(k *p11.Key) error {
		var d crypto.Decrypter = k
		if !t.nativeOAEP {
			var err error
			if d, err = pinblob.OAEPDecrypter(k); err != nil {
				return err
			}
		}
		var err error
		out, err = d.Decrypt(r, c, opts)
		return err
	})
	return out, err
}

// ECDH derives the shared secret on the token (CKM_ECDH1_DERIVE).
func (t *tokenKey) ECDH(remote *ecdh.PublicKey) ([]byte, error) {
	var out []byte
	err := t.use(func(k *p11.Key) error {
		var err error
		out, err = k.ECDH(remote)
		return err
	})
	return out, err
}
