package runner_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/dsc"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/runnertest"
	"github.com/cardwright/cardwright/secret"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// archivingIssuer is the rig's issuer that also answers key-archival
// requests: with the test CA's Archive, or with answer when set.
type archivingIssuer struct {
	*fakeIssuer
	mu       sync.Mutex
	archived []issuer.Request
	answer   func(issuer.Request) (issuer.Archived, error)
	given    [][]byte // the password bytes of each answer, to see them wiped
}

func (a *archivingIssuer) Archive(ctx context.Context, req issuer.Request) (issuer.Archived, error) {
	a.mu.Lock()
	a.archived = append(a.archived, req)
	answer := a.answer
	a.mu.Unlock()
	var ans issuer.Archived
	var err error
	if answer != nil {
		ans, err = answer(req)
	} else {
		ans, err = testCA.Archive(ctx, req)
	}
	a.mu.Lock()
	a.given = append(a.given, ans.Password.Bytes())
	a.mu.Unlock()
	return ans, err
}

// archivalPlan is the demo job with Application_B as the seed's
// Application_B plans it: KeyArchivalRequest, no PKCS#12 in the job.
func archivalPlan() *dsc.Plan {
	p := fullPlan()
	p.Steps[4].(*dsc.ApplicationStep).App = dsc.AppStep{ID: "B", Action: dsc.AppKeyArchival, Template: "EncHardCodedValues", CardSerial: "CW-000042"}
	return p
}

// p12Of makes a PKCS#12 of a new P-256 key and a test-CA certificate with
// subject CN cn; certKey, if set, is the key the certificate is for (a
// PKCS#12 whose key does not match).
func p12Of(t *testing.T, cn, password string, certKey *ecdsa.PrivateKey) ([]byte, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if certKey == nil {
		certKey = key
	}
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, certKey)
	der, _, err := newIssuer(t).ca.Issue(context.Background(), issuer.Request{CSR: csr})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p12, err := pkcs12.Modern.Encode(key, cert, []*x509.Certificate{testCA.Certificate()}, password)
	if err != nil {
		t.Fatal(err)
	}
	return p12, cert
}

// tokenPairs are the private keys of a fake token with the certificate of
// the same CKA_ID, by the certificate's subject CN.
func tokenPairs(t *testing.T, tok runnertest.FakeToken) map[string]crypto.Signer {
	t.Helper()
	out := map[string]crypto.Signer{}
	for _, c := range tok.Objects {
		if c.Class != runnertest.ClassCertificate || c.ID == nil {
			continue
		}
		cert, err := x509.ParseCertificate(c.Value)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range tok.Objects {
			if k.Class == runnertest.ClassPrivateKey && string(k.ID) == string(c.ID) {
				out[cert.Subject.CommonName] = k.Key
			}
		}
	}
	return out
}

// signs checks that key signs and the certificate's key verifies it.
func signs(t *testing.T, key crypto.Signer, certDER []byte) {
	t.Helper()
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("made with the key read back"))
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil || !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatalf("the key does not sign for %q: %v", cert.Subject.CommonName, err)
	}
}

// leaks fails if s appears in the result's JSON or its error.
func leaks(t *testing.T, res runner.Result, s string) {
	t.Helper()
	b, _ := json.Marshal(res)
	all := string(b) + fmt.Sprint(res)
	if res.Err != nil {
		all += res.Err.Message
	}
	if s != "" && strings.Contains(all, s) {
		t.Errorf("the PKCS#12 password is in the result: %s", all)
	}
}

// TestKeyArchival: Application_B of the seed (KeyArchivalRequest, no
// PKCS#12 in the job) asks the issuer for a key-archival answer — no CSR,
// the subject a request would have had — and writes the PKCS#12 it
// answers: key and certificate under one CKA_ID, the key signs for the
// certificate. The answer's password is wiped by the end of the job and is
// nowhere in the result.
func TestKeyArchival(t *testing.T) {
	r := newRig(t, "R0")
	iss := &archivingIssuer{fakeIssuer: r.issuer}
	d := r.deps()
	d.Issuer = iss
	res := r.run(t, archivalPlan(), d, "R0")
	if res.Err != nil {
		t.Fatalf("job: %+v", res.Err)
	}
	noSecrets(t, res)
	if len(iss.reqs) != 1 || len(iss.archived) != 1 {
		t.Fatalf("%d certificate requests, %d key-archival requests; want 1 and 1", len(iss.reqs), len(iss.archived))
	}
	req := iss.archived[0]
	if !req.KeyArchival || req.CSR != nil || req.Application != "B" || req.Template != "EncHardCodedValues" ||
		req.Subject.CommonName != "EncHardCodedValues" || req.Subject.SerialNumber != "CW-000042" {
		t.Errorf("key-archival request %+v", req)
	}
	tok := r.tokens.Token("R0", runner.LocationDefault).Snapshot()
	pairs := tokenPairs(t, tok)
	if len(pairs) != 2 || pairs["EncHardCodedValues"] == nil || pairs["Digital Signature"] == nil {
		t.Fatalf("key pairs with certificates: %v", pairs)
	}
	for _, o := range tok.Objects {
		if o.Class == runnertest.ClassCertificate && o.Label == "EncHardCodedValues" {
			signs(t, pairs["EncHardCodedValues"], o.Value)
			cert, _ := x509.ParseCertificate(o.Value)
			if cert.Subject.SerialNumber != "CW-000042" || cert.CheckSignatureFrom(testCA.Certificate()) != nil {
				t.Errorf("archived key's certificate: %v", cert.Subject)
			}
		}
	}
	for _, b := range iss.given {
		if strings.Trim(string(b), "\x00") != "" {
			t.Error("the PKCS#12 password was not wiped")
		}
	}
}

// TestKeyArchivalFailures: an issuer that cannot archive keys is a config
// error before card I/O; an answer without PKCS#12 or password, with a
// wrong password, or whose certificate is not its key's is issuer_error in
// the application's step with nothing of it written; the password is in
// no message.
func TestKeyArchivalFailures(t *testing.T) {
	const pw = "answer-pw-77120"
	good, _ := p12Of(t, "Archived", pw, nil)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mismatched, _ := p12Of(t, "Archived", pw, other)
	answer := func(der []byte, password string) func(issuer.Request) (issuer.Archived, error) {
		return func(issuer.Request) (issuer.Archived, error) {
			return issuer.Archived{PKCS12: der, Password: secret.New(password)}, nil
		}
	}
	for _, tc := range []struct {
		name   string
		setup  func(r *rig, iss *archivingIssuer, d *runner.Deps)
		code   api.Code
		step   string
		inText string
	}{
		{"no issuer", func(r *rig, iss *archivingIssuer, d *runner.Deps) { d.Issuer = nil }, api.CodeConfig, "validate", "certificate issuer"},
		{"issuer that cannot archive", func(r *rig, iss *archivingIssuer, d *runner.Deps) { d.Issuer = r.issuer }, api.CodeConfig, "validate", "cannot archive keys"},
		{"no PKCS#12", func(r *rig, iss *archivingIssuer, d *runner.Deps) { iss.answer = answer(nil, pw) }, api.CodeIssuerError, "Application_B", "without a PKCS#12"},
		{"no password", func(r *rig, iss *archivingIssuer, d *runner.Deps) { iss.answer = answer(good, "") }, api.CodeIssuerError, "Application_B", "no password"},
		{"wrong password", func(r *rig, iss *archivingIssuer, d *runner.Deps) { iss.answer = answer(good, "not-"+pw) }, api.CodeIssuerError, "Application_B", "does not open with its password"},
		{"key does not match", func(r *rig, iss *archivingIssuer, d *runner.Deps) { iss.answer = answer(mismatched, pw) }, api.CodeIssuerError, "Application_B", "is for key id"},
		{"issuer refuses", func(r *rig, iss *archivingIssuer, d *runner.Deps) {
			iss.answer = func(issuer.Request) (issuer.Archived, error) {
				return issuer.Archived{}, errors.New("template EncHardCodedValues unknown")
			}
		}, api.CodeIssuerError, "Application_B", "was not issued"},
		{"portal's own code kept", func(r *rig, iss *archivingIssuer, d *runner.Deps) {
			iss.answer = func(issuer.Request) (issuer.Archived, error) {
				return issuer.Archived{}, &api.JobError{Code: api.CodeCancelled, Message: "job cancelled while waiting for the PKCS#12"}
			}
		}, api.CodeCancelled, "Application_B", "waiting for the PKCS#12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "R0")
			iss := &archivingIssuer{fakeIssuer: r.issuer}
			d := r.deps()
			d.Issuer = iss
			tc.setup(r, iss, &d)
			res := r.run(t, archivalPlan(), d, "R0")
			if res.Err == nil || res.Err.Code != tc.code || res.Err.Step != tc.step || !strings.Contains(res.Err.Message, tc.inText) {
				t.Fatalf("Err = %+v; want %s in %s saying %q", res.Err, tc.code, tc.step, tc.inText)
			}
			leaks(t, res, pw)
			noSecrets(t, res)
			if tc.step == "validate" {
				if len(iss.archived) != 0 || r.tokens.Token("R0", runner.LocationDefault).Snapshot().Inited {
					t.Error("a refused job reached the issuer or the token")
				}
				return
			}
			if n := len(tokenPairs(t, r.tokens.Token("R0", runner.LocationDefault).Snapshot())); n != 1 {
				t.Errorf("%d key pairs with certificates, want only Application_A's", n)
			}
			for _, b := range iss.given {
				if strings.Trim(string(b), "\x00") != "" {
					t.Error("the PKCS#12 password was not wiped")
				}
			}
		})
	}
}

// certKeyListPlan writes a CertKeyList of PKCS#12s (mode p12) after the
// demo job's Application_A, reporting into Written.
func certKeyListPlan(items [][]byte, pw *dsc.Credential) *dsc.Plan {
	p := fullPlan()
	p.Steps[4].(*dsc.ApplicationStep).App = dsc.AppStep{ID: "B", Action: dsc.AppWriteCertKeyList, CertKeyListMode: "p12",
		CertKeyList: items, P12Password: pw, ReturnField: "Written"}
	p.Outputs = append(p.Outputs, dsc.Output{Field: "Written", Key: "CertKeyListReturnField"})
	return p
}

// TestCertKeyListP12: a CertKeyList of two PKCS#12s writes both (key and
// certificate under one CKA_ID, labelled with the subject CN, each key
// signing for its certificate) and reports their serial numbers in the
// return field; a password prompted for is used the same way.
func TestCertKeyListP12(t *testing.T) {
	const pw = "list-pw-5531"
	one, c1 := p12Of(t, "List One", pw, nil)
	two, c2 := p12Of(t, "List Two", pw, nil)
	want := fmt.Sprintf("%X,%X", c1.SerialNumber, c2.SerialNumber)
	for _, prompted := range []bool{false, true} {
		t.Run(fmt.Sprint("prompted=", prompted), func(t *testing.T) {
			r := newRig(t, "R0")
			cr := &dsc.Credential{Key: "P12PASSWORD", Field: "P12PW", Value: secret.New(pw), Pos: dsc.Pos{File: "t.dsc", Line: 27}}
			if prompted {
				cr = &dsc.Credential{Key: "P12PASSWORD", Pos: dsc.Pos{File: "t.dsc", Line: 27}, Prompt: &dsc.PINSource{Dialog: 1}}
				r.engine.Prompter = promptFunc(func() (secret.Value, error) { return secret.New(pw), nil })
			}
			res := r.run(t, certKeyListPlan([][]byte{one, two}, cr), r.deps(), "R0")
			if res.Err != nil {
				t.Fatalf("job: %+v", res.Err)
			}
			leaks(t, res, pw)
			if res.Fields["Written"] != want {
				t.Errorf("Written = %q, want %q", res.Fields["Written"], want)
			}
			tok := r.tokens.Token("R0", runner.LocationDefault).Snapshot()
			pairs := tokenPairs(t, tok)
			if len(pairs) != 3 || pairs["List One"] == nil || pairs["List Two"] == nil {
				t.Fatalf("key pairs with certificates: %v", pairs)
			}
			for _, o := range tok.Objects {
				if o.Class == runnertest.ClassCertificate && strings.HasPrefix(o.Label, "List ") {
					signs(t, pairs[o.Label], o.Value)
				}
			}
		})
	}
}

// TestCertKeyListP12Failures: an item that does not open with the
// password, or whose certificate is not its key's, is invalid_field naming
// the item — at validation for a password the job gives (no card I/O),
// in the step for one prompted for — and no item is written.
func TestCertKeyListP12Failures(t *testing.T) {
	const pw = "list-pw-5531"
	one, _ := p12Of(t, "List One", pw, nil)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	bad, _ := p12Of(t, "List Bad", pw, other)
	given := func(v string) *dsc.Credential {
		return &dsc.Credential{Key: "P12PASSWORD", Field: "P12PW", Value: secret.New(v), Pos: dsc.Pos{File: "t.dsc", Line: 27}}
	}
	for _, tc := range []struct {
		name     string
		items    [][]byte
		pw       *dsc.Credential
		prompted string // the password entered, for a prompted one
		step     string
		inText   string
	}{
		{"wrong password", [][]byte{one, one}, given("not-" + pw), "", "validate", "item 1 does not open with its password"},
		{"no password", [][]byte{one}, nil, "", "validate", "item 1 does not open with its password"},
		{"second key does not match", [][]byte{one, bad}, given(pw), "", "validate", "item 2 holds a certificate that is for key id"},
		{"wrong password entered", [][]byte{one, one}, &dsc.Credential{Key: "P12PASSWORD", Prompt: &dsc.PINSource{Dialog: 1}}, "not-" + pw, "Application_B", "item 1 does not open"},
		{"second key does not match, password entered", [][]byte{one, bad}, &dsc.Credential{Key: "P12PASSWORD", Prompt: &dsc.PINSource{Dialog: 1}}, pw, "Application_B", "item 2 holds a certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "R0")
			if tc.prompted != "" {
				r.engine.Prompter = promptFunc(func() (secret.Value, error) { return secret.New(tc.prompted), nil })
			}
			res := r.run(t, certKeyListPlan(tc.items, tc.pw), r.deps(), "R0")
			if res.Err == nil || res.Err.Code != api.CodeInvalidField || res.Err.Step != tc.step || !strings.Contains(res.Err.Message, tc.inText) {
				t.Fatalf("Err = %+v; want invalid_field in %s saying %q", res.Err, tc.step, tc.inText)
			}
			leaks(t, res, pw)
			if tc.step == "validate" && r.tokens.Token("R0", runner.LocationDefault).Snapshot().Inited {
				t.Error("a refused job reached the token")
			}
			if n := len(tokenPairs(t, r.tokens.Token("R0", runner.LocationDefault).Snapshot())); n > 1 {
				t.Errorf("%d key pairs with certificates, want none of the list's", n)
			}
			if _, ok := res.Fields["Written"]; ok && res.Fields["Written"] != "" {
				t.Errorf("Written = %q after a refused list", res.Fields["Written"])
			}
		})
	}
}
