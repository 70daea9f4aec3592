package pinblob

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"math/big"
	"testing"
)

// rawKey is the bare RSA operation over a software key, as a token's
// CKM_RSA_X_509 would do it.
type rawKey struct{ k *rsa.PrivateKey }

func (r rawKey) Public() crypto.PublicKey { return &r.k.PublicKey }

func (r rawKey) DecryptRaw(c []byte) ([]byte, error) {
	m := new(big.Int).Exp(new(big.Int).SetBytes(c), r.k.D, r.k.N)
	return m.Bytes(), nil // no left padding, like some tokens
}

// countingKey counts the raw operations.
type countingKey struct {
	rawKey
	n *int
}

func (c countingKey) DecryptRaw(b []byte) ([]byte, error) {
	*c.n++
	return c.rawKey.DecryptRaw(b)
}

func testRSAKey(t *testing.T) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	priv, err := x509.ParsePKCS8PrivateKey(readPEM(t, "testdata/rsa2048.key"))
	if err != nil {
		t.Fatal(err)
	}
	return loadCert(t, "rsa2048"), priv.(*rsa.PrivateKey)
}

func TestOAEPDecrypter(t *testing.T) {
	cert, priv := testRSAKey(t)
	d, err := OAEPDecrypter(rawKey{priv})
	if err != nil {
		t.Fatal(err)
	}
	opts := &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA256}
	for _, n := range []int{0, 1, 32, 190} {
		msg := make([]byte, n)
		rand.Read(msg)
		c, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, msg, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Decrypt(nil, c, opts)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%d bytes: got %x, %v", n, got, err)
		}
		// Every single-bit change is rejected the way crypto/rsa rejects it.
		for i := 0; i < len(c); i += 7 {
			b := bytes.Clone(c)
			b[i] ^= 0x80
			_, err := d.Decrypt(nil, b, opts)
			_, want := rsa.DecryptOAEP(sha256.New(), nil, priv, b, nil)
			if (err == nil) != (want == nil) || (err != nil && !errors.Is(err, rsa.ErrDecryption)) {
				t.Fatalf("byte %d changed: got %v, crypto/rsa %v", i, err, want)
			}
		}
	}
	// Other schemes and sizes are refused.
	c1, _ := rsa.EncryptOAEP(sha1.New(), rand.Reader, &priv.PublicKey, []byte("x"), nil)
	if _, err := d.Decrypt(nil, c1, &rsa.OAEPOptions{Hash: crypto.SHA1}); err == nil {
		t.Error("SHA-1 options accepted")
	}
	if _, err := d.Decrypt(nil, c1, opts); !errors.Is(err, rsa.ErrDecryption) {
		t.Errorf("SHA-1 ciphertext: %v", err)
	}
	if _, err := d.Decrypt(nil, c1, nil); err == nil {
		t.Error("PKCS#1 v1.5 options accepted")
	}
	if _, err := d.Decrypt(nil, c1[1:], opts); !errors.Is(err, rsa.ErrDecryption) {
		t.Errorf("short ciphertext: %v", err)
	}
	// A ciphertext not below the modulus never reaches the raw key (a
	// token would refuse it with some CKR of its own).
	calls := 0
	strict, _ := OAEPDecrypter(countingKey{rawKey{priv}, &calls})
	allOnes := bytes.Repeat([]byte{0xFF}, priv.Size())
	for _, b := range [][]byte{priv.N.FillBytes(make([]byte, priv.Size())), new(big.Int).Add(priv.N, big.NewInt(1)).FillBytes(make([]byte, priv.Size())), allOnes} {
		if _, err := strict.Decrypt(nil, b, opts); !errors.Is(err, rsa.ErrDecryption) {
			t.Errorf("ciphertext %X… >= n: %v", b[:4], err)
		}
	}
	if calls != 0 {
		t.Errorf("the raw key saw %d out-of-range ciphertexts", calls)
	}

	// Through Key: seals open, changed key fields do not.
	k, err := NewKey(cert, d)
	if err != nil {
		t.Fatal(err)
	}
	pins := testPINs()
	blob, err := SealBlob(rand.Reader, cert, pins)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenBlob(blob, []Key{k})
	if err != nil {
		t.Fatal(err)
	}
	samePINs(t, got, pins)
	blob[headerFixed+5] ^= 1
	if _, err := OpenBlob(blob, []Key{k}); !errors.Is(err, ErrAuthentication) {
		t.Errorf("changed wrapped key: %v", err)
	}
}

func BenchmarkOAEPDecrypter(b *testing.B) {
	priv, err := x509.ParsePKCS8PrivateKey(readPEM(b, "testdata/rsa2048.key"))
	if err != nil {
		b.Fatal(err)
	}
	k := priv.(*rsa.PrivateKey)
	d, _ := OAEPDecrypter(rawKey{k})
	c, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, make([]byte, 32), nil)
	opts := &rsa.OAEPOptions{Hash: crypto.SHA256}
	for b.Loop() {
		if _, err := d.Decrypt(nil, c, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzOAEPDecrypter checks the hand-written OAEP decoding against
// crypto/rsa's. The input is the decoded block (DB = lHash || PS || 01 ||
// M, possibly broken), a seed and the first byte; the test masks them into
// an encoded message EM (RFC 8017 §7.1.1 step 2), encrypts EM raw, and
// requires OAEPDecrypter over the raw key and rsa.DecryptOAEP to agree on
// success and message.
func FuzzOAEPDecrypter(f *testing.F) {
	priv, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		f.Fatal(err)
	}
	d, err := OAEPDecrypter(rawKey{priv})
	if err != nil {
		f.Fatal(err)
	}
	k, hLen := priv.Size(), sha256.Size
	lHash := sha256.Sum256(nil)
	valid := func(msg []byte) []byte {
		db := append(append(lHash[:], make([]byte, k-2*hLen-2-len(msg))...), 1)
		return append(db, msg...)
	}
	seed := bytes.Repeat([]byte{0x5A}, hLen)
	f.Add(byte(0), seed, valid(make([]byte, 32)))
	f.Add(byte(0), seed, valid(nil))
	f.Add(byte(0), seed, valid(make([]byte, k-2*hLen-2)))
	f.Add(byte(1), seed, valid([]byte("x")))
	bad := valid([]byte("abc"))
	bad[hLen+3] = 2 // a non-zero byte in PS
	f.Add(byte(0), seed, bad)
	f.Add(byte(0), seed, make([]byte, k-hLen-1)) // no 01 separator
	opts := &rsa.OAEPOptions{Hash: crypto.SHA256}
	f.Fuzz(func(t *testing.T, first byte, seed, db []byte) {
		if len(seed) != hLen {
			seed = append(seed, make([]byte, hLen)...)[:hLen]
		}
		db = append(db, make([]byte, k-hLen-1)...)[:k-hLen-1]
		em := make([]byte, k)
		em[0] = first
		copy(em[1:], seed)
		copy(em[1+hLen:], db)
		mgf1XOR(em[1+hLen:], em[1:1+hLen]) // maskedDB
		mgf1XOR(em[1:1+hLen], em[1+hLen:]) // maskedSeed
		m := new(big.Int).SetBytes(em)
		if m.Cmp(priv.N) >= 0 {
			return // not an RSA value
		}
		c := new(big.Int).Exp(m, big.NewInt(int64(priv.E)), priv.N).FillBytes(make([]byte, k))
		got, err := d.Decrypt(nil, c, opts)
		want, werr := rsa.DecryptOAEP(sha256.New(), nil, priv, c, nil)
		if (err == nil) != (werr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("OAEPDecrypter: %x, %v; crypto/rsa: %x, %v", got, err, want, werr)
		}
		if err != nil && !errors.Is(err, rsa.ErrDecryption) {
			t.Fatalf("error %v, want rsa.ErrDecryption", err)
		}
	})
}
