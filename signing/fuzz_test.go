package signing

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// FuzzParseAuthToken: no input panics; a rejected input is ErrInvalidToken;
// an accepted one marshals back to a token that parses to the same values,
// and Verify never accepts a token whose bytes were not made by
// Authenticate for this origin and nonce (the seeds' valid tokens aside).
func FuzzParseAuthToken(f *testing.F) {
	ca := newTestCA(f, "Fuzz CA")
	const origin = "https://portal.example.com"
	n := "q1f5Yk2xS0m7pA9bQwErTyUiOpAsDfGhJkLzXcVbNm0="
	var valid [][]byte
	for _, kind := range []string{"p256", "p384"} { // EC only: every fuzz worker runs this setup, RSA key generation would stall it
		store := oneKeyStore(f, ca, kind)
		tok, err := Authenticate(context.Background(), store, &pinPrompter{pin: testPIN}, AuthRequest{Origin: origin, Nonce: n})
		if err != nil {
			f.Fatal(err)
		}
		valid = append(valid, tok.Marshal())
		f.Add(tok.Marshal())
	}
	for _, s := range []string{``, `{}`, `null`, `{"format":"cardwright-auth:1"}`, `{"format":1,"format":2}`,
		`{"format":"cardwright-auth:1","algorithm":"ES256","certificate":"AAAA","signature":"AAAA"}`,
		"{\"format\":\"\xff\"}", `[{"format":"x"}]`, `{"signature":"` + "\\u0041" + `"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, cert, err := ParseAuthToken(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v is not ErrInvalidToken", err)
			}
			if tok != nil || cert != nil {
				t.Fatal("values with an error")
			}
			return
		}
		again, cert2, err := ParseAuthToken(tok.Marshal())
		if err != nil {
			t.Fatalf("re-marshalled token does not parse: %v", err)
		}
		if again.Algorithm != tok.Algorithm || !bytes.Equal(again.Signature, tok.Signature) || !cert2.Equal(cert) {
			t.Fatal("round trip changed the token")
		}
		if _, err := Verify(data, origin, n, ca.pool); err == nil {
			for _, v := range valid {
				if bytes.Equal(bytes.TrimSpace(data), v) || (again.Algorithm == tok.Algorithm && bytes.Equal(tok.Marshal(), v)) {
					return
				}
			}
			t.Fatalf("Verify accepted a token not made by Authenticate: %s", data)
		}
	})
}
