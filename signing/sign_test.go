package signing

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/certfilter"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/secret"
)

// keyKinds are the software keys of the unit tests and the algorithms each
// can use.
var keyKinds = []struct {
	kind string
	algs []Algorithm
	def  Algorithm
}{
	{"rsa2048", []Algorithm{RS256, RS384, RS512, PS256, PS384, PS512}, RS256},
	{"rsa3072", []Algorithm{RS256, PS512}, RS256},
	{"p256", []Algorithm{ES256, ES384, ES512}, ES256},
	{"p384", []Algorithm{ES256, ES384, ES512}, ES384},
	{"p521", []Algorithm{ES256, ES384, ES512}, ES512},
}

// oneKeyStore holds a single certificate for kind.
func oneKeyStore(t testing.TB, ca *testCA, kind string) *MemStore {
	k := testKey(t, kind)
	return &MemStore{Keys: []MemKey{{Cert: ca.issue(t, "Key "+kind, k.Public()), Key: k, KeyID: []byte(kind), PIN: testPIN,
		Token: TokenInfo{Serial: "0001", Label: "soft " + kind}}}}
}

func TestSignEveryAlgorithm(t *testing.T) {
	ca := newTestCA(t, "Signing CA")
	data := []byte("the document to sign\n")
	for _, kk := range keyKinds {
		store := oneKeyStore(t, ca, kk.kind)
		cert := store.Keys[0].Cert
		for _, alg := range append([]Algorithm{""}, kk.algs...) {
			for _, mode := range []string{"data", "digest"} {
				if alg == "" && mode == "digest" {
					continue
				}
				t.Run(fmt.Sprintf("%s/%s/%s", kk.kind, alg, mode), func(t *testing.T) {
					req := Request{Algorithm: alg}
					if mode == "data" {
						req.Data = data
					} else {
						h := alg.Hash().New()
						h.Write(data)
						req.Digest = h.Sum(nil)
					}
					p := &pinPrompter{pin: testPIN}
					res, err := Sign(context.Background(), store, p, req)
					if err != nil {
						t.Fatal(err)
					}
					want := alg
					if want == "" {
						want = kk.def
					}
					if res.Algorithm != want {
						t.Errorf("algorithm %s, want %s", res.Algorithm, want)
					}
					// crypto/x509 is the oracle: it hashes the data itself.
					if err := cert.CheckSignature(x509Alg(want), data, res.Signature); err != nil {
						t.Errorf("signature does not verify with the certificate: %v", err)
					}
					if len(p.reqs) != 1 || p.reqs[0].Kind != prompt.Sign || p.reqs[0].Operation != prompt.OpSign || p.reqs[0].Subject != res.Candidate.Cert.Subject.String() || p.reqs[0].Card != res.Candidate.Token.Label ||
						!strings.Contains(p.reqs[0].Card, "soft "+kk.kind) {
						t.Errorf("prompts %+v", p.reqs)
					}
				})
			}
		}
	}
}

func TestSignSelection(t *testing.T) {
	ca := newTestCA(t, "Signing CA")
	rsaKey, ecKey := testKey(t, "rsa2048"), testKey(t, "p256")
	store := &MemStore{Keys: []MemKey{
		{Cert: ca.issue(t, "Alice", rsaKey.Public()), Key: rsaKey, KeyID: []byte{0xA1}, PIN: testPIN, Token: TokenInfo{Serial: "11", Label: "alice"}},
		{Cert: ca.issue(t, "Bob", ecKey.Public()), Key: ecKey, KeyID: []byte{0xB0}, PIN: testPIN, Token: TokenInfo{Serial: "22", Label: "bob"}},
	}}
	filter := func(src string) *certfilter.Filter {
		f, err := certfilter.Parse([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	data := []byte("x")
	for _, tc := range []struct {
		name   string
		sel    Selector
		alg    Algorithm
		choose string // a Chooser that picks this CN
		want   string // CN, or "" for an error
		err    error
	}{
		{"filter alice", Selector{Filter: filter(`{"op":"eq","param":"cert.subject.cn","value":"Alice"}`)}, "", "", "Alice", nil},
		{"filter by key type", Selector{Filter: filter(`{"op":"eq","param":"key.type","value":"ECC"}`)}, "", "", "Bob", nil},
		{"key id", Selector{KeyID: []byte{0xB0}}, "", "", "Bob", nil},
		{"filter and key id", Selector{Filter: filter(`{"op":"eq","param":"token.id","value":"11"}`), KeyID: []byte{0xA1}}, "", "", "Alice", nil},
		{"filter and other key id", Selector{Filter: filter(`{"op":"eq","param":"token.id","value":"11"}`), KeyID: []byte{0xB0}}, "", "", "", ErrNoCertificate},
		{"algorithm narrows", Selector{}, ES384, "", "Bob", nil},
		{"algorithm narrows to RSA", Selector{}, PS256, "", "Alice", nil},
		{"no match", Selector{Filter: filter(`{"op":"eq","param":"cert.subject.cn","value":"Carol"}`)}, "", "", "", ErrNoCertificate},
		{"match but wrong key type", Selector{KeyID: []byte{0xA1}}, ES256, "", "", ErrNoCertificate},
		{"ambiguous", Selector{}, "", "", "", ErrAmbiguous},
		{"chooser", Selector{}, "", "Bob", "Bob", nil},
		{"chooser refuses", Selector{}, "", "Nobody", "", prompt.ErrRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p prompt.Prompter = &pinPrompter{pin: testPIN}
			if tc.choose != "" {
				p = &choosingPrompter{pinPrompter: pinPrompter{pin: testPIN}, cn: tc.choose}
			}
			res, err := Sign(context.Background(), store, p, Request{Select: tc.sel, Algorithm: tc.alg, Data: data})
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cn := res.Candidate.Cert.Subject.CommonName; cn != tc.want {
				t.Errorf("signed with %s, want %s", cn, tc.want)
			}
			if err := res.Candidate.Cert.CheckSignature(x509Alg(res.Algorithm), data, res.Signature); err != nil {
				t.Error(err)
			}
			if c, ok := p.(*choosingPrompter); ok && c.offered != 2 {
				t.Errorf("chooser offered %d candidates, want 2", c.offered)
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	ca := newTestCA(t, "Signing CA")
	rsaKey, other := testKey(t, "rsa2048"), testKey(t, "rsa3072")
	mk := func() *MemStore {
		return &MemStore{Retries: 3, Keys: []MemKey{{Cert: ca.issue(t, "Alice", rsaKey.Public()), Key: rsaKey, KeyID: []byte{1}, PIN: testPIN}}}
	}
	wrongPIN := secret.New("pin-wrong-550023")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name   string
		store  Store
		p      prompt.Prompter
		ctx    context.Context
		req    Request
		err    error
		code   api.Code
		prompt bool // the PIN was asked for
	}{
		{"nothing to sign", mk(), &pinPrompter{pin: testPIN}, nil, Request{}, ErrInvalidRequest, api.CodeInvalidField, false},
		{"data and digest", mk(), &pinPrompter{pin: testPIN}, nil, Request{Data: []byte{1}, Digest: make([]byte, 32), Algorithm: RS256}, ErrInvalidRequest, api.CodeInvalidField, false},
		{"digest without algorithm", mk(), &pinPrompter{pin: testPIN}, nil, Request{Digest: make([]byte, 32)}, ErrInvalidRequest, api.CodeInvalidField, false},
		{"digest length", mk(), &pinPrompter{pin: testPIN}, nil, Request{Digest: make([]byte, 32), Algorithm: RS384}, ErrInvalidRequest, api.CodeInvalidField, false},
		{"unknown algorithm", mk(), &pinPrompter{pin: testPIN}, nil, Request{Data: []byte{1}, Algorithm: "rs256"}, ErrInvalidRequest, api.CodeInvalidField, false},
		{"no certificate for algorithm", mk(), &pinPrompter{pin: testPIN}, nil, Request{Data: []byte{1}, Algorithm: ES256}, ErrNoCertificate, api.CodeCardNotFound, false},
		{"wrong PIN", mk(), &pinPrompter{pin: wrongPIN}, nil, Request{Data: []byte{1}}, &PINError{}, api.CodePinIncorrect, true},
		{"refused", mk(), &pinPrompter{err: prompt.ErrRefused}, nil, Request{Data: []byte{1}}, prompt.ErrRefused, api.CodePromptRefused, true},
		{"empty PIN", mk(), &pinPrompter{}, nil, Request{Data: []byte{1}}, prompt.ErrRefused, api.CodePromptRefused, true},
		{"no prompter", mk(), nil, nil, Request{Data: []byte{1}}, prompt.ErrUnavailable, api.CodePromptUnavailable, false},
		{"cancelled", mk(), &pinPrompter{pin: testPIN}, cancelled, Request{Data: []byte{1}}, context.Canceled, api.CodeCancelled, false},
		{"key not the certificate's", &MemStore{Keys: []MemKey{{Cert: ca.issue(t, "Alice", rsaKey.Public()), Key: other, PIN: testPIN}}},
			&pinPrompter{pin: testPIN}, nil, Request{Data: []byte{1}}, ErrKeyMismatch, api.CodeTokenError, true},
		{"no key", &MemStore{Keys: []MemKey{{Cert: ca.issue(t, "Alice", rsaKey.Public()), PIN: testPIN}}},
			&pinPrompter{pin: testPIN}, nil, Request{Data: []byte{1}}, ErrKeyNotFound, api.CodeTokenError, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			_, err := Sign(ctx, tc.store, tc.p, tc.req)
			if pe, ok := tc.err.(*PINError); ok {
				if !errors.As(err, &pe) {
					t.Fatalf("error %v, want a PINError", err)
				}
			} else if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if got := Code(err); got != tc.code {
				t.Errorf("code %s, want %s", got, tc.code)
			}
			if je := JobError(err); je.Code != tc.code || je.Message != err.Error() {
				t.Errorf("JobError %+v", je)
			}
			if pp, ok := tc.p.(*pinPrompter); ok && (len(pp.reqs) > 0) != tc.prompt {
				t.Errorf("prompted %d times, want prompt %v", len(pp.reqs), tc.prompt)
			}
			for _, s := range []secret.Value{testPIN, wrongPIN} {
				if strings.Contains(err.Error(), s.Reveal()) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), s.Reveal()) {
					t.Errorf("a PIN shows in the error %v", err)
				}
			}
		})
	}
}

// TestPINRetries: the store's retry count reaches the caller and the code
// turns to pin_blocked at zero.
func TestPINRetries(t *testing.T) {
	ca := newTestCA(t, "Signing CA")
	k := testKey(t, "p256")
	store := &MemStore{Retries: 3, Keys: []MemKey{{Cert: ca.issue(t, "Alice", k.Public()), Key: k, PIN: testPIN}}}
	bad := &pinPrompter{pin: secret.New("0000")}
	for i, want := range []string{"PIN incorrect (2 tries left)", "PIN incorrect (final try left)", "PIN blocked", "PIN blocked"} {
		_, err := Sign(context.Background(), store, bad, Request{Data: []byte{1}})
		if err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Fatalf("try %d: %v, want …%s", i+1, err, want)
		}
		wantCode := api.CodePinIncorrect
		if i >= 2 {
			wantCode = api.CodePinBlocked
		}
		if Code(err) != wantCode {
			t.Errorf("try %d: code %s, want %s", i+1, Code(err), wantCode)
		}
	}
	if _, err := Sign(context.Background(), store, &pinPrompter{pin: testPIN}, Request{Data: []byte{1}}); Code(err) != api.CodePinBlocked {
		t.Errorf("right PIN on a blocked key: %v", err)
	}
}

// failingSigner is a token key whose Sign fails or returns garbage.
type failingSigner struct {
	crypto.Signer
	sig []byte
}

func (f failingSigner) Sign(_ io.Reader, _ []byte, _ crypto.SignerOpts) ([]byte, error) {
	if f.sig == nil {
		return nil, errors.New("CKR_DEVICE_ERROR")
	}
	return f.sig, nil
}

func TestSignTokenFailures(t *testing.T) {
	ca := newTestCA(t, "Signing CA")
	k := testKey(t, "p256")
	cert := ca.issue(t, "Alice", k.Public())
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		err  error
	}{
		{"sign fails", failingSigner{Signer: k}, ErrToken},
		{"bad signature", failingSigner{Signer: k, sig: []byte{0x30, 0}}, ErrBadSignature},
	} {
		store := &MemStore{Keys: []MemKey{{Cert: cert, Key: tc.key, PIN: testPIN}}}
		_, err := Sign(context.Background(), store, &pinPrompter{pin: testPIN}, Request{Data: []byte{1}})
		if !errors.Is(err, tc.err) || Code(err) != api.CodeTokenError {
			t.Errorf("%s: %v (code %s), want %v", tc.name, err, Code(err), tc.err)
		}
	}
}

func TestAlgorithms(t *testing.T) {
	for _, a := range Algorithms() {
		got, err := ParseAlgorithm(string(a))
		if err != nil || got != a || a.Hash() == 0 || !a.Hash().Available() {
			t.Errorf("%s: %v %v", a, got, err)
		}
		if len(a.Hash().New().Sum(nil)) != a.Hash().Size() {
			t.Errorf("%s: hash size", a)
		}
	}
	for _, bad := range []string{"", "rs256", "HS256", "ES256K", "none", "RS1"} {
		if _, err := ParseAlgorithm(bad); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("ParseAlgorithm(%q) = %v", bad, err)
		}
	}
	if !bytes.Equal([]byte(ES256.KeyType()), []byte(certfilter.KeyECC)) || PS384.KeyType() != certfilter.KeyRSA {
		t.Error("key types")
	}
}
