package agent

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
)

// FuzzDecodeArchived: any answer to a key-archival request decodes without
// panicking; an accepted one has the pkcs12's bytes and the password as a
// secret, the password is gone from the answer, and no error holds it.
func FuzzDecodeArchived(f *testing.F) {
	f.Add("MIIJ0QIBAzCCCZc=", "one-time-p12-password", "", "")
	f.Add("", "pw", "", "MIIB")
	f.Add("AAA", "pw-x", "", "")
	f.Add("", "", "template not allowed", "")
	f.Fuzz(func(t *testing.T, p12, password, errText, cert string) {
		a := &api.Answer{PKCS12: p12, Password: password, Error: errText, Certificate: cert}
		got, err := decodeArchived(a, "B")
		if a.Password != "" {
			t.Fatal("the password stayed in the answer")
		}
		if err != nil {
			if len(password) >= 4 && !strings.Contains(errText, password) && strings.Contains(err.Error(), password) {
				t.Fatalf("the password is in the error %q", err)
			}
			if !got.Password.IsZero() || got.PKCS12 != nil {
				t.Fatal("a refused answer returned a PKCS#12 or a password")
			}
			return
		}
		want, derr := base64.StdEncoding.DecodeString(p12)
		if derr != nil || p12 == "" || errText != "" || !bytes.Equal(want, got.PKCS12) || got.Password.Reveal() != password {
			t.Fatalf("accepted %+v for pkcs12 %q error %q", got, p12, errText)
		}
	})
}
