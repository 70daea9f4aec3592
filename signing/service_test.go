package signing

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
)

func TestService(t *testing.T) {
	ca := newTestCA(t, "Service CA")
	rk, ek := testKey(t, "rsa2048"), testKey(t, "p384")
	store := &MemStore{Keys: []MemKey{
		{Cert: ca.issue(t, "Alice", rk.Public()), Key: rk, KeyID: []byte{0xA1, 0x0B}, PIN: testPIN, Token: TokenInfo{Serial: "11", Label: "alice"}},
		{Cert: ca.issue(t, "Bob", ek.Public()), Key: ek, KeyID: []byte{0xB0}, PIN: testPIN, Token: TokenInfo{Serial: "22", Label: "bob"}},
	}}
	svc := &Service{Store: store, Prompter: &pinPrompter{pin: testPIN}}
	ctx := context.Background()
	alice := json.RawMessage(`{"op":"eq","param":"cert.subject.cn","value":"Alice"}`)

	list, err := svc.Certificates(ctx, "", &api.Certificates{Filter: json.RawMessage(`{"op":"eq","param":"key.type","value":"RSA"}`)})
	if err != nil || len(list.Certificates) != 1 || list.Certificates[0].KeyID != "A10B" || list.Certificates[0].Token != "11" ||
		list.Certificates[0].Certificate != base64.StdEncoding.EncodeToString(store.Keys[0].Cert.Raw) {
		t.Fatalf("certificates: %+v %v", list, err)
	}
	for _, f := range []json.RawMessage{nil, json.RawMessage(`null`)} {
		if list, err := svc.Certificates(ctx, "", &api.Certificates{Filter: f}); err != nil || len(list.Certificates) != 2 {
			t.Errorf("filter %s: %+v %v", f, list, err)
		}
	}
	if list, err := svc.Certificates(ctx, "", &api.Certificates{Filter: json.RawMessage(`{"op":"eq","param":"cert.subject.cn","value":"Carol"}`)}); err != nil || list.Certificates == nil || len(list.Certificates) != 0 {
		t.Errorf("no match: %+v %v", list, err)
	}

	data := []byte("document")
	sig, err := svc.Sign(ctx, "https://portal.example.com", &api.Sign{Filter: alice, Data: base64.StdEncoding.EncodeToString(data), Algorithm: "PS384"})
	if err != nil {
		t.Fatal(err)
	}
	if reqs := svc.Prompter.(*pinPrompter).reqs; len(reqs) != 1 || reqs[0].Origin != "https://portal.example.com" || reqs[0].Subject == "" || reqs[0].Card != "alice" {
		t.Errorf("sign prompt %+v", reqs)
	}
	rawSig, _ := base64.StdEncoding.DecodeString(sig.Signature)
	if sig.Certificate != base64.StdEncoding.EncodeToString(store.Keys[0].Cert.Raw) ||
		store.Keys[0].Cert.CheckSignature(x509.SHA384WithRSAPSS, data, rawSig) != nil {
		t.Errorf("sign: %+v", sig)
	}

	n := nonce(t)
	const origin = "https://portal.example.com"
	res, err := svc.Authenticate(ctx, origin, &api.Authenticate{Filter: alice, Challenge: n})
	if err != nil {
		t.Fatal(err)
	}
	// The portal rebuilds the token from the answer (algorithm: the key's default).
	der, _ := base64.StdEncoding.DecodeString(res.Certificate)
	rs, _ := base64.StdEncoding.DecodeString(res.Signature)
	tok := &AuthToken{Format: AuthFormat, Algorithm: RS256, Certificate: der, Signature: rs}
	if _, err := Verify(tok.Marshal(), origin, n, ca.pool); err != nil {
		t.Errorf("authenticate: %v", err)
	}
	if _, err := Verify(tok.Marshal(), "https://other.example.com", n, ca.pool); !errors.Is(err, ErrBadSignature) {
		t.Errorf("other origin: %v", err)
	}

	for _, tc := range []struct {
		name string
		call func() error
		code api.Code
		key  string
	}{
		{"bad filter", func() error {
			_, err := svc.Certificates(ctx, "", &api.Certificates{Filter: json.RawMessage(`{"op":"xor"}`)})
			return err
		}, api.CodeInvalidField, "filter"},
		{"bad data", func() error {
			_, err := svc.Sign(ctx, "", &api.Sign{Filter: alice, Data: "***"})
			return err
		}, api.CodeInvalidField, "data"},
		{"bad algorithm", func() error {
			_, err := svc.Sign(ctx, "", &api.Sign{Filter: alice, Data: "", Algorithm: "HS256"})
			return err
		}, api.CodeInvalidField, "algorithm"},
		{"ambiguous", func() error {
			_, err := svc.Sign(ctx, "", &api.Sign{Data: "AA=="})
			return err
		}, api.CodeCardAmbiguous, ""},
		{"no origin", func() error {
			_, err := svc.Authenticate(ctx, "", &api.Authenticate{Filter: alice, Challenge: n})
			return err
		}, api.CodeOriginNotAllowed, ""},
		{"http origin", func() error {
			_, err := svc.Authenticate(ctx, "http://portal.example.com", &api.Authenticate{Filter: alice, Challenge: n})
			return err
		}, api.CodeOriginNotAllowed, ""},
		{"short challenge", func() error {
			_, err := svc.Authenticate(ctx, origin, &api.Authenticate{Filter: alice, Challenge: "AAAA"})
			return err
		}, api.CodeInvalidField, ""},
		{"wrong PIN", func() error {
			s := &Service{Store: store, Prompter: &pinPrompter{pin: testPIN}}
			s.Prompter.(*pinPrompter).pin = wrongPINValue
			_, err := s.Sign(ctx, "", &api.Sign{Filter: alice, Data: "AA=="})
			return err
		}, api.CodePinIncorrect, ""},
	} {
		err := tc.call()
		var je *api.JobError
		if !errors.As(err, &je) || je.Code != tc.code || je.Key != tc.key {
			t.Errorf("%s: %#v, want code %s key %q", tc.name, err, tc.code, tc.key)
			continue
		}
		if strings.Contains(je.Message, testPIN.Reveal()) || strings.Contains(je.Message, wrongPINValue.Reveal()) {
			t.Errorf("%s: a PIN in %q", tc.name, je.Message)
		}
	}
}
