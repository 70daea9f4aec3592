package p11

import (
	"bytes"
	"crypto/elliptic"
	"encoding/hex"
	"strings"
	"testing"
)

// FuzzParseAttribute: the description's criteria text never panics, and
// what it accepts encodes the value as its type says.
func FuzzParseAttribute(f *testing.F) {
	for _, s := range [][3]string{
		{"CKA_LABEL", "STRING", "Auth key"}, {"CKA_ID", "HEX", "0a:1B 2c"}, {"CKA_SIGN", "BOOL", "true"},
		{"CKA_MODULUS_BITS", "ULONG", "2048"}, {"CKA_CLASS", "ULONG", "CKO_CERTIFICATE"}, {"0x3", "", "x"},
		{"CKA_KEY_TYPE", "INT", "0x3"}, {"cka_value", "bytes", ""}, {"CKA_ID", "HEX", "abc"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, attr, typ, value string) {
		a, err := ParseAttribute(attr, typ, value)
		if err != nil {
			return
		}
		if _, isConst := constNames[strings.ToUpper(strings.TrimSpace(value))]; isConst {
			if len(a.Value) != len(ulongBytes(0)) {
				t.Fatalf("constant %q encoded in %d bytes", value, len(a.Value))
			}
			return
		}
		switch strings.ToUpper(strings.TrimSpace(typ)) {
		case "", "STRING", "TEXT", "UTF8", "CHAR":
			if string(a.Value) != value {
				t.Fatalf("string value %q became %q", value, a.Value)
			}
		case "HEX", "BYTES", "BINARY", "BYTE_ARRAY":
			if !strings.EqualFold(hex.EncodeToString(a.Value), strings.NewReplacer(" ", "", ":", "").Replace(value)) {
				t.Fatalf("hex value %q became %X", value, a.Value)
			}
		case "BOOL", "BOOLEAN", "BBOOL":
			if len(a.Value) != 1 || a.Value[0] > 1 {
				t.Fatalf("bool value %q became %X", value, a.Value)
			}
		default:
			if len(a.Value) != len(ulongBytes(0)) {
				t.Fatalf("number %q encoded in %d bytes", value, len(a.Value))
			}
		}
	})
}

// FuzzParseKeySpec: accepted specs are one of the five and print back to
// something that parses to the same spec.
func FuzzParseKeySpec(f *testing.F) {
	for _, s := range []string{"RSA-2048", "rsa:3072", "RSA4096", "EC-P256", "P-384", "ECC_P256", "secp384r1", "RSA-1024", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKeySpec(s)
		if err != nil {
			return
		}
		again, err := ParseKeySpec(k.String())
		if err != nil || again != k {
			t.Fatalf("%q → %v → %v, %v", s, k, again, err)
		}
	})
}

// FuzzCurveOf: CKA_EC_PARAMS from a module never panics the decoder, and
// the curves it accepts encode back to the same DER.
func FuzzCurveOf(f *testing.F) {
	p256, _ := curveParams(ECP256.Curve)
	p384, _ := curveParams(ECP384.Curve)
	f.Add(p256)
	f.Add(p384)
	p521, _ := curveParams(elliptic.P521())
	f.Add(p521)
	f.Add([]byte{0x06, 0x00})
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := curveOf(b)
		if err != nil {
			return
		}
		der, err := curveParams(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := curveOf(der); err != nil || !bytes.HasPrefix(b, der[:2]) {
			t.Fatalf("%X decoded as %s, which encodes as %X", b, c.Params().Name, der)
		}
	})
}
