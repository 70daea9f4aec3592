package runner_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"os"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/cpf"
	"github.com/cardwright/cardwright/dsc"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/pinblob"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/runnertest"
	"github.com/cardwright/cardwright/secret"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

const seedDir = "../testdata/seed"

// testP12 makes a PKCS#12 with a key and a certificate from the test CA.
func testP12(t *testing.T, password string) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "archived"}}, key)
	iss := newIssuer(t)
	der, _, err := iss.Issue(context.Background(), issuerRequest(csr))
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p12, err := pkcs12.Modern.Encode(key, cert, []*x509.Certificate{testCA.Certificate()}, password)
	if err != nil {
		t.Fatal(err)
	}
	return p12
}

// TestSeedDescriptions runs the descriptions of the seed document end to
// end — with this project's card profiles, on an in-memory card and the
// token fake, as a Windows 32-bit agent would plan them — one after the
// other on the same card, and checks what each leaves behind.
func TestSeedDescriptions(t *testing.T) {
	r := newRig(t, "R0")
	pinCert, pinKeyv := pinKey(t)
	run := &runner.Runner{Engine: r.engine, Platform: dsc.Platform{OS: "windows", Arch: "386"},
		Deps: runner.Deps{Tokens: r.tokens, Issuer: r.issuer, PINKeys: []pinblob.Key{pinKeyv},
			Profiles: runner.CPF{Config: cpf.Config{Models: map[string]string{"SIEMENS50": "ISO7816"}}, PINCert: pinCert}}}
	card := r.readers.Card("R0")
	tok := r.tokens.Token("R0", runner.LocationDefault)
	job := func(name string, fields map[string]string, secrets ...string) *runner.Job {
		src, err := os.ReadFile(seedDir + "/" + name + ".dsc")
		if err != nil {
			t.Fatal(err)
		}
		j := &runner.Job{Name: name + ".dsc", Description: src, Files: os.DirFS(seedDir), Fields: map[string]secret.Value{}, SecretOutputs: secrets, Reader: "R0"}
		for k, v := range fields {
			j.Fields[k] = secret.New(v)
		}
		return j
	}
	b64 := base64.StdEncoding.EncodeToString
	p12 := testP12(t, "p12-pass-9182")
	for _, tc := range []struct {
		name  string
		job   *runner.Job
		code  api.Code // "" success
		step  string
		check func(t *testing.T, res runner.Result)
	}{
		{"prepersonalize", job("prepersonalize", map[string]string{"PIN": testPIN, "PUK": testPUK}), "", "", func(t *testing.T, res runner.Result) {
			if s := tok.Snapshot(); s.Label != "prepersonalized" || s.PIN.Reveal() != testPIN {
				t.Errorf("token label %q", s.Label)
			}
		}},
		{"read_all_encrypted_pins", job("read_all_encrypted_pins", nil, "DecryptedCardPin_PIN1", "DecryptedCardPin_PIN2", "DecryptedCardPin_PIN3",
			"DecryptedCardPin_PUK", "DecryptedCardPin_PUK1", "DecryptedCardPin_PUK2", "DecryptedCardPin_OP", "DecryptedCardPin_MAN"), "", "", func(t *testing.T, res runner.Result) {
			if len(res.Secrets) != 8 || len(res.Fields) != 0 {
				t.Fatalf("%d secrets, fields %v; want 8 secrets only", len(res.Secrets), res.Fields)
			}
			if res.Secrets["DecryptedCardPin_PIN1"].Reveal() != testPIN || res.Secrets["DecryptedCardPin_PUK"].Reveal() != testPUK {
				t.Error("decrypted PIN1/PUK are not the job's")
			}
			if op := res.Secrets["DecryptedCardPin_OP"].Reveal(); len(op) != 12 {
				t.Errorf("generated OP PIN of %d characters, want 12", len(op))
			}
		}},
		{"read_all_encrypted_pins into plain fields", job("read_all_encrypted_pins", nil, "DecryptedCardPin_PIN1"), api.CodeSecretOutput, "validate", nil},
		{"use_chip_serial", job("use_chip_serial", nil), "", "", func(t *testing.T, res runner.Result) {
			if res.Fields["iccsnField"] != "CAFE00" {
				t.Errorf("ICCSN %q", res.Fields["iccsnField"])
			}
		}},
		{"delete_profile", job("delete_profile", nil), "", "", func(t *testing.T, res runner.Result) {
			if _, err := iso7816.Send(card, iso7816.SelectMF()); err == nil {
				t.Error("the card still has an MF")
			}
		}},
		{"init_token", job("init_token", map[string]string{"variable1": b64([]byte("value one")), "variable2": b64([]byte{0, 1, 2, 0xFF})}), "", "", func(t *testing.T, res runner.Result) {
			for fid, want := range map[uint16]string{0x1001: "value one", 0x1002: "\x00\x01\x02\xff"} {
				if _, err := iso7816.Send(card, iso7816.SelectPath(true, fid)); err != nil {
					t.Fatal(err)
				}
				rb, _ := iso7816.ReadBinary(0, len(want))
				if got, err := iso7816.Send(card, rb); err != nil || string(got) != want {
					t.Errorf("file %04X = %q, %v", fid, got, err)
				}
			}
		}},
		{"init_token with a field that is not base64", job("init_token", map[string]string{"variable1": "***", "variable2": "AA=="}), api.CodeInvalidField, "validate", nil},
		{"delete_profile again", job("delete_profile", nil), "", "", nil},
		// The stand-in token keeps its SO PIN across DeleteProfile (PKCS#11
		// cannot make a token uninitialised again): the same PUK is used.
		{"delete_profile before signature_slot", job("delete_profile", nil), "", "", nil},
		{"signature_slot", job("signature_slot", map[string]string{"PUK": testPUK, "OP_PIN": "33334444", "PIN": "5555", "SIGN_PIN": "666666"}, "PUK", "OP_PIN", "PIN", "SIGN_PIN"), "", "", func(t *testing.T, res runner.Result) {
			for ref, pin := range map[byte]string{0x81: "5555", 0x82: "666666"} {
				if _, err := iso7816.Send(card, iso7816.Verify(ref, []byte(pin))); err != nil {
					t.Errorf("PIN %02X: %v", ref, err)
				}
			}
		}},
		{"delete_profile before cms_card_serial", job("delete_profile", nil), "", "", nil},
		{"cms_card_serial", job("cms_card_serial", map[string]string{"AppList": "BA", "PIN_FIELD": testPIN, "PUK_FIELD": testPUK, "OP_PIN_FIELD": testOpPIN,
			"PRIME_FIELD_WITH_CARD_SERIAL": "CW-000042", "P12CERTIFICATE_B": b64(p12), "P12PASSWORD_B": "p12-pass-9182"}, "PIN_FIELD", "PUK_FIELD", "OP_PIN_FIELD", "P12PASSWORD_B"),
			// B imports the PKCS#12; A looks for the "Digital Signature" key a
			// vendor profile would have made: ours makes none in the token view.
			api.CodeTokenError, "Application_A", func(t *testing.T, res runner.Result) {
				s := tok.Snapshot()
				var data, certs int
				for _, o := range s.Objects {
					switch {
					case o.Class == runnertest.ClassData && o.Label == runner.CMSSerialLabel && string(o.Value) == "CW-000042":
						data++
					case o.Class == runnertest.ClassCertificate:
						certs++
					}
				}
				if data != 1 || certs != 2 || s.Label != "01234567890123456789012345678901" {
					t.Errorf("token: serial objects %d, certificates %d, label %q", data, certs, s.Label)
				}
			}},
		// Fragments that only name the library or the operator PIN ask for
		// no card step: refused, not reported as an encoded card.
		{"configure_dll", job("configure_dll", nil), api.CodeInvalidDescription, "validate", nil},
		{"operator_pin_literal", job("operator_pin_literal", nil), api.CodeInvalidDescription, "validate", nil},
		{"operator_pin_field", job("operator_pin_field", map[string]string{"UseOpPin": "true"}), api.CodeInvalidDescription, "validate", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run.Run(context.Background(), tc.job, nil)
			noSecrets(t, res)
			if tc.code == "" && res.Err != nil {
				t.Fatalf("failed: %+v", res.Err)
			}
			if tc.code != "" && (res.Err == nil || res.Err.Code != tc.code || res.Err.Step != tc.step) {
				t.Fatalf("Err = %+v, want %s in %s", res.Err, tc.code, tc.step)
			}
			if tc.check != nil {
				tc.check(t, res)
			}
		})
	}
}

func issuerRequest(csr []byte) issuer.Request { return issuer.Request{CSR: csr} }
