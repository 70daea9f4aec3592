package p11

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/cardwright/cardwright/pinblob"
	"github.com/miekg/pkcs11"
)

// Each benchmark runs our call and the same raw miekg/pkcs11 call sequence
// alternately in one loop (so load from elsewhere hits both alike) and
// reports ns/op of each and their ratio (ours/raw). b.N counts pairs.
//
//	go test -run '^$' -bench . -benchtime 20x -count 5 ./p11   (docs/tokens.md has the figures)

type pair struct {
	ours, raw time.Duration
	n         int
}

// run times one pair in random order, so neither side gains from warm
// caches or pays for the other's leftovers, even when the module's own
// costs come in a periodic pattern (SoftHSM2's file store does).
func (p *pair) run(b *testing.B, ours, raw func() error) {
	p.n++
	if mrand.IntN(2) == 0 {
		p.time(ours, &p.ours, b)
		p.time(raw, &p.raw, b)
		return
	}
	p.time(raw, &p.raw, b)
	p.time(ours, &p.ours, b)
}

func (p *pair) time(f func() error, d *time.Duration, b *testing.B) {
	start := time.Now()
	if err := f(); err != nil {
		b.Fatal(err)
	}
	*d += time.Since(start)
}

func (p *pair) report(b *testing.B) {
	n := float64(b.N)
	b.ReportMetric(float64(p.ours.Nanoseconds())/n, "ours-ns/op")
	b.ReportMetric(float64(p.raw.Nanoseconds())/n, "raw-ns/op")
	b.ReportMetric(float64(p.ours)/float64(p.raw), "ratio")
}

// rawFindLabel is what a raw caller does to find a token by label.
func rawFindLabel(ctx *pkcs11.Ctx, label string) (uint, error) {
	ids, err := ctx.GetSlotList(true)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		ti, err := ctx.GetTokenInfo(id)
		if err != nil {
			return 0, err
		}
		if ti.Label == label && ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 {
			return id, nil
		}
	}
	return 0, ErrTokenNotFound
}

// BenchmarkInitTokenPIN: C_InitToken on an existing token, find it again,
// then an SO session sets the user PIN.
func BenchmarkInitTokenPIN(b *testing.B) {
	m := softhsm(b)
	ours := newToken(b, m)
	raw := newToken(b, m)
	var p pair
	for b.Loop() {
		p.run(b, func() (err error) {
			ours, err = m.InitTokenAndPIN(ours, testSO, testPIN, ours.Label())
			return err
		}, func() error {
			ctx := m.ctx
			slot, err := rawFindLabel(ctx, raw.Label())
			if err != nil {
				return err
			}
			if err := ctx.InitToken(slot, testSO.Reveal(), raw.Label()); err != nil {
				return err
			}
			if slot, err = rawFindLabel(ctx, raw.Label()); err != nil {
				return err
			}
			h, err := ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
			if err != nil {
				return err
			}
			defer ctx.CloseSession(h)
			if err := ctx.Login(h, pkcs11.CKU_SO, testSO.Reveal()); err != nil {
				return err
			}
			if err := ctx.InitPIN(h, testPIN.Reveal()); err != nil {
				return err
			}
			return ctx.Logout(h)
		})
	}
	p.report(b)
}

func rsaTemplates(label string, id []byte) (pub, priv []*pkcs11.Attribute) {
	pub = []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false), pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label), pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA), pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, 2048),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}), pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
	}
	priv = []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true), pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false), pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label), pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA), pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
	}
	return pub, priv
}

// BenchmarkKeygenRSA2048: C_GenerateKeyPair and reading the public key.
func BenchmarkKeygenRSA2048(b *testing.B) {
	m := softhsm(b)
	s := userSession(b, newToken(b, m))
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}
	var p pair
	for b.Loop() {
		p.run(b, func() error {
			_, err := s.GenerateKeyPair(RSA2048, "bench", []byte{1})
			return err
		}, func() error {
			pubT, privT := rsaTemplates("bench", []byte{2})
			pub, _, err := m.ctx.GenerateKeyPair(s.h, mech, pubT, privT)
			if err != nil {
				return err
			}
			_, err = m.ctx.GetAttributeValue(s.h, pub, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil), pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil)})
			return err
		})
	}
	p.report(b)
}

// rawSigner is the least a raw caller writes to sign with crypto/x509.
type rawSigner struct {
	ctx  *pkcs11.Ctx
	h    pkcs11.SessionHandle
	priv pkcs11.ObjectHandle
	pub  crypto.PublicKey
}

func (r *rawSigner) Public() crypto.PublicKey { return r.pub }
func (r *rawSigner) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	if err := r.ctx.SignInit(r.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)}, r.priv); err != nil {
		return nil, err
	}
	return r.ctx.Sign(r.h, append(append([]byte(nil), digestInfo[crypto.SHA256]...), digest...))
}

func benchKey(b *testing.B) (*Module, *Session, *Key, *rawSigner) {
	m := softhsm(b)
	s := userSession(b, newToken(b, m))
	k, err := s.GenerateKeyPair(RSA2048, "bench", []byte{7})
	if err != nil {
		b.Fatal(err)
	}
	return m, s, k, &rawSigner{ctx: m.ctx, h: s.h, priv: k.priv, pub: k.public}
}

// BenchmarkCSR: a PKCS#10 request through crypto/x509, signed on the token.
func BenchmarkCSR(b *testing.B) {
	_, _, k, raw := benchKey(b)
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Bench", Organization: []string{"cardwright"}}}
	var p pair
	for b.Loop() {
		p.run(b, func() error { _, err := k.CertificateRequest(tmpl); return err }, func() error { _, err := x509.CreateCertificateRequest(rand.Reader, tmpl, raw); return err })
	}
	p.report(b)
}

// BenchmarkSign: one RSA-2048 PKCS#1 v1.5 signature over a SHA-256 digest.
func BenchmarkSign(b *testing.B) {
	_, _, k, raw := benchKey(b)
	d := sha256.Sum256([]byte("bench"))
	var p pair
	for b.Loop() {
		p.run(b, func() error { _, err := k.Sign(rand.Reader, d[:], crypto.SHA256); return err }, func() error { _, err := raw.Sign(rand.Reader, d[:], crypto.SHA256); return err })
	}
	p.report(b)
}

// rawWriteCert is the raw C_CreateObject a caller would make for cert.
func rawWriteCert(m *Module, s *Session, cert *x509.Certificate, id []byte) func() error {
	return func() error {
		serial, err := asn1.Marshal(cert.SerialNumber)
		if err != nil {
			return err
		}
		_, err = m.ctx.CreateObject(s.h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE),
			pkcs11.NewAttribute(pkcs11.CKA_CERTIFICATE_TYPE, pkcs11.CKC_X_509),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, "bench"), pkcs11.NewAttribute(pkcs11.CKA_ID, id),
			pkcs11.NewAttribute(pkcs11.CKA_SUBJECT, cert.RawSubject), pkcs11.NewAttribute(pkcs11.CKA_ISSUER, cert.RawIssuer),
			pkcs11.NewAttribute(pkcs11.CKA_SERIAL_NUMBER, serial), pkcs11.NewAttribute(pkcs11.CKA_VALUE, cert.Raw),
			pkcs11.NewAttribute(pkcs11.CKA_CERTIFICATE_CATEGORY, 1),
		})
		return err
	}
}

func benchCert(b *testing.B) (*Module, *Session, *Key, *x509.Certificate) {
	m, s, k, _ := benchKey(b)
	ca := newCA(b)
	der, err := k.CertificateRequest(&x509.CertificateRequest{Subject: pkix.Name{CommonName: "Bench"}})
	if err != nil {
		b.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(der)
	return m, s, k, ca.issue(b, csr)
}

// BenchmarkWriteCertificate: C_CreateObject of an X.509 certificate with
// its key's CKA_ID given.
func BenchmarkWriteCertificate(b *testing.B) {
	m, s, k, cert := benchCert(b)
	raw := rawWriteCert(m, s, cert, k.ID)
	var p pair
	for b.Loop() {
		p.run(b, func() error { _, err := s.WriteCertificate(cert, "bench", k.ID); return err }, raw)
	}
	p.report(b)
}

// BenchmarkNoiseFloor puts the same raw certificate write on both sides:
// its ratio shows how far apart two identical sequences land on this
// machine, the yardstick for the ratios above.
func BenchmarkNoiseFloor(b *testing.B) {
	m, s, k, cert := benchCert(b)
	raw := rawWriteCert(m, s, cert, k.ID)
	var p pair
	for b.Loop() {
		p.run(b, raw, raw)
	}
	p.report(b)
}

// BenchmarkDecryptRaw: one RSA-2048 private-key operation with
// CKM_RSA_X_509 (Key.DecryptRaw), against the raw C_DecryptInit/C_Decrypt.
func BenchmarkDecryptRaw(b *testing.B) {
	m, s, k, _ := benchKey(b)
	pub := k.Public().(*rsa.PublicKey)
	c := new(big.Int).Exp(new(big.Int).Rsh(pub.N, 8), big.NewInt(int64(pub.E)), pub.N).FillBytes(make([]byte, pub.Size()))
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_X_509, nil)}
	var p pair
	for b.Loop() {
		p.run(b, func() error { _, err := k.DecryptRaw(c); return err }, func() error {
			if err := m.ctx.DecryptInit(s.h, mech, k.priv); err != nil {
				return err
			}
			_, err := m.ctx.Decrypt(s.h, c)
			return err
		})
	}
	p.report(b)
}

// BenchmarkOAEPOverRaw: RSA-OAEP-SHA-256 decryption of a 32-byte content
// key with a token key, the padding removed in software over CKM_RSA_X_509
// (pinblob.OAEPDecrypter), as SoftHSM2 2.6 needs. The raw side is what the
// token does natively, CKM_RSA_PKCS_OAEP with SHA-1, on a ciphertext of the
// same size: the ratio is the cost of doing the padding in Go.
func BenchmarkOAEPOverRaw(b *testing.B) {
	m, s, k, _ := benchKey(b)
	pub := k.Public().(*rsa.PublicKey)
	d, err := pinblob.OAEPDecrypter(k)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 32)
	rand.Read(msg)
	c256, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, msg, nil)
	c1, _ := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, msg, nil)
	opts := &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA256}
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP,
		pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKZ_DATA_SPECIFIED, nil))}
	var p pair
	for b.Loop() {
		p.run(b, func() error {
			got, err := d.Decrypt(nil, c256, opts)
			if err == nil && !bytes.Equal(got, msg) {
				err = errors.New("OAEP over raw: wrong plaintext")
			}
			return err
		}, func() error {
			if err := m.ctx.DecryptInit(s.h, mech, k.priv); err != nil {
				return err
			}
			got, err := m.ctx.Decrypt(s.h, c1)
			if err == nil && !bytes.Equal(got, msg) {
				err = errors.New("native OAEP: wrong plaintext")
			}
			return err
		})
	}
	p.report(b)
}

// BenchmarkPINBlobOpen: pinblob.Open of a blob with three secrets with a
// token key, the whole read-side cost after the card file is read: RSA-2048
// through OAEP over raw, EC through CKM_ECDH1_DERIVE (with the derived
// object created, read and destroyed). No raw side: plain ns/op.
func BenchmarkPINBlobOpen(b *testing.B) {
	for _, spec := range []KeySpec{RSA2048, ECP256} {
		b.Run(spec.String(), func(b *testing.B) {
			m := softhsm(b)
			s := userSession(b, newToken(b, m))
			k, cert := tokenKeyWithCert(b, s, newCA(b), spec, "bench", "bench")
			pk := pinKey(b, k, cert)
			content, err := pinblob.Seal(rand.Reader, cert, testPINs())
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := pinblob.Open(content, []pinblob.Key{pk}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// As cardwright's configured token keys do it (package
	// pinblob/decryptkeys): OpenKey (session, C_Login, find) for each blob, then
	// C_CloseSession.
	b.Run("RSA-2048 OpenKey each", func(b *testing.B) {
		m := softhsm(b)
		tok := newToken(b, m)
		s := userSession(b, tok)
		_, cert := tokenKeyWithCert(b, s, newCA(b), RSA2048, "bench", "bench")
		content, err := pinblob.Seal(rand.Reader, cert, testPINs())
		if err != nil {
			b.Fatal(err)
		}
		s.Close() // no other session keeps the token logged in
		for b.Loop() {
			k, err := m.OpenKey(int(tok.SlotID()), "bench", testPIN)
			if err != nil {
				b.Fatal(err)
			}
			d, _ := pinblob.OAEPDecrypter(k)
			pk, err := pinblob.NewKey(cert, d)
			if err == nil {
				_, err = pinblob.Open(content, []pinblob.Key{pk})
			}
			k.Session().Close()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
