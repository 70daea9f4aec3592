package p11store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/signing"
)

// BenchmarkSignSoftHSM measures signing.Sign on SoftHSM2 end to end: list
// the candidates (a session per token, C_FindObjects), filter, prompt (an
// instant prompter), open a session, C_Login, find the key, sign, check the
// signature with the certificate, close. "list" is Candidates alone,
// "login" the session, C_Login and key lookup of Store.Key; "key" is the token signature alone
// (C_SignInit + C_Sign on an open, logged-in session) for comparison.
//
//	go test -run '^$' -bench BenchmarkSignSoftHSM -benchtime 2s ./signing/p11store
func BenchmarkSignSoftHSM(b *testing.B) {
	m := softhsm(b)
	ca := newCA(b)
	f := newFixture(b, m, ca, keyDef{"Bench RSA", p11.RSA2048, []byte{1}}, keyDef{"Bench P256", p11.ECP256, []byte{2}}, keyDef{"Bench P384", p11.ECP384, []byte{3}})
	store := New(m)
	onToken := `{"op":"eq","param":"token.id","value":"` + f.tok.Serial() + `"}`
	data := make([]byte, 1024)
	rand.Read(data)
	b.Run("list", func(b *testing.B) {
		for b.Loop() {
			if _, err := store.Candidates(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("login", func(b *testing.B) {
		cands, err := signing.List(context.Background(), store, signing.Selector{Filter: filter(b, onToken), KeyID: []byte{2}})
		if err != nil || len(cands) != 1 {
			b.Fatalf("%d candidates, %v", len(cands), err)
		}
		for b.Loop() {
			_, release, err := store.Key(context.Background(), cands[0], testPIN)
			if err != nil {
				b.Fatal(err)
			}
			release()
		}
	})
	for _, tc := range []struct {
		name string
		id   byte
		alg  signing.Algorithm
	}{
		{"RSA2048-RS256", 1, signing.RS256},
		{"RSA2048-PS256", 1, signing.PS256},
		{"P256-ES256", 2, signing.ES256},
		{"P384-ES384", 3, signing.ES384},
	} {
		sel := signing.Selector{Filter: filter(b, onToken), KeyID: []byte{tc.id}}
		b.Run(tc.name+"/sign", func(b *testing.B) {
			p := &prompter{pin: testPIN}
			for b.Loop() {
				if _, err := signing.Sign(context.Background(), store, p, signing.Request{Select: sel, Algorithm: tc.alg, Data: data}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sig/s")
		})
		b.Run(tc.name+"/key", func(b *testing.B) {
			cands, err := signing.List(context.Background(), store, sel)
			if err != nil || len(cands) != 1 {
				b.Fatalf("%d candidates, %v", len(cands), err)
			}
			key, release, err := store.Key(context.Background(), cands[0], testPIN)
			if err != nil {
				b.Fatal(err)
			}
			defer release()
			digest := sha256.Sum256(data)
			if tc.alg == signing.ES384 {
				d := make([]byte, 48)
				copy(d, digest[:])
				for b.Loop() {
					if _, err := key.Sign(rand.Reader, d, tc.alg.SignerOpts()); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				for b.Loop() {
					if _, err := key.Sign(rand.Reader, digest[:], tc.alg.SignerOpts()); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sig/s")
		})
	}
}
