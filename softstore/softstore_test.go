package softstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/certfilter"
	"github.com/cardwright/cardwright/secret"
	"github.com/cardwright/cardwright/signing"
	"github.com/cardwright/cardwright/softstore/softstoretest"
)

// fastKDF keeps tests quick; the format records the parameters.
var fastKDF = KDF{Time: 1, MemoryKiB: 64, Threads: 1}

func newStore(t *testing.T) *Store {
	t.Helper()
	return &Store{Dir: filepath.Join(t.TempDir(), "softtokens"), KDF: fastKDF}
}

func TestRoundTrip(t *testing.T) {
	s := newStore(t)
	p := softstoretest.NewP12("Alice Soft", "correct horse")
	e, err := s.Put(p.Data, secret.New("correct horse"), "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if e.ProfileType != ProfileFileP12SW || e.Label != "alice" || !e.Cert.Equal(p.Cert) {
		t.Fatalf("entry = %+v", e)
	}
	fi, err := os.Stat(s.Dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("folder mode: %v %v", fi.Mode(), err)
	}
	files, _ := filepath.Glob(filepath.Join(s.Dir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	fi, _ = os.Stat(files[0])
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v", fi.Mode())
	}
	raw, _ := os.ReadFile(files[0])
	if strings.Contains(string(raw), "correct horse") {
		t.Fatal("the passphrase is in the file")
	}

	list, err := s.List()
	if err != nil || len(list) != 1 || !list[0].Cert.Equal(p.Cert) || list[0].KeyIDHex() != e.KeyIDHex() {
		t.Fatalf("List = %v, %v", list, err)
	}
	key, _, err := s.Open(e.KeyID, secret.New("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if !key.(*ecdsa.PrivateKey).Equal(p.Key) {
		t.Fatal("a different key came back")
	}
	if _, _, err := s.Open(e.KeyID, secret.New("wrong")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Open with a wrong passphrase: %v", err)
	}
	if err := s.Remove(e.KeyID); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Fatalf("after Remove: %v", list)
	}
}

func TestWrongPassphraseStoresNothing(t *testing.T) {
	s := newStore(t)
	p := softstoretest.NewP12("Bob", "right")
	if _, err := s.Put(p.Data, secret.New("wrong"), "bob", ""); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Put = %v, want ErrWrongPassphrase", err)
	}
	if _, err := os.Stat(s.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the store folder was made: %v", err)
	}
	if _, err := s.Put([]byte("not a pkcs12"), secret.New("x"), "bob", ""); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Put(garbage) = %v, want ErrMalformed", err)
	}
}

// TestTamperedMetadata: a certificate swapped into a file (another
// token's) makes the file fail to open, not sign under a wrong name.
func TestTamperedMetadata(t *testing.T) {
	s := newStore(t)
	a := softstoretest.NewP12("A", "pa")
	ea, err := s.Put(a.Data, secret.New("pa"), "a", "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.Dir, ea.KeyIDHex()+".json")
	f, err := s.read(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Label = "renamed"
	if _, err := f.open(secret.New("pa")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("opening with changed metadata: %v", err)
	}
}

// TestSigningStore: the store as signing sees it: listed with token.type
// and token.profiletype, filtered, signed with after the passphrase.
func TestSigningStore(t *testing.T) {
	s := newStore(t)
	p := softstoretest.NewP12("Carol Soft", "pw")
	if _, err := s.Put(p.Data, secret.New("pw"), "carol", ""); err != nil {
		t.Fatal(err)
	}
	f, err := certfilter.Parse([]byte(`{"op":"and","value":[{"op":"eq","param":"token.profiletype","value":"FILEP12SW"},{"op":"eq","param":"token.type","value":"SOFTWARE"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	cands, err := signing.List(context.Background(), signing.Stores{s}, signing.Selector{Filter: f})
	if err != nil || len(cands) != 1 {
		t.Fatalf("List = %v, %v", cands, err)
	}
	other, _ := certfilter.Parse([]byte(`{"op":"eq","param":"token.profiletype","value":"SW"}`))
	if c, _ := signing.List(context.Background(), s, signing.Selector{Filter: other}); len(c) != 0 {
		t.Fatalf("profile type SW matched %v", c)
	}
	key, release, err := s.Key(context.Background(), cands[0], secret.New("pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	d := sha256.Sum256([]byte("hello"))
	sig, err := key.Sign(rand.Reader, d[:], nil)
	if err != nil || !ecdsa.VerifyASN1(&p.Key.PublicKey, d[:], sig) {
		t.Fatalf("signature does not verify: %v", err)
	}
	var pe *signing.PINError
	if _, _, err := s.Key(context.Background(), cands[0], secret.New("nope")); !errors.As(err, &pe) {
		t.Fatalf("wrong passphrase: %v, want *signing.PINError", err)
	}
}

func FuzzParseFile(f *testing.F) {
	s := &Store{Dir: f.TempDir(), KDF: fastKDF}
	p := softstoretest.NewP12("Fuzz", "pw")
	e, err := s.Put(p.Data, secret.New("pw"), "fuzz", "")
	if err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(filepath.Join(s.Dir, e.KeyIDHex()+".json"))
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version":1,"kdf":"argon2id","params":{"time":1,"memory_kib":8,"threads":1}}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pf, err := parseFile(data)
		if err != nil {
			return
		}
		if pf.Params.MemoryKiB > 1<<12 || pf.Params.Time > 2 {
			return // keep each run cheap; the ranges are checked above
		}
		pf.open(secret.New("pw")) // must not panic
	})
}

func FuzzDecode(f *testing.F) {
	f.Add(softstoretest.NewP12("Fuzz", "pw").Data)
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x03})
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := Decode(data, secret.New("pw"))
		if err == nil && (o.Key == nil || o.Cert == nil) {
			t.Fatal("nil key or certificate without an error")
		}
	})
}
