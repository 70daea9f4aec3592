package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/internal/testpki"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/pcsc"
	gopkcs12 "software.sslmate.com/src/go-pkcs12"
)

// seedLibrary is the seed descriptions' Windows library key: on the stack,
// SoftHSM2 stands for that middleware.
var seedLibrary = regexp.MustCompile(`(?m)^PKCS11LibraryWindows32=.*$`)

// TestEncodeSeedsOnStack runs the seed descriptions (testdata/seed, the dsc
// issue's golden set with this project's card profiles) with
// `cardwright encode` on the own virtual card in READER_OWN_2 and a SoftHSM2
// token, one after the other on the same card as runner's
// TestSeedDescriptions does on an in-memory card, and checks card (APDUs)
// and token (package p11 in another process) after each.
func TestEncodeSeedsOnStack(t *testing.T) {
	e := newStackEnv(t)
	reader, serial := e.own[1], e.s.Get(t, "SERIAL_OWN_2")
	dir := filepath.Join(e.dir, "seed")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(seedDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range ents {
		b, err := os.ReadFile(filepath.Join(seedDir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(de.Name(), ".dsc") {
			b = seedLibrary.ReplaceAll(b, []byte("PKCS11LibraryLinux="+e.module))
		}
		writeTestFile(t, dir, de.Name(), string(b))
	}

	// The PIN-encryption key (the profile seals the PINs for its
	// certificate; the finalization opens them with its PKCS#12) and a
	// PKCS#12 for cms_card_serial's WriteP12Data.
	ca := testpki.NewCA(t)
	const p12pw = "seed-p12-4410"
	pinPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pinCert := ca.Issue(t, "PIN letters", 50, pinPriv.Public())
	testpki.WriteFile(t, dir, "pin.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pinCert.Raw}))
	pfx, err := gopkcs12.Modern.Encode(pinPriv, pinCert, nil, p12pw)
	if err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, dir, "pin.p12", pfx)
	archPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	archived, err := gopkcs12.Modern.Encode(archPriv, ca.Issue(t, "archived", 51, archPriv.Public()), nil, p12pw)
	if err != nil {
		t.Fatal(err)
	}

	// cfg maps the reader to the token labelled label: the stand-in that a
	// job's profile initialises and the next job finds again.
	cfg := func(label string) string {
		return writeTestFile(t, dir, "cardwright.cfg", fmt.Sprintf("[pkcs11]\nmodule = %s\n[dialects]\nSIEMENS50 = ISO7816\n[tokens]\n%s = %s, %s\n"+
			"[pins]\nencryption_cert = %s\ndecrypt_p12 = %s\ndecrypt_p12_password = %s\n",
			e.module, regexpQuote(reader), e.module, label, filepath.Join(dir, "pin.pem"), filepath.Join(dir, "pin.p12"), p12pw))
	}
	b64 := base64.StdEncoding.EncodeToString
	card := func(t *testing.T, f func(k iso7816.Card)) {
		pc, err := pcsc.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		k, err := pc.Connect(reader, pcsc.Shared)
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		f(k)
	}
	var decrypted []string
	for _, n := range []string{"PIN1", "PIN2", "PIN3", "PUK", "PUK1", "PUK2", "OP", "MAN"} {
		decrypted = append(decrypted, "--secret-field", "DecryptedCardPin_"+n)
	}
	for _, tc := range []struct {
		name, dsc, label string
		args             []string
		code             api.Code // "" success
		step             string
		check            func(t *testing.T, res encodeResult)
	}{
		{"prepersonalize", "prepersonalize", "prepersonalized", []string{"--field-env", "PIN=DEMO_PIN", "--field-env", "PUK=DEMO_PUK"}, "", "", func(t *testing.T, res encodeResult) {
			c := readCardState(t, reader)
			if !c.MF || c.PIN>>4 != 0x63C || c.PUK>>4 != 0x63C {
				t.Errorf("card: %+v; want PIN 81 and PUK 84 set", c)
			}
			if tk := e.readTokenState("prepersonalized"); tk.Error != "" || tk.UserLogin != "" || tk.SOLogin != "" {
				t.Errorf("token: %+v; want the job's PIN and PUK", tk)
			}
		}},
		{"read_all_encrypted_pins", "read_all_encrypted_pins", "prepersonalized", append([]string{"--show-secrets"}, decrypted...), "", "", func(t *testing.T, res encodeResult) {
			if len(res.Secrets) != 8 || len(res.Fields) != 0 || res.Secrets["DecryptedCardPin_PIN1"] != demoPIN || res.Secrets["DecryptedCardPin_PUK"] != demoPUK {
				t.Errorf("%d secrets (PIN1 and PUK the job's: %v %v), fields %v; want 8 secrets only", len(res.Secrets),
					res.Secrets["DecryptedCardPin_PIN1"] == demoPIN, res.Secrets["DecryptedCardPin_PUK"] == demoPUK, res.Fields)
			}
			if op := res.Secrets["DecryptedCardPin_OP"]; len(op) != 12 {
				t.Errorf("generated OP PIN of %d characters, want 12", len(op))
			}
		}},
		{"read_all_encrypted_pins into plain fields", "read_all_encrypted_pins", "prepersonalized", decrypted[:2], api.CodeSecretOutput, "validate", nil},
		{"use_chip_serial", "use_chip_serial", "prepersonalized", nil, "", "", func(t *testing.T, res encodeResult) {
			if res.Fields["iccsnField"] != serial {
				t.Errorf("ICCSN %q, want the chip's %s", res.Fields["iccsnField"], serial)
			}
		}},
		{"delete_profile", "delete_profile", "prepersonalized", nil, "", "", func(t *testing.T, res encodeResult) {
			if c := readCardState(t, reader); c.MF {
				t.Errorf("card %+v still has an MF", c)
			}
		}},
		{"init_token", "init_token", "prepersonalized", []string{"--field", "variable1=" + b64([]byte("value one")), "--field", "variable2=" + b64([]byte{0, 1, 2, 0xFF})}, "", "", func(t *testing.T, res encodeResult) {
			card(t, func(k iso7816.Card) {
				for fid, want := range map[uint16]string{0x1001: "value one", 0x1002: "\x00\x01\x02\xff"} {
					if _, err := iso7816.Send(k, iso7816.SelectPath(true, fid)); err != nil {
						t.Fatalf("selecting %04X: %v", fid, err)
					}
					rb, _ := iso7816.ReadBinary(0, len(want))
					if got, err := iso7816.Send(k, rb); err != nil || string(got) != want {
						t.Errorf("file %04X = %q, %v; want %q", fid, got, err, want)
					}
				}
			})
		}},
		{"init_token with a field that is not base64", "init_token", "prepersonalized", []string{"--field", "variable1=***", "--field", "variable2=AA=="}, api.CodeInvalidField, "validate", nil},
		{"delete_profile again", "delete_profile", "prepersonalized", nil, "", "", nil},
		{"signature_slot", "signature_slot", "prepersonalized", []string{"--field-env", "PUK=DEMO_PUK", "--field", "OP_PIN=33334444", "--field-env", "PIN=DEMO_PIN", "--field", "SIGN_PIN=666666",
			"--secret-field", "PUK", "--secret-field", "OP_PIN", "--secret-field", "PIN", "--secret-field", "SIGN_PIN"}, "", "", func(t *testing.T, res encodeResult) {
			card(t, func(k iso7816.Card) {
				for ref, pin := range map[byte]string{0x81: demoPIN, 0x82: "666666"} {
					if _, err := iso7816.Send(k, iso7816.Verify(ref, []byte(pin))); err != nil {
						t.Errorf("PIN %02X: %v", ref, err)
					}
				}
			})
		}},
		{"delete_profile before cms_card_serial", "delete_profile", "prepersonalized", nil, "", "", nil},
		{"cms_card_serial", "cms_card_serial", "01234567890123456789012345678901", []string{"--issuer-ca", e.ca, "--field", "AppList=BA", "--field-env", "PIN_FIELD=DEMO_PIN", "--field-env", "PUK_FIELD=DEMO_PUK",
			"--field", "OP_PIN_FIELD=12345678", "--field", "PRIME_FIELD_WITH_CARD_SERIAL=CW-000042", "--field", "P12CERTIFICATE_B=" + b64(archived), "--field", "P12PASSWORD_B=" + p12pw,
			"--secret-field", "PIN_FIELD", "--secret-field", "PUK_FIELD", "--secret-field", "OP_PIN_FIELD", "--secret-field", "P12PASSWORD_B"},
			// B imports the PKCS#12; A looks for the "Digital Signature" key a
			// vendor profile would have made: ours makes none in the token view.
			api.CodeTokenError, "Application_A", func(t *testing.T, res encodeResult) {
				tk := e.readTokenState("01234567890123456789012345678901")
				if tk.Error != "" || tk.UserLogin != "" || tk.CMSSerial != "CW-000042" || len(tk.Certs) != 1 || tk.Certs[0].CN != "archived" || !tk.Certs[0].Linked {
					t.Errorf("token: %+v; want CMSCardSerialNumber CW-000042 and the PKCS#12's certificate with its key", tk)
				}
			}},
		// Fragments that only name the library or the operator PIN ask for
		// no card step: refused before card I/O, not reported as encoded.
		{"configure_dll", "configure_dll", "prepersonalized", nil, api.CodeInvalidDescription, "validate", nil},
		{"operator_pin_literal", "operator_pin_literal", "prepersonalized", nil, api.CodeInvalidDescription, "validate", nil},
		{"operator_pin_field", "operator_pin_field", "prepersonalized", []string{"--field", "UseOpPin=true"}, api.CodeInvalidDescription, "validate", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--dsc", filepath.Join(dir, tc.dsc+".dsc"), "--config", cfg(tc.label), "--reader", reader, "--json"}, tc.args...)
			code, stdout, stderr := e.encode("", args...)
			var res encodeResult
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatalf("exit %d, result is not JSON: %v\n%s\n%s", code, err, stdout, stderr)
			}
			if tc.code == "" && (code != 0 || res.Error != nil) {
				t.Fatalf("exit %d: %+v\n%s", code, res.Error, stderr)
			}
			if tc.code != "" && (code != exitFailure || res.Error == nil || res.Error.Code != tc.code || res.Error.Step != tc.step) {
				t.Fatalf("exit %d: %+v; want %s in %s\n%s", code, res.Error, tc.code, tc.step, stderr)
			}
			if !strings.Contains(strings.Join(args, " "), "--show-secrets") {
				noPINs(t, stdout)
			}
			noPINs(t, stderr)
			if tc.check != nil {
				tc.check(t, res)
			}
		})
	}
}
