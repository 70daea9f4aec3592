package decryptkeys

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/internal/testpki"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/pinblob"
	"github.com/cardwright/cardwright/secret"
)

// Configured decryption keys for encrypted PINs ([pins] decrypt_…):
// PKCS#12 files here, PKCS#11 keys on SoftHSM2 in TestPINKeysSoftHSM; the
// same keys in a job are TestPINKeysEncodeOnStack of cmd/cardwright.

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
	testpki.NoSecrets(t, text, more...)
}

func TestPINKeysPKCS12(t *testing.T) {
	td := "../testdata/"
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
	keys, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].String() != rsaKey.String() || keys[1].String() != p256.String() {
		t.Fatalf("runner keys %v, want %v %v", keys, rsaKey, p256)
	}
	checkOpens(t, rsaKey.Certificate(), keys)
	checkOpens(t, p256.Certificate(), keys)
	checkNoKey(t, p384.Certificate(), keys)

	for _, c := range []struct{ name, pins, want string }{
		{"missing file", "decrypt_p12 = " + td + "none.p12\ndecrypt_p12_password = pw-31337\n", "PKCS#12 " + td + "none.p12"},
		{"wrong password", "decrypt_p12 = " + td + "p256.p12\ndecrypt_p12_password = pw-31337\n", "decoding PKCS#12"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(pinKeysConfig(t, "", c.pins))
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
// certificates open through Load; one sealed for another key gives
// "no decryption key found matching #…"; a wrong PIN or label stops
// start-up without showing the PIN. SoftHSM2 reads SOFTHSM2_CONF once per
// process: the work runs in a child test process with its own token
// directory.
func TestPINKeysSoftHSM(t *testing.T) {
	module := os.Getenv("CARDWRIGHT_PINKEYS_TEST_MODULE")
	if module == "" {
		s := stacktest.Require(t)
		module = s.Get(t, "SOFTHSM_MODULE")
		conf := testpki.SoftHSMConf(t, t.TempDir())
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

	so, pin := secret.New("so-dec-4177"), secret.New("pin-dec-5829")
	m, tok, s := testpki.SoftHSMSession(t, module, so, pin, "pin decryption")
	// A second token, so that "any slot" has to pick by label.
	if _, err := m.InitTokenAndPIN(nil, so, pin, "other token"); err != nil {
		t.Fatal(err)
	}
	ca := testpki.NewCA(t)
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
		cert := ca.Issue(t, "PIN encryption "+k.label, int64(10+i), key.Public())
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
	keys, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
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
			_, err := Load(pinKeysConfig(t, module, c.pins))
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
	if _, err := Load(cfg); !errors.Is(err, p11.ErrNotAllowed) {
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
