package main

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/pcsc"
	"github.com/cardwright/cardwright/secret"
)

// cardState is what plain APDUs over PC/SC find on the own card, independent
// of the runner and of package cpf.
type cardState struct {
	MF     bool   // SELECT 3F00 answers 9000
	Holder string // EF 5015/5032 up to its first zero byte; "" when absent
	PIN    uint16 // status word of VERIFY 81 without data (63Cx: set, not verified)
	PUK    uint16 // the same for the PUK, reference 84
	Serial string // GET DATA 005A, hex
}

func readCardState(t *testing.T, reader string) cardState {
	t.Helper()
	pc, err := pcsc.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	k, err := pc.Connect(reader, pcsc.Shared)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	sw := func(cmd iso7816.Command) iso7816.Response {
		r, err := iso7816.Exchange(k, cmd, iso7816.Limits{})
		if err != nil {
			t.Fatalf("reading the card in %q: %v", reader, err)
		}
		return r
	}
	var st cardState
	st.MF = sw(iso7816.SelectMF()).SW == 0x9000
	if sw(iso7816.SelectPath(true, 0x5015, 0x5032)).SW == 0x9000 {
		rb, _ := iso7816.ReadBinary(0, 64)
		if r := sw(rb); r.SW == 0x9000 {
			st.Holder, _, _ = strings.Cut(string(r.Data), "\x00")
		}
	}
	st.PIN = sw(iso7816.VerifyStatus(0x81)).SW
	st.PUK = sw(iso7816.VerifyStatus(0x84)).SW
	st.Serial = strings.ToUpper(hex.EncodeToString(sw(iso7816.GetData(0x005A, 256)).Data))
	return st
}

// tokenState is what a separate process finds on a SoftHSM2 token through
// package p11: the user PIN and the SO credential (the PUK) are tried, the
// certificates listed with their key link, subject serial number and chain.
type tokenState struct {
	Label       string
	Initialized bool
	UserLogin   string // "" = the PIN logs in, else the error
	SOLogin     string // "" = the PUK logs in as SO, else the error
	Objects     int    // objects seen as the user
	CMSSerial   string // the CMSCardSerialNumber data object
	Certs       []certState
	Error       string
}

type certState struct {
	CN, Serial      string // subject CN and serialNumber
	Linked, Chained bool   // private key of the same CKA_ID; issued by the CA
}

// TestEncodeTokenStateHelper is the child process of readTokenState.
func TestEncodeTokenStateHelper(t *testing.T) {
	if os.Getenv("CARDWRIGHT_TOKEN_STATE_CHILD") == "" {
		t.Skip("helper process for the encode stack tests")
	}
	args := os.Args[slices.Index(os.Args, "--")+1:]
	st := tokenStateOf(args[0], args[1], secret.New(os.Getenv("DEMO_PIN")), secret.New(os.Getenv("DEMO_PUK")))
	json.NewEncoder(os.Stdout).Encode(st)
	os.Exit(0)
}

func tokenStateOf(caDir, label string, pin, puk secret.Value) (st tokenState) {
	fail := func(err error) tokenState { st.Error = err.Error(); return st }
	m, err := p11.Load(os.Getenv("SOFTHSM_MODULE"), p11.Trusted)
	if err != nil {
		return fail(err)
	}
	tok, err := m.FindToken(label)
	if err != nil {
		return fail(err)
	}
	st.Label, st.Initialized = tok.Info().Label, tok.Info().Initialized()
	s, err := tok.Open()
	if err != nil {
		return fail(err)
	}
	defer s.Close()
	if err := s.LoginSO(puk); err != nil {
		st.SOLogin = err.Error()
	} else {
		s.Logout()
	}
	if err := s.Login(pin); err != nil {
		st.UserLogin = err.Error()
		return st
	}
	ca, err := issuer.OpenLocalCA(caDir)
	if err != nil {
		return fail(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	objs, err := s.Find(nil)
	if err != nil {
		return fail(err)
	}
	st.Objects = len(objs)
	if v, err := s.ReadCardSerial(); err == nil {
		st.CMSSerial = string(v)
	}
	certs, err := s.Certificates()
	if err != nil {
		return fail(err)
	}
	for _, c := range certs {
		_, verr := c.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		st.Certs = append(st.Certs, certState{CN: c.Cert.Subject.CommonName, Serial: c.Cert.Subject.SerialNumber,
			Linked: c.HasKey, Chained: verr == nil})
	}
	slices.SortFunc(st.Certs, func(a, b certState) int { return strings.Compare(a.CN, b.CN) })
	return st
}

// readTokenState reads the token label of the test's SoftHSM2 directory in a
// child process (SoftHSM2 reads its configuration once per process).
func (e *stackEnv) readTokenState(label string) tokenState {
	e.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestEncodeTokenStateHelper$", "--", e.ca, label)
	cmd.Env = append(os.Environ(), "CARDWRIGHT_TOKEN_STATE_CHILD=1", "SOFTHSM2_CONF="+e.conf,
		"SOFTHSM_MODULE="+e.module, "DEMO_PIN="+demoPIN, "DEMO_PUK="+demoPUK)
	out, err := cmd.Output()
	var st tokenState
	if jerr := json.Unmarshal(out, &st); jerr != nil {
		e.t.Fatalf("token state: %v %v: %s", err, jerr, out)
	}
	return st
}

// wantDemoState checks card and token as the demo job leaves them.
func wantDemoState(t *testing.T, e *stackEnv, reader, label, serial string) (cardState, tokenState) {
	t.Helper()
	c := readCardState(t, reader)
	if !c.MF || c.Holder != "Erika Mustermann" || c.PIN != 0x63C3 || c.PUK != 0x63C5 || c.Serial != serial {
		t.Errorf("card in %q: %+v; want the holder file, PIN 81 with 3 tries, PUK 84 with 5, serial %s", reader, c, serial)
	}
	tk := e.readTokenState(label)
	want := []certState{{"DigitalSignature", "CW-0001", true, true}, {"Encryption", "CW-0001", true, true}}
	if tk.Error != "" || !tk.Initialized || tk.Label != label || tk.UserLogin != "" || tk.SOLogin != "" ||
		!slices.Equal(tk.Certs, want) || tk.Objects != 6 {
		t.Errorf("token %q: %+v; want the job's PIN and PUK, 6 objects, certificates %+v", label, tk, want)
	}
	return c, tk
}

// TestEncodeRefusedOnStack: on a card the demo job has personalized, jobs
// that validation refuses — a field that is not base64, a module not on the
// allow-list, decrypted PINs into a plain field, key generation without an
// issuer — end with their code in step "validate", run no step, and leave
// card and token exactly as they were (the demo description erases first:
// any card or token I/O would have shown). A refused PIN dialog, asked
// before the erase, leaves them unchanged too.
func TestEncodeRefusedOnStack(t *testing.T) {
	e := newStackEnv(t)
	reader, serial := e.own[0], e.s.Get(t, "SERIAL_OWN_1")
	code, stdout, stderr := e.encode("", demoArgs(e.cfg, "--reader", reader, "--issuer-ca", e.ca, "--json")...)
	if code != 0 {
		t.Fatalf("demo job: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var res encodeResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Fields["ICCSN"] != serial {
		t.Fatalf("demo job: ICCSN %q, want %q (%v)", res.Fields["ICCSN"], serial, err)
	}
	card0, tok0 := wantDemoState(t, e, reader, "cardwright demo 1", serial)

	other := writeTestFile(t, e.dir, "other.cfg", "[pkcs11]\nmodule = /usr/lib/other/libother.so\n")
	var fields, outs strings.Builder
	for _, n := range []string{"PIN1", "PUK"} {
		fields.WriteString("Decrypted_" + n + "=\n")
		outs.WriteString("CardPinDecryption_Output_" + n + "=Decrypted_" + n + "\n")
	}
	plain := writeTestFile(t, e.dir, "plain.dsc", "[Encoding]\nType=1024,Chip\nDevices=8711\n\n[Fields]\n"+fields.String()+
		"\n[Description]\nPKCS11LibraryLinux="+e.module+"\n"+outs.String())
	for _, tc := range []struct {
		name string
		args []string
		code api.Code
	}{
		{"field not base64", demoArgs(e.cfg, "--field", "HOLDER=not*base64", "--issuer-ca", e.ca), api.CodeInvalidField},
		{"module not on the allow-list", demoArgs(other, "--issuer-ca", e.ca), api.CodeModuleNotAllowed},
		{"decrypted PINs into a plain field", []string{"--dsc", plain, "--config", e.cfg, "--secret-field", "Decrypted_PIN1"}, api.CodeSecretOutput},
		{"key pairs without an issuer", demoArgs(e.cfg), api.CodeConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := e.encode("", append(tc.args, "--reader", reader, "--json")...)
			je := jobError(t, stdout)
			if code != exitFailure || je == nil || je.Code != tc.code || je.Step != "validate" {
				t.Fatalf("exit %d, error %+v; want %s in validate\n%s", code, je, tc.code, stderr)
			}
			if strings.Contains(stderr, "[1/") {
				t.Errorf("a step ran:\n%s", stderr)
			}
			noPINs(t, stdout, stderr)
		})
	}
	if c := readCardState(t, reader); c != card0 {
		t.Errorf("the card changed after the refused jobs: %+v, was %+v", c, card0)
	}
	if tk := e.readTokenState("cardwright demo 1"); !slices.Equal(tk.Certs, tok0.Certs) || tk.Objects != tok0.Objects {
		t.Errorf("the token changed after the refused jobs: %+v, was %+v", tk, tok0)
	}

	// A refused PIN dialog: the PINs the card is set up with are asked for
	// before DeleteProfile erases anything.
	dsc := dialogDemo(t, e.dir)
	args := demoArgs(e.cfg, "--reader", reader, "--issuer-ca", e.ca, "--json")
	args[1] = dsc
	code, stdout, stderr = e.encode("", args...)
	je := jobError(t, stdout)
	if code != exitFailure || je == nil || je.Code != api.CodePromptRefused || je.Step != "DeleteProfile" || strings.Contains(je.Message, "done before") {
		t.Fatalf("prompt refused: exit %d, %+v; want prompt_refused in DeleteProfile, nothing done\n%s", code, je, stderr)
	}
	if c := readCardState(t, reader); c != card0 {
		t.Errorf("the card changed after the refused dialog: %+v, was %+v", c, card0)
	}
	if tk := e.readTokenState("cardwright demo 1"); !slices.Equal(tk.Certs, tok0.Certs) || tk.Objects != tok0.Objects {
		t.Errorf("the token changed after the refused dialog: %+v, was %+v", tk, tok0)
	}
	noPINs(t, stdout, stderr)
}

// TestEncodeTwoJobsTwoReadersOnStack: two `cardwright encode` processes
// at once, one per own-card reader (the runner's parallel jobs across
// readers within one process are TestEncodeTwoReadersOnStack); both cards
// and both tokens are read back.
func TestEncodeTwoJobsTwoReadersOnStack(t *testing.T) {
	e := newStackEnv(t)
	type out struct {
		code           int
		stdout, stderr string
	}
	outs := make([]out, 2)
	cmds := make([]*exec.Cmd, 2)
	bufs := make([][2]bytes.Buffer, 2)
	for i, reader := range e.own {
		a := demoArgs(e.cfg, "--reader", reader, "--issuer-ca", e.ca, "--json")
		if a[13] != "TOKEN_LABEL=cardwright demo 1" {
			t.Fatalf("demoArgs changed: %q", a)
		}
		a[13] = fmt.Sprint("TOKEN_LABEL=cardwright demo ", i+1)
		cmds[i] = e.child("cli", "", nil, append([]string{"encode"}, a...)...)
		cmds[i].Stdout, cmds[i].Stderr = &bufs[i][0], &bufs[i][1]
	}
	// Both CLIs create the CA directory: make it first.
	if _, err := issuer.OpenLocalCA(e.ca); err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		err := c.Wait()
		outs[i] = out{c.ProcessState.ExitCode(), bufs[i][0].String(), bufs[i][1].String()}
		if err != nil || outs[i].code != 0 {
			t.Errorf("job on %s: exit %d %v\n%s\n%s", e.own[i], outs[i].code, err, outs[i].stdout, outs[i].stderr)
		}
		noPINs(t, outs[i].stdout, outs[i].stderr)
	}
	if t.Failed() {
		return
	}
	for i, reader := range e.own {
		wantDemoState(t, e, reader, fmt.Sprint("cardwright demo ", i+1), e.s.Get(t, fmt.Sprintf("SERIAL_OWN_%d", i+1)))
	}
}
