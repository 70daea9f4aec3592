package tlstrust_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/tlstrust"
)

func writeCA(t *testing.T) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "tlstrust test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	return p
}

func whats(steps []tlstrust.Step) string {
	var w []string
	for _, s := range steps {
		w = append(w, s.What)
	}
	return strings.Join(w, "\n")
}

// The per-user steps: Chromium's database made when missing, every Firefox
// profile; uninstall deletes the nickname from the databases that exist.
func TestUserSteps(t *testing.T) {
	home := t.TempDir()
	prof := filepath.Join(home, ".mozilla", "firefox", "x.default")
	os.MkdirAll(prof, 0o700)
	os.WriteFile(filepath.Join(prof, "cert9.db"), nil, 0o600)
	ca := writeCA(t)
	in, err := tlstrust.Install(tlstrust.Options{Home: home}, ca)
	if err != nil {
		t.Fatal(err)
	}
	nss := filepath.Join(home, ".pki", "nssdb")
	for _, want := range []string{
		"certutil -d sql:" + nss + " -N --empty-password",
		"certutil -d sql:" + nss + " -A -t C,, -n cardwright local CA -i " + ca,
		"certutil -d sql:" + prof + " -A -t C,, -n cardwright local CA -i " + ca,
	} {
		if !strings.Contains(whats(in), want) {
			t.Errorf("install lacks %q:\n%s", want, whats(in))
		}
	}
	out, err := tlstrust.Uninstall(tlstrust.Options{Home: home}, ca)
	if err != nil {
		t.Fatal(err)
	}
	if got := whats(out); !strings.Contains(got, "certutil -d sql:"+prof+" -D -n cardwright local CA") || strings.Contains(got, nss) {
		t.Errorf("uninstall steps:\n%s", got)
	}
	if _, err := tlstrust.Install(tlstrust.Options{Home: home}, filepath.Join(t.TempDir(), "none.pem")); err == nil {
		t.Error("a missing CA file installs")
	}
}

// The real NSS tools: installed, listed by certutil, uninstalled, gone.
func TestNSSRoundTrip(t *testing.T) {
	if _, err := exec.LookPath("certutil"); err != nil {
		t.Fatal("certutil is needed: install libnss3-tools (scripts/install-deps)")
	}
	home := t.TempDir()
	ca := writeCA(t)
	ctx := context.Background()
	run := func(install bool) {
		plan := tlstrust.Uninstall
		if install {
			plan = tlstrust.Install
		}
		steps, err := plan(tlstrust.Options{Home: home}, ca)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range steps {
			if strings.Contains(s.What, "update-ca-certificates") || strings.HasPrefix(s.What, "cp ") || strings.HasPrefix(s.What, "rm ") {
				continue // the system store: TestSystemRoundTrip
			}
			if err := s.Do(ctx, io.Discard); err != nil {
				t.Fatal(err)
			}
		}
	}
	list := func() string {
		out, _ := exec.Command("certutil", "-d", "sql:"+filepath.Join(home, ".pki", "nssdb"), "-L").CombinedOutput()
		return string(out)
	}
	run(true)
	if !strings.Contains(list(), tlstrust.Name) {
		t.Fatalf("not in the NSS database after install:\n%s", list())
	}
	run(false)
	if strings.Contains(list(), tlstrust.Name) {
		t.Fatalf("still in the NSS database after uninstall:\n%s", list())
	}
}

// The machine's store on Debian, as root: the CA file and the bundle
// update-ca-certificates makes; then gone from both.
func TestSystemRoundTrip(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the system store needs root (CI runs as root)")
	}
	const bundle = "/etc/ssl/certs/ca-certificates.crt"
	ca := writeCA(t)
	pemCA, _ := os.ReadFile(ca)
	body := strings.TrimSpace(string(pemCA))
	ctx := context.Background()
	do := func(install bool) {
		plan := tlstrust.Uninstall
		if install {
			plan = tlstrust.Install
		}
		steps, err := plan(tlstrust.Options{System: true}, ca)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range steps {
			if err := s.Do(ctx, io.Discard); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() { do(false) })
	do(true)
	b, _ := os.ReadFile(bundle)
	if _, err := os.Stat(tlstrust.SystemFile); err != nil || !strings.Contains(string(b), body) {
		t.Fatalf("after install: %s missing (%v) or the CA not in %s", tlstrust.SystemFile, err, bundle)
	}
	do(false)
	b, _ = os.ReadFile(bundle)
	if _, err := os.Stat(tlstrust.SystemFile); err == nil || strings.Contains(string(b), body) {
		t.Fatalf("after uninstall the CA is still in the system store")
	}
}
