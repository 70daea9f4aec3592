package pinblob

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/secret"
	"software.sslmate.com/src/go-pkcs12"
)

// testKeys are the fixed key pairs under testdata (certificate NAME.crt,
// PKCS#8 key NAME.key, PKCS#12 NAME.p12 with password "cardwright").
var testKeys = []string{"rsa2048", "rsa2048b", "p256", "p384", "p521"}

const p12Password = "cardwright"

func readPEM(t testing.TB, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM block", file)
	}
	return b.Bytes
}

func loadCert(t testing.TB, name string) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(readPEM(t, "testdata/"+name+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func loadKey(t testing.TB, name string) Key {
	t.Helper()
	priv, err := x509.ParsePKCS8PrivateKey(readPEM(t, "testdata/"+name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewKey(loadCert(t, name), priv)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func allKeys(t testing.TB) map[string]Key {
	m := map[string]Key{}
	for _, n := range testKeys {
		m[n] = loadKey(t, n)
	}
	return m
}

// testPINs are the secrets the tests seal; their values are looked for in
// every error message.
func testPINs() []PIN {
	var pins []PIN
	for i, n := range Names() {
		pins = append(pins, PIN{Name: n, Value: secret.New(fmt.Sprintf("%d%d%d%d7%d5%d", i, i, i, i, i, i))})
	}
	return pins
}

func checkNoSecrets(t *testing.T, s string, pins []PIN) {
	t.Helper()
	for _, p := range pins {
		if strings.Contains(s, p.Value.Reveal()) {
			t.Errorf("secret %s leaked into %q", p.Name, s)
		}
	}
}

func samePINs(t *testing.T, got, want []PIN) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d secrets, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Name != want[i].Name || !got[i].Value.Equal(want[i].Value) {
			t.Errorf("secret %d: got %s, want %s (or value differs)", i, got[i].Name, want[i].Name)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	keys := allKeys(t)
	var ring []Key
	for _, n := range testKeys {
		ring = append(ring, keys[n])
	}
	for _, name := range []string{"rsa2048", "p256", "p384", "p521"} {
		for _, pins := range [][]PIN{testPINs(), testPINs()[:1], {testPINs()[7], testPINs()[0]}} {
			t.Run(fmt.Sprintf("%s/%d", name, len(pins)), func(t *testing.T) {
				content, err := Seal(rand.Reader, keys[name].Certificate(), pins)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range pins {
					if bytes.Contains(content, p.Value.Bytes()) {
						t.Errorf("%s in clear in the card file", p.Name)
					}
				}
				got, err := Open(content, ring)
				if err != nil {
					t.Fatal(err)
				}
				samePINs(t, got, pins)
				// Only the matching key is needed.
				got, err = Open(content, []Key{keys[name]})
				if err != nil {
					t.Fatal(err)
				}
				samePINs(t, got, pins)
				if s := fmt.Sprint(got); strings.Contains(s, pins[0].Value.Reveal()) {
					t.Errorf("printing the PINs shows a value: %s", s)
				}
			})
		}
	}
}

func TestSealIsRandomized(t *testing.T) {
	k := loadKey(t, "p256")
	a, err := Seal(rand.Reader, k.Certificate(), testPINs())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Seal(rand.Reader, k.Certificate(), testPINs())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Error("two seals of the same PINs are equal")
	}
}

func TestWrongKey(t *testing.T) {
	keys := allKeys(t)
	for _, tc := range []struct{ to, with string }{
		{"rsa2048", "rsa2048b"},
		{"rsa2048", "p256"},
		{"p256", "p384"},
		{"p384", "rsa2048"},
		{"p521", ""},
	} {
		t.Run(tc.to+"/"+tc.with, func(t *testing.T) {
			cert := keys[tc.to].Certificate()
			content, err := Seal(rand.Reader, cert, testPINs())
			if err != nil {
				t.Fatal(err)
			}
			var ring []Key
			if tc.with != "" {
				ring = []Key{keys[tc.with]}
			}
			_, err = Open(content, ring)
			var nk *NoKeyError
			if !errors.As(err, &nk) {
				t.Fatalf("got %v, want a NoKeyError", err)
			}
			if !bytes.Equal(nk.ID, KeyID(cert)) {
				t.Errorf("key id %X, want %X", nk.ID, KeyID(cert))
			}
			want := fmt.Sprintf("no decryption key found matching #%X", KeyID(cert))
			if err.Error() != want {
				t.Errorf("message %q, want %q", err, want)
			}
		})
	}
}

func TestKeyID(t *testing.T) {
	// The id is computed from the public key alone: the PKCS#12 file of
	// the same key gives the same id, another key another id.
	seen := map[string]string{}
	for _, n := range testKeys {
		k := loadKey(t, n)
		if len(k.ID()) != KeyIDLen {
			t.Fatalf("%s: id of %d bytes", n, len(k.ID()))
		}
		if o, dup := seen[string(k.ID())]; dup {
			t.Errorf("%s and %s share a key id", n, o)
		}
		seen[string(k.ID())] = n
		p12, err := os.ReadFile("testdata/" + n + ".p12")
		if err != nil {
			t.Fatal(err)
		}
		pk, err := LoadPKCS12(p12, secret.New(p12Password))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pk.ID(), k.ID()) {
			t.Errorf("%s: PKCS#12 key id %X, PEM key id %X", n, pk.ID(), k.ID())
		}
		if !strings.Contains(k.String(), fmt.Sprintf("%X", k.ID())) {
			t.Errorf("%s: String() = %q", n, k)
		}
	}
}

func TestNoBlob(t *testing.T) {
	keys := []Key{loadKey(t, "p256")}
	other, err := MarshalDataObject("Public key", []byte{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		content   []byte
		malformed bool
	}{
		{"empty", nil, false},
		{"zeros", make([]byte, 512), false},
		{"ff", bytes.Repeat([]byte{0xFF}, 300), false},
		{"other object", other, false},
		{"other object padded", append(append([]byte{}, other...), make([]byte, 40)...), false},
		{"foreign bytes", []byte("not a data object"), true},
		{"certificate", loadCert(t, "p256").Raw, true},
		{"truncated", other[:len(other)-1], true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.content, keys)
			if !errors.Is(err, ErrNoBlob) {
				t.Fatalf("got %v, want ErrNoBlob", err)
			}
			if errors.Is(err, ErrMalformed) != tc.malformed {
				t.Errorf("ErrMalformed in chain = %v, want %v (%v)", !tc.malformed, tc.malformed, err)
			}
			if !strings.HasPrefix(err.Error(), "no encrypted PINs on this card") {
				t.Errorf("message %q", err)
			}
		})
	}
}

// TestTamper flips each byte of the blob in turn: every change must be
// detected, and a change after the key id must be reported as an
// authentication failure (or, for the EC point and the length, as a
// malformed blob) — never succeed, never leak a secret.
func TestTamper(t *testing.T) {
	pins := testPINs()
	for _, name := range []string{"rsa2048", "p256", "p384"} {
		t.Run(name, func(t *testing.T) {
			k := loadKey(t, name)
			blob, err := SealBlob(rand.Reader, k.Certificate(), pins)
			if err != nil {
				t.Fatal(err)
			}
			kfLen := int(blob[headerFixed-2])<<8 | int(blob[headerFixed-1])
			for i := range blob {
				b := bytes.Clone(blob)
				b[i] ^= 0x01
				_, err := OpenBlob(b, []Key{k})
				if err == nil {
					t.Fatalf("byte %d changed: opened", i)
				}
				checkNoSecrets(t, err.Error(), pins)
				var nk *NoKeyError
				var ok bool
				switch {
				case i < 4:
					ok = errors.Is(err, ErrMalformed)
				case i < 6:
					ok = errors.Is(err, ErrUnsupported) || errors.Is(err, ErrMalformed)
				case i < 6+KeyIDLen:
					ok = errors.As(err, &nk)
				case i < headerFixed:
					ok = errors.Is(err, ErrMalformed) || errors.Is(err, ErrAuthentication)
				case i < headerFixed+kfLen && name != "rsa2048":
					ok = errors.Is(err, ErrMalformed) || errors.Is(err, ErrAuthentication)
				default:
					ok = errors.Is(err, ErrAuthentication)
				}
				if !ok {
					t.Errorf("byte %d changed: unexpected error %v", i, err)
				}
			}
			// Truncation and extension.
			for _, b := range [][]byte{blob[:len(blob)-1], blob[:headerFixed+kfLen+nonceLen+tagLen-1], append(bytes.Clone(blob), 0)} {
				if _, err := OpenBlob(b, []Key{k}); err == nil {
					t.Errorf("blob of %d bytes (from %d) opened", len(b), len(blob))
				}
			}
		})
	}
}

// TestPlaintextErrors seals malformed plaintexts with a valid key: the
// decoder must reject them without quoting what it decrypted.
func TestPlaintextErrors(t *testing.T) {
	k := loadKey(t, "p256")
	const val = "98765432"
	leak := []PIN{{Name: "X", Value: secret.New(val)}}
	good := func(name, v string) []byte {
		p, err := MarshalDataObject(name, []byte(v)) // same shape: SEQUENCE{UTF8String, OCTET STRING}
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	seq := func(parts ...[]byte) []byte {
		body := bytes.Join(parts, nil)
		if len(body) > 127 {
			t.Fatal("test plaintext too long")
		}
		return append([]byte{0x30, byte(len(body))}, body...)
	}
	for _, tc := range []struct {
		name string
		pt   []byte
	}{
		{"empty", nil},
		{"empty list", seq()},
		{"unknown name", seq(good(val, val))},
		{"duplicate", seq(good("PIN1", val), good("PIN1", val))},
		{"trailing", append(seq(good("PIN1", val)), 0)},
		{"bad element", seq([]byte{0x04, 0x08}, []byte(val))},
		{"not a sequence", []byte(val)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blob, err := sealPlaintext(rand.Reader, k.Certificate(), tc.pt)
			if err != nil {
				t.Fatal(err)
			}
			_, err = OpenBlob(blob, []Key{k})
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
			checkNoSecrets(t, err.Error(), leak)
		})
	}
}

func TestSealErrors(t *testing.T) {
	cert := loadCert(t, "p256")
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	pins := testPINs()
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		pins []PIN
		want string
	}{
		{"no pins", cert, nil, "no PINs"},
		{"unknown name", cert, []PIN{{Name: "PIN4", Value: secret.New("1234")}}, `unknown secret name "PIN4"`},
		{"lower case name", cert, []PIN{{Name: "pin1", Value: secret.New("1234")}}, `unknown secret name "pin1"`},
		{"duplicate", cert, []PIN{pins[0], pins[1], pins[0]}, "PIN1 given twice"},
		{"empty value", cert, []PIN{{Name: "OP"}}, "OP is empty"},
		{"no certificate", nil, pins, "no recipient"},
		{"small RSA", selfSigned(t, small), pins, "1024 bits"},
		{"Ed25519", selfSigned(t, edPriv), pins, "ed25519"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Seal(rand.Reader, tc.cert, tc.pins)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			checkNoSecrets(t, err.Error(), pins)
		})
	}
}

func selfSigned(t *testing.T, priv crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewKeyErrors(t *testing.T) {
	privOf := func(n string) any {
		p, err := x509.ParsePKCS8PrivateKey(readPEM(t, "testdata/"+n+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ecdhOf := func(n string) any {
		p, err := privOf(n).(*ecdsa.PrivateKey).ECDH()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		cert string
		priv any
		want string
	}{
		{"rsa other key", "rsa2048", privOf("rsa2048b"), "does not match"},
		{"rsa with ec key", "rsa2048", privOf("p256"), "private key is a"},
		{"ec other curve", "p256", privOf("p384"), "does not match"},
		{"ec other key ecdh", "p256", ecdhOf("p384"), "does not match"},
		{"ec with rsa key", "p256", privOf("rsa2048"), "private key is a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewKey(loadCert(t, tc.cert), tc.priv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	// *ecdh.PrivateKey and a bare ECDHKey are accepted.
	k, err := NewKey(loadCert(t, "p384"), ecdhOf("p384"))
	if err != nil {
		t.Fatal(err)
	}
	content, err := Seal(rand.Reader, k.Certificate(), testPINs())
	if err != nil {
		t.Fatal(err)
	}
	bare, err := NewKey(loadCert(t, "p384"), bareECDH{ecdhOf("p384").(ECDHKey)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(content, []Key{bare}); err != nil {
		t.Fatal(err)
	}
}

// bareECDH hides PublicKey, as a PKCS#11 key adapter might.
type bareECDH struct{ k ECDHKey }

func (b bareECDH) ECDH(remote *ecdh.PublicKey) ([]byte, error) { return b.k.ECDH(remote) }

func TestLoadPKCS12(t *testing.T) {
	pins := testPINs()
	for _, n := range testKeys {
		t.Run(n, func(t *testing.T) {
			data, err := os.ReadFile("testdata/" + n + ".p12")
			if err != nil {
				t.Fatal(err)
			}
			k, err := LoadPKCS12(data, secret.New(p12Password))
			if err != nil {
				t.Fatal(err)
			}
			content, err := Seal(rand.Reader, loadCert(t, n), pins)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Open(content, []Key{k})
			if err != nil {
				t.Fatal(err)
			}
			samePINs(t, got, pins)

			const wrong = "wrong-password-77"
			_, err = LoadPKCS12(data, secret.New(wrong))
			if !errors.Is(err, pkcs12.ErrIncorrectPassword) {
				t.Errorf("wrong password: got %v", err)
			}
			if err != nil && strings.Contains(err.Error(), wrong) {
				t.Errorf("password in error %q", err)
			}
		})
	}
	if _, err := LoadPKCS12([]byte("junk"), secret.New("x")); err == nil {
		t.Error("junk PKCS#12 loaded")
	}
}

func TestDataObjects(t *testing.T) {
	a, _ := MarshalDataObject("Public key", []byte{1, 2, 3})
	k := loadKey(t, "p256")
	pins := testPINs()[:2]
	b, err := Seal(rand.Reader, k.Certificate(), pins)
	if err != nil {
		t.Fatal(err)
	}
	content := append(append(append([]byte{}, a...), b...), bytes.Repeat([]byte{0xFF}, 64)...)
	dos, err := ParseDataObjects(content)
	if err != nil {
		t.Fatal(err)
	}
	if len(dos) != 2 || dos[0].Label != "Public key" || dos[1].Label != Label {
		t.Fatalf("got %+v", dos)
	}
	got, err := Open(content, []Key{k})
	if err != nil {
		t.Fatal(err)
	}
	samePINs(t, got, pins)
	// Padding is only padding when uniform.
	bad := append(append([]byte{}, b...), 0x00, 0xFF)
	if _, err := ParseDataObjects(bad); !errors.Is(err, ErrMalformed) {
		t.Errorf("mixed trailer: got %v", err)
	}
	// Open still finds the blob before a broken trailer.
	if _, err := Open(bad, []Key{k}); err != nil {
		t.Errorf("blob before a broken trailer: %v", err)
	}
}
