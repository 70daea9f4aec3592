package runner_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/dsc"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/runnertest"
	"github.com/cardwright/cardwright/secret"
)

const demoDir = "../testdata/demo"

// demoJob is the demo description with its values.
func demoJob(t testing.TB, fields map[string]string) *runner.Job {
	src, err := os.ReadFile(demoDir + "/demo.dsc")
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{"PIN_FIELD": testPIN, "PUK_FIELD": testPUK,
		"HOLDER": base64.StdEncoding.EncodeToString([]byte("Erika Mustermann")), "CARD_SERIAL": "CW-0001", "TOKEN_LABEL": "cardwright demo"}
	for k, v := range fields {
		vals[k] = v
	}
	j := &runner.Job{Name: "demo.dsc", Description: src, Files: os.DirFS(demoDir), Fields: map[string]secret.Value{}}
	for k, v := range vals {
		j.Fields[k] = secret.New(v)
	}
	return j
}

func demoRunner(t testing.TB, r *rig) *runner.Runner {
	return &runner.Runner{Engine: r.engine, Deps: runner.Deps{Tokens: r.tokens, Issuer: r.issuer, Profiles: runner.CPF{}}}
}

// TestRunDemo runs the demo description end to end on an in-memory card and
// the token fake, with the real description checker, planner and card
// profile engine, and checks the card independently afterwards.
func TestRunDemo(t *testing.T) {
	r := newRig(t, "R0")
	run := demoRunner(t, r)
	for i := range 2 { // the second run erases the first
		res := run.Run(context.Background(), demoJob(t, nil), nil)
		if res.Err != nil {
			t.Fatalf("run %d: %+v", i+1, res.Err)
		}
		noSecrets(t, res)
		if res.Fields["ICCSN"] != "CAFE00" {
			t.Errorf("ICCSN = %q", res.Fields["ICCSN"])
		}
		for _, f := range []string{"PIN_FIELD", "PUK_FIELD"} {
			if _, ok := res.Fields[f]; ok {
				t.Errorf("cleared field %s returned", f)
			}
		}
	}
	card := r.readers.Card("R0")
	if !card.Operational() {
		t.Error("fuse not burnt")
	}
	// The card, read back with plain APDUs: the holder file and the PIN.
	if _, err := iso7816.Send(card, iso7816.SelectPath(true, 0x5015, 0x5032)); err != nil {
		t.Fatal(err)
	}
	cmd, _ := iso7816.ReadBinary(0, 16)
	data, err := iso7816.Send(card, cmd)
	if err != nil || string(data) != "Erika Mustermann" {
		t.Errorf("holder file = %q, %v", data, err)
	}
	if _, err := iso7816.Send(card, iso7816.Verify(0x81, []byte(testPIN))); err != nil {
		t.Errorf("card PIN: %v", err)
	}
	tok := r.tokens.Token("R0", runner.LocationDefault)
	if s := tok.Snapshot(); s.Label != "cardwright demo" || s.PIN.Reveal() != testPIN || s.SO.Reveal() != testPUK {
		t.Errorf("token label %q or PINs differ from the job's", s.Label)
	}
	certs := tok.Certificates()
	if len(certs) != 2 {
		t.Fatalf("%d certificates", len(certs))
	}
	for _, der := range certs {
		c, err := x509.ParseCertificate(der)
		if err != nil || c.Subject.SerialNumber != "CW-0001" {
			t.Errorf("certificate %v: %v", c.Subject, err)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool(testCA.Certificate()), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("certificate does not chain to the CA: %v", err)
		}
	}
}

func pool(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

// TestRunValidation: bad jobs fail with their code before any card I/O.
func TestRunValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		job   func(j *runner.Job)
		deps  func(d *runner.Deps)
		code  api.Code
		inMsg string
	}{
		{"field not base64", func(j *runner.Job) { j.Fields["HOLDER"] = secret.New("not base64!") }, nil, api.CodeInvalidField, "HOLDER"},
		{"module not allowed", nil, func(d *runner.Deps) { d.Tokens = &runnertest.FakeTokens{Modules: []string{"/usr/lib/other.so"}} }, api.CodeModuleNotAllowed, "softhsm2"},
		{"description error", func(j *runner.Job) {
			j.Description = []byte(strings.Replace(string(j.Description), "Type=1024,Chip", "Type=1024,Chip\nType=1,Magstripe", 1))
		}, nil, api.CodeInvalidDescription, ""},
		{"missing profile", func(j *runner.Job) { j.Files = os.DirFS(t.TempDir()) }, nil, api.CodeMissingFile, "demo.cpf"},
		{"profile error", func(j *runner.Job) {
			j.Files = runner.Files{"demo.cpf": []byte("CardModel 'NOPE'\n")}
		}, nil, api.CodeInvalidProfile, ""},
		{"empty PIN field", func(j *runner.Job) { j.Fields["PIN_FIELD"] = secret.New("") }, nil, api.CodeInvalidField, "field PIN_FIELD is empty"},
		{"vendor-encrypted line", func(j *runner.Job) { j.Description = append([]byte("^ABCDEF\n"), j.Description...) }, nil, api.CodeInvalidDescription, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "R0")
			run := demoRunner(t, r)
			if tc.deps != nil {
				tc.deps(&run.Deps)
			}
			j := demoJob(t, nil)
			if tc.job != nil {
				tc.job(j)
			}
			res := run.Run(context.Background(), j, nil)
			if res.Err == nil || res.Err.Code != tc.code || !strings.Contains(res.Err.Message, tc.inMsg) {
				t.Fatalf("Err = %+v, want %s mentioning %q", res.Err, tc.code, tc.inMsg)
			}
			if res.Err.Line == 0 {
				t.Errorf("no line: %+v", res.Err)
			}
			if n := len(r.readers.Card("R0").Transcript()); n != 0 {
				t.Errorf("%d APDUs before validation failed", n)
			}
			if c := r.tokens.Calls(); len(c) != 0 {
				t.Errorf("token used before validation failed: %v", c)
			}
			noSecrets(t, res)
		})
	}
}

// TestRunCancelledWhileIssuing: a job cancelled while the issuer works
// ends cancelled, whatever error the issuer returns, and writes nothing.
func TestRunCancelledWhileIssuing(t *testing.T) {
	r := newRig(t, "R0")
	run := demoRunner(t, r)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.issuer.before = cancel
	r.issuer.answer = func(issuer.Request) ([]byte, error) {
		// as the agent answers: its own code, not the context's error
		return nil, &api.JobError{Code: api.CodeIssuerError, Message: "no answer"}
	}
	run.Deps.Issuer = r.issuer
	res := run.Run(ctx, demoJob(t, nil), nil)
	if res.Err == nil || res.Err.Code != api.CodeCancelled {
		t.Fatalf("Err = %+v, want cancelled", res.Err)
	}
	if slices.Contains(r.tokens.Calls(), "WriteCertificate") {
		t.Errorf("a certificate was written: %v", r.tokens.Calls())
	}
}

// TestRunCardRemoved: the card leaves in the middle of the card profile;
// the job ends with card_removed in that step.
func TestRunCardRemoved(t *testing.T) {
	r := newRig(t, "R0")
	r.readers.Card("R0").FailAfter(8, iso7816.ErrCardRemoved)
	res := demoRunner(t, r).Run(context.Background(), demoJob(t, nil), nil)
	if res.Err == nil || res.Err.Code != api.CodeCardRemoved || res.Err.Step != "InitToken" {
		t.Fatalf("Err = %+v, want card_removed in InitToken", res.Err)
	}
	noSecrets(t, res)
}

// TestRunEraseWithAnotherPUK: a card whose profile needs the PUK to be
// erased (no MakeCardEraseable) refuses a job with another PUK in
// DeleteProfile — pin_incorrect, the card's tries left in the message,
// nothing done — and the job with the right PUK erases and lays it out again.
func TestRunEraseWithAnotherPUK(t *testing.T) {
	r := newRig(t, "R0")
	run := demoRunner(t, r)
	src, err := os.ReadFile(demoDir + "/demo.cpf")
	if err != nil {
		t.Fatal(err)
	}
	noErase := strings.Replace(string(src), "\nMakeCardEraseable()\n", "\n", 1)
	if noErase == string(src) {
		t.Fatal("demo.cpf has no MakeCardEraseable() statement")
	}
	files := fstest.MapFS{"demo.cpf": {Data: []byte(noErase)}}
	job := func(puk string) *runner.Job {
		j := demoJob(t, map[string]string{"PUK_FIELD": puk})
		j.Files = files
		return j
	}
	if res := run.Run(context.Background(), job(testPUK), nil); res.Err != nil {
		t.Fatalf("first job: %+v", res.Err)
	}
	res := run.Run(context.Background(), job("55556666"), nil)
	if res.Err == nil || res.Err.Code != api.CodePinIncorrect || res.Err.Step != "DeleteProfile" {
		t.Fatalf("Err = %+v, want pin_incorrect in DeleteProfile", res.Err)
	}
	if m := res.Err.Message; strings.Count(m, "erasing the card") != 1 || !strings.Contains(m, "tries left") || strings.Contains(m, "done before") {
		t.Errorf("message %q: want one 'erasing the card', the tries left, nothing done", m)
	}
	if tries, _ := r.readers.Card("R0").Tries(0x84); tries != 4 {
		t.Errorf("PUK tries %d after one wrong PUK, want 4", tries)
	}
	if res := run.Run(context.Background(), job(testPUK), nil); res.Err != nil {
		t.Fatalf("job with the right PUK: %+v", res.Err)
	}
	noSecrets(t, res)
}

func zipOf(t testing.TB, files map[string][]byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, b := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRunDSZ runs the demo from a .dsz (zip and base64 of the zip, files in
// a folder), and refuses containers without exactly one description.
func TestRunDSZ(t *testing.T) {
	j := demoJob(t, nil)
	cpfSrc, err := os.ReadFile(demoDir + "/demo.cpf")
	if err != nil {
		t.Fatal(err)
	}
	z := zipOf(t, map[string][]byte{"job/demo.dsc": j.Description, "job/demo.cpf": cpfSrc})
	for name, data := range map[string][]byte{"zip": z, "base64": []byte(base64.StdEncoding.EncodeToString(z))} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, "R0")
			j := demoJob(t, nil)
			j.Description, j.Files, j.DSZ = nil, nil, data
			if res := demoRunner(t, r).Run(context.Background(), j, nil); res.Err != nil {
				t.Fatalf("%+v", res.Err)
			}
		})
	}
	for name, data := range map[string][]byte{
		"two descriptions": zipOf(t, map[string][]byte{"a.dsc": j.Description, "b.dsc": j.Description}),
		"no description":   zipOf(t, map[string][]byte{"demo.cpf": cpfSrc}),
		"missing profile":  zipOf(t, map[string][]byte{"demo.dsc": j.Description}),
		"not a zip":        []byte("this is not a zip!"),
		// the hardened opener (dsc.OpenDSZ) is the job path's
		"path leaving the container": zipOf(t, map[string][]byte{"demo.dsc": j.Description, "../demo.cpf": cpfSrc}),
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, "R0")
			j := demoJob(t, nil)
			j.Description, j.Files, j.DSZ = nil, nil, data
			res := demoRunner(t, r).Run(context.Background(), j, nil)
			want := api.CodeInvalidDescription
			if name == "missing profile" {
				want = api.CodeMissingFile
			}
			if res.Err == nil || res.Err.Code != want {
				t.Fatalf("Err = %+v, want %s", res.Err, want)
			}
		})
	}
}

// TestRunDSZPositions: an error in a .dsz's description names the entry
// and the column, not a made-up file name.
func TestRunDSZPositions(t *testing.T) {
	j := demoJob(t, nil)
	bad := strings.Replace(string(j.Description), "KeySize=256", "KeySize=256\nKeySise=2048", 1)
	r := newRig(t, "R0")
	j.Description, j.Files = nil, nil
	j.DSZ = zipOf(t, map[string][]byte{"job/badge.dsc": []byte(bad), "job/demo.cpf": []byte("MasterFile\n")})
	res := demoRunner(t, r).Run(context.Background(), j, nil)
	if res.Err == nil || res.Err.File != "badge.dsc" || res.Err.Line == 0 || res.Err.Column == 0 {
		t.Fatalf("Err = %+v, want a position in badge.dsc with a column", res.Err)
	}
}

// TestRunJobOverrides: a job's own issuer (the template in the request),
// the prompt notifications around a dialog, and a headless runner.
func TestRunJobOverrides(t *testing.T) {
	r := newRig(t, "R0")
	var templates []string
	j := demoJob(t, nil)
	j.Issuer = issuerFunc(func(ctx context.Context, req issuer.Request) ([]byte, [][]byte, error) {
		templates = append(templates, req.Application+":"+req.Template)
		return testCA.Issue(ctx, req)
	})
	run := demoRunner(t, r)
	run.Deps.Issuer = nil
	if res := run.Run(context.Background(), j, nil); res.Err != nil {
		t.Fatalf("%+v", res.Err)
	}
	if strings.Join(templates, ",") != "A:DigitalSignature,B:Encryption" {
		t.Errorf("templates %v", templates)
	}
	// A dialog PIN: the engine's prompter answers and the job is told
	// around it; a headless runner refuses before I/O.
	iss := j.Issuer
	j = demoJob(t, nil)
	j.Issuer = iss
	j.Description = []byte(strings.Replace(string(j.Description), "PIN=PIN_FIELD", "PIN=!FROM_USER_DIALOG_2_FIELD", 1))
	var asked int
	var notes []string
	r.engine.Prompter = promptFunc(func() (secret.Value, error) { asked++; return secret.New(testPIN), nil })
	j.PromptNotify = func(kind, state, reader string) { notes = append(notes, kind+" "+state+" "+reader) }
	if res := run.Run(context.Background(), j, nil); res.Err != nil || asked != 1 {
		t.Fatalf("prompted %d times: %+v", asked, res.Err)
	}
	if want := "FROM_USER_DIALOG_2_FIELD waiting R0,FROM_USER_DIALOG_2_FIELD done R0"; strings.Join(notes, ",") != want {
		t.Errorf("notifications %q, want %q", notes, want)
	}
	run.Deps.Headless = true
	if res := run.Run(context.Background(), j, nil); res.Err == nil || res.Err.Code != api.CodePromptUnavailable || res.Err.Step != "validate" {
		t.Fatalf("headless: %+v", res.Err)
	}
}

type issuerFunc func(ctx context.Context, req issuer.Request) ([]byte, [][]byte, error)

func (f issuerFunc) Issue(ctx context.Context, req issuer.Request) ([]byte, [][]byte, error) {
	return f(ctx, req)
}

// countingProfiles counts compiles and prepares of the real CPF.
type countingProfiles struct {
	runner.CPF
	compiles, prepares int
}

func (c *countingProfiles) Compile(name string, src []byte) (runner.Profile, error) {
	c.compiles++
	p, err := c.CPF.Compile(name, src)
	if err != nil {
		return nil, err
	}
	return countingProfile{p, c}, nil
}

type countingProfile struct {
	runner.Profile
	c *countingProfiles
}

func (p countingProfile) Prepare(params []dsc.ProfileParam, pins map[string]secret.Value, standIn bool) (runner.Prepared, error) {
	p.c.prepares++
	return p.Profile.Prepare(params, pins, standIn)
}

// TestRunProfileOnce: one job compiles its card profile once (the plan
// and the steps share it) and, its PINs given, prepares it once — the
// prepared profile is what runs. With a PIN from a dialog it is prepared
// twice: with stand-ins before any card I/O, then with the PIN entered.
func TestRunProfileOnce(t *testing.T) {
	r := newRig(t, "R0")
	run := demoRunner(t, r)
	cp := &countingProfiles{}
	run.Deps.Profiles = cp
	if res := run.Run(context.Background(), demoJob(t, nil), nil); res.Err != nil {
		t.Fatalf("%+v", res.Err)
	}
	if cp.compiles != 1 || cp.prepares != 1 {
		t.Errorf("one job: %d compiles, %d prepares; want 1 and 1", cp.compiles, cp.prepares)
	}
	*cp = countingProfiles{}
	j := demoJob(t, nil)
	j.Description = []byte(strings.Replace(string(j.Description), "PIN=PIN_FIELD", "PIN=!FROM_USER_DIALOG_2_FIELD", 1))
	r.engine.Prompter = promptFunc(func() (secret.Value, error) { return secret.New(testPIN), nil })
	if res := run.Run(context.Background(), j, nil); res.Err != nil {
		t.Fatalf("%+v", res.Err)
	}
	if cp.compiles != 1 || cp.prepares != 2 {
		t.Errorf("dialog PIN: %d compiles, %d prepares; want 1 and 2", cp.compiles, cp.prepares)
	}
}
