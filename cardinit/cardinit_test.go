package cardinit_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/cardinit"
	"github.com/cardwright/cardwright/check"
	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/runnertest"
	"github.com/cardwright/cardwright/secret"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

const demo = "../testdata/demo/demo.dsc"

func open(t *testing.T, path string) *cardinit.Doc {
	t.Helper()
	d, err := cardinit.Open(path, check.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestOpenDemoForm(t *testing.T) {
	d := open(t, demo)
	if !d.Runnable() {
		t.Fatalf("demo does not run: %v", d.Diags)
	}
	var got []string
	for _, f := range d.Form {
		got = append(got, f.Name+":"+[]string{"text", "secret", "param", "bool", "number", "data"}[f.Kind])
	}
	want := []string{"PIN_FIELD:secret", "PUK_FIELD:secret", "HOLDER:param", "CARD_SERIAL:text", "TOKEN_LABEL:text"}
	if !slices.Equal(got, want) {
		t.Errorf("form = %v, want %v", got, want)
	}
	if !slices.Equal(d.Outputs, []string{"ICCSN"}) {
		t.Errorf("outputs = %v, want [ICCSN]", d.Outputs)
	}
	if u := d.Form[0].UsedBy(); u != "PIN, ClearFields" {
		t.Errorf("PIN_FIELD used by %q", u)
	}
}

// A broken description: errors with positions, the line of each, not runnable.
func TestOpenBroken(t *testing.T) {
	dir := t.TempDir()
	dsc := "[Fields]\nPIN_F=\n\n[Description]\nChipProfile=p.cpf\nPIN=PIN_FEILD\n"
	cpf := "CardModel 'ISO7816'\nCreatePin PIN1 value=SEC_PIN1 retries=3 nonsense=1\n"
	os.WriteFile(filepath.Join(dir, "b.dsc"), []byte(dsc), 0o644)
	os.WriteFile(filepath.Join(dir, "p.cpf"), []byte(cpf), 0o644)
	d := open(t, filepath.Join(dir, "b.dsc"))
	if d.Runnable() {
		t.Fatal("a broken description is runnable")
	}
	var inDSC, inCPF bool
	for _, e := range d.Diags.Errors() {
		line, ok := d.Line(e.Pos)
		if !ok {
			t.Errorf("no line for %s", e)
			continue
		}
		switch {
		case strings.HasSuffix(e.Pos.File, "b.dsc"):
			inDSC = inDSC || line == "PIN=PIN_FEILD"
		case strings.HasSuffix(e.Pos.File, "p.cpf"):
			inCPF = inCPF || strings.Contains(line, "nonsense")
		}
	}
	if !inDSC || !inCPF {
		t.Errorf("want errors at the description's and the profile's lines: %v", d.Diags)
	}
	if _, err := cardinit.Open(filepath.Join(dir, "p.cpf"), check.Options{}); err == nil {
		t.Error("opening a .cpf as a description is not refused")
	}
	if _, err := cardinit.Open(filepath.Join(dir, "none.dsc"), check.Options{}); err == nil {
		t.Error("a missing file opens")
	}
}

func TestJobValues(t *testing.T) {
	dir := t.TempDir()
	src := "[Fields]\nN=\nP=\nQ=\nB=#true\nD=\nPW=\n\n[Description]\nChipProfile=p.cpf\nProfileParameters=P, Q\nDeleteProfile=B\n\n[Application_A]\nKeySize=N\nCertificate=D\nP12PASSWORD=PW\n"
	os.WriteFile(filepath.Join(dir, "j.dsc"), []byte(src), 0o644)
	os.WriteFile(filepath.Join(dir, "p.cpf"), []byte("CardModel 'ISO7816'\n"), 0o644)
	d := open(t, filepath.Join(dir, "j.dsc"))
	kinds := map[string]cardinit.Kind{}
	for _, f := range d.Form {
		kinds[f.Name] = f.Kind
	}
	for n, k := range map[string]cardinit.Kind{"N": cardinit.Number, "P": cardinit.Param, "B": cardinit.Bool, "D": cardinit.Data, "PW": cardinit.Secret} {
		if kinds[n] != k {
			t.Errorf("%s: kind %d, want %d", n, kinds[n], k)
		}
	}
	job, errs := d.Job(map[string]cardinit.Input{
		"N": {Text: "2048"}, "P": {Text: "Ada Lovelace"}, "Q": {Text: "QUJD", Raw: true},
		"B": {Text: "false"}, "PW": {Secret: secret.New("pw")},
	}, "R0")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := job.Fields["P"].Reveal(); got != base64.StdEncoding.EncodeToString([]byte("Ada Lovelace")) {
		t.Errorf("P = %q, want the text base64-encoded", got)
	}
	if job.Fields["Q"].Reveal() != "QUJD" || job.Fields["N"].Reveal() != "2048" || job.Fields["B"].Reveal() != "false" || job.Fields["PW"].Reveal() != "pw" {
		t.Errorf("fields not passed as typed: %v", job.Fields)
	}
	if _, ok := job.Fields["D"]; ok {
		t.Error("an empty input is sent instead of the default")
	}
	if job.Reader != "R0" || string(job.Description) != src || job.Files == nil {
		t.Error("the job does not carry the description, its files and the reader")
	}
	_, errs = d.Job(map[string]cardinit.Input{"N": {Text: "abc"}, "Q": {Text: "!!", Raw: true}, "D": {Text: "@@"}}, "")
	var bad []string
	for _, e := range errs {
		bad = append(bad, e.Field)
	}
	slices.Sort(bad)
	if !slices.Equal(bad, []string{"D", "N", "Q"}) {
		t.Errorf("refused fields = %v (%v), want D N Q", bad, errs)
	}
}

func testEngine(t *testing.T, p prompt.Prompter) (*cardinit.Engine, *memcard.Card, *runnertest.FakeTokens) {
	card := memcard.New(memcard.Config{})
	tokens := &runnertest.FakeTokens{StandIn: true}
	r := &runner.Runner{
		Engine: &runner.Engine{Readers: runnertest.NewMemReaders(map[string]*memcard.Card{"R0": card}), Prompter: p},
		Deps:   runner.Deps{Tokens: tokens, Profiles: runner.CPF{}},
	}
	return &cardinit.Engine{Runner: r}, card, tokens
}

func demoInputs() map[string]cardinit.Input {
	return map[string]cardinit.Input{
		"PIN_FIELD": {Secret: secret.New("472913")}, "PUK_FIELD": {Secret: secret.New("83920174")},
		"HOLDER": {Text: "Ada"}, "CARD_SERIAL": {Text: "CW-0042"}, "TOKEN_LABEL": {Text: "cardwright demo 1"},
	}
}

// Validation is the runner's, before card I/O, and lands at its field.
func TestValidateAtField(t *testing.T) {
	d := open(t, demo)
	e, card, tokens := testEngine(t, nil)
	in := demoInputs()
	in["PIN_FIELD"] = cardinit.Input{Secret: secret.New("12")} // demo.cpf: minlen=4
	job, errs := d.Job(in, "R0")
	if errs != nil {
		t.Fatal(errs)
	}
	je := e.Validate(job, nil)
	if je == nil {
		t.Fatal("a 2-digit PIN passes validation")
	}
	if f := d.FieldOf(je); f != "PIN_FIELD" {
		t.Errorf("failure %+v is shown at %q, want PIN_FIELD", je, f)
	}
	if len(card.Transcript()) != 0 || len(tokens.Calls()) != 0 {
		t.Error("validation touched the card or the token")
	}
	job, _ = d.Job(demoInputs(), "R0")
	if je := e.Validate(job, nil); je != nil {
		t.Errorf("demo values refused: %+v", je)
	}
}

func TestDryRunTouchesNothing(t *testing.T) {
	d := open(t, demo)
	e, card, tokens := testEngine(t, nil)
	job, _ := d.Job(demoInputs(), "")
	res := e.DryRun(context.Background(), job, nil)
	if res.Err != nil {
		t.Fatalf("dry run: %+v", res.Err)
	}
	if len(res.Transcript) == 0 {
		t.Fatal("no transcript")
	}
	all := strings.ToUpper(strings.Join(res.Transcript, "\n"))
	for _, s := range []string{"472913", "83920174", "343732393133", "3833393230313734"} {
		if strings.Contains(all, s) {
			t.Errorf("transcript holds the secret %s", s)
		}
	}
	if len(card.Transcript()) != 0 || len(tokens.Calls()) != 0 {
		t.Error("a dry run touched the reader's card or the token")
	}
}

// A run without a local issuer asks the officer for each certificate; the
// officer's PEM answers it.
func TestRunOfficerAnswers(t *testing.T) {
	d := open(t, demo)
	e, _, tokens := testEngine(t, nil)
	ca, err := issuer.OpenLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	officer := func(ctx context.Context, req issuer.Request) (cardinit.Issued, error) {
		asked = append(asked, req.Application)
		b, _ := pem.Decode(cardinit.RequestPEM(req))
		if b == nil || b.Type != "CERTIFICATE REQUEST" {
			t.Errorf("request PEM: %v", b)
		}
		der, _, err := ca.Issue(ctx, issuer.Request{CSR: b.Bytes})
		if err != nil {
			return cardinit.Issued{}, err
		}
		return cardinit.Issued{Data: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
	}
	job, _ := d.Job(demoInputs(), "R0")
	res := e.Run(context.Background(), job, officer, nil)
	if res.Err != nil {
		t.Fatalf("run: %+v", res.Err)
	}
	if !slices.Equal(asked, []string{"A", "B"}) {
		t.Errorf("officer asked for %v, want A then B", asked)
	}
	if res.Fields["ICCSN"] == "" {
		t.Error("no ICCSN")
	}
	if n := len(tokens.Token("R0", runner.LocationDefault).Certificates()); n != 2 {
		t.Errorf("%d certificates on the token, want 2", n)
	}
}

func TestParseIssued(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cert, _ := x509.ParseCertificate(der)
	p12, err := pkcs12.Modern.Encode(key, cert, nil, "pw")
	if err != nil {
		t.Fatal(err)
	}
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for name, c := range map[string]struct {
		data []byte
		pw   string
	}{"pem": {pemCert, ""}, "der": {der, ""}, "pkcs12": {p12, "pw"}, "pem with chain": {append(pemCert, pemCert...), ""}} {
		got, _, err := cardinit.ParseIssued(c.data, secret.New(c.pw))
		if err != nil || string(got) != string(der) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, err := cardinit.ParseIssued(p12, secret.New("wrong")); err == nil {
		t.Error("a PKCS#12 with the wrong password is read")
	}
	if _, _, err := cardinit.ParseIssued([]byte("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"), secret.Value{}); err == nil {
		t.Error("a PEM without a certificate is read")
	}
}

func TestRecent(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sub", "recent.json")
	r := cardinit.LoadRecent(file)
	for i := range cardinit.MaxRecent + 2 {
		if err := r.Add(filepath.Join("/d", string(rune('a'+i))+".dsc")); err != nil {
			t.Fatal(err)
		}
	}
	r.Add("/d/c.dsc")
	got := cardinit.LoadRecent(file).Paths
	if len(got) != cardinit.MaxRecent || got[0] != "/d/c.dsc" || got[1] != "/d/l.dsc" || slices.Index(got[1:], "/d/c.dsc") >= 0 {
		t.Errorf("recent = %v", got)
	}
	if r := cardinit.LoadRecent(filepath.Join(t.TempDir(), "none")); len(r.Paths) != 0 {
		t.Error("a missing file is not an empty list")
	}
}
