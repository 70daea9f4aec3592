package cardinit_test

import (
	"testing"

	"github.com/cardwright/cardwright/cardinit"
	"github.com/cardwright/cardwright/secret"
)

// FuzzParseIssued: whatever file the officer loads, reading it returns a
// certificate that parses or an error, never a panic.
func FuzzParseIssued(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), "")
	f.Add([]byte{0x30, 0x82, 0x01, 0x0a, 0x02}, "pw")
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nAA==\n-----END CERTIFICATE REQUEST-----\n"), "")
	f.Fuzz(func(t *testing.T, data []byte, pw string) {
		cert, chain, err := cardinit.ParseIssued(data, secret.New(pw))
		if err == nil && len(cert) == 0 {
			t.Fatalf("no error and no certificate (chain %d)", len(chain))
		}
	})
}
