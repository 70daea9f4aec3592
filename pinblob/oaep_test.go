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
