package softtoken_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/secret"
	"github.com/cardwright/cardwright/softstore/softstoretest"
	"github.com/cardwright/cardwright/softtoken"
)

type passPrompter struct {
	pass  string
	store string
	n     int
}

func (p *passPrompter) Ask(context.Context, prompt.Request) (prompt.Answer, error) {
	p.n++
	return prompt.Answer{PIN: secret.New(p.pass), Store: p.store}, nil
}

func needNSSTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"certutil", "pk12util"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: install libnss3-tools (scripts/install-deps)", tool)
		}
	}
}

func dbHash(t *testing.T, dir string) [32]byte {
	t.Helper()
	var all []byte
	for _, f := range []string{"cert9.db", "key4.db"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		all = append(all, b...)
	}
	return sha256.Sum256(all)
}

// TestNSSStore delivers a PKCS#12 into Chromium's NSS database in a
// temporary home: NSS's own certutil lists the certificate (-L) and its
// private key (-K). A wrong passphrase leaves the database byte for byte
// as it was.
func TestNSSStore(t *testing.T) {
	needNSSTools(t)
	home := t.TempDir()
	p12 := softstoretest.NewP12("Erin NSS", "nss pass")
	svc := &softtoken.Service{Targets: []softtoken.Target{softtoken.NSS{Home: home}}, Prompter: &passPrompter{pass: "nss pass"}}
	req := &api.SoftToken{PKCS12: base64.StdEncoding.EncodeToString(p12.Data), Store: api.StoreNSS}
	got, err := svc.DeliverSoftToken(context.Background(), "https://portal.example", req, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(home, ".pki", "nssdb")
	if got.Store != "nss" || got.Token != dir {
		t.Fatalf("stored %+v", got)
	}
	out, err := exec.Command("certutil", "-L", "-d", "sql:"+dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Erin NSS") {
		t.Fatalf("certutil -L: %v\n%s", err, out)
	}
	t.Logf("certutil -L:\n%s", out)
	out, err = exec.Command("certutil", "-K", "-d", "sql:"+dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Erin NSS") || !strings.Contains(string(out), "ec") {
		t.Fatalf("certutil -K: %v\n%s", err, out)
	}
	t.Logf("certutil -K:\n%s", out)
	// NSS's own key id (CKA_ID, the SHA-1 of the public point) is the
	// one the answer reports, and the certificate NSS holds is the
	// delivered one.
	if !strings.Contains(string(out), strings.ToLower(got.KeyID)) {
		t.Fatalf("certutil -K does not show key id %s", got.KeyID)
	}
	der, err := exec.Command("certutil", "-L", "-d", "sql:"+dir, "-n", "Erin NSS - cardwright test", "-r").Output()
	if err != nil || !bytes.Equal(der, p12.Cert.Raw) {
		t.Fatalf("certutil -L -n -r: %v (NSS holds another certificate?)", err)
	}

	before := dbHash(t, dir)
	other := softstoretest.NewP12("Frank NSS", "right")
	bad := &softtoken.Service{Targets: []softtoken.Target{softtoken.NSS{Home: home}}, Prompter: &passPrompter{pass: "wrong"}}
	_, err = bad.DeliverSoftToken(context.Background(), "https://portal.example",
		&api.SoftToken{PKCS12: base64.StdEncoding.EncodeToString(other.Data), Store: api.StoreNSS}, nil)
	var je *api.JobError
	if !errors.As(err, &je) || je.Code != api.CodePinIncorrect {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if dbHash(t, dir) != before {
		t.Fatal("the NSS database changed after a wrong passphrase")
	}
	if out, _ := exec.Command("certutil", "-L", "-d", "sql:"+dir).CombinedOutput(); strings.Contains(string(out), "Frank") {
		t.Fatalf("Frank's certificate is in the database:\n%s", out)
	}
}

// TestNSSFirefoxProfile: a profile that is not there is token_not_found.
func TestNSSFirefoxProfile(t *testing.T) {
	home := t.TempDir()
	p12 := softstoretest.NewP12("Gina", "pw")
	svc := &softtoken.Service{Targets: []softtoken.Target{softtoken.NSS{Home: home}}, Prompter: &passPrompter{pass: "pw"}}
	for _, tok := range []string{"nosuch.default", "../x"} {
		_, err := svc.DeliverSoftToken(context.Background(), "", &api.SoftToken{PKCS12: base64.StdEncoding.EncodeToString(p12.Data), Store: api.StoreNSS, Token: tok}, nil)
		var je *api.JobError
		if !errors.As(err, &je) || je.Code != api.CodeTokenNotFound {
			t.Fatalf("profile %q: %v", tok, err)
		}
	}
}
