package signing

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/prompt"
)

func TestCanonicalOrigin(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://portal.example.com", "https://portal.example.com"},
		{"https://Portal.Example.COM", "https://portal.example.com"},
		{"HTTPS://portal.example.com:443", "https://portal.example.com"},
		{"https://portal.example.com/", "https://portal.example.com"},
		{"https://portal.example.com:8443", "https://portal.example.com:8443"},
		{"https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"},
		{"https://192.0.2.7", "https://192.0.2.7"},
		{"http://localhost", "http://localhost"},
		{"http://localhost:80", "http://localhost"},
		{"http://localhost:8080", "http://localhost:8080"},
		{"http://LOCALHOST:3000", "http://localhost:3000"},
		{"", ""},
		{"null", ""}, // the Origin of sandboxed and file: pages
		{"portal.example.com", ""},
		{"http://portal.example.com", ""},
		{"http://127.0.0.1:8080", ""},
		{"http://localhost.example.com", ""},
		{"ftp://portal.example.com", ""},
		{"wss://portal.example.com", ""},
		{"https://", ""},
		{"https://:443", ""},
		{"https://portal.example.com/login", ""},
		{"https://portal.example.com?x=1", ""},
		{"https://portal.example.com#top", ""},
		{"https://user@portal.example.com", ""},
		{"https://portal.exämple.com", ""},
		{"https://portal example.com", ""},
		{"https:portal.example.com", ""},
	} {
		got, err := CanonicalOrigin(tc.in)
		if tc.want == "" {
			if !errors.Is(err, ErrInvalidOrigin) {
				t.Errorf("%q: got %q, %v; want ErrInvalidOrigin", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestCheckNonce(t *testing.T) {
	b := func(n int) []byte { return []byte(strings.Repeat("\xfb", n)) }
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{base64.StdEncoding.EncodeToString(b(32)), true},
		{base64.RawStdEncoding.EncodeToString(b(32)), true},
		{base64.URLEncoding.EncodeToString(b(32)), true},
		{base64.RawURLEncoding.EncodeToString(b(33)), true},
		{base64.StdEncoding.EncodeToString(b(64)), true},
		{base64.StdEncoding.EncodeToString(b(31)), false},
		{base64.StdEncoding.EncodeToString(b(189)), true},  // 252 characters
		{base64.StdEncoding.EncodeToString(b(192)), true},  // 256 characters
		{base64.StdEncoding.EncodeToString(b(195)), false}, // 260
		{"", false},
		{strings.Repeat("A", 43) + "!", false},
		{" " + base64.StdEncoding.EncodeToString(b(32)), false},
		{base64.StdEncoding.EncodeToString(b(32)) + "\n", false},
		{strings.Repeat("A", 300), false},
	} {
		err := CheckNonce(tc.in)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidNonce)) {
			t.Errorf("CheckNonce(%.20q… %d chars) = %v, want ok %v", tc.in, len(tc.in), err, tc.ok)
		}
	}
}

// TestSignedValue pins the binding: the context, then hash(origin) ||
// hash(nonce), computed here independently.
func TestSignedValue(t *testing.T) {
	o, n := "https://portal.example.com", "c29tZSBub25jZSBvZiBhdCBsZWFzdCAzMiBieXRlcyBsb25nLg=="
	for _, alg := range Algorithms() {
		h1, h2 := alg.Hash().New(), alg.Hash().New()
		h1.Write([]byte(o))
		h2.Write([]byte(n))
		want := append([]byte("cardwright-auth:1\x00"), h1.Sum(nil)...)
		want = append(want, h2.Sum(nil)...)
		if got := SignedValue(alg, o, n); string(got) != string(want) {
			t.Errorf("%s: %x, want %x", alg, got, want)
		}
	}
	if string(SignedValue(ES256, o+"x", n)) == string(SignedValue(ES256, o, n)) {
		t.Error("origin not bound")
	}
}

// TestSignRefusesAuthValue: a page allowed to ask for signatures cannot
// get an authentication value for another origin signed through Sign.
func TestSignRefusesAuthValue(t *testing.T) {
	ca := newTestCA(t, "Auth CA")
	store := oneKeyStore(t, ca, "p256")
	n := nonce(t)
	p := &pinPrompter{pin: testPIN}
	_, err := Sign(context.Background(), store, p, Request{Algorithm: ES256, Data: SignedValue(ES256, "https://bank.example.com", n)})
	if !errors.Is(err, ErrInvalidRequest) || len(p.reqs) != 0 {
		t.Fatalf("Sign of an authentication value: %v (%d prompts)", err, len(p.reqs))
	}
	// Data that only resembles it (no context) signs, and is no token.
	v := SignedValue(ES256, "https://bank.example.com", n)[len("cardwright-auth:1\x00"):]
	res, err := Sign(context.Background(), store, p, Request{Algorithm: ES256, Data: v})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ecdsaRaw(ecPub(res.Candidate.Cert), res.Signature)
	if err != nil {
		t.Fatal(err)
	}
	forged := (&AuthToken{Format: AuthFormat, Algorithm: ES256, Certificate: res.Candidate.Cert.Raw, Signature: raw}).Marshal()
	if _, err := Verify(forged, "https://bank.example.com", n, ca.pool); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a sign result passed as a token: %v", err)
	}
}

func TestAuthenticateVerify(t *testing.T) {
	ca := newTestCA(t, "Auth CA")
	other := newTestCA(t, "Other CA")
	const origin = "https://portal.example.com"
	for _, kk := range keyKinds {
		store := oneKeyStore(t, ca, kk.kind)
		for _, alg := range append([]Algorithm{""}, kk.algs...) {
			t.Run(fmt.Sprintf("%s/%s", kk.kind, alg), func(t *testing.T) {
				n := nonce(t)
				p := &pinPrompter{pin: testPIN}
				tok, err := Authenticate(context.Background(), store, p, AuthRequest{Algorithm: alg, Origin: "HTTPS://portal.example.com:443", Nonce: n})
				if err != nil {
					t.Fatal(err)
				}
				if len(p.reqs) != 1 || p.reqs[0].Kind != prompt.SignIn || p.reqs[0].Operation != prompt.OpSignIn || p.reqs[0].Origin != origin || p.reqs[0].Subject == "" {
					t.Errorf("prompt %+v", p.reqs)
				}
				raw := tok.Marshal()
				cert, err := Verify(raw, origin, n, ca.pool)
				if err != nil {
					t.Fatalf("Verify: %v\n%s", err, raw)
				}
				if !cert.Equal(store.Keys[0].Cert) {
					t.Error("Verify returned another certificate")
				}
				// The binding, checked with crypto/x509 as the oracle (ES as ASN.1).
				sig := tok.Signature
				if tok.Algorithm.KeyType() == "ECC" {
					if sig, err = ecdsaASN1(ecPub(cert), sig); err != nil {
						t.Fatal(err)
					}
				}
				if err := cert.CheckSignature(x509Alg(tok.Algorithm), SignedValue(tok.Algorithm, origin, n), sig); err != nil {
					t.Errorf("oracle: %v", err)
				}
				for _, bad := range []struct {
					name, origin, nonce string
					roots               *x509.CertPool
					err                 error
				}{
					{"other origin", "https://evil.example.com", n, ca.pool, ErrBadSignature},
					{"other port", "https://portal.example.com:8443", n, ca.pool, ErrBadSignature},
					{"http origin", "http://portal.example.com", n, ca.pool, ErrInvalidOrigin},
					{"other nonce", origin, nonce(t), ca.pool, ErrBadSignature},
					{"short nonce", origin, n[:40], ca.pool, ErrInvalidNonce},
					{"untrusted", origin, n, other.pool, ErrBadCertificate},
					{"no roots", origin, n, nil, ErrBadCertificate},
				} {
					if _, err := Verify(raw, bad.origin, bad.nonce, bad.roots); !errors.Is(err, bad.err) {
						t.Errorf("%s: %v, want %v", bad.name, err, bad.err)
					}
				}
			})
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	ca := newTestCA(t, "Auth CA")
	const origin = "https://portal.example.com"
	n := nonce(t)
	ec, rs := oneKeyStore(t, ca, "p256"), oneKeyStore(t, ca, "rsa2048")
	auth := func(s Store, alg Algorithm) *AuthToken {
		tok, err := Authenticate(context.Background(), s, &pinPrompter{pin: testPIN}, AuthRequest{Algorithm: alg, Origin: origin, Nonce: n})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := auth(ec, ES256)
	goodRSA := auth(rs, PS256)
	k := testKey(t, "p384")
	serverAuthOnly := &MemStore{Keys: []MemKey{{Cert: ca.issue(t, "Server", k.Public(), x509.ExtKeyUsageServerAuth), Key: k, PIN: testPIN}}}
	for _, tc := range []struct {
		name string
		tok  func() []byte
		err  error
	}{
		{"flipped signature bit", func() []byte { x := *good; x.Signature = flip(x.Signature); return x.Marshal() }, ErrBadSignature},
		{"flipped RSA bit", func() []byte { x := *goodRSA; x.Signature = flip(x.Signature); return x.Marshal() }, ErrBadSignature},
		{"PS token relabelled RS", func() []byte { x := *goodRSA; x.Algorithm = RS256; return x.Marshal() }, ErrBadSignature},
		{"ES256 relabelled ES384", func() []byte { x := *good; x.Algorithm = ES384; return x.Marshal() }, ErrBadSignature},
		{"algorithm for another key type", func() []byte { x := *good; x.Algorithm = RS256; return x.Marshal() }, ErrInvalidToken},
		{"short ECDSA signature", func() []byte { x := *good; x.Signature = x.Signature[1:]; return x.Marshal() }, ErrBadSignature},
		{"certificate swapped", func() []byte { x := *good; x.Certificate = goodRSA.Certificate; return x.Marshal() }, ErrInvalidToken},
		{"server certificate", func() []byte { return auth(serverAuthOnly, ES384).Marshal() }, ErrBadCertificate},
	} {
		if _, err := Verify(tc.tok(), origin, n, ca.pool); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	// Expired: verification at a time after the certificate's end.
	if _, err := VerifyWith(good.Marshal(), origin, n, VerifyOptions{Roots: ca.pool, CurrentTime: time.Now().Add(48 * time.Hour)}); !errors.Is(err, ErrBadCertificate) {
		t.Errorf("expired: %v", err)
	}
	if _, err := VerifyWith(good.Marshal(), origin, n, VerifyOptions{Roots: ca.pool, CurrentTime: time.Now()}); err != nil {
		t.Errorf("VerifyWith now: %v", err)
	}
}

func flip(b []byte) []byte {
	c := append([]byte(nil), b...)
	c[len(c)/2] ^= 0x01
	return c
}

func TestAuthenticateErrors(t *testing.T) {
	ca := newTestCA(t, "Auth CA")
	store := oneKeyStore(t, ca, "p256")
	n := nonce(t)
	for _, tc := range []struct {
		name          string
		origin, nonce string
		alg           Algorithm
		err           error
	}{
		{"no origin", "", n, "", ErrInvalidOrigin},
		{"http origin", "http://portal.example.com", n, "", ErrInvalidOrigin},
		{"origin with path", "https://portal.example.com/x", n, "", ErrInvalidOrigin},
		{"short nonce", "https://portal.example.com", base64.StdEncoding.EncodeToString(make([]byte, 16)), "", ErrInvalidNonce},
		{"nonce not base64", "https://portal.example.com", strings.Repeat("*", 44), "", ErrInvalidNonce},
		{"bad algorithm", "https://portal.example.com", n, "EdDSA", ErrInvalidRequest},
		{"algorithm for no key", "https://portal.example.com", n, RS256, ErrNoCertificate},
	} {
		p := &pinPrompter{pin: testPIN}
		_, err := Authenticate(context.Background(), store, p, AuthRequest{Origin: tc.origin, Nonce: tc.nonce, Algorithm: tc.alg})
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
		if len(p.reqs) != 0 {
			t.Errorf("%s: the PIN was asked for", tc.name)
		}
	}
}

func TestParseAuthToken(t *testing.T) {
	ca := newTestCA(t, "Auth CA")
	store := oneKeyStore(t, ca, "p256")
	tok, err := Authenticate(context.Background(), store, &pinPrompter{pin: testPIN}, AuthRequest{Origin: "https://a.example", Nonce: nonce(t)})
	if err != nil {
		t.Fatal(err)
	}
	good := string(tok.Marshal())
	var m map[string]string
	if err := json.Unmarshal([]byte(good), &m); err != nil || len(m) != 4 || m["format"] != AuthFormat || m["algorithm"] != "ES256" {
		t.Fatalf("token JSON %s: %v", good, err)
	}
	c64, s64 := m["certificate"], m["signature"]
	obj := func(members ...string) string { return "{" + strings.Join(members, ",") + "}" }
	f := `"format":"` + AuthFormat + `"`
	a := `"algorithm":"ES256"`
	c := `"certificate":"` + c64 + `"`
	s := `"signature":"` + s64 + `"`
	got, cert, err := ParseAuthToken([]byte(obj(s, c, a, f)))
	if err != nil || got.Algorithm != ES256 || string(got.Signature) != string(tok.Signature) || !cert.Equal(store.Keys[0].Cert) {
		t.Fatalf("member order: %v", err)
	}
	for _, bad := range []string{
		``, `null`, `[]`, `"x"`, `{`, obj(f, a, c), obj(f, a, c, s, `"extra":"x"`), obj(f, a, c, s, f),
		obj(`"Format":"`+AuthFormat+`"`, a, c, s), obj(`"format":"cardwright-auth:2"`, a, c, s),
		obj(f, `"algorithm":"es256"`, c, s), obj(f, `"algorithm":"none"`, c, s), obj(f, a, `"certificate":1`, s),
		obj(f, a, `"certificate":"`+c64[:len(c64)-1]+`"`, s), obj(f, a, `"certificate":"`+c64[:4]+`\n`+c64[4:]+`"`, s), obj(f, a, `"certificate":"AAAA"`, s),
		obj(f, a, c, `"signature":""`), obj(f, a, c, `"signature":null`), obj(f, a, c, `"signature":"`+base64.URLEncoding.EncodeToString([]byte{0xfb, 0xff})+`"`),
		obj(f, a, c, s) + `{}`, obj(f, a, c, s) + ` x`, `{"format":"` + AuthFormat + `",` + a + "," + c + "," + s + ",}",
		strings.Repeat(" ", MaxTokenLen+1),
	} {
		if _, _, err := ParseAuthToken([]byte(bad)); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%.60q…%.30q: %v, want ErrInvalidToken", bad, bad[max(0, len(bad)-30):], err)
		}
	}
	if _, _, err := ParseAuthToken([]byte(" " + obj(f, a, c, s) + "\n")); err != nil {
		t.Errorf("surrounding space: %v", err)
	}
}
