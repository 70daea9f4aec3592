package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/pinblob"
	"github.com/cardwright/cardwright/secret"
	gopkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Configured decryption keys for encrypted PINs ([pins] decrypt_…):
// PKCS#12 files here, PKCS#11 keys on SoftHSM2 in TestPINKeysSoftHSM.

var pinKeysPINs = []pinblob.PIN{
	{Name: pinblob.PIN1, Value: secret.New("640212")},
	{Name: pinblob.PUK, Value: secret.New("88150347")},
	{Name: pinblob.MAN, Value: secret.New("man-70931")},
}

// pinKeysConfig parses a configuration whose [pins] section is pins.
func pinKeysConfig(t *testing.T, pkcs11, pins string) *config.Config {
	t.Helper()
	text := "[pins]\n" + pins
	if pkcs11 != "" {
		text = "[pkcs11]\nmodule = " + pkcs11 + "\n" + text
	}
	cfg, err := config.Parse("pinkeys.cfg", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// checkOpens seals pinKeysPINs for cert and opens them with keys.
func checkOpens(t *testing.T, cert *x509.Certificate, keys []pinblob.Key) {
	t.Helper()
	content, err := pinblob.Seal(rand.Reader, cert, pinKeysPINs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pinblob.Open(content, keys)
	if err != nil {
		t.Fatalf("opening a blob sealed for %s: %v", cert.Subject, err)
	}
	if len(got) != len(pinKeysPINs) {
		t.Fatalf("%d secrets, want %d", len(got), len(pinKeysPINs))
	}
	for i, p := range pinKeysPINs {
		if got[i].Name != p.Name || !got[i].Value.Equal(p.Value) {
			t.Errorf("secret %d: %s, want %s with its value", i, got[i].Name, p.Name)
		}
	}
}

// checkNoKey seals for cert and expects the "no decryption key found
// matching #…" error naming cert's key id.
func checkNoKey(t *testing.T, cert *x509.Certificate, keys []pinblob.Key) {
	t.Helper()
	content, err := pinblob.Seal(rand.Reader, cert, pinKeysPINs)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pinblob.Open(content, keys)
	want := "no decryption key found matching #" + strings.ToUpper(hex.EncodeToString(pinblob.KeyID(cert)))
	var nk *pinblob.NoKeyError
	if !errors.As(err, &nk) || err.Error() != want {
		t.Errorf("open with the wrong keys: %v, want %q", err, want)
	}
	noPINKeySecrets(t, fmt.Sprint(err))
}

func noPINKeySecrets(t *testing.T, text string, more ...string) {
	t.Helper()
	for _, p := range pinKeysPINs {
		more = append(more, p.Value.Reveal())
	}
	for _, s := range more {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("a secret shows in %q", text)
		}
	}
}

func TestPINKeysPKCS12(t *testing.T) {
	td := "../../pinblob/testdata/"
	load := func(name string) pinblob.Key {
		b, err := os.ReadFile(td + name + ".p12")
		if err != nil {
			t.Fatal(err)
		}
		k, err := pinblob.LoadPKCS12(b, secret.New("cardwright"))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rsaKey, p256, p384 := load("rsa2048"), load("p256"), load("p384")

	cfg := pinKeysConfig(t, "", "decrypt_p12 = "+td+"rsa2048.p12\ndecrypt_p12_password = cardwright\n"+
		"decrypt_p12 = "+td+"p256.p12\ndecrypt_p12_password = cardwright\n")
	d, err := runnerDeps(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.PINKeys) != 2 || d.PINKeys[0].String() != rsaKey.String() || d.PINKeys[1].String() != p256.String() {
		t.Fatalf("runner keys %v, want %v %v", d.PINKeys, rsaKey, p256)
	}
	checkOpens(t, rsaKey.Certificate(), d.PINKeys)
	checkOpens(t, p256.Certificate(), d.PINKeys)
	checkNoKey(t, p384.Certificate(), d.PINKeys)

	for _, c := range []struct{ name, pins, want string }{
		{"missing file", "decrypt_p12 = " + td + "none.p12\ndecrypt_p12_password = pw-31337\n", "PKCS#12 " + td + "none.p12"},
		{"wrong password", "decrypt_p12 = " + td + "p256.p12\ndecrypt_p12_password = pw-31337\n", "decoding PKCS#12"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := pinKeys(pinKeysConfig(t, "", c.pins))
			t.Log(err)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "loading PIN decryption key 1 ") {
				t.Errorf("error %v, want one about key 1 containing %q", err, c.want)
			}
			noPINKeySecrets(t, fmt.Sprint(err), "pw-31337")
		})
	}
}

// TestPINKeysSoftHSM: decryption keys on a SoftHSM2 token, named in the
// configuration by module, slot and label — RSA (the token lacks
// RSA-OAEP-SHA-256, so OAEP over CKM_RSA_X_509), EC P-256 and P-384 (ECDH
// on the token), a key found through its certificate's label, a key with
// no certificate on the token. Blobs sealed for the token keys'
// certificates open through pinKeys; one sealed for another key gives
// "no decryption key found matching #…"; a wrong PIN or label stops
// start-up without showing the PIN. SoftHSM2 reads SOFTHSM2_CONF once per
// process: the work runs in a child test process with its own token
// directory.
func TestPINKeysSoftHSM(t *testing.T) {
	module := os.Getenv("CARDWRIGHT_PINKEYS_TEST_MODULE")
	if module == "" {
		s := stacktest.Require(t)
		module = s.Get(t, "SOFTHSM_MODULE")
		dir := t.TempDir()
		tokens := filepath.Join(dir, "tokens")
		if err := os.Mkdir(tokens, 0o700); err != nil {
			t.Fatal(err)
		}
		conf := writeFile(t, dir, "softhsm2.conf", []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"))
		cmd := exec.Command(os.Args[0], "-test.run=^TestPINKeysSoftHSM$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "CARDWRIGHT_PINKEYS_TEST_MODULE="+module, "SOFTHSM2_CONF="+conf)
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestPINKeysSoftHSM")) {
			t.Fatalf("child test: %v\n%s", err, out)
		}
		noPINKeySecrets(t, string(out), "pin-dec-5829", "so-dec-4177", "wrong-pin-2290")
		t.Logf("child test:\n%s", out)
		return
	}

	m, err := p11.Load(module, p11.AllowList{module}.Allows)
	if err != nil {
		t.Fatal(err)
	}
	so, pin := secret.New("so-dec-4177"), secret.New("pin-dec-5829")
	tok, err := m.InitTokenAndPIN(nil, so, pin, "pin decryption")
	if err != nil {
		t.Fatal(err)
	}
	// A second token, so that "any slot" has to pick by label.
	if _, err := m.InitTokenAndPIN(nil, so, pin, "other token"); err != nil {
		t.Fatal(err)
	}
	s, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Login(pin); err != nil {
		t.Fatal(err)
	}
	ca := newCertsCA(t)
	certs := map[string]*x509.Certificate{}
	for i, k := range []struct {
		label, certLabel string
		spec             p11.KeySpec
	}{
		{"pin-rsa", "pin-rsa", p11.RSA2048},
		{"pin-p256", "pin-p256", p11.ECP256},
		{"pin-p384-key", "PIN encryption P-384", p11.ECP384}, // found by the certificate's label
		{"pin-nocert", "", p11.ECP256},                       // no certificate on the token
		{"pin-other", "pin-other", p11.RSA2048},              // not configured
	} {
		key, err := s.GenerateKeyPair(k.spec, k.label, nil)
		if err != nil {
			t.Fatal(err)
		}
		cert := ca.issue(t, "PIN encryption "+k.label, int64(10+i), key.Public())
		if k.certLabel != "" {
			if _, err := s.WriteCertificate(cert, k.certLabel, nil); err != nil {
				t.Fatal(err)
			}
		}
		certs[k.label] = cert
	}
	s.Close() // the configured keys log in by themselves

	slot := fmt.Sprint(tok.SlotID())
	hsm := func(slot, label, pin string) string {
		return "decrypt_module = " + module + "\ndecrypt_slot = " + slot + "\ndecrypt_label = " + label + "\ndecrypt_pin = " + pin + "\n"
	}
	cfg := pinKeysConfig(t, module,
		hsm("*", "pin-rsa", pin.Reveal())+hsm(slot, "pin-p256", pin.Reveal())+
			hsm("*", "PIN encryption P-384", pin.Reveal())+hsm(slot, "pin-nocert", pin.Reveal()))
	d, err := runnerDeps(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := d.PINKeys
	if len(keys) != 4 {
		t.Fatalf("%d keys, want 4", len(keys))
	}
	for i, label := range []string{"pin-rsa", "pin-p256", "pin-p384-key", "pin-nocert"} {
		if want := "#" + strings.ToUpper(hex.EncodeToString(pinblob.KeyID(certs[label]))); keys[i].String() != want {
			t.Errorf("key %d is %s, want %s (%s)", i+1, keys[i], want, label)
		}
	}
	if _, isRSA := keys[0].Certificate().PublicKey.(*rsa.PublicKey); !isRSA {
		t.Fatalf("key 1 is not RSA")
	}
	for _, label := range []string{"pin-rsa", "pin-p256", "pin-p384-key", "pin-nocert"} {
		t.Run(label, func(t *testing.T) {
			checkOpens(t, certs[label], keys)
			// Each key opens its own blob alone, too.
			i := indexOf(keys, certs[label])
			checkOpens(t, certs[label], keys[i:i+1])
		})
	}
	// Jobs in several readers open blobs at once: each use has its own
	// session, the key's uses are serialised.
	t.Run("parallel", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Go(func() {
				cert := certs[[]string{"pin-rsa", "pin-p256"}[i%2]]
				content, err := pinblob.Seal(rand.Reader, cert, pinKeysPINs)
				if err == nil {
					_, err = pinblob.Open(content, keys)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		checkNoKey(t, certs["pin-other"], keys)
		checkNoKey(t, certs["pin-rsa"], keys[1:])
	})
	// Opening leaves no session logged in: a fresh session sees no
	// private objects before C_Login.
	t.Run("logged out after use", func(t *testing.T) {
		s, err := tok.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if privs, err := s.Find(p11.Criteria{p11.ClassIs(p11.ClassPrivateKey)}); err != nil || len(privs) != 0 {
			t.Errorf("private keys visible without login: %d, %v", len(privs), err)
		}
	})

	for _, c := range []struct{ name, pins, want string }{
		{"wrong PIN", hsm(slot, "pin-rsa", "wrong-pin-2290"), "CKR_PIN_INCORRECT"},
		{"no such label", hsm("*", "no-such-key", pin.Reveal()), "no-such-key"},
		{"no such label in slot", hsm(slot, "no-such-key", pin.Reveal()), "object not found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := runnerDeps(pinKeysConfig(t, module, c.pins), nil)
			t.Log(err)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "loading PIN decryption key 1 (PKCS#11 ") {
				t.Errorf("error %v, want one about key 1 containing %q", err, c.want)
			}
			noPINKeySecrets(t, fmt.Sprint(err), pin.Reveal(), "wrong-pin-2290", so.Reveal())
		})
	}
	// A module the configuration does not allow is refused before loading.
	cfg = pinKeysConfig(t, module, hsm("*", "pin-rsa", pin.Reveal()))
	cfg.DecryptKeys[0].Module = "/usr/lib/not-allowed.so"
	if _, err := pinKeys(cfg); !errors.Is(err, p11.ErrNotAllowed) {
		t.Errorf("module not allowed: %v, want ErrNotAllowed", err)
	}
}

func indexOf(keys []pinblob.Key, cert *x509.Certificate) int {
	for i, k := range keys {
		if k.String() == "#"+strings.ToUpper(hex.EncodeToString(pinblob.KeyID(cert))) {
			return i
		}
	}
	return -1
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
	ca := newCertsCA(t)
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
		cert := ca.issue(t, "PIN letters "+name, int64(40+i), priv.Public())
		pfx, err := gopkcs12.Modern.Encode(priv, cert, nil, p12pw)
		if err != nil {
			t.Fatal(err)
		}
		tokenCLI("import-p12", "--token", "pin decryption", "--file", writeFile(t, e.dir, name+".p12", pfx), "--label", name)
		certs[name] = cert
		writeFile(t, e.dir, name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	}
	cpf, err := os.ReadFile("../../testdata/demo/seed/prepersonalize.cpf")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, e.dir, "prepersonalize.cpf", cpf)
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
