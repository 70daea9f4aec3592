package softstore

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/cardwright/cardwright/secret"
	"github.com/cardwright/cardwright/softstore/softstoretest"
)

// BenchmarkSignUnlock is what one signature with a soft token of the
// agent's store costs: Key (read the file, Argon2id with DefaultKDF —
// t=3, 64 MiB, p=4 — AES-GCM open, PKCS#8 parse) and one ECDSA P-256
// signature. The sub-benchmark sign-only is the signature alone, so the
// difference is the unlock.
//
//	go test ./softstore -run XXX -bench SignUnlock -benchmem
func BenchmarkSignUnlock(b *testing.B) {
	f := softstoretest.NewP12("Bench", "bench pass")
	s := New(b.TempDir())
	pass := secret.New("bench pass")
	if _, err := s.Put(f.Data, pass, "", ""); err != nil {
		b.Fatal(err)
	}
	cs, err := s.Candidates(context.Background())
	if err != nil || len(cs) != 1 {
		b.Fatal(cs, err)
	}
	digest := sha256.Sum256([]byte("benchmark"))
	b.Run("unlock+sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			k, release, err := s.Key(context.Background(), cs[0], pass)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := k.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
				b.Fatal(err)
			}
			release()
		}
	})
	b.Run("sign-only", func(b *testing.B) {
		k, release, err := s.Key(context.Background(), cs[0], pass)
		if err != nil {
			b.Fatal(err)
		}
		defer release()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := k.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
	})
}
