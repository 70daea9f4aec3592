package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/internal/testpki"
	"github.com/cardwright/cardwright/pinblob"
	"github.com/cardwright/cardwright/secret"
	gopkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Configured decryption keys for encrypted PINs ([pins] decrypt_…): the
// keys themselves are tested in pinblob/decryptkeys; here, that the runner
// gets them and that a job uses them.

var pinKeysPINs = []pinblob.PIN{
	{Name: pinblob.PIN1, Value: secret.New("640212")},
	{Name: pinblob.PUK, Value: secret.New("88150347")},
	{Name: pinblob.MAN, Value: secret.New("man-70931")},
}

func noPINKeySecrets(t *testing.T, text string, more ...string) {
	t.Helper()
	for _, p := range pinKeysPINs {
		more = append(more, p.Value.Reveal())
	}
	testpki.NoSecrets(t, text, more...)
}

// TestPINKeysWired: runnerDeps hands the runner the configured keys in
// configuration order, and a key that cannot be loaded stops it.
func TestPINKeysWired(t *testing.T) {
	td := "../../pinblob/testdata/"
	cfg, err := config.Parse("pinkeys.cfg", []byte("[pins]\ndecrypt_p12 = "+td+"rsa2048.p12\ndecrypt_p12_password = cardwright\n"+
		"decrypt_p12 = "+td+"p256.p12\ndecrypt_p12_password = cardwright\n"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := runnerDeps(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, name := range []string{"rsa2048", "p256"} {
		b, err := os.ReadFile(td + name + ".p12")
		if err != nil {
			t.Fatal(err)
		}
		k, err := pinblob.LoadPKCS12(b, secret.New("cardwright"))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, k.String())
	}
	if len(d.PINKeys) != 2 || d.PINKeys[0].String() != want[0] || d.PINKeys[1].String() != want[1] {
		t.Fatalf("runner keys %v, want %v", d.PINKeys, want)
	}
	cfg.DecryptKeys[1].P12File = td + "none.p12"
	if _, err := runnerDeps(cfg, nil); err == nil || !strings.HasPrefix(err.Error(), "loading PIN decryption key 2 ") {
		t.Errorf("a missing key file: %v", err)
	}
}

// TestPINKeysEncodeOnStack is issue 6 end to end with `cardwright encode`
// on the own virtual cards and SoftHSM2: a PIN-decryption key is imported
// to a token of its own (RSA-2048 in one reader's run, EC P-256 in the
// other's); a pre-personalization job seals the card's eight secrets for
// its certificate (the stand-in token keeps the blob as "Encrypted PINs");
// a finalization job reads them back through the configured PKCS#11 key
// into secret output fields. The same job with another token key
// configured fails with "no decryption key found matching #<id>", and one
// that maps a PIN to a plain field is refused before the card is touched.
func TestPINKeysEncodeOnStack(t *testing.T) {
	e := newStackEnv(t)
	const keyPIN, keySO, p12pw = "pin-keys-7731", "so-keys-2284", "p12-pw-6120"
	// The decryption keys' token, made with the CLI in the test's token
	// directory: two keys per type, one configured right, one wrong.
	tokEnv := []string{"CARDWRIGHT_SO_PIN=" + keySO, "CARDWRIGHT_PIN=" + keyPIN, "CARDWRIGHT_P12_PASSWORD=" + p12pw}
	tokenCLI := func(args ...string) {
		t.Helper()
		out, err := e.child("cli", "", tokEnv, append([]string{"token", args[0], "--module", e.module}, args[1:]...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("cardwright token %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		noPINKeySecrets(t, string(out), keyPIN, keySO, p12pw)
	}
	tokenCLI("init", "--label", "pin decryption")
	ca := testpki.NewCA(t)
	certs := map[string]*x509.Certificate{}
	for i, name := range []string{"rsa-letters", "rsa-other", "ec-letters", "ec-other"} {
		var priv crypto.Signer
		var err error
		if strings.HasPrefix(name, "rsa") {
			priv, err = rsa.GenerateKey(rand.Reader, 2048)
		} else {
			priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		if err != nil {
			t.Fatal(err)
		}
		cert := ca.Issue(t, "PIN letters "+name, int64(40+i), priv.Public())
		pfx, err := gopkcs12.Modern.Encode(priv, cert, nil, p12pw)
		if err != nil {
			t.Fatal(err)
		}
		tokenCLI("import-p12", "--token", "pin decryption", "--file", testpki.WriteFile(t, e.dir, name+".p12", pfx), "--label", name)
		certs[name] = cert
		testpki.WriteFile(t, e.dir, name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	}
	cpf, err := os.ReadFile("../../testdata/seed/prepersonalize.cpf")
	if err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, e.dir, "prepersonalize.cpf", cpf)
	prep := writeTestFile(t, e.dir, "prep.dsc", "[Encoding]\nType=1024,Chip\nDevices=8711\n\n[Fields]\nPIN=\nPUK=\nLABEL=\n\n[Description]\n"+
		"PKCS11LibraryLinux="+e.module+"\nInitToken=true\nChipProfile=prepersonalize.cpf\nInitialPUK=PUK\nPIN=PIN\nInitialLabel=LABEL\n")
	var fields, outs strings.Builder
	var secretArgs []string
	for _, n := range pinblob.Names() {
		fields.WriteString("Decrypted_" + n + "=\n")
		outs.WriteString("CardPinDecryption_Output_" + n + "=Decrypted_" + n + "\n")
		secretArgs = append(secretArgs, "--secret-field", "Decrypted_"+n)
	}
	read := writeTestFile(t, e.dir, "read.dsc", "[Encoding]\nType=1024,Chip\nDevices=8711\n\n[Fields]\n"+fields.String()+
		"\n[Description]\nPKCS11LibraryLinux="+e.module+"\n"+outs.String())

	for i, kind := range []string{"rsa", "ec"} {
		t.Run(kind, func(t *testing.T) {
			reader, standIn := e.own[i], fmt.Sprintf("pins %s", kind)
			cfg := func(label string) string {
				return writeTestFile(t, e.dir, kind+"-"+label+".cfg", fmt.Sprintf("[pkcs11]\nmodule = %s\n[dialects]\nSIEMENS50 = ISO7816\n[tokens]\n%s = %s, %s\n[pins]\nencryption_cert = %s\n"+
					"decrypt_module = %s\ndecrypt_slot = *\ndecrypt_label = %s\ndecrypt_pin = %s\n",
					e.module, regexpQuote(reader), e.module, standIn, filepath.Join(e.dir, kind+"-letters.pem"), e.module, label, keyPIN))
			}
			good, wrong := cfg(kind+"-letters"), cfg(kind+"-other")
			var all strings.Builder
			run := func(args ...string) (int, encodeResult) {
				t.Helper()
				code, stdout, stderr := e.encode("", append([]string{"--reader", reader, "--json"}, args...)...)
				if !slices.Contains(args, "--show-secrets") {
					all.WriteString(stdout + stderr)
				} else {
					all.WriteString(stderr)
				}
				var res encodeResult
				if err := json.Unmarshal([]byte(stdout), &res); err != nil {
					t.Fatalf("encode %v: exit %d, %v\n%s\n%s", args, code, err, stdout, stderr)
				}
				return code, res
			}

			// Pre-personalization: PIN1 and PUK from the job, the other six
			// generated by the profile, all sealed for <kind>-letters.
			if code, res := run("--dsc", prep, "--config", good, "--field-env", "PIN=DEMO_PIN", "--field-env", "PUK=DEMO_PUK", "--field", "LABEL="+standIn); code != 0 {
				t.Fatalf("pre-personalization: exit %d, %+v", code, res.Error)
			}

			// Finalization with the configured token key.
			code, res := run(append([]string{"--dsc", read, "--config", good, "--show-secrets"}, secretArgs...)...)
			if code != 0 {
				t.Fatalf("reading the encrypted PINs: exit %d, %+v", code, res.Error)
			}
			if len(res.Secrets) != 8 || res.Secrets["Decrypted_PIN1"] != demoPIN || res.Secrets["Decrypted_PUK"] != demoPUK {
				t.Errorf("decrypted PINs: %d secrets, PIN1 and PUK as the job gave them: %v %v", len(res.Secrets),
					res.Secrets["Decrypted_PIN1"] == demoPIN, res.Secrets["Decrypted_PUK"] == demoPUK)
			}
			for _, n := range pinblob.Names() {
				if res.Secrets["Decrypted_"+n] == "" {
					t.Errorf("%s: no value", n)
				}
			}
			if len(res.Fields) != 0 {
				t.Errorf("plain output fields %v, want none", res.Fields)
			}
			generated := res.Secrets["Decrypted_MAN"]

			// Without --show-secrets they print as <secret>.
			_, res = run(append([]string{"--dsc", read, "--config", good}, secretArgs...)...)
			if res.Secrets["Decrypted_PIN1"] != secret.Masked {
				t.Errorf("PIN1 printed as %q without --show-secrets", res.Secrets["Decrypted_PIN1"])
			}

			// Another key of the same token configured: the blob's key id.
			code, res = run(append([]string{"--dsc", read, "--config", wrong}, secretArgs...)...)
			want := "no decryption key found matching #" + strings.ToUpper(hex.EncodeToString(pinblob.KeyID(certs[kind+"-letters"])))
			if code != 1 || res.Error == nil || res.Error.Code != "pin_key_not_found" || res.Error.Message != want || len(res.Secrets) != 0 {
				t.Errorf("wrong key: exit %d, %+v, %d secrets; want pin_key_not_found %q", code, res.Error, len(res.Secrets), want)
			}

			// A decrypted PIN into a plain field: refused before the card.
			code, res = run("--dsc", read, "--config", good, "--secret-field", "Decrypted_PIN2")
			if code != 1 || res.Error == nil || res.Error.Code != "secret_output" {
				t.Errorf("plain output: exit %d, %+v; want secret_output", code, res.Error)
			}
			// Apart from the --show-secrets output, no secret shows.
			noPINKeySecrets(t, all.String(), keyPIN, keySO, p12pw, demoPIN, demoPUK, generated)
		})
	}
}
