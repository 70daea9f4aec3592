package p11

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/pinblob"
	"github.com/cardwright/cardwright/secret"
	"github.com/miekg/pkcs11"
)

// Encrypted PINs (docs/pinblob.md) opened with token keys: RSA through
// CKM_RSA_X_509 (or the token's own OAEP when it takes SHA-256), EC
// through CKM_ECDH1_DERIVE.

// tokenKeyWithCert makes a key pair on the session's token, has the test
// CA certify it and writes the certificate with certLabel.
func tokenKeyWithCert(t testing.TB, s *Session, ca *testCA, spec KeySpec, label, certLabel string) (*Key, *x509.Certificate) {
	t.Helper()
	k, err := s.GenerateKeyPair(spec, label, nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := k.CertificateRequest(&x509.CertificateRequest{Subject: pkix.Name{CommonName: "PIN encryption " + label}})
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	cert := ca.issue(t, csr)
	if _, err := s.WriteCertificate(cert, certLabel, nil); err != nil {
		t.Fatal(err)
	}
	return k, cert
}

// pinKey is what the runner does with a descriptor's key: the token's
// own OAEP when it takes SHA-256, else raw RSA with the padding removed by
// pinblob; EC keys as they are.
func pinKey(t testing.TB, k *Key, cert *x509.Certificate) pinblob.Key {
	t.Helper()
	var priv any = k
	if _, ok := k.Public().(*rsa.PublicKey); ok {
		native, err := k.OAEPSupported(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("token decrypts RSA-OAEP-SHA-256 itself: %v", native)
		if !native {
			if priv, err = pinblob.OAEPDecrypter(k); err != nil {
				t.Fatal(err)
			}
		}
	}
	pk, err := pinblob.NewKey(cert, priv)
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

func testPINs() []pinblob.PIN {
	return []pinblob.PIN{
		{Name: pinblob.PIN1, Value: secret.New("581204")},
		{Name: pinblob.PUK, Value: secret.New("30917725")},
		{Name: pinblob.OP, Value: secret.New("op-66130")},
	}
}

func checkPINs(t *testing.T, got, want []pinblob.PIN) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d secrets, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Name != want[i].Name || !got[i].Value.Equal(want[i].Value) {
			t.Errorf("secret %d: %s differs from %s", i, got[i].Name, want[i].Name)
		}
	}
}

func TestPINBlobWithTokenKeys(t *testing.T) {
	m := softhsm(t)
	tok := newToken(t, m)
	ca := newCA(t)
	for _, spec := range []KeySpec{RSA2048, ECP256, ECP384} {
		t.Run(spec.String(), func(t *testing.T) {
			s := userSession(t, tok)
			name := strings.ReplaceAll(t.Name(), "/", " ")
			_, cert := tokenKeyWithCert(t, s, ca, spec, name, name)
			_, otherCert := tokenKeyWithCert(t, s, ca, spec, name+" other", name+" other")
			pins := testPINs()
			content, err := pinblob.Seal(rand.Reader, cert, pins)
			if err != nil {
				t.Fatal(err)
			}

			// As the runner would: module + any slot + label + PIN.
			k, err := m.OpenKey(-1, name, testPIN)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { k.Session().Close() })
			kc, err := k.Certificate()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(kc.Raw, cert.Raw) {
				t.Fatalf("Certificate() is %q, want %q", kc.Subject, cert.Subject)
			}
			got, err := pinblob.Open(content, []pinblob.Key{pinKey(t, k, kc)})
			if err != nil {
				noSecrets(t, err.Error(), pinsValues(pins)...)
				t.Fatal(err)
			}
			checkPINs(t, got, pins)

			// A changed byte in the key field (wrapped key or ephemeral
			// point) or in the ciphertext is an authentication failure,
			// whatever the token makes of it.
			blob, err := pinblob.FindDataObject(content, pinblob.Label)
			if err != nil {
				t.Fatal(err)
			}
			pk := pinKey(t, k, kc)
			for _, off := range []int{28, 28 + 17, len(blob) - 1} {
				changed := bytes.Clone(blob)
				changed[off] ^= 0x80
				_, err := pinblob.OpenBlob(changed, []pinblob.Key{pk})
				if !errors.Is(err, pinblob.ErrAuthentication) && !errors.Is(err, pinblob.ErrMalformed) {
					t.Errorf("byte %d changed: %v, want ErrAuthentication (or ErrMalformed for an EC point off the curve)", off, err)
				}
			}
			if pub, ok := cert.PublicKey.(*rsa.PublicKey); ok {
				// A wrapped key not below the modulus, which the token
				// would refuse with an error of its own.
				changed := bytes.Clone(blob)
				copy(changed[28:28+pub.Size()], bytes.Repeat([]byte{0xFF}, pub.Size()))
				if _, err := pinblob.OpenBlob(changed, []pinblob.Key{pk}); !errors.Is(err, pinblob.ErrAuthentication) {
					t.Errorf("wrapped key >= n: %v, want ErrAuthentication", err)
				}
			}

			// Another key of the same token: the error names the blob's id.
			other, err := m.OpenKey(int(tok.SlotID()), name+" other", testPIN)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { other.Session().Close() })
			_, err = pinblob.Open(content, []pinblob.Key{pinKey(t, other, otherCert)})
			var nk *pinblob.NoKeyError
			if !errors.As(err, &nk) || !bytes.Equal(nk.ID, pinblob.KeyID(cert)) {
				t.Fatalf("open with another key: %v, want NoKeyError for %X", err, pinblob.KeyID(cert))
			}
			if want := "#" + strings.ToUpper(hex.EncodeToString(pinblob.KeyID(cert))); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
			noSecrets(t, err.Error(), pinsValues(pins)...)

			// The other key paired with this certificate: right id, wrong
			// private half. NewKey catches it for RSA (public key
			// compared); for EC the blob does not authenticate.
			if _, isRSA := cert.PublicKey.(*rsa.PublicKey); !isRSA {
				wrong, err := pinblob.NewKey(cert, other)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := pinblob.Open(content, []pinblob.Key{wrong}); !errors.Is(err, pinblob.ErrAuthentication) {
					t.Errorf("open with the wrong private half: %v, want ErrAuthentication", err)
				}
			} else if _, err := pinblob.NewKey(cert, other); err == nil {
				t.Errorf("NewKey paired a certificate with another token key")
			}
		})
	}
}

func pinsValues(pins []pinblob.PIN) []secret.Value {
	var out []secret.Value
	for _, p := range pins {
		out = append(out, p.Value)
	}
	return out
}

// The token's ECDH equals crypto/ecdh's, on both curves, and the raw RSA
// operation is c^d mod n.
func TestECDHAndDecryptRaw(t *testing.T) {
	m := softhsm(t)
	tok := newToken(t, m)
	s := userSession(t, tok)
	for _, spec := range []KeySpec{ECP256, ECP384} {
		t.Run(spec.String(), func(t *testing.T) {
			k, err := s.GenerateKeyPair(spec, "ecdh "+spec.String(), nil)
			if err != nil {
				t.Fatal(err)
			}
			mine, err := k.Public().(interface {
				ECDH() (*ecdh.PublicKey, error)
			}).ECDH()
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				eph, err := mine.Curve().GenerateKey(rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				want, err := eph.ECDH(mine)
				if err != nil {
					t.Fatal(err)
				}
				got, err := k.ECDH(eph.PublicKey())
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("token ECDH %X, crypto/ecdh %X", got, want)
				}
			}
			// A peer on another curve is refused before the token sees it.
			otherCurve := ecdh.P384()
			if spec.Curve == elliptic.P384() {
				otherCurve = ecdh.P256()
			}
			eph, _ := otherCurve.GenerateKey(rand.Reader)
			if _, err := k.ECDH(eph.PublicKey()); err == nil {
				t.Errorf("ECDH with a peer on another curve succeeded")
			}
			if _, err := k.DecryptRaw(make([]byte, 32)); err == nil {
				t.Errorf("DecryptRaw with an EC key succeeded")
			}
			// No derived secret objects stay behind.
			if objs, err := s.Find(Criteria{ClassIs(ClassSecretKey)}); err != nil || len(objs) != 0 {
				t.Errorf("secret key objects after ECDH: %v, %v", objs, err)
			}
		})
	}
	t.Run("RSA-2048", func(t *testing.T) {
		k, err := s.GenerateKeyPair(RSA2048, "raw rsa", nil)
		if err != nil {
			t.Fatal(err)
		}
		pub := k.Public().(*rsa.PublicKey)
		for _, m := range []*big.Int{big.NewInt(2), new(big.Int).Rsh(pub.N, 9), new(big.Int).Sub(pub.N, big.NewInt(1))} {
			c := new(big.Int).Exp(m, big.NewInt(int64(pub.E)), pub.N).FillBytes(make([]byte, pub.Size()))
			got, err := k.DecryptRaw(c)
			if err != nil {
				t.Fatal(err)
			}
			if new(big.Int).SetBytes(got).Cmp(m) != 0 || len(got) > pub.Size() {
				t.Errorf("DecryptRaw(%X…) = %X…, want %X…", c[:4], got[:min(4, len(got))], m.Bytes()[:min(4, len(m.Bytes()))])
			}
		}
		if _, err := k.DecryptRaw(make([]byte, pub.Size()+1)); err == nil {
			t.Errorf("DecryptRaw of an input longer than the modulus succeeded")
		}
		if _, err := k.ECDH(nil); err == nil {
			t.Errorf("ECDH with an RSA key succeeded")
		}
		// Native OAEP: what the token says it takes must work, and what
		// it refuses must be ErrNotSupported (SoftHSM2 2.6: SHA-1 only).
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			ok, err := k.OAEPSupported(h)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("OAEP with %v on the token: %v", h, ok)
			msg := []byte("content key, 32 bytes long......")
			c, _ := rsa.EncryptOAEP(h.New(), rand.Reader, pub, msg, nil)
			got, err := k.Decrypt(nil, c, &rsa.OAEPOptions{Hash: h, MGFHash: h})
			switch {
			case ok && (err != nil || !bytes.Equal(got, msg)):
				t.Errorf("OAEP %v: %v", h, err)
			case !ok && !errors.Is(err, ErrNotSupported):
				t.Errorf("OAEP %v refused with %v, want ErrNotSupported", h, err)
			}
			if !ok {
				continue
			}
			// A ciphertext whose padding is wrong: CKR_ENCRYPTED_DATA_INVALID
			// (PKCS#11 v2.40 §5.10) comes back as rsa.ErrDecryption, as
			// from crypto/rsa; SoftHSM2 2.6 answers CKR_GENERAL_ERROR.
			bad := bytes.Clone(c)
			bad[len(bad)/2] ^= 1
			_, err = k.Decrypt(nil, bad, &rsa.OAEPOptions{Hash: h, MGFHash: h})
			t.Logf("OAEP %v, changed ciphertext: %v", h, err)
			if !errors.Is(err, rsa.ErrDecryption) && !errors.Is(err, pkcs11.Error(pkcs11.CKR_GENERAL_ERROR)) {
				t.Errorf("OAEP %v, changed ciphertext: %v, want rsa.ErrDecryption", h, err)
			}
		}
	})
}

// PKCS#12 keys imported to a token (ImportPKCS12) open blobs sealed for
// their certificates: the pinblob test keys.
func TestPINBlobWithImportedKeys(t *testing.T) {
	m := softhsm(t)
	tok := newToken(t, m)
	s := userSession(t, tok)
	pw := secret.New("cardwright")
	for _, name := range []string{"rsa2048", "p384", "p521"} {
		t.Run(name, func(t *testing.T) {
			pfx, err := os.ReadFile("../pinblob/testdata/" + name + ".p12")
			if err != nil {
				t.Fatal(err)
			}
			soft, err := pinblob.LoadPKCS12(pfx, pw)
			if err != nil {
				t.Fatal(err)
			}
			imp, err := s.ImportPKCS12(pfx, pw, "imported "+name, nil)
			if err != nil {
				t.Fatal(err)
			}
			pins := testPINs()
			content, err := pinblob.Seal(rand.Reader, soft.Certificate(), pins)
			if err != nil {
				t.Fatal(err)
			}
			k, err := m.OpenKey(-1, "imported "+name, testPIN)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { k.Session().Close() })
			if !bytes.Equal(k.ID, imp.Key.ID) {
				t.Errorf("OpenKey found key %X, imported %X", k.ID, imp.Key.ID)
			}
			got, err := pinblob.Open(content, []pinblob.Key{pinKey(t, k, soft.Certificate())})
			if err != nil {
				t.Fatal(err)
			}
			checkPINs(t, got, pins)
		})
	}
}

func TestOpenKeyErrors(t *testing.T) {
	m := softhsm(t)
	tok := newToken(t, m)
	ca := newCA(t)
	s := userSession(t, tok)
	// The certificate's label differs from the key's: OpenKey finds the
	// key through the certificate's CKA_ID.
	k, _ := tokenKeyWithCert(t, s, ca, ECP256, "key-label-5521", "cert-alias-5521")
	byAlias, err := m.OpenKey(-1, "cert-alias-5521", testPIN)
	if err != nil {
		t.Fatal(err)
	}
	byAlias.Session().Close()
	fresh := newToken(t, m)
	if !bytes.Equal(byAlias.ID, k.ID) {
		t.Errorf("by certificate label: key %X, want %X", byAlias.ID, k.ID)
	}
	for _, c := range []struct {
		slot  int
		label string
		pin   secret.Value
		want  error
	}{
		{-1, "no-such-label-5521", testPIN, ErrTokenNotFound},
		{int(tok.SlotID()), "no-such-label-5521", testPIN, ErrObjectNotFound},
		// A token no session has logged in to (login state is per token).
		{int(fresh.SlotID()), "key-label-5521", secret.New("wrong-pin-88"), pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)},
		{-1, "", testPIN, nil},
	} {
		t.Run(fmt.Sprintf("%d %s", c.slot, c.label), func(t *testing.T) {
			k, err := m.OpenKey(c.slot, c.label, c.pin)
			if err == nil {
				k.Session().Close()
				t.Fatal("OpenKey succeeded")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("error %v, want %v", err, c.want)
			}
			var pe *PINError
			if c.want == pkcs11.Error(pkcs11.CKR_PIN_INCORRECT) && !errors.As(err, &pe) {
				t.Errorf("wrong PIN: %T, want *PINError", err)
			}
			noSecrets(t, err.Error(), c.pin)
		})
	}
}

// Keys the token will not use for this: an EC key without CKA_DERIVE and an
// RSA key without CKA_DECRYPT give errors wrapping ErrNotSupported (so a
// caller can say "this key cannot open PIN blobs"), the CKR in the chain.
func TestDecryptNotPermitted(t *testing.T) {
	m := softhsm(t)
	s := userSession(t, newToken(t, m))
	params, _ := curveParams(ECP256.Curve)
	ecPub := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC), pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte{0xEC}),
	}
	ecPriv := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC), pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false), pkcs11.NewAttribute(pkcs11.CKA_ID, []byte{0xEC}),
	}
	if _, _, err := m.ctx.GenerateKeyPair(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)}, ecPub, ecPriv); err != nil {
		t.Fatal(err)
	}
	rsaPub, rsaPriv := rsaTemplates("no decrypt", []byte{0x5A})
	for _, a := range rsaPriv {
		if a.Type == pkcs11.CKA_DECRYPT {
			a.Value = []byte{0}
		}
	}
	if _, _, err := m.ctx.GenerateKeyPair(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}, rsaPub, rsaPriv); err != nil {
		t.Fatal(err)
	}

	ec, err := s.FindKey([]byte{0xEC}, "")
	if err != nil {
		t.Fatal(err)
	}
	eph, _ := ecdh.P256().GenerateKey(rand.Reader)
	_, err = ec.ECDH(eph.PublicKey())
	t.Logf("ECDH without CKA_DERIVE: %v", err)
	if !errors.Is(err, ErrNotSupported) || !errors.Is(err, pkcs11.Error(pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED)) {
		t.Errorf("ECDH without CKA_DERIVE: %v, want ErrNotSupported with CKR_KEY_FUNCTION_NOT_PERMITTED", err)
	}
	rk, err := s.FindKey([]byte{0x5A}, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = rk.DecryptRaw(make([]byte, 256))
	t.Logf("DecryptRaw without CKA_DECRYPT: %v", err)
	if !errors.Is(err, ErrNotSupported) || !errors.Is(err, pkcs11.Error(pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED)) {
		t.Errorf("DecryptRaw without CKA_DECRYPT: %v, want ErrNotSupported with CKR_KEY_FUNCTION_NOT_PERMITTED", err)
	}
}
