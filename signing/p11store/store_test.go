package p11store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/certfilter"
	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/p11/allowlist"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/secret"
	"github.com/cardwright/cardwright/signing"
)

// Test credentials: distinct values, easy to grep for.
var (
	testSO   = secret.New("so-p11store-402917")
	testPIN  = secret.New("pin-p11store-338105")
	wrongPIN = secret.New("pin-p11store-wrong-771")
)

func softhsm(t testing.TB) *p11.Module {
	t.Helper()
	s := stacktest.Require(t)
	path := s.Get(t, "SOFTHSM_MODULE")
	m, err := p11.Load(path, allowlist.Modules{path}.Allows)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var tokenSeq atomic.Int64

// keyDef is a key to make on a token and the subject of its certificate.
type keyDef struct {
	cn   string
	spec p11.KeySpec
	id   []byte
}

// fixture is a token holding keys with certificates from a LocalCA.
type fixture struct {
	m     *p11.Module
	tok   *p11.Token
	ca    *issuer.LocalCA
	roots *x509.CertPool
	certs map[string]*x509.Certificate // by CN
}

// newFixture makes a token and, for each key, a key pair on it, a PKCS#10
// request signed on the token, the LocalCA's certificate and the
// certificate written next to the key.
func newFixture(t testing.TB, m *p11.Module, ca *issuer.LocalCA, keys ...keyDef) *fixture {
	t.Helper()
	label := fmt.Sprintf("sig-%d", tokenSeq.Add(1))
	tok, err := m.InitTokenAndPIN(nil, testSO, testPIN, label)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Login(testPIN); err != nil {
		t.Fatal(err)
	}
	f := &fixture{m: m, tok: tok, ca: ca, roots: x509.NewCertPool(), certs: map[string]*x509.Certificate{}}
	f.roots.AddCert(ca.Certificate())
	for _, k := range keys {
		key, err := s.GenerateKeyPair(k.spec, k.cn, k.id)
		if err != nil {
			t.Fatal(err)
		}
		csr, err := key.CertificateRequest(&x509.CertificateRequest{Subject: pkix.Name{CommonName: k.cn, Organization: []string{"Example company"}}})
		if err != nil {
			t.Fatal(err)
		}
		der, _, err := ca.Issue(context.Background(), issuer.Request{CSR: csr})
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.WriteCertificate(cert, k.cn, key.ID); err != nil {
			t.Fatal(err)
		}
		f.certs[k.cn] = cert
	}
	return f
}

func newCA(t testing.TB) *issuer.LocalCA {
	t.Helper()
	ca, err := issuer.OpenLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// prompter answers with a fixed PIN and counts the prompts.
type prompter struct {
	pin secret.Value
	n   atomic.Int64
}

func (p *prompter) Ask(context.Context, prompt.Request) (prompt.Answer, error) {
	p.n.Add(1)
	return prompt.Answer{PIN: secret.FromBytes(p.pin.Bytes())}, nil
}

func filter(t testing.TB, src string) *certfilter.Filter {
	t.Helper()
	f, err := certfilter.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var x509Alg = map[signing.Algorithm]x509.SignatureAlgorithm{
	signing.RS256: x509.SHA256WithRSA, signing.RS384: x509.SHA384WithRSA, signing.RS512: x509.SHA512WithRSA,
	signing.PS256: x509.SHA256WithRSAPSS, signing.PS384: x509.SHA384WithRSAPSS, signing.PS512: x509.SHA512WithRSAPSS,
	signing.ES256: x509.ECDSAWithSHA256, signing.ES384: x509.ECDSAWithSHA384, signing.ES512: x509.ECDSAWithSHA512,
}

// TestSoftHSM signs with every algorithm on SoftHSM2 keys (RSA 2048, EC
// P-256 and P-384), by filter and by key id, and checks each signature
// with the certificate (crypto/x509 as the oracle).
func TestSoftHSM(t *testing.T) {
	m := softhsm(t)
	ca := newCA(t)
	f := newFixture(t, m, ca,
		keyDef{"Alice RSA", p11.RSA2048, []byte{0xA1}},
		keyDef{"Alice EC", p11.ECP256, []byte{0xA2}},
		keyDef{"Bob EC", p11.ECP384, nil}, // CKA_ID from the public key
	)
	store := New(m)
	cands, err := store.Candidates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var mine []*signing.Candidate
	for _, c := range cands {
		if c.Token.Serial == f.tok.Serial() {
			mine = append(mine, c)
			if c.Token.Type != certfilter.TokenSoftware || c.Token.Label != f.tok.Label() || c.Token.Module != m.Path() {
				t.Errorf("token facts %+v", c.Token)
			}
		}
	}
	if len(mine) != 3 {
		t.Fatalf("%d candidates on the token, want 3", len(mine))
	}
	onToken := `{"op":"eq","param":"token.id","value":"` + f.tok.Serial() + `"}`
	data := []byte("a document signed on SoftHSM\n")
	for _, tc := range []struct {
		cn   string
		sel  signing.Selector
		algs []signing.Algorithm
	}{
		{"Alice RSA", signing.Selector{Filter: filter(t, `{"value":[`+onToken+`,{"op":"eq","param":"key.type","value":"RSA"}]}`)},
			[]signing.Algorithm{signing.RS256, signing.RS384, signing.RS512, signing.PS256, signing.PS384, signing.PS512}},
		{"Alice EC", signing.Selector{Filter: filter(t, onToken), KeyID: []byte{0xA2}}, []signing.Algorithm{signing.ES256, signing.ES384, signing.ES512}},
		{"Bob EC", signing.Selector{Filter: filter(t, `{"value":[`+onToken+`,{"op":"eq","param":"cert.subject.cn","value":"Bob EC"}]}`)},
			[]signing.Algorithm{"", signing.ES256, signing.ES384, signing.ES512}},
	} {
		for _, alg := range tc.algs {
			for _, digest := range []bool{false, true} {
				if digest && alg == "" {
					continue
				}
				t.Run(fmt.Sprintf("%s/%s/digest=%v", tc.cn, alg, digest), func(t *testing.T) {
					req := signing.Request{Select: tc.sel, Algorithm: alg, Data: data}
					if digest {
						h := alg.Hash().New()
						h.Write(data)
						req.Data, req.Digest = nil, h.Sum(nil)
					}
					p := &prompter{pin: testPIN}
					res, err := signing.Sign(context.Background(), store, p, req)
					if err != nil {
						t.Fatal(err)
					}
					if res.Candidate.Cert.Subject.CommonName != tc.cn || p.n.Load() != 1 {
						t.Errorf("signed with %q after %d prompts", res.Candidate.Cert.Subject.CommonName, p.n.Load())
					}
					if err := f.certs[tc.cn].CheckSignature(x509Alg[res.Algorithm], data, res.Signature); err != nil {
						t.Errorf("%s signature does not verify: %v", res.Algorithm, err)
					}
				})
			}
		}
	}
}

// TestSoftHSMAuthenticate: tokens made on SoftHSM verify against the
// LocalCA root for their origin and nonce, and fail for another origin or
// nonce.
func TestSoftHSMAuthenticate(t *testing.T) {
	m := softhsm(t)
	ca := newCA(t)
	f := newFixture(t, m, ca, keyDef{"Carol RSA", p11.RSA2048, nil}, keyDef{"Carol EC", p11.ECP384, nil})
	store := New(m)
	const origin = "https://portal.example.com"
	for _, tc := range []struct {
		cn  string
		alg signing.Algorithm
	}{{"Carol RSA", ""}, {"Carol RSA", signing.PS512}, {"Carol EC", ""}, {"Carol EC", signing.ES256}} {
		t.Run(tc.cn+"/"+string(tc.alg), func(t *testing.T) {
			b := make([]byte, 32)
			rand.Read(b)
			nonce := base64.StdEncoding.EncodeToString(b)
			sel := signing.Selector{Filter: filter(t, `{"value":[{"op":"eq","param":"token.id","value":"`+f.tok.Serial()+`"},{"op":"eq","param":"cert.subject.cn","value":"`+tc.cn+`"}]}`)}
			tok, err := signing.Authenticate(context.Background(), store, &prompter{pin: testPIN}, signing.AuthRequest{Select: sel, Algorithm: tc.alg, Origin: origin, Nonce: nonce})
			if err != nil {
				t.Fatal(err)
			}
			raw := tok.Marshal()
			cert, err := signing.Verify(raw, origin, nonce, f.roots)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !cert.Equal(f.certs[tc.cn]) {
				t.Error("another certificate")
			}
			if _, err := signing.Verify(raw, "https://evil.example.com", nonce, f.roots); !errors.Is(err, signing.ErrBadSignature) {
				t.Errorf("other origin: %v", err)
			}
			rand.Read(b)
			if _, err := signing.Verify(raw, origin, base64.StdEncoding.EncodeToString(b), f.roots); !errors.Is(err, signing.ErrBadSignature) {
				t.Errorf("other nonce: %v", err)
			}
		})
	}
}

// TestSoftHSMErrors: a wrong PIN is pin_incorrect, a certificate whose key
// is gone is token_error, an unknown token is token_not_found; no PIN shows
// in any error or log line.
func TestSoftHSMErrors(t *testing.T) {
	m := softhsm(t)
	ca := newCA(t)
	f := newFixture(t, m, ca, keyDef{"Dave", p11.ECP256, []byte{0xD0}})
	store := New(m)
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	sel := signing.Selector{Filter: filter(t, `{"op":"eq","param":"token.id","value":"`+f.tok.Serial()+`"}`)}

	_, err := signing.Sign(context.Background(), store, &prompter{pin: wrongPIN}, signing.Request{Select: sel, Data: []byte("x")})
	var pe *signing.PINError
	if !errors.As(err, &pe) || signing.Code(err) != api.CodePinIncorrect {
		t.Errorf("wrong PIN: %v (code %s)", err, signing.Code(err))
	}
	var p11e *p11.PINError
	if !errors.As(err, &p11e) {
		t.Errorf("p11.PINError not in the chain of %v", err)
	}
	log.Error("sign failed", "err", err, "pin", wrongPIN, "code", signing.Code(err))

	// A candidate on a token that is gone.
	gone := &signing.Candidate{Cert: f.certs["Dave"], KeyID: []byte{0xD0}, Token: signing.TokenInfo{Module: m.Path(), Serial: "0000000000000000", Label: "gone"}}
	if _, _, err := store.Key(context.Background(), gone, testPIN); !errors.Is(err, signing.ErrTokenNotFound) || signing.Code(err) != api.CodeTokenNotFound {
		t.Errorf("token gone: %v", err)
	} else {
		log.Error("key failed", "err", err)
	}

	// The key destroyed, the certificate left: the key is not found.
	s, err := f.tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Login(testPIN); err != nil {
		t.Fatal(err)
	}
	keys, err := s.Find(p11.Criteria{p11.ClassIs(p11.ClassPrivateKey)})
	if err != nil || len(keys) != 1 {
		t.Fatalf("private keys: %d %v", len(keys), err)
	}
	if err := s.Destroy(keys...); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = signing.Sign(context.Background(), store, &prompter{pin: testPIN}, signing.Request{Select: sel, Data: []byte("x")})
	if !errors.Is(err, signing.ErrKeyNotFound) || signing.Code(err) != api.CodeTokenError {
		t.Errorf("key destroyed: %v (code %s)", err, signing.Code(err))
	}
	log.Error("sign failed", "err", err)

	out := logBuf.String()
	for _, v := range []secret.Value{testPIN, wrongPIN, testSO} {
		if strings.Contains(out, v.Reveal()) {
			t.Errorf("a secret in the log:\n%s", out)
		}
	}
	if !strings.Contains(out, "pin=<secret>") {
		t.Errorf("log lacks the masked PIN:\n%s", out)
	}
}

// TestSoftHSMConcurrent signs from several goroutines with keys of two
// tokens: each Key call has its own session.
func TestSoftHSMConcurrent(t *testing.T) {
	m := softhsm(t)
	ca := newCA(t)
	f1 := newFixture(t, m, ca, keyDef{"Erin", p11.ECP256, nil})
	f2 := newFixture(t, m, ca, keyDef{"Frank", p11.ECP256, nil})
	store := New(m)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 8; i++ {
		for _, f := range []*fixture{f1, f2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sel := signing.Selector{Filter: filter(t, `{"op":"eq","param":"token.id","value":"`+f.tok.Serial()+`"}`)}
				data := []byte(fmt.Sprintf("doc %d", i))
				res, err := signing.Sign(context.Background(), store, &prompter{pin: testPIN}, signing.Request{Select: sel, Data: data})
				if err == nil {
					err = res.Candidate.Cert.CheckSignature(x509.ECDSAWithSHA256, data, res.Signature)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
