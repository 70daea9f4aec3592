package runner_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/dsc"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/pinblob"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/runnertest"
	"github.com/cardwright/cardwright/secret"
)

// The PINs used in these tests; no output may contain them.
const (
	testPIN    = "472913"
	testPUK    = "83920174"
	testOpPIN  = "55102938"
	testNewPIN = "901827"
)

// testProfiles stands in for package cpf: a profile creates the MF and the
// PIN credential 0x81 from SEC_PIN1 and, with a PIN-encryption certificate,
// returns an encrypted-PIN file. A source containing "ERROR" does not
// compile.
type testProfiles struct {
	pinCert *x509.Certificate
	hook    func(step int) // called before each APDU the profile sends
	minLen  int            // minlen of the credential made from SEC_PIN1
}

type testProfile struct {
	p *testProfiles
}

// testPrepared is a test profile with its PINs.
type testPrepared struct {
	p    *testProfiles
	pins map[string]secret.Value
}

func (p *testProfiles) Compile(name string, src []byte) (runner.Profile, error) {
	if strings.Contains(string(src), "ERROR") {
		return nil, fmt.Errorf("%s:1:1: syntax error", name)
	}
	return &testProfile{p: p}, nil
}

func (tp *testProfile) Assigned() []string { return nil }

func (tp *testProfile) Prepare(_ []dsc.ProfileParam, pins map[string]secret.Value, standIn bool) (runner.Prepared, error) {
	if standIn {
		return nil, nil
	}
	return &testPrepared{p: tp.p, pins: pins}, nil
}

func (tp *testProfile) PINRules() []runner.PINRule {
	if tp.p.minLen == 0 {
		return nil
	}
	return []runner.PINRule{{Variable: "SEC_PIN1", Min: tp.p.minLen, By: "credential PIN (test.cpf:3)"}}
}

func (p *testProfiles) Erase(ctx context.Context, card iso7816.Card, pin, puk secret.Value) error {
	_, err := iso7816.Send(card, iso7816.DeleteFile(iso7816.MFID))
	if errors.Is(err, iso7816.ErrFileNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("erasing the card: %w", err)
	}
	return nil
}

func (tp *testPrepared) Run(ctx context.Context, card iso7816.Card) (runner.ProfileRun, error) {
	var run runner.ProfileRun
	pins := tp.pins
	mf := iso7816.FCP{FDB: 0x38, FID: iso7816.MFID}
	create, err := iso7816.CreateFile(mf)
	if err != nil {
		return run, err
	}
	put, err := iso7816.PutCredential(iso7816.Credential{Ref: 0x81, Value: pins["SEC_PIN1"].Bytes(), RetryLimit: 3})
	if err != nil {
		return run, err
	}
	for i, c := range []iso7816.Command{create, put} {
		if tp.p.hook != nil {
			tp.p.hook(i)
		}
		run.APDUs++
		run.Transcript = append(run.Transcript, fmt.Sprintf("test profile command %d (%02X)", i+1, c.INS))
		if _, err := iso7816.Send(card, c); err != nil {
			return run, err
		}
	}
	if tp.p.pinCert == nil {
		return run, nil
	}
	var list []pinblob.PIN
	for _, n := range []struct{ blob, v string }{{pinblob.PIN1, "SEC_PIN1"}, {pinblob.PUK, "SEC_PUK"}} {
		list = append(list, pinblob.PIN{Name: n.blob, Value: pins[n.v]})
	}
	run.PersInfo, err = pinblob.Seal(rand.Reader, tp.p.pinCert, list)
	return run, err
}

// fakeIssuer wraps a LocalCA and counts requests; fail makes it refuse.
type fakeIssuer struct {
	ca     *issuer.LocalCA
	mu     sync.Mutex
	reqs   []issuer.Request
	fail   error
	before func()                               // runs while the job waits, before the answer
	answer func(issuer.Request) ([]byte, error) // replaces the CA's answer
}

func (f *fakeIssuer) Issue(ctx context.Context, req issuer.Request) ([]byte, [][]byte, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	err, before, answer := f.fail, f.before, f.answer
	f.mu.Unlock()
	if before != nil {
		before()
	}
	if err != nil {
		return nil, nil, err
	}
	if answer != nil {
		der, err := answer(req)
		return der, nil, err
	}
	return f.ca.Issue(ctx, req)
}

var (
	caOnce sync.Once
	testCA *issuer.LocalCA
)

func newIssuer(t testing.TB) *fakeIssuer {
	caOnce.Do(func() {
		var err error
		if testCA, err = issuer.OpenLocalCA(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	})
	return &fakeIssuer{ca: testCA}
}

// pinKey makes a PIN-encryption certificate and its key.
func pinKey(t testing.TB) (*x509.Certificate, pinblob.Key) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "PIN encryption"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	k, err := pinblob.NewKey(cert, priv)
	if err != nil {
		t.Fatal(err)
	}
	return cert, k
}

var credLines = map[string]int{"PIN": 3, "InitialPUK": 4, "Operator_Pin": 5, "OldPIN": 6}

func cred(key, v string) *dsc.Credential {
	return &dsc.Credential{Key: key, Value: secret.New(v), Pos: dsc.Pos{File: "t.dsc", Line: credLines[key]}, Field: key + "_FIELD"}
}

func header(name string, ln int) dsc.StepHeader {
	return dsc.StepHeader{Name: name, Key: name, Pos: dsc.Pos{File: "t.dsc", Line: ln}}
}

const module = "/usr/lib/softhsm/libsofthsm2.so"

// fullPlan is the demo job: erase, profile with PINs, two key pairs with
// certificates, ICCSN, cleared fields.
func fullPlan() *dsc.Plan {
	p := &dsc.Plan{
		Description: &dsc.Description{Name: "t.dsc"},
		Module:      &dsc.Value{Key: "PKCS11LibraryLinux", Text: module, Pos: dsc.Pos{File: "t.dsc", Line: 9}},
		Credentials: dsc.Credentials{PIN: cred("PIN", testPIN), InitialPUK: cred("InitialPUK", testPUK), Operator: cred("Operator_Pin", testOpPIN)},
		Outputs:     []dsc.Output{{Field: "ICCSN", Key: "ICCSN"}},
		Clear:       []string{"PIN_FIELD"},
	}
	del := &dsc.DeleteProfileStep{StepHeader: header("DeleteProfile", 10)}
	del.Login = dsc.LoginHighest
	ini := &dsc.InitProfileStep{StepHeader: header("InitToken", 11),
		Init: dsc.InitStep{Profile: "demo.cpf", ProfileSource: []byte("MasterFile\n"), Label: "demo"}}
	a := &dsc.ApplicationStep{StepHeader: header("Application_A", 20),
		App: dsc.AppStep{ID: "A", Action: dsc.AppGenerateKey, Template: "Digital Signature", KeyType: "EC", KeySize: 256, CardSerial: "CW-1"}}
	a.Login = dsc.LoginUser
	b := &dsc.ApplicationStep{StepHeader: header("Application_B", 25),
		App: dsc.AppStep{ID: "B", Action: dsc.AppGenerateKey, Template: "Encryption", KeyType: "EC", KeySize: 384}}
	b.Login = dsc.LoginUser
	fin := &dsc.ReadICCSNStep{StepHeader: header("ReadICCSN", 12), Finalize: dsc.FinalizeStep{Field: "ICCSN"}}
	clr := &dsc.ClearFieldsStep{StepHeader: header("ClearFields", 13), Clear: dsc.ClearStep{Fields: []string{"PIN_FIELD"}}}
	sel := &dsc.SelectCardStep{StepHeader: header("SelectCard", 0)}
	p.Steps = []dsc.Step{sel, del, ini, a, b, fin, clr}
	return p
}

type rig struct {
	readers  *runnertest.MemReaders
	tokens   *runnertest.FakeTokens
	issuer   *fakeIssuer
	profiles *testProfiles
	engine   *runner.Engine
	progress []runner.Progress
}

func newRig(t testing.TB, readers ...string) *rig {
	cards := map[string]*memcard.Card{}
	for i, r := range readers {
		cards[r] = memcard.New(memcard.Config{Serial: []byte{0xCA, 0xFE, byte(i)}})
	}
	r := &rig{readers: runnertest.NewMemReaders(cards), tokens: &runnertest.FakeTokens{StandIn: true}, issuer: newIssuer(t), profiles: &testProfiles{}}
	r.engine = &runner.Engine{Readers: r.readers}
	return r
}

func (r *rig) deps() runner.Deps {
	return runner.Deps{Tokens: r.tokens, Issuer: r.issuer, Profiles: r.profiles}
}

func (r *rig) run(t testing.TB, plan *dsc.Plan, deps runner.Deps, reader string) runner.Result {
	t.Helper()
	sel, steps, err := runner.Build(plan, deps)
	if err != nil {
		var f *runner.Failure
		if !errors.As(err, &f) {
			t.Fatalf("Build: %v is not a *Failure", err)
		}
		return runner.Result{Err: f.JobError()}
	}
	sel.Reader = reader
	return r.engine.Exec(context.Background(), sel, steps, func(p runner.Progress) { r.progress = append(r.progress, p) })
}

// noSecrets fails if any test PIN appears in the result's JSON or error.
func noSecrets(t *testing.T, res runner.Result) {
	t.Helper()
	b, _ := json.Marshal(res)
	s := string(b) + fmt.Sprint(res)
	if res.Err != nil {
		s += res.Err.Message
	}
	for _, pin := range []string{testPIN, testPUK, testOpPIN, testNewPIN} {
		if strings.Contains(s, pin) {
			t.Errorf("a PIN leaked into the result: %s", s)
		}
	}
}

func TestFullJob(t *testing.T) {
	r := newRig(t, "R0")
	res := r.run(t, fullPlan(), r.deps(), "R0")
	if res.Err != nil {
		t.Fatalf("job failed: %+v", res.Err)
	}
	noSecrets(t, res)
	if got := res.Fields["ICCSN"]; got != "CAFE00" {
		t.Errorf("ICCSN = %q, want CAFE00", got)
	}
	var names []string
	for _, p := range r.progress {
		names = append(names, p.Step)
	}
	if want := "DeleteProfile InitToken Application_A Application_B ReadICCSN ClearFields"; strings.Join(names, " ") != want {
		t.Errorf("progress %q, want %q", names, want)
	}
	// The card: MF created and PIN 0x81 set by the profile.
	card := r.readers.Card("R0")
	if _, err := iso7816.Send(card, iso7816.Verify(0x81, []byte(testPIN))); err != nil {
		t.Errorf("card PIN: %v", err)
	}
	// The token: initialised with the label, PIN, two keys and certificates.
	tok := r.tokens.Token("R0", runner.LocationDefault).Snapshot()
	if !tok.Inited || tok.Label != "demo" || tok.PIN.Reveal() != testPIN || tok.SO.Reveal() != testPUK {
		t.Errorf("token: inited %v label %q", tok.Inited, tok.Label)
	}
	certs := r.tokens.Token("R0", runner.LocationDefault).Certificates()
	if len(certs) != 2 || len(r.issuer.reqs) != 2 {
		t.Fatalf("%d certificates, %d requests, want 2", len(certs), len(r.issuer.reqs))
	}
	c, err := x509.ParseCertificate(certs[0])
	if err != nil || c.Subject.CommonName != "Digital Signature" || c.Subject.SerialNumber != "CW-1" {
		t.Errorf("certificate A: %v %v", c.Subject, err)
	}
	// Linked: the certificate's CKA_ID is the private key's.
	for _, o := range tok.Objects {
		if o.Class == runnertest.ClassCertificate {
			found := false
			for _, k := range tok.Objects {
				found = found || (k.Class == runnertest.ClassPrivateKey && string(k.ID) == string(o.ID))
			}
			if !found {
				t.Errorf("certificate %q has no private key with its id", o.Label)
			}
		}
	}
	// A second run erases and initialises again (same PUK).
	res = r.run(t, fullPlan(), r.deps(), "R0")
	if res.Err != nil {
		t.Fatalf("second job failed: %+v", res.Err)
	}
	if n := len(r.tokens.Token("R0", runner.LocationDefault).Certificates()); n != 2 {
		t.Errorf("after the second job %d certificates, want 2", n)
	}
}

func TestValidationFailsBeforeCardIO(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(p *dsc.Plan, d *runner.Deps)
		code   api.Code
		key    string
	}{
		{"module not allowed", func(p *dsc.Plan, d *runner.Deps) {
			d.Tokens = &runnertest.FakeTokens{Modules: []string{"/opt/other.so"}}
		}, api.CodeModuleNotAllowed, "PKCS11LibraryLinux"},
		{"no token access", func(p *dsc.Plan, d *runner.Deps) { d.Tokens = nil }, api.CodeConfig, "PKCS11LibraryLinux"},
		{"profile does not compile", func(p *dsc.Plan, d *runner.Deps) {
			p.Steps[2].(*dsc.InitProfileStep).Init.ProfileSource = []byte("ERROR")
		}, api.CodeInvalidProfile, "InitToken"},
		{"headless prompt", func(p *dsc.Plan, d *runner.Deps) {
			p.Credentials.PIN = &dsc.Credential{Key: "PIN", Prompt: &dsc.PINSource{Dialog: 2}}
			d.Headless = true
		}, api.CodePromptUnavailable, "PIN"},
		{"pins into plain field", func(p *dsc.Plan, d *runner.Deps) {
			s := &dsc.ReadEncryptedPINsStep{StepHeader: header("ReadEncryptedPINs", 30),
				PINs: dsc.PINReadStep{Outputs: []dsc.PINReadOutput{{Name: "PIN1", Field: "Plain"}}}}
			p.Steps = append(p.Steps, s)
			_, k := pinKey(t)
			d.PINKeys = []pinblob.Key{k}
		}, api.CodeSecretOutput, "ReadEncryptedPINs"},
		{"no issuer", func(p *dsc.Plan, d *runner.Deps) { d.Issuer = nil }, api.CodeConfig, "Application_A"},
		{"bad certificate", func(p *dsc.Plan, d *runner.Deps) {
			p.Steps[3].(*dsc.ApplicationStep).App = dsc.AppStep{ID: "A", Action: dsc.AppWriteCertificate, Certificate: []byte("not DER")}
		}, api.CodeInvalidField, "Application_A"},
		{"no SO credential", func(p *dsc.Plan, d *runner.Deps) { p.Credentials.InitialPUK = nil }, api.CodeInvalidDescription, "InitToken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "R0")
			p, d := fullPlan(), r.deps()
			tc.change(p, &d)
			res := r.run(t, p, d, "R0")
			if res.Err == nil || res.Err.Code != tc.code || res.Err.Key != tc.key {
				t.Fatalf("Err = %+v, want %s at %s", res.Err, tc.code, tc.key)
			}
			if n := len(r.readers.Card("R0").Transcript()); n != 0 {
				t.Errorf("%d APDUs sent before validation failed", n)
			}
			if calls := r.tokens.Calls(); len(calls) != 0 {
				t.Errorf("token touched before validation failed: %v", calls)
			}
			noSecrets(t, res)
		})
	}
}

func TestExecutionFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, r *rig, p *dsc.Plan, e *runner.Engine)
		code   api.Code
		step   string
		// untouched: nothing was written to the card (no DELETE FILE, no
		// step done before the failure).
		untouched bool
	}{
		{"card removed mid-profile", func(t *testing.T, r *rig, p *dsc.Plan, e *runner.Engine) {
			r.profiles.hook = func(i int) {
				if i == 1 {
					r.readers.Card("R0").Remove()
				}
			}
		}, api.CodeCardRemoved, "InitToken", false},
		{"prompt refused", func(t *testing.T, r *rig, p *dsc.Plan, e *runner.Engine) {
			p.Credentials.PIN = &dsc.Credential{Key: "PIN", Prompt: &dsc.PINSource{Dialog: 2}}
			e.Prompter = promptFunc(func() (secret.Value, error) { return secret.Value{}, prompt.ErrRefused })
		}, api.CodePromptRefused, "DeleteProfile", true},
		{"no prompt possible", func(t *testing.T, r *rig, p *dsc.Plan, e *runner.Engine) {
			p.Credentials.PIN = &dsc.Credential{Key: "PIN", Prompt: &dsc.PINSource{Dialog: 1}}
		}, api.CodePromptUnavailable, "DeleteProfile", true},
		{"wrong PUK on an initialised token", func(t *testing.T, r *rig, p *dsc.Plan, e *runner.Engine) {
			tok := r.tokens.Token("R0", runner.LocationDefault)
			tok.Inited, tok.SO, tok.Label = true, secret.New("00000000"), "demo"
		}, api.CodePinIncorrect, "DeleteProfile", false},
		{"issuer refuses", func(t *testing.T, r *rig, p *dsc.Plan, e *runner.Engine) {
			r.issuer = &fakeIssuer{ca: testCA, fail: errors.New("template unknown")}
		}, api.CodeIssuerError, "Application_A", false},
		{"key generation unsupported", func(t *testing.T, r *rig, p *dsc.Plan, e *runner.Engine) {
			p.Steps[3].(*dsc.ApplicationStep).App.KeySize = 163
		}, api.CodeNotSupported, "Application_A", false},
		{"token fails", func(t *testing.T, r *rig, p *dsc.Plan, e *runner.Engine) {
			r.tokens.FailOn = map[string]error{"WriteCertificate": fmt.Errorf("C_CreateObject: CKR_DEVICE_MEMORY: %w", runner.ErrToken)}
		}, api.CodeTokenError, "Application_A", false},
		{"mapped to another label", func(t *testing.T, r *rig, p *dsc.Plan, e *runner.Engine) {
			p.Steps[2].(*dsc.InitProfileStep).Init.Label = "other"
			r.tokens.FailOn = nil
			r.tokens.Fixed = "demo"
		}, api.CodeConfig, "validate", true},
		{"PIN shorter than the profile's minlen", func(t *testing.T, r *rig, p *dsc.Plan, e *runner.Engine) {
			r.profiles.minLen = 8 // testPIN has 6
		}, api.CodeInvalidField, "validate", true},
		{"prompted PIN shorter than the profile's minlen", func(t *testing.T, r *rig, p *dsc.Plan, e *runner.Engine) {
			r.profiles.minLen = 8
			p.Credentials.PIN = &dsc.Credential{Key: "PIN", Pos: dsc.Pos{File: "t.dsc", Line: 5}, Prompt: &dsc.PINSource{Dialog: 2}}
			e.Prompter = promptFunc(func() (secret.Value, error) { return secret.New("12"), nil })
		}, api.CodeInvalidField, "DeleteProfile", true},
		{"PIN longer than the token takes", func(t *testing.T, r *rig, p *dsc.Plan, e *runner.Engine) {
			r.tokens.PINLen = [2]int{4, 5}
		}, api.CodeInvalidField, "validate", true},
		{"PUK shorter than the token takes", func(t *testing.T, r *rig, p *dsc.Plan, e *runner.Engine) {
			r.tokens.PINLen = [2]int{10, 0}
			p.Credentials.PIN = nil
		}, api.CodeInvalidField, "validate", true},
		{"certificate for another key", func(t *testing.T, r *rig, p *dsc.Plan, e *runner.Engine) {
			r.issuer.answer = func(issuer.Request) ([]byte, error) { return testCA.Certificate().Raw, nil }
		}, api.CodeIssuerError, "Application_A", false},
		{"card removed while the portal issues", func(t *testing.T, r *rig, p *dsc.Plan, e *runner.Engine) {
			r.issuer.before = func() { r.readers.Card("R0").Remove() }
		}, api.CodeCardRemoved, "Application_A", false},
		{"card swapped while the portal issues", func(t *testing.T, r *rig, p *dsc.Plan, e *runner.Engine) {
			r.issuer.before = func() { r.readers.Put("R0", memcard.New(memcard.Config{Serial: []byte{0x0D, 0x0D}})) }
		}, api.CodeCardChanged, "Application_A", false},
		{"card swapped during the PUK dialog of a DeleteProfile job", func(t *testing.T, r *rig, p *dsc.Plan, e *runner.Engine) {
			p.Steps, p.Module = []dsc.Step{p.Steps[0], p.Steps[1], p.Steps[5]}, nil // erased over PC/SC
			p.Credentials.InitialPUK = &dsc.Credential{Key: "InitialPUK", Pos: dsc.Pos{File: "t.dsc", Line: 6}, Prompt: &dsc.PINSource{Dialog: 2}}
			e.Prompter = promptFunc(func() (secret.Value, error) {
				r.readers.Put("R0", memcard.New(memcard.Config{Serial: []byte{0x0D, 0x0D}}))
				return secret.New(testPUK), nil
			})
		}, api.CodeCardChanged, "DeleteProfile", true},
		{"card removed after its last APDU", func(t *testing.T, r *rig, p *dsc.Plan, e *runner.Engine) {
			// Application_B's request is the last wait; the card is pulled
			// once the certificate is written: only the final check sees it.
			r.tokens.After = map[string]func(){"WriteCertificate": func() {
				if len(r.issuer.reqs) == 2 {
					r.readers.Card("R0").Remove()
				}
			}}
		}, api.CodeCardRemoved, "finish", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "R0")
			p := fullPlan()
			tc.change(t, r, p, r.engine)
			res := r.run(t, p, r.deps(), "R0")
			if res.Err == nil || res.Err.Code != tc.code || res.Err.Step != tc.step {
				t.Fatalf("Err = %+v, want %s in %s", res.Err, tc.code, tc.step)
			}
			if tc.step != "finish" && (res.Err.File != "t.dsc" || res.Err.Line == 0) {
				t.Errorf("no position: %+v", res.Err)
			}
			if tc.code == api.CodeIssuerError && slices.Contains(r.tokens.Calls(), "WriteCertificate") {
				t.Errorf("a certificate was written although the issuer's answer was refused: %v", r.tokens.Calls())
			}
			if tc.untouched {
				for _, e := range r.readers.Card("R0").Transcript() {
					if len(e.Command) > 1 && e.Command[1] == iso7816.InsDeleteFile {
						t.Errorf("the card was erased before the failure: %s", e)
					}
				}
				if strings.Contains(res.Err.Message, "done before") {
					t.Errorf("steps done before the failure: %s", res.Err.Message)
				}
			}
			noSecrets(t, res)
		})
	}
}

func TestPINSteps(t *testing.T) {
	r := newRig(t, "R0")
	if res := r.run(t, fullPlan(), r.deps(), "R0"); res.Err != nil {
		t.Fatal(res.Err)
	}
	change := func(old, new string, mode dsc.PINMode) *dsc.Plan {
		p := &dsc.Plan{Description: &dsc.Description{Name: "t.dsc"}, Module: fullPlan().Module,
			Credentials: dsc.Credentials{InitialPUK: cred("InitialPUK", testPUK)}}
		s := &dsc.SetPINStep{StepHeader: header("SetPIN", 5),
			PIN: dsc.PINStep{Mode: mode, New: cred("PIN", new), Old: cred("OldPIN", old), SO: p.Credentials.InitialPUK}}
		p.Steps = []dsc.Step{s}
		return p
	}
	// A wrong current PIN: pin_incorrect, tries counting down, then blocked.
	for i, want := range []api.Code{api.CodePinIncorrect, api.CodePinIncorrect, api.CodePinBlocked, api.CodePinBlocked} {
		res := r.run(t, change("000000", testNewPIN, dsc.PINChange), r.deps(), "R0")
		if res.Err == nil || res.Err.Code != want {
			t.Fatalf("try %d: %+v, want %s", i+1, res.Err, want)
		}
		noSecrets(t, res)
	}
	// The PUK unblocks it with a new PIN.
	if res := r.run(t, change("", testNewPIN, dsc.PINReset), r.deps(), "R0"); res.Err != nil {
		t.Fatalf("reset: %+v", res.Err)
	}
	if res := r.run(t, change(testNewPIN, testPIN, dsc.PINChange), r.deps(), "R0"); res.Err != nil {
		t.Fatalf("change with the new PIN: %+v", res.Err)
	}
	if got := r.tokens.Token("R0", runner.LocationDefault).Snapshot().PIN.Reveal(); got != testPIN {
		t.Errorf("PIN not changed back")
	}
	// Dialog 3 asks for the current PIN and the new one in one window.
	p := change("", testNewPIN, dsc.PINChange)
	set := p.Steps[0].(*dsc.SetPINStep)
	set.PIN.Old = nil
	set.PIN.New = &dsc.Credential{Key: "PIN", Prompt: &dsc.PINSource{Dialog: 3}}
	var asked []prompt.Request
	r.engine.Prompter = askFunc(func(req prompt.Request) (prompt.Answer, error) {
		asked = append(asked, req)
		return prompt.Answer{Current: secret.New(testPIN), PIN: secret.New(testNewPIN)}, nil
	})
	if res := r.run(t, p, r.deps(), "R0"); res.Err != nil {
		t.Fatalf("dialog 3: %+v", res.Err)
	}
	if got := r.tokens.Token("R0", runner.LocationDefault).Snapshot().PIN.Reveal(); got != testNewPIN {
		t.Errorf("PIN not changed by dialog 3")
	}
	// One window, saying what it is for, on which reader and card.
	if len(asked) != 1 || asked[0].Kind != prompt.ThreeFields || asked[0].Operation != prompt.OpChangePIN ||
		asked[0].Reader != "R0" || asked[0].Card == "" {
		t.Errorf("dialog 3 asked %+v, want one ThreeFields change_pin request naming reader R0 and the card", asked)
	}
}

func TestApplicationsAndFinalization(t *testing.T) {
	r := newRig(t, "R0")
	certKey, key := pinKey(t)
	r.profiles.pinCert = certKey
	p := fullPlan()
	// Application B uses the key of A found by label; C writes A's
	// certificate again from a field; a script and the CMS serial follow.
	p.Steps[4].(*dsc.ApplicationStep).App = dsc.AppStep{ID: "B", Action: dsc.AppUseObject, Template: "Again",
		Criteria: &dsc.ObjectCriteria{Class: "CKO_PUBLIC_KEY", ClassID: runnertest.ClassPublicKey, Attribute: "CKA_LABEL", AttrID: runnertest.AttrLabel, Type: "string", Text: "Digital Signature", Bytes: []byte("Digital Signature")}}
	sc := &dsc.ApduScriptStep{StepHeader: header("ApduFile", 14), Script: dsc.ScriptStep{File: "x.apdu", ResponseField: "SW", Commands: []dsc.ScriptCommand{
		{Line: 1, APDU: []byte{0x00, 0xCA, 0x00, 0x5A, 0x00}, Expect: []string{"9000"}},
		{Line: 2, APDU: []byte{0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00}},
	}}}
	ws := &dsc.WriteSerialStep{StepHeader: header("CMSCardSerialNumber", 15), Serial: dsc.SerialStep{Serial: "CMS-42", Field: "SER"}}
	p.Steps = append(p.Steps[:3], append([]dsc.Step{ws}, p.Steps[3:]...)...)
	p.Steps = append(p.Steps, sc)
	p.Steps[len(p.Steps)-3].(*dsc.ReadICCSNStep).Finalize.WithATR = true
	p.Steps[0].(*dsc.SelectCardStep).Select.UseChipSerial = true // the chip's serial, not CMS-42
	res := r.run(t, p, r.deps(), "R0")
	if res.Err != nil {
		t.Fatalf("job: %+v", res.Err)
	}
	if res.Fields["SW"] != "9000,9000" {
		t.Errorf("SW = %q", res.Fields["SW"])
	}
	atr := strings.ToUpper(fmt.Sprintf("%X", r.readers.Card("R0").ATR()))
	if res.Fields["ICCSN"] != "CAFE00-"+atr {
		t.Errorf("ICCSN = %q", res.Fields["ICCSN"])
	}
	tok := r.tokens.Token("R0", runner.LocationDefault)
	if n := len(tok.Certificates()); n != 2 {
		t.Errorf("%d certificates, want 2", n)
	}
	csr, err := x509.ParseCertificateRequest(r.issuer.reqs[1].CSR)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := x509.ParseCertificate(tok.Certificates()[0])
	if !first.PublicKey.(*ecdsa.PublicKey).Equal(csr.PublicKey) {
		t.Error("ObjectCriteria request does not use the key of Application_A")
	}
	// A script line with an unexpected status: apdu_script at its line.
	p2 := fullPlan()
	sc.Script.Commands[1].Expect = []string{"6A82"}
	p2.Steps = []dsc.Step{sc}
	p2.Module = nil
	res = r.run(t, p2, r.deps(), "R0")
	if res.Err == nil || res.Err.Code != api.CodeApduScript || res.Err.Line != 2 || res.Err.File != "x.apdu" {
		t.Errorf("script: %+v", res.Err)
	}

	// Encrypted PINs: a second job reads them into secret outputs only.
	rp := &dsc.ReadEncryptedPINsStep{StepHeader: header("ReadEncryptedPINs", 3),
		PINs: dsc.PINReadStep{Outputs: []dsc.PINReadOutput{{Name: "PIN1", Field: "OutPIN"}, {Name: "PUK", Field: "OutPUK"}}}}
	read := &dsc.Plan{Description: &dsc.Description{Name: "t.dsc"}, Module: p.Module, Steps: []dsc.Step{rp},
		Outputs: []dsc.Output{{Field: "OutPIN", Secret: true}, {Field: "OutPUK", Secret: true}}}
	d := r.deps()
	d.PINKeys = []pinblob.Key{key}
	res = r.run(t, read, d, "R0")
	if res.Err != nil {
		t.Fatalf("reading PINs: %+v", res.Err)
	}
	if res.Secrets["OutPIN"].Reveal() != testPIN || res.Secrets["OutPUK"].Reveal() != testPUK || len(res.Fields) != 0 {
		t.Errorf("PIN outputs wrong: fields %v", res.Fields)
	}
	noSecrets(t, res)
	_, other := pinKey(t)
	d.PINKeys = []pinblob.Key{other}
	res = r.run(t, read, d, "R0")
	if res.Err == nil || res.Err.Code != api.CodePinKeyNotFound || !strings.Contains(res.Err.Message, "no decryption key found matching #") {
		t.Errorf("wrong key: %+v", res.Err)
	}
	// A token without the blob.
	r2 := newRig(t, "R0")
	d = r2.deps()
	d.PINKeys = []pinblob.Key{key}
	if res := r2.run(t, read, d, "R0"); res.Err == nil || res.Err.Code != api.CodeNoEncryptedPins {
		t.Errorf("blank card: %+v", res.Err)
	}
}

func TestBlockCard(t *testing.T) {
	r := newRig(t, "R0")
	p := fullPlan()
	b := &dsc.BlockCardStep{StepHeader: header("BlockCard", 40)}
	p.Steps = append(p.Steps, b)
	if res := r.run(t, p, r.deps(), "R0"); res.Err != nil {
		t.Fatalf("%+v", res.Err)
	}
	tok := r.tokens.Token("R0", runner.LocationDefault).Snapshot()
	if tok.PINTries != 0 {
		t.Errorf("PIN not blocked: %d tries left", tok.PINTries)
	}
}

// TestTwoReadersAtOnce runs two full jobs in parallel on two readers (run
// with -race).
func TestTwoReadersAtOnce(t *testing.T) {
	r := newRig(t, "R0", "R1")
	var wg sync.WaitGroup
	res := make([]runner.Result, 2)
	for i, name := range []string{"R0", "R1"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sel, steps, err := runner.Build(fullPlan(), r.deps())
			if err != nil {
				t.Error(err)
				return
			}
			sel.Reader = name
			res[i] = r.engine.Exec(context.Background(), sel, steps, nil)
		}()
	}
	wg.Wait()
	for i, rs := range res {
		if rs.Err != nil {
			t.Errorf("job %d: %+v", i, rs.Err)
		}
	}
	if res[0].Fields["ICCSN"] == res[1].Fields["ICCSN"] {
		t.Errorf("both jobs report ICCSN %s", res[0].Fields["ICCSN"])
	}
}

// TestFailureSaysWhatIsDone: a job that fails after writing says which
// steps completed.
func TestFailureSaysWhatIsDone(t *testing.T) {
	r := newRig(t, "R0")
	r.tokens.FailOn = map[string]error{"WriteCertificate": fmt.Errorf("C_CreateObject: %w", runner.ErrToken)}
	res := r.run(t, fullPlan(), r.deps(), "R0")
	if res.Err == nil || !strings.HasSuffix(res.Err.Message, "(done before: DeleteProfile, InitToken)") {
		t.Fatalf("%+v", res.Err)
	}
}
