package softtoken_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/p11/allowlist"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/secret"
	"github.com/cardwright/cardwright/softstore"
	"github.com/cardwright/cardwright/softstore/softstoretest"
	"github.com/cardwright/cardwright/softtoken"
)

// SoftHSM2 reads SOFTHSM2_CONF once, at C_Initialize, and a module is
// initialised once per process: the test binary's tokens live in one
// temporary folder made here (as p11's tests do).
var softhsmConf string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "softtoken-softhsm-")
	if err == nil {
		tokens := filepath.Join(dir, "tokens")
		softhsmConf = filepath.Join(dir, "softhsm2.conf")
		if err = os.Mkdir(tokens, 0o700); err == nil {
			err = os.WriteFile(softhsmConf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("SOFTHSM2_CONF", softhsmConf)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// script answers each dialog with the next value and records the
// requests.
type script struct {
	mu      sync.Mutex
	answers []string
	reqs    []prompt.Request
}

func (s *script) Ask(_ context.Context, r prompt.Request) (prompt.Answer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r)
	if len(s.answers) == 0 {
		return prompt.Answer{}, prompt.ErrRefused
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return prompt.Answer{PIN: secret.New(a)}, nil
}

const (
	p11SO  = "so-118273"
	p11PIN = "pin-552910"
)

// TestPKCS11Store delivers a PKCS#12 onto a SoftHSM2 token of the stack:
// the passphrase dialog, then the token's user PIN in a second dialog
// (asked again after a wrong PIN). pkcs11-tool, in a process of its own,
// lists the key and certificate and signs with the key; the signature
// verifies against the delivered certificate, and p11 reads the same key
// back by the answer's key_id. Wrong passphrases (three) leave the token
// empty and never ask the PIN; a token that is not there is refused
// before any dialog.
func TestPKCS11Store(t *testing.T) {
	st := stacktest.Require(t)
	path := st.Get(t, "SOFTHSM_MODULE")
	m, err := p11.Load(path, allowlist.Modules{path}.Allows)
	if err != nil {
		t.Fatal(err)
	}
	label := "soft p11 " + hex.EncodeToString(randBytes(3))
	tok, err := m.InitTokenAndPIN(nil, secret.New(p11SO), secret.New(p11PIN), label)
	if err != nil {
		t.Fatal(err)
	}
	p12 := softstoretest.NewP12("Frank P11", "p11 pass")
	req := &api.SoftToken{PKCS12: base64.StdEncoding.EncodeToString(p12.Data), Label: "frank", Store: api.StorePKCS11, Token: label}
	service := func(s *script) *softtoken.Service {
		return &softtoken.Service{Prompter: s, Targets: []softtoken.Target{
			softtoken.PKCS11{Modules: func() []*p11.Module { return []*p11.Module{m} }, Prompter: s}}}
	}

	// Not there: refused before the dialog.
	s := &script{}
	_, err = service(s).DeliverSoftToken(context.Background(), "https://portal.example", &api.SoftToken{PKCS12: req.PKCS12, Store: api.StorePKCS11, Token: "no such token"}, nil)
	if je := jobErr(t, err); je.Code != api.CodeTokenNotFound || len(s.reqs) != 0 {
		t.Fatalf("missing token: %v after %d dialogs", err, len(s.reqs))
	}

	// Wrong passphrase three times: pin_incorrect, no PIN dialog, nothing on the token.
	s = &script{answers: []string{"wrong 1", "wrong 2", "wrong 3"}}
	_, err = service(s).DeliverSoftToken(context.Background(), "https://portal.example", req, nil)
	if je := jobErr(t, err); je.Code != api.CodePinIncorrect || len(s.reqs) != 3 {
		t.Fatalf("wrong passphrase: %v after %d dialogs", err, len(s.reqs))
	}
	for _, r := range s.reqs {
		if r.Kind != prompt.Passphrase {
			t.Fatalf("a wrong passphrase opened dialog %+v", r)
		}
	}
	if objs := listObjects(t, path, label); strings.Contains(objs, "Private Key Object") || strings.Contains(objs, "Certificate Object") {
		t.Fatalf("after wrong passphrases the token holds:\n%s", objs)
	}

	// Right passphrase, a wrong PIN, then the right one.
	s = &script{answers: []string{"p11 pass", "not the pin", p11PIN}}
	var states []string
	res, err := service(s).DeliverSoftToken(context.Background(), "https://portal.example", req, func(st string) { states = append(states, st) })
	if err != nil {
		t.Fatal(err)
	}
	wantID := strings.ToUpper(hex.EncodeToString(softstore.KeyID(p12.Cert)))
	if res.Store != api.StorePKCS11 || res.Token != label || res.Label != "frank" || res.KeyID != wantID ||
		res.Certificate != base64.StdEncoding.EncodeToString(p12.Cert.Raw) {
		t.Fatalf("answer %+v", res)
	}
	if len(s.reqs) != 3 || s.reqs[0].Kind != prompt.Passphrase || s.reqs[1].Kind != prompt.OneField || s.reqs[1].Retry ||
		s.reqs[1].Operation != prompt.OpSoftToken || s.reqs[1].Card != label || s.reqs[1].Origin != "https://portal.example" ||
		s.reqs[2].Kind != prompt.OneField || !s.reqs[2].Retry {
		t.Fatalf("dialogs %+v", s.reqs)
	}
	if len(states) != 6 {
		t.Fatalf("prompt events %v, want waiting/done for three dialogs", states)
	}

	// Another process: pkcs11-tool lists and signs.
	objs := listObjects(t, path, label)
	if !strings.Contains(objs, "Private Key Object; EC") || !strings.Contains(objs, "Certificate Object") || !strings.Contains(strings.ToUpper(objs), wantID) {
		t.Fatalf("pkcs11-tool lists:\n%s", objs)
	}
	digest := sha256.Sum256([]byte("signed on the token"))
	in := filepath.Join(t.TempDir(), "digest")
	out := in + ".sig"
	os.WriteFile(in, digest[:], 0o600)
	if b, err := exec.Command("pkcs11-tool", "--module", path, "--token-label", label, "--login", "--pin", p11PIN,
		"--sign", "--mechanism", "ECDSA", "--signature-format", "openssl", "--id", wantID, "-i", in, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("pkcs11-tool --sign: %v\n%s", err, b)
	}
	sig, _ := os.ReadFile(out)
	if !ecdsa.VerifyASN1(p12.Cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("pkcs11-tool's signature does not verify with the delivered certificate")
	}

	// p11: the key by the answer's key_id, sensitive, signing.
	sess, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Login(secret.New(p11PIN)); err != nil {
		t.Fatal(err)
	}
	id, _ := hex.DecodeString(res.KeyID)
	k, err := sess.FindKey(id, "frank")
	if err != nil {
		t.Fatal(err)
	}
	sig, err = k.Sign(rand.Reader, digest[:], nil)
	if err != nil || !ecdsa.VerifyASN1(p12.Cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatalf("p11 signature: %v", err)
	}
	certs, err := sess.Certificates()
	if err != nil || len(certs) != 1 || !bytes.Equal(certs[0].DER, p12.Cert.Raw) {
		t.Fatalf("certificates on the token: %v %v", certs, err)
	}
}

func jobErr(t *testing.T, err error) *api.JobError {
	t.Helper()
	var je *api.JobError
	if !errors.As(err, &je) {
		t.Fatalf("error %v is not a *api.JobError", err)
	}
	return je
}

// listObjects runs pkcs11-tool in a process of its own (it reads
// SOFTHSM2_CONF from the environment TestMain set).
func listObjects(t *testing.T, module, label string) string {
	t.Helper()
	b, err := exec.Command("pkcs11-tool", "--module", module, "--token-label", label, "--login", "--pin", p11PIN, "--list-objects").CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool --list-objects: %v\n%s", err, b)
	}
	return string(b)
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
