package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/pcsc"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/iotime"
	"github.com/cardwright/cardwright/runner/pcscreaders"
	"github.com/cardwright/cardwright/secret"
)

// The demo job's PINs; no output may contain them.
const (
	demoPIN = "472913"
	demoPUK = "83920174"
)

var demoDir = filepath.Join("..", "..", "testdata", "demo")

func encodeIn(t *testing.T, stdin string, getenv map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cmdEnv{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb,
		getenv: func(k string) string { return getenv[k] }}
	code := runMain(context.Background(), env, append([]string{"encode"}, args...))
	return code, out.String(), errb.String()
}

func demoArgs(cfg string, extra ...string) []string {
	return append([]string{"--dsc", filepath.Join(demoDir, "demo.dsc"), "--config", cfg,
		"--field-env", "PIN_FIELD=DEMO_PIN", "--field-env", "PUK_FIELD=DEMO_PUK",
		"--field", "HOLDER=RXJpa2EgTXVzdGVybWFubg==", "--field", "CARD_SERIAL=CW-0001",
		"--field", "TOKEN_LABEL=cardwright demo 1"}, extra...)
}

var demoEnv = map[string]string{"DEMO_PIN": demoPIN, "DEMO_PUK": demoPUK}

func writeTestFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func noPINs(t *testing.T, outputs ...string) {
	t.Helper()
	for _, o := range outputs {
		for _, pin := range []string{demoPIN, demoPUK} {
			if strings.Contains(o, pin) {
				t.Errorf("a PIN leaked into the output:\n%s", o)
			}
		}
	}
}

func TestEncodeUsage(t *testing.T) {
	cfg := filepath.Join(demoDir, "cardwright.cfg")
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no description", nil, exitUsage, "exactly one of --dsc and --dsz"},
		{"both", []string{"--dsc", "a", "--dsz", "b"}, exitUsage, "exactly one"},
		{"bad field", []string{"--dsc", "a", "--field", "NOEQUALS"}, exitUsage, "want NAME=VALUE"},
		{"bad field-env", []string{"--dsc", "a", "--field-env", "X"}, exitUsage, "want NAME=VAR"},
		{"extra args", []string{"--dsc", "a", "extra"}, exitUsage, "unexpected arguments"},
		{"unknown flag", []string{"--nope"}, exitUsage, "flag provided but not defined"},
		{"missing file", []string{"--dsc", "/nonexistent.dsc", "--config", cfg}, exitFailure, "no such file"},
		{"bad config", []string{"--dsc", filepath.Join(demoDir, "demo.dsc"), "--config", "/nonexistent.cfg"}, exitFailure, "configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := encodeIn(t, "", nil, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.msg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.msg)
			}
		})
	}
}

// TestEncodeValidation: jobs that cannot run fail with their code before
// PC/SC or PKCS#11 is touched (no stack needed: the PC/SC context is only
// established by the first card step).
func TestEncodeValidation(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(demoDir, "cardwright.cfg")
	other := writeTestFile(t, dir, "other.cfg", "[pkcs11]\nmodule = /usr/lib/other/libother.so\n")
	ca := filepath.Join(dir, "ca")
	for _, tc := range []struct {
		name string
		args []string
		code api.Code
	}{
		{"field not base64", demoArgs(good, "--field", "HOLDER=not*base64", "--issuer-ca", ca), api.CodeInvalidField},
		{"module not allowed", demoArgs(other, "--issuer-ca", ca), api.CodeModuleNotAllowed},
		{"no issuer for the key pairs", demoArgs(good), api.CodeConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := encodeIn(t, "", demoEnv, append(tc.args, "--json")...)
			var res encodeResult
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatalf("result is not JSON: %v\n%s", err, stdout)
			}
			if code != exitFailure || res.Error == nil || res.Error.Code != tc.code || res.Error.Step != "validate" {
				t.Fatalf("exit %d, error %+v; want %s", code, res.Error, tc.code)
			}
			if strings.Contains(stderr, "[1/") {
				t.Errorf("a step ran: %s", stderr)
			}
			noPINs(t, stdout, stderr)
		})
	}
}

// The stack tests run cardwright in a child process (this test binary
// re-executed): SoftHSM2 reads SOFTHSM2_CONF once per process, and each test
// wants its own token directory.
func TestEncodeHelperProcess(t *testing.T) {
	mode := os.Getenv("CARDWRIGHT_ENCODE_CHILD")
	if mode == "" {
		t.Skip("helper process for the encode stack tests")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	switch mode {
	case "cli":
		os.Exit(runMain(context.Background(), &cmdEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, args))
	case "readback":
		os.Exit(readBack(args))
	case "parallel":
		os.Exit(parallelJobs(args))
	}
	os.Exit(3)
}

// tokenReport is what the readback child finds on a token.
type tokenReport struct {
	Label       string
	Initialized bool
	UserPIN     bool
	Certs       []string // subject CN
	Linked      int      // certificates with a private key of the same CKA_ID
	Chained     int      // certificates that verify against the CA
	Error       string
}

// readBack loads SoftHSM2 with the child's SOFTHSM2_CONF and reports the
// token args[1] (label) after logging in with args[2] (PIN); args[0] is the
// CA directory.
func readBack(args []string) int {
	rep := tokenReport{}
	defer func() { json.NewEncoder(os.Stdout).Encode(rep) }()
	m, err := p11.Load(os.Getenv("SOFTHSM_MODULE"), p11.Trusted)
	if err != nil {
		rep.Error = err.Error()
		return 1
	}
	tok, err := m.FindToken(args[1])
	if err != nil {
		rep.Error = err.Error()
		return 1
	}
	ti := tok.Info()
	rep.Label, rep.Initialized, rep.UserPIN = ti.Label, ti.Initialized(), ti.UserPINInitialized()
	s, err := tok.Open()
	if err != nil {
		rep.Error = err.Error()
		return 1
	}
	defer s.Close()
	if err := s.Login(secret.New(args[2])); err != nil {
		rep.Error = err.Error()
		return 1
	}
	ca, err := issuer.OpenLocalCA(args[0])
	if err != nil {
		rep.Error = err.Error()
		return 1
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	certs, err := s.Certificates()
	if err != nil {
		rep.Error = err.Error()
		return 1
	}
	for _, c := range certs {
		rep.Certs = append(rep.Certs, c.Cert.Subject.CommonName)
		if k, err := s.FindKey(c.ID, ""); err == nil && k != nil {
			rep.Linked++
		}
		if _, err := c.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
			rep.Chained++
		}
	}
	return 0
}

// parallelJobs runs the demo job on every reader in args[2:] at once, in one
// process (the runner's per-reader parallelism over the real adapters);
// args[0] is the configuration, args[1] the CA directory.
func parallelJobs(args []string) int {
	cfg, err := config.Load(args[0])
	if err != nil {
		fmt.Println(err)
		return 1
	}
	clock := &iotime.Clock{}
	deps, err := runnerDeps(cfg, clock)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	ca, err := issuer.OpenLocalCA(args[1])
	if err != nil {
		fmt.Println(err)
		return 1
	}
	deps.Issuer = ca
	readers := pcscreaders.New(clock)
	defer readers.Close()
	r := &runner.Runner{Engine: &runner.Engine{Readers: readers}, Deps: deps}
	src, err := os.ReadFile(filepath.Join(demoDir, "demo.dsc"))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	rounds := 1
	fmt.Sscan(os.Getenv("CARDWRIGHT_ENCODE_ROUNDS"), &rounds)
	results := make([]runner.Result, len(args)-2)
	var wg sync.WaitGroup
	start := time.Now()
	for i, reader := range args[2:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fields := map[string]secret.Value{"PIN_FIELD": secret.New(demoPIN), "PUK_FIELD": secret.New(demoPUK),
				"HOLDER": secret.New("SG9sZGVy"), "CARD_SERIAL": secret.New(fmt.Sprint("CW-", i)),
				"TOKEN_LABEL": secret.New(fmt.Sprint("cardwright demo ", i+1))}
			for range rounds {
				results[i] = r.Run(context.Background(), &runner.Job{Name: "demo.dsc", Description: src,
					Files: os.DirFS(demoDir), Fields: fields, Reader: reader}, nil)
				if results[i].Err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if os.Getenv("CARDWRIGHT_ENCODE_ROUNDS") != "" {
		fmt.Fprintf(os.Stderr, "elapsed-ms %f\n", float64(time.Since(start))/1e6)
	}
	json.NewEncoder(os.Stdout).Encode(results)
	return 0
}

// stackEnv prepares a SoftHSM2 token directory and a configuration that
// maps the own-card readers to tokens.
type stackEnv struct {
	t      testing.TB
	s      *stacktest.Stack
	dir    string
	conf   string // SOFTHSM2_CONF
	cfg    string // cardwright.cfg
	ca     string
	module string
	own    [2]string
	served *exec.Cmd // the last `cardwright serve` child started by serve
	slow   func()    // stops the slow card slowCard started (pace_stack_test.go)
}

func newStackEnv(t *testing.T) *stackEnv {
	e := newTokenStackEnv(t) // cmsserial_stack_test.go
	for _, r := range e.own {
		freshOwnCard(t, e.s, r)
	}
	return e
}

// freshOwnCard puts a virgin card into reader (the emulator keeps its card in
// memory: restarting it inserts a new one) and waits until it answers.
func freshOwnCard(t testing.TB, s *stacktest.Stack, reader string) {
	t.Helper()
	for _, op := range []string{"card-stop", "card-start"} {
		if out, err := exec.Command(filepath.Join(s.Root, "scripts", "teststack"), op, reader).CombinedOutput(); err != nil {
			t.Fatalf("teststack %s %q: %v\n%s", op, reader, err, out)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := func() error {
			pc, err := pcsc.Open()
			if err != nil {
				return err
			}
			defer pc.Close()
			k, err := pc.Connect(reader, pcsc.Shared)
			if err != nil {
				return err
			}
			defer k.Close()
			_, err = k.Transmit([]byte{0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00})
			return err
		}()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fresh card in %q does not answer: %v", reader, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func regexpQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, ".", `\.`, "(", `\(`, ")", `\)`, "[", `\[`, "]", `\]`, "*", `\*`, "+", `\+`, "?", `\?`)
	return r.Replace(s)
}

// child runs this test binary in a mode with the test's SoftHSM2 tokens.
func (e *stackEnv) child(mode, stdin string, extraEnv []string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestEncodeHelperProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "CARDWRIGHT_ENCODE_CHILD="+mode, "SOFTHSM2_CONF="+e.conf,
		"SOFTHSM_MODULE="+e.module, "DEMO_PIN="+demoPIN, "DEMO_PUK="+demoPUK,
		"XDG_STATE_HOME="+filepath.Join(e.dir, "state")) // learned timings (pace.json) stay with the test
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	return cmd
}

func (e *stackEnv) encode(stdin string, args ...string) (int, string, string) {
	cmd := e.child("cli", stdin, nil, append([]string{"encode"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func (e *stackEnv) readBack(label, pin string) tokenReport {
	out, err := e.child("readback", "", nil, e.ca, label, pin).Output()
	var rep tokenReport
	if jerr := json.Unmarshal(out, &rep); jerr != nil {
		e.t.Fatalf("readback: %v %v: %s", err, jerr, out)
	}
	return rep
}

// readCard checks the card over PC/SC with plain APDUs: the holder file the
// profile wrote and the PIN the job set.
func readCard(t *testing.T, reader, wantHolder, pin string) {
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
	if _, err := iso7816.Send(k, iso7816.SelectPath(true, 0x5015, 0x5032)); err != nil {
		t.Fatalf("selecting the holder file: %v", err)
	}
	cmd, _ := iso7816.ReadBinary(0, len(wantHolder))
	if got, err := iso7816.Send(k, cmd); err != nil || string(got) != wantHolder {
		t.Errorf("holder file = %q, %v; want %q", got, err, wantHolder)
	}
	if _, err := iso7816.Send(k, iso7816.Verify(0x81, []byte(pin))); err != nil {
		t.Errorf("verifying the job's PIN on the card: %v", err)
	}
}

// TestEncodeDemoOnStack runs the demo job on the own virtual card with a
// SoftHSM2 token, twice, and checks card and token independently.
func TestEncodeDemoOnStack(t *testing.T) {
	e := newStackEnv(t)
	serial := e.s.Get(t, "SERIAL_OWN_1")
	for i := range 2 {
		code, stdout, stderr := e.encode("", demoArgs(e.cfg, "--reader", e.own[0], "--issuer-ca", e.ca, "--json", "--timing")...)
		var res encodeResult
		if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 0 || res.Error != nil {
			t.Fatalf("run %d: exit %d, %v\n%s\n%s", i+1, code, err, stdout, stderr)
		}
		noPINs(t, stdout, stderr)
		if res.Fields["ICCSN"] != serial {
			t.Errorf("ICCSN = %q, want %q", res.Fields["ICCSN"], serial)
		}
		if _, ok := res.Fields["PIN_FIELD"]; ok {
			t.Error("a cleared field came back")
		}
		if res.Timing == nil || res.Timing.APDUs == 0 || res.Timing.Calls == 0 {
			t.Errorf("timing %+v", res.Timing)
		}
	}
	readCard(t, e.own[0], "Erika Mustermann", demoPIN)
	rep := e.readBack("cardwright demo 1", demoPIN)
	if rep.Error != "" || !rep.Initialized || !rep.UserPIN || rep.Label != "cardwright demo 1" {
		t.Fatalf("token: %+v", rep)
	}
	if len(rep.Certs) != 2 || rep.Linked != 2 || rep.Chained != 2 {
		t.Errorf("token certificates: %+v (want 2, linked to their keys, issued by the CA)", rep)
	}
}

// TestEncodeTwoReadersOnStack runs two demo jobs at once, one per own-card
// reader, in one process.
func TestEncodeTwoReadersOnStack(t *testing.T) {
	e := newStackEnv(t)
	out, err := e.child("parallel", "", nil, append([]string{e.cfg, e.ca}, e.own[:]...)...).Output()
	var res []runner.Result
	if jerr := json.Unmarshal(out, &res); jerr != nil || len(res) != 2 {
		t.Fatalf("%v %v: %s", err, jerr, out)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Errorf("job on %s: %+v", e.own[i], r.Err)
			continue
		}
		if want := e.s.Get(t, fmt.Sprintf("SERIAL_OWN_%d", i+1)); r.Fields["ICCSN"] != want {
			t.Errorf("job on %s: ICCSN %q, want %q", e.own[i], r.Fields["ICCSN"], want)
		}
		rep := e.readBack(fmt.Sprint("cardwright demo ", i+1), demoPIN)
		if rep.Error != "" || len(rep.Certs) != 2 || rep.Linked != 2 {
			t.Errorf("token %d: %+v", i+1, rep)
		}
	}
	noPINs(t, string(out))
}

// dialogDemo is the demo description with the PIN from a local dialog.
func dialogDemo(t *testing.T, dir string) string {
	src, err := os.ReadFile(filepath.Join(demoDir, "demo.dsc"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(src), "PIN=PIN_FIELD", "PIN=!FROM_USER_DIALOG_2_FIELD", 1)
	cpf, err := os.ReadFile(filepath.Join(demoDir, "demo.cpf"))
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, dir, "demo.cpf", string(cpf))
	return writeTestFile(t, dir, "dialog.dsc", s)
}

func jobError(t *testing.T, stdout string) *api.JobError {
	t.Helper()
	var res encodeResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("result is not JSON: %v\n%s", err, stdout)
	}
	return res.Error
}

// TestEncodeFailuresOnStack: a refused prompt, a card pulled while the PIN
// dialog is open, a wrong PIN — each ends with its code.
func TestEncodeFailuresOnStack(t *testing.T) {
	e := newStackEnv(t)
	dsc := dialogDemo(t, e.dir)
	args := func(extra ...string) []string {
		a := demoArgs(e.cfg, "--reader", e.own[0], "--issuer-ca", e.ca, "--json")
		a[1] = dsc
		return append(a, extra...)
	}

	t.Run("prompt refused", func(t *testing.T) {
		code, stdout, stderr := e.encode("", args()...)
		if je := jobError(t, stdout); code != 1 || je == nil || je.Code != api.CodePromptRefused {
			t.Fatalf("exit %d: %+v\n%s", code, je, stderr)
		}
	})

	t.Run("card removed during the PIN dialog", func(t *testing.T) {
		cmd := e.child("cli", "", nil, append([]string{"encode"}, args()...)...)
		cmd.Stdin = nil
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cmd.Stdout = &out
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		var seen strings.Builder
		for !strings.Contains(seen.String(), "reading from standard input") {
			n, err := stderr.Read(buf)
			if err != nil {
				t.Fatalf("child ended before the prompt: %v: %s", err, seen.String())
			}
			seen.Write(buf[:n])
		}
		e.s.StopCard(t, e.own[0])
		fmt.Fprintln(stdin, demoPIN)
		stdin.Close()
		go func() {
			for {
				if _, err := stderr.Read(buf); err != nil {
					return
				}
			}
		}()
		cmd.Wait()
		// The dialog comes before the erase: nothing was done.
		if je := jobError(t, out.String()); je == nil || je.Code != api.CodeCardRemoved || je.Step != "DeleteProfile" || strings.Contains(je.Message, "done before") {
			t.Fatalf("error %+v, want card_removed in DeleteProfile, nothing done", je)
		}
		// StopCard's cleanup puts a fresh card back when this subtest ends.
	})

	t.Run("wrong PIN", func(t *testing.T) {
		// Personalize, then change the PIN with a wrong current PIN.
		if code, stdout, stderr := e.encode(demoPIN+"\n", args()...); code != 0 {
			t.Fatalf("demo with dialog: exit %d\n%s\n%s", code, stdout, stderr)
		}
		change := writeTestFile(t, e.dir, "change.dsc", "[Encoding]\nType=1024,Chip\n[Description]\nPKCS11LibraryLinux="+e.module+
			"\nPIN=!FROM_USER_DIALOG_3_FIELD\nSetPIN=true\n")
		code, stdout, stderr := e.encode("000000\n123456\n", "--dsc", change, "--config", e.cfg, "--reader", e.own[0], "--json")
		if je := jobError(t, stdout); code != 1 || je == nil || je.Code != api.CodePinIncorrect || je.Step != "SetPIN" {
			t.Fatalf("exit %d: %+v\n%s", code, je, stderr)
		}
		noPINs(t, stdout, stderr)
		// The right current PIN changes it.
		code, stdout, stderr = e.encode(demoPIN+"\n123456\n", "--dsc", change, "--config", e.cfg, "--reader", e.own[0], "--json")
		if code != 0 {
			t.Fatalf("change with the right PIN: exit %d\n%s\n%s", code, stdout, stderr)
		}
		if rep := e.readBack("cardwright demo 1", "123456"); rep.Error != "" {
			t.Errorf("new PIN does not log in: %+v", rep)
		}
	})
}

// BenchmarkDemoOnStack runs the demo job on the virtual stack (own card in
// "Virtual PCD own 00 00", a SoftHSM2 token, the test CA) and splits its
// time as `cardwright encode --timing` measures it: card I/O (PC/SC
// connect, transaction, APDUs, reset), PKCS#11 (module calls, on-token key
// generation and signing), the issuer, and the rest — ours (description,
// plan, profile, requests). The process start of the child is not counted.
func BenchmarkDemoOnStack(b *testing.B) {
	s := stacktest.Require(b)
	e := &stackEnv{t: b, s: s, dir: b.TempDir(), module: s.Get(b, "SOFTHSM_MODULE"),
		own: [2]string{s.Get(b, "READER_OWN_1"), s.Get(b, "READER_OWN_2")}}
	if err := os.Mkdir(filepath.Join(e.dir, "tokens"), 0o700); err != nil {
		b.Fatal(err)
	}
	e.conf = writeTestFile(b, e.dir, "softhsm2.conf", "directories.tokendir = "+filepath.Join(e.dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n")
	e.cfg = writeTestFile(b, e.dir, "cardwright.cfg", fmt.Sprintf("[pkcs11]\nmodule = %s\n[tokens]\n%s = %s, cardwright demo 1\n",
		e.module, regexpQuote(e.own[0]), e.module))
	e.ca = filepath.Join(e.dir, "ca")
	var sum encodeTiming
	for b.Loop() {
		cmd := e.child("cli", "", nil, append([]string{"encode"}, demoArgs(e.cfg, "--reader", e.own[0], "--issuer-ca", e.ca, "--json", "--timing")...)...)
		out, err := cmd.Output()
		var res encodeResult
		if jerr := json.Unmarshal(out, &res); err != nil || jerr != nil || res.Error != nil || res.Timing == nil {
			b.Fatalf("%v %v %+v: %s", err, jerr, res.Error, out)
		}
		sum.TotalMS += res.Timing.TotalMS
		sum.CardMS += res.Timing.CardMS
		sum.TokenMS += res.Timing.TokenMS
		sum.IssuerMS += res.Timing.IssuerMS
		sum.OursMS += res.Timing.OursMS
		sum.APDUs += res.Timing.APDUs
	}
	n := float64(b.N)
	b.ReportMetric(sum.TotalMS/n, "job-ms")
	b.ReportMetric(sum.CardMS/n, "card-io-ms")
	b.ReportMetric(sum.TokenMS/n, "pkcs11-ms")
	b.ReportMetric(sum.IssuerMS/n, "issuer-ms")
	b.ReportMetric(sum.OursMS/n, "ours-ms")
	b.ReportMetric(float64(sum.APDUs)/n, "apdus")
}

// BenchmarkStackThroughput runs demo jobs on one and on both own-card readers
// of the stack at once, in one process, and reports jobs per second. The
// demo job is bound by SoftHSM2's RSA key generation on the machine's CPUs,
// so it shows how the runner scales when the token, not the card, is the
// bottleneck.
func BenchmarkStackThroughput(b *testing.B) {
	s := stacktest.Require(b)
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("readers=%d", n), func(b *testing.B) {
			// No '=' in the path: SoftHSM2's configuration parser splits on it.
			dir, err := os.MkdirTemp("", "cw-throughput")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { os.RemoveAll(dir) })
			e := &stackEnv{t: b, s: s, dir: dir, module: s.Get(b, "SOFTHSM_MODULE"),
				own: [2]string{s.Get(b, "READER_OWN_1"), s.Get(b, "READER_OWN_2")}}
			if err := os.Mkdir(filepath.Join(e.dir, "tokens"), 0o700); err != nil {
				b.Fatal(err)
			}
			e.conf = writeTestFile(b, e.dir, "softhsm2.conf", "directories.tokendir = "+filepath.Join(e.dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n")
			e.cfg = writeTestFile(b, e.dir, "cardwright.cfg", fmt.Sprintf("[pkcs11]\nmodule = %s\n[tokens]\n%s = %s, cardwright demo 1\n%s = %s, cardwright demo 2\n",
				e.module, regexpQuote(e.own[0]), e.module, regexpQuote(e.own[1]), e.module))
			e.ca = filepath.Join(e.dir, "ca")
			rounds := 3
			var jobs, ms float64
			for b.Loop() {
				cmd := e.child("parallel", "", []string{fmt.Sprint("CARDWRIGHT_ENCODE_ROUNDS=", rounds)}, append([]string{e.cfg, e.ca}, e.own[:n]...)...)
				var errb bytes.Buffer
				cmd.Stderr = &errb
				out, err := cmd.Output()
				var res []runner.Result
				if jerr := json.Unmarshal(out, &res); err != nil || jerr != nil {
					b.Fatalf("%v %v: %s %s", err, jerr, out, errb.String())
				}
				for _, r := range res {
					if r.Err != nil {
						b.Fatalf("%+v", r.Err)
					}
				}
				var el float64
				fmt.Sscanf(strings.TrimSpace(errb.String()[strings.LastIndex(errb.String(), "elapsed-ms"):]), "elapsed-ms %f", &el)
				jobs += float64(rounds * n)
				ms += el
			}
			b.ReportMetric(jobs/(ms/1000), "jobs/s")
		})
	}
}

// serve starts `cardwright serve` with the real runner in a child process
// (SoftHSM2 reads SOFTHSM2_CONF once per process) on the stack's
// configuration, and returns the agent's URL, the demo portal's URL (when
// --demo-portal is among args) and the log so far. The agent is stopped
// with SIGINT when the test ends.
func (e *stackEnv) serve(args ...string) (agentURL, demoURL string, logs func() string) {
	t := e.t
	t.Helper()
	cmd := e.child("cli", "", nil, append([]string{"serve", "--config", e.cfg, "--listen", "127.0.0.1:0",
		"--journal", filepath.Join(e.dir, "journal"), "--log-format", "json"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	e.served = cmd
	var mu sync.Mutex
	var buf strings.Builder
	logs = func() string { mu.Lock(); defer mu.Unlock(); return buf.String() }
	urls := make(chan [2]string, 1)
	go func(urls chan [2]string) { // its own copy: it sets it to nil once sent
		var agentURL, demoURL string
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			l := sc.Text()
			mu.Lock()
			buf.WriteString(l + "\n")
			mu.Unlock()
			if a, d := serveAnnounced(l); a != "" {
				agentURL = a
			} else if d != "" {
				demoURL = d
			}
			if agentURL != "" && (demoURL != "" || !slices.Contains(args, "--demo-portal")) && urls != nil {
				urls <- [2]string{agentURL, demoURL}
				urls = nil
			}
		}
		if urls != nil {
			close(urls)
		}
	}(urls)
	select {
	case u, ok := <-urls:
		if !ok {
			t.Fatalf("serve ended:\n%s", logs())
		}
		return u[0], u[1], logs
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not start:\n%s", logs())
	}
	return "", "", nil
}

// TestServeJobOnStack runs the demo job through `cardwright serve` with the
// real runner: a Go client submits it over the WebSocket, answers the two
// certificate requests from a test CA, and gets the result.
func TestServeJobOnStack(t *testing.T) {
	e := newStackEnv(t)
	url, _, _ := e.serve("--allow-origin", "https://portal.example")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Origin: "https://portal.example"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	src, _ := os.ReadFile(filepath.Join(demoDir, "demo.dsc"))
	cpfSrc, _ := os.ReadFile(filepath.Join(demoDir, "demo.cpf"))
	ca, err := issuer.OpenLocalCA(e.ca)
	if err != nil {
		t.Fatal(err)
	}
	var templates []string
	job := &api.Job{Description: string(src), Files: map[string]string{"demo.cpf": base64.StdEncoding.EncodeToString(cpfSrc)},
		Fields: map[string]string{"PIN_FIELD": demoPIN, "PUK_FIELD": demoPUK, "HOLDER": "SG9sZGVy", "CARD_SERIAL": "CW-7",
			"TOKEN_LABEL": "cardwright demo 1"}, Reader: e.own[0]}
	res, err := c.Run(ctx, job, func(ctx context.Context, req *api.Request) *api.Answer {
		templates = append(templates, req.Template)
		csr, _ := base64.StdEncoding.DecodeString(req.CSR)
		der, _, err := ca.Issue(ctx, issuer.Request{CSR: csr, Application: req.Application})
		if err != nil {
			return &api.Answer{Error: err.Error()}
		}
		return &api.Answer{Certificate: base64.StdEncoding.EncodeToString(der)}
	}, nil)
	if err != nil || !res.OK {
		t.Fatalf("job: %+v %v", res, err)
	}
	if res.Fields["ICCSN"] != e.s.Get(t, "SERIAL_OWN_1") || strings.Join(templates, ",") != "DigitalSignature,Encryption" {
		t.Errorf("result fields %v, templates %v", res.Fields, templates)
	}
	rep := e.readBack("cardwright demo 1", demoPIN)
	if len(rep.Certs) != 2 || rep.Linked != 2 || rep.Chained != 2 {
		t.Errorf("token after the agent's job: %+v", rep)
	}
}
