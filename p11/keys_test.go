package p11

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/cardwright/cardwright/secret"
	"github.com/miekg/pkcs11"
	"software.sslmate.com/src/go-pkcs12"
)

// testCA is a throwaway certification authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "p11 test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert, key}
}

// issue signs a certificate for the request's key and subject.
func (ca *testCA) issue(t testing.TB, csr *x509.CertificateRequest) *x509.Certificate {
	t.Helper()
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: csr.Subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// checkSigner signs with k and verifies with pub.
func checkSigner(t testing.TB, k crypto.Signer, pub crypto.PublicKey) {
	t.Helper()
	msg := []byte("cardwright p11 test message")
	h256 := sha256.Sum256(msg)
	h384 := sha512.Sum384(msg)
	switch p := pub.(type) {
	case *rsa.PublicKey:
		sig, err := k.Sign(rand.Reader, h256[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if err := rsa.VerifyPKCS1v15(p, crypto.SHA256, h256[:], sig); err != nil {
			t.Errorf("PKCS#1 v1.5 signature does not verify: %v", err)
		}
		pss := &rsa.PSSOptions{Hash: crypto.SHA384, SaltLength: rsa.PSSSaltLengthEqualsHash}
		sig, err = k.Sign(rand.Reader, h384[:], pss)
		if err != nil {
			t.Fatal(err)
		}
		if err := rsa.VerifyPSS(p, crypto.SHA384, h384[:], sig, pss); err != nil {
			t.Errorf("PSS signature does not verify: %v", err)
		}
	case *ecdsa.PublicKey:
		sig, err := k.Sign(rand.Reader, h256[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.VerifyASN1(p, h256[:], sig) {
			t.Errorf("ECDSA signature does not verify")
		}
	default:
		t.Fatalf("public key %T", pub)
	}
}

func checkDecrypter(t testing.TB, k crypto.Decrypter) {
	t.Helper()
	pub := k.Public().(*rsa.PublicKey)
	msg := []byte("a session key, say")
	//lint:ignore SA1019 Decrypt without options is CKM_RSA_PKCS; this checks it
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, msg)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.Decrypt(rand.Reader, ct, nil); err != nil || !bytes.Equal(got, msg) {
		t.Errorf("PKCS#1 v1.5 decrypt = %q, %v", got, err)
	}
	// SoftHSM2 2.6 decrypts OAEP with SHA-1 only (CKR_ARGUMENTS_BAD else).
	ct, err = rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.Decrypt(rand.Reader, ct, &rsa.OAEPOptions{Hash: crypto.SHA1}); err != nil || !bytes.Equal(got, msg) {
		t.Errorf("OAEP decrypt = %q, %v", got, err)
	}
}

func TestKeyPairCSRCertificate(t *testing.T) {
	m := softhsm(t)
	tok := newToken(t, m)
	ca := newCA(t)
	specs := []KeySpec{RSA2048, RSA3072, RSA4096, ECP256, ECP384}
	for i, spec := range specs {
		t.Run(spec.String(), func(t *testing.T) {
			s := userSession(t, tok)
			label := "key " + spec.String()
			var id []byte
			if i%2 == 0 {
				id = []byte{0xC0, byte(i)}
			}
			k, err := s.GenerateKeyPair(spec, label, id)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := KeyID(k.Public()); id == nil && !bytes.Equal(k.ID, want) {
				t.Errorf("key ID %X, want KeyID %X", k.ID, want)
			} else if id != nil && !bytes.Equal(k.ID, id) {
				t.Errorf("key ID %X, want %X", k.ID, id)
			}
			checkSigner(t, k, k.Public())
			if spec.Curve == nil {
				checkDecrypter(t, k)
			} else if _, err := k.Decrypt(rand.Reader, []byte{1}, nil); err == nil {
				t.Errorf("EC key decrypts")
			}

			// PKCS#10 signed on the token.
			der, err := k.CertificateRequest(&x509.CertificateRequest{Subject: pkix.Name{CommonName: "Holder " + spec.String(), Organization: []string{"cardwright"}}})
			if err != nil {
				t.Fatal(err)
			}
			csr, err := x509.ParseCertificateRequest(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := csr.CheckSignature(); err != nil {
				t.Fatalf("CSR signature: %v", err)
			}

			// The issued certificate, written back, goes with its key.
			cert := ca.issue(t, csr)
			obj, err := s.WriteCertificate(cert, label, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(obj.ID, k.ID) {
				t.Errorf("certificate CKA_ID %X, key %X", obj.ID, k.ID)
			}
			s.Close()

			s = userSession(t, tok) // a fresh session finds everything again
			found, err := s.KeyFor(cert)
			if err != nil {
				t.Fatal(err)
			}
			checkSigner(t, found, cert.PublicKey)
			byID, err := s.FindKey(k.ID, "")
			if err != nil || !samePublic(byID.Public(), cert.PublicKey) || byID.Label != label {
				t.Fatalf("FindKey(%X) = %+v, %v", k.ID, byID, err)
			}
			certs, err := s.Certificates()
			if err != nil {
				t.Fatal(err)
			}
			var e *CertEntry
			for i := range certs {
				if bytes.Equal(certs[i].ID, k.ID) {
					e = &certs[i]
				}
			}
			wantType, wantBits := "RSA", spec.RSABits
			if spec.Curve != nil {
				wantType, wantBits = "EC", spec.Curve.Params().BitSize
			}
			if e == nil || !bytes.Equal(e.DER, cert.Raw) || !e.HasKey || e.KeyLabel != label || e.Label != label ||
				e.KeyType != wantType || e.KeyBits != wantBits || e.TokenSerial != tok.Serial() || e.TokenLabel != tok.Label() || e.TokenModel == "" {
				t.Fatalf("certificate entry %+v", e)
			}
		})
	}
}

func TestImportPKCS12(t *testing.T) {
	m := softhsm(t)
	tok := newToken(t, m)
	ca := newCA(t)
	pw := secret.New("p12-pass-3361")
	for _, alg := range []string{"RSA", "EC"} {
		t.Run(alg, func(t *testing.T) {
			var key crypto.Signer
			var err error
			if alg == "RSA" {
				key, err = rsa.GenerateKey(rand.Reader, 2048)
			} else {
				key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			}
			if err != nil {
				t.Fatal(err)
			}
			csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "p12 " + alg}}, key)
			if err != nil {
				t.Fatal(err)
			}
			csr, _ := x509.ParseCertificateRequest(csrDER)
			cert := ca.issue(t, csr)
			pfx, err := pkcs12.Modern.Encode(key, cert, []*x509.Certificate{ca.cert}, pw.Reveal())
			if err != nil {
				t.Fatal(err)
			}
			s := userSession(t, tok)
			if _, err := s.ImportPKCS12(pfx, secret.New("wrong"), "p12 "+alg, nil); err == nil {
				t.Fatal("import with a wrong password succeeded")
			} else {
				noSecrets(t, err.Error(), pw)
			}
			imp, err := s.ImportPKCS12(pfx, pw, "p12 "+alg, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkSigner(t, imp.Key, cert.PublicKey)
			s.Close()

			s = userSession(t, tok)
			k, err := s.KeyFor(cert)
			if err != nil {
				t.Fatal(err)
			}
			checkSigner(t, k, cert.PublicKey)
			if alg == "RSA" {
				checkDecrypter(t, k)
			}
			chain, err := s.Find(Criteria{ClassIs(ClassCertificate), LabelIs("p11 test CA")})
			if err != nil || len(chain) == 0 {
				t.Fatalf("CA certificate from the PKCS#12: %v, %v", chain, err)
			}
			if v, err := s.Value(chain[0]); err != nil || !bytes.Equal(v, ca.cert.Raw) {
				t.Errorf("CA certificate value differs: %v", err)
			}
			// The private key is not readable.
			privs, _ := s.Find(Criteria{ClassIs(ClassPrivateKey), IDIs(k.ID)})
			if len(privs) != 1 {
				t.Fatalf("private keys with the ID: %v", privs)
			}
			secretAttr := uint(pkcs11.CKA_VALUE)
			if alg == "RSA" {
				secretAttr = pkcs11.CKA_PRIVATE_EXPONENT
			}
			if _, err := m.ctx.GetAttributeValue(s.h, pkcs11.ObjectHandle(privs[0].Handle), []*pkcs11.Attribute{pkcs11.NewAttribute(secretAttr, nil)}); !errors.Is(err, pkcs11.Error(pkcs11.CKR_ATTRIBUTE_SENSITIVE)) {
				t.Errorf("reading the imported private key's value: %v, want CKR_ATTRIBUTE_SENSITIVE", err)
			}
		})
	}
}

func TestFindDestroyEraseSerial(t *testing.T) {
	m := softhsm(t)
	tok := newToken(t, m)
	s := userSession(t, tok)
	if _, err := s.ReadCardSerial(); !errors.Is(err, ErrObjectNotFound) {
		t.Fatalf("card serial on a new token: %v", err)
	}
	for _, v := range []string{"0001", "CMS-0002"} { // the second replaces the first
		if err := s.WriteCardSerial([]byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.ReadCardSerial(); err != nil || string(got) != "CMS-0002" {
		t.Fatalf("card serial = %q, %v", got, err)
	}
	// Any label: replaced as well, readable without a login, and the
	// other data objects stay.
	for _, v := range []string{"first blob", "second blob"} {
		if err := s.WriteData("Encrypted PINs", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	anon, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	got, err := anon.ReadData("Encrypted PINs")
	anon.Close()
	if err != nil || string(got) != "second blob" {
		t.Fatalf("data object read without login = %q, %v", got, err)
	}
	if objs, err := s.Find(Criteria{ClassIs(ClassData), LabelIs("Encrypted PINs")}); err != nil || len(objs) != 1 {
		t.Fatalf("%d data objects labelled Encrypted PINs, %v", len(objs), err)
	}
	if got, err := s.ReadCardSerial(); err != nil || string(got) != "CMS-0002" {
		t.Fatalf("card serial after another data object = %q, %v", got, err)
	}
	if _, err := s.ReadData("no such data"); !errors.Is(err, ErrObjectNotFound) {
		t.Fatalf("missing data object: %v", err)
	}
	if err := s.Destroy(mustFind(t, s, Criteria{ClassIs(ClassData), LabelIs("Encrypted PINs")})...); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GenerateKeyPair(ECP256, "auth", []byte{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GenerateKeyPair(ECP256, "sign", []byte{2}); err != nil {
		t.Fatal(err)
	}
	attr := func(a, typ, v string) Attribute {
		t.Helper()
		at, err := ParseAttribute(a, typ, v)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	class := func(c string) Attribute {
		t.Helper()
		at, err := ParseClass(c)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	tests := []struct {
		name string
		c    Criteria
		want int
	}{
		{"everything", nil, 5},
		{"private keys", Criteria{class("CKO_PRIVATE_KEY")}, 2},
		{"by label", Criteria{attr("CKA_LABEL", "STRING", "auth")}, 2},
		{"class and hex id", Criteria{class("CKO_PUBLIC_KEY"), attr("CKA_ID", "HEX", "02")}, 1},
		{"key type by name", Criteria{attr("CKA_KEY_TYPE", "ULONG", "CKK_EC")}, 4},
		{"bool", Criteria{class("CKO_PRIVATE_KEY"), attr("CKA_SIGN", "BOOL", "true")}, 2},
		{"data object", Criteria{class("CKO_DATA"), attr("CKA_LABEL", "", CardSerialLabel)}, 1},
		{"no match", Criteria{attr("CKA_LABEL", "STRING", "nothing")}, 0},
	}
	for _, tt := range tests {
		got, err := s.Find(tt.c)
		if err != nil || len(got) != tt.want {
			t.Errorf("%s: Find = %d objects (%v), %v; want %d", tt.name, len(got), got, err, tt.want)
		}
	}
	// A session not logged in sees the public objects only.
	pub, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	s.Logout()
	if got, err := pub.Find(nil); err != nil || len(got) != 3 {
		t.Errorf("public objects: %v, %v; want 3", got, err)
	}
	if err := s.Login(testPIN); err != nil {
		t.Fatal(err)
	}

	sign, err := s.Find(Criteria{LabelIs("sign")})
	if err != nil || len(sign) != 2 {
		t.Fatal(sign, err)
	}
	if err := s.Destroy(sign...); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Find(nil); len(got) != 3 {
		t.Errorf("after destroying two: %d objects", len(got))
	}
	n, err := s.EraseObjects()
	if err != nil || n != 3 {
		t.Fatalf("EraseObjects = %d, %v", n, err)
	}
	if got, _ := s.Find(nil); len(got) != 0 {
		t.Errorf("after erasing: %v", got)
	}
}

func TestParseAttributeErrors(t *testing.T) {
	for _, tt := range [][3]string{
		{"CKA_NOPE", "STRING", "x"},
		{"CKA_ID", "HEX", "zz"},
		{"CKA_SIGN", "BOOL", "maybe"},
		{"CKA_MODULUS_BITS", "ULONG", "-1"},
		{"CKA_LABEL", "FLOAT", "1.5"},
	} {
		if _, err := ParseAttribute(tt[0], tt[1], tt[2]); err == nil {
			t.Errorf("ParseAttribute%q: no error", tt)
		}
	}
	if _, err := ParseClass("CKK_RSA"); err == nil {
		t.Error("ParseClass(CKK_RSA): no error")
	}
	if a, err := ParseAttribute("0x3", "STRING", "lbl"); err != nil || a.Type != pkcs11.CKA_LABEL {
		t.Errorf("numeric attribute: %+v, %v", a, err)
	}
}

// Some modules log the user out after C_Sign; the key logs in again with
// the PIN its session kept. Here the logout comes from a raw C_Logout.
func TestReloginAfterLogout(t *testing.T) {
	m := softhsm(t)
	tok := newToken(t, m)
	s := userSession(t, tok)
	k, err := s.GenerateKeyPair(ECP256, "relogin", nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := m.ctx.Logout(s.h); err != nil {
			t.Fatal(err)
		}
		checkSigner(t, k, k.Public())
	}
	// Without a kept PIN the error comes through with its CKR (SoftHSM2
	// drops private handles at logout: CKR_OBJECT_HANDLE_INVALID).
	s.Logout()
	_, err = k.Sign(rand.Reader, make([]byte, 32), crypto.SHA256)
	if !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN)) && !errors.Is(err, pkcs11.Error(pkcs11.CKR_OBJECT_HANDLE_INVALID)) {
		t.Fatalf("sign after Logout = %v, want CKR_USER_NOT_LOGGED_IN or CKR_OBJECT_HANDLE_INVALID", err)
	}
}

// Two tokens of one module used at once from several goroutines (run with
// -race): each keeps to its own objects.
func TestParallelTokens(t *testing.T) {
	m := softhsm(t)
	toks := []*Token{newToken(t, m), newToken(t, m)}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i, tok := range toks {
		for j := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := tok.Open()
				if err != nil {
					errs <- err
					return
				}
				defer s.Close()
				// Two sessions per token: the second joins the first's
				// login (same PIN, from the test, not a user).
				if err := s.LoginShared(testPIN); err != nil {
					errs <- err
					return
				}
				for n := range 3 {
					id := []byte{byte(i), byte(j), byte(n)}
					k, err := s.GenerateKeyPair(ECP256, "par", id)
					if err != nil {
						errs <- err
						return
					}
					h := sha256.Sum256(id)
					sig, err := k.Sign(rand.Reader, h[:], crypto.SHA256)
					if err != nil {
						errs <- err
						return
					}
					if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), h[:], sig) {
						errs <- errors.New("signature does not verify")
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, tok := range toks {
		s := userSession(t, tok)
		objs, err := s.Find(Criteria{ClassIs(ClassPrivateKey)})
		if err != nil || len(objs) != 6 {
			t.Fatalf("token %d: %d private keys, %v; want 6", i, len(objs), err)
		}
		for _, o := range objs {
			if len(o.ID) != 3 || int(o.ID[0]) != i {
				t.Errorf("token %d holds key %X of another token", i, o.ID)
			}
		}
	}
}

// A key with CKA_ALWAYS_AUTHENTICATE needs a CKU_CONTEXT_SPECIFIC login
// after each C_SignInit (PKCS#11 v2.40 §4.9); the key does it with the
// session's PIN.
func TestAlwaysAuthenticateKey(t *testing.T) {
	m := softhsm(t)
	tok := newToken(t, m)
	s := userSession(t, tok)
	params, _ := curveParams(ECP256.Curve)
	id := []byte{0xAA}
	_, _, err := m.ctx.GenerateKeyPair(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)},
		[]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params), pkcs11.NewAttribute(pkcs11.CKA_ID, id)},
		[]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true), pkcs11.NewAttribute(pkcs11.CKA_ID, id),
			pkcs11.NewAttribute(pkcs11.CKA_ALWAYS_AUTHENTICATE, true)})
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.FindKey(id, "")
	if err != nil {
		t.Fatal(err)
	}
	if !k.alwaysAuth {
		t.Fatal("CKA_ALWAYS_AUTHENTICATE not seen")
	}
	checkSigner(t, k, k.Public())
	checkSigner(t, k, k.Public())

	// Without the context login the module refuses: the test means something.
	h := sha256.Sum256([]byte("x"))
	if err := m.ctx.SignInit(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}, k.priv); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ctx.Sign(s.h, h[:]); !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN)) {
		t.Errorf("raw sign without the context login: %v, want CKR_USER_NOT_LOGGED_IN", err)
	}
}

func mustFind(t *testing.T, s *Session, c Criteria) []Object {
	t.Helper()
	objs, err := s.Find(c)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}
