package softstore

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/cardwright/cardwright/secret"
	"github.com/cardwright/cardwright/softstore/softstoretest"
)

// TestCheckP12Accepts: the encodings in use pass the limits and decode —
// go-pkcs12's four encoders (PBMAC1 included) and OpenSSL 3's default and
// -legacy exports.
func TestCheckP12Accepts(t *testing.T) {
	f := softstoretest.NewP12("Limits", "pw")
	files := map[string][]byte{}
	for name, enc := range map[string]*pkcs12.Encoder{"Modern2023": pkcs12.Modern2023, "Modern2026": pkcs12.Modern2026,
		"LegacyDES": pkcs12.LegacyDES, "LegacyRC2": pkcs12.LegacyRC2} {
		b, err := enc.Encode(f.Key, f.Cert, nil, "pw")
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	dir := t.TempDir()
	keyPEM, certPEM := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	p12 := filepath.Join(dir, "in.p12")
	os.WriteFile(p12, f.Data, 0o600)
	for _, step := range [][]string{
		{"pkcs12", "-in", p12, "-passin", "pass:pw", "-nodes", "-nocerts", "-out", keyPEM},
		{"pkcs12", "-in", p12, "-passin", "pass:pw", "-nokeys", "-clcerts", "-out", certPEM},
	} {
		if out, err := exec.Command("openssl", step...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(step, " "), err, out)
		}
	}
	for name, extra := range map[string][]string{"openssl": nil, "openssl-legacy": {"-legacy"}} {
		out := filepath.Join(dir, name+".p12")
		args := append([]string{"pkcs12", "-export", "-inkey", keyPEM, "-in", certPEM, "-passout", "pass:pw", "-out", out}, extra...)
		if b, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		files[name], _ = os.ReadFile(out)
	}
	for name, b := range files {
		if err := CheckP12(b); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if o, err := Decode(b, secret.New("pw")); err != nil || !o.Cert.Equal(f.Cert) {
			t.Errorf("%s: decoding: %v", name, err)
		}
	}
}

// TestCheckP12Refuses: over the size, over the rounds of one derivation,
// over the rounds in all, and Decode refuses them without a try of the
// passphrase (the error is ErrMalformed, not ErrWrongPassphrase).
func TestCheckP12Refuses(t *testing.T) {
	f := softstoretest.NewP12("Limits", "pw")
	one, err := pkcs12.Modern2023.WithIterations(MaxIterations+1).Encode(f.Key, f.Cert, nil, "pw")
	if err != nil {
		t.Fatal(err)
	}
	// 700,000 each: the MAC, the certificates' content, the key bag.
	all, err := pkcs12.Modern2023.WithIterations(700_000).Encode(f.Key, f.Cert, nil, "pw")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, want string
		data       []byte
	}{
		{"size", "bytes, over", append(bytes.Clone(f.Data), make([]byte, MaxP12Bytes)...)},
		{"one derivation", "1000001 key-derivation rounds", one},
		{"in all", "in all", all},
		{"not DER", "reading the PKCS#12", []byte("not a pkcs12")},
	} {
		err := CheckP12(c.data)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrMalformed with %q", c.name, err, c.want)
		}
		if _, err := Decode(c.data, secret.New("wrong")); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode: %v", c.name, err)
		}
	}
}

func FuzzCheckP12(f *testing.F) {
	p := softstoretest.NewP12("Fuzz", "pw")
	f.Add(p.Data)
	if b, err := pkcs12.Modern2026.Encode(p.Key, p.Cert, nil, "pw"); err == nil {
		f.Add(b)
	}
	if b, err := pkcs12.LegacyRC2.Encode(p.Key, p.Cert, nil, "pw"); err == nil {
		f.Add(b)
	}
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x03})
	f.Fuzz(func(t *testing.T, data []byte) {
		CheckP12(data) // must not panic; it derives no key, so it is fast
	})
}
