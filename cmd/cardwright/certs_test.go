package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/internal/testpki"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/secret"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code = runMain(context.Background(), env, args)
	return code, out.String(), errb.String()
}

// matchedCNs runs certs --json and returns the subject CNs of the matches,
// sorted.
func matchedCNs(t *testing.T, stdout string) []string {
	t.Helper()
	var res []struct {
		Source string
		Facts  map[string]any
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	var cns []string
	for _, r := range res {
		l, _ := r.Facts["cert.subject.cn"].([]any)
		if len(l) != 1 {
			t.Fatalf("match without one subject CN: %+v", r)
		}
		cns = append(cns, l[0].(string))
	}
	sort.Strings(cns)
	return cns
}

const (
	seedSimpleFilter = `{"op":"eq","param":"cert.issuer.o","value":"Example company"}`
	// The seed's complex filter without its key.id clause, which file
	// certificates (no key, no CKA_ID) cannot satisfy.
	strongKeyFilter = `{"op":"or","value":[
	  {"op":"and","value":[{"param":"key.type","op":"eq","value":"RSA"},{"param":"key.size","op":"gte","value":2048}]},
	  {"op":"and","value":[{"param":"key.type","op":"eq","value":"ECC"},{"param":"key.size","op":"gte","value":384}]}]}`
)

func TestCertsFiles(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t)
	rsa2048 := ca.Issue(t, "Samuel", 10, testpki.GenKey(t, "rsa2048").Public())
	rsa1024 := ca.Issue(t, "Weak", 11, testpki.GenKey(t, "rsa1024").Public())
	p256 := ca.Issue(t, "Bob", 12, testpki.GenKey(t, "p256").Public())
	p384 := ca.Issue(t, "Carol", 13, testpki.GenKey(t, "p384").Public())

	// (DER sorts the two OUs of one RDN set: Staff before Signers.)
	// One PEM file with two certificates and a key block to skip, one DER
	// file, one PEM file with the CA.
	var pemData []byte
	pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rsa2048.Raw})...)
	pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})...)
	pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rsa1024.Raw})...)
	pemFile := testpki.WriteFile(t, dir, "two.pem", pemData)
	derFile := testpki.WriteFile(t, dir, "bob.der", p256.Raw)
	derTwo := testpki.WriteFile(t, dir, "carol-ca.der", append(append([]byte{}, p384.Raw...), ca.Cert.Raw...))
	files := []string{"--cert", pemFile, "--cert", derFile, "--cert", derTwo}

	simple := testpki.WriteFile(t, dir, "simple.json", []byte(seedSimpleFilter))
	strong := testpki.WriteFile(t, dir, "strong.json", []byte(strongKeyFilter))
	none := testpki.WriteFile(t, dir, "none.json", []byte(`{"op":"eq","param":"cert.subject.cn","value":"Nobody"}`))
	ou := testpki.WriteFile(t, dir, "ou.json", []byte(`{"op":"and","value":[{"op":"eq","param":"cert.subject.ou","value":"Staff"},{"op":"co","param":"cert.keyusage","value":"clientAuth"}]}`))
	tokenFact := testpki.WriteFile(t, dir, "token.json", []byte(`{"op":"eq","param":"token.id","value":"x"}`))
	notToken := testpki.WriteFile(t, dir, "nottoken.json", []byte(`{"op":"nq","param":"token.id","value":"x"}`))

	for _, tc := range []struct {
		name   string
		filter string
		want   []string
		code   int
	}{
		{"no filter", "", []string{"Bob", "Carol", "Example CA", "Samuel", "Weak"}, 0},
		{"seed simple", simple, []string{"Bob", "Carol", "Example CA", "Samuel", "Weak"}, 0},
		{"strong keys", strong, []string{"Carol", "Samuel"}, 0},
		{"multi-valued OU and key usage", ou, []string{"Bob", "Carol", "Samuel", "Weak"}, 0},
		{"nothing", none, nil, 1},
		{"token facts are empty", tokenFact, nil, 1},
		{"absent token fact and nq", notToken, []string{"Bob", "Carol", "Example CA", "Samuel", "Weak"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"certs", "--json"}, files...)
			if tc.filter != "" {
				args = append(args, "--filter", tc.filter)
			}
			code, out, errs := runCmd(t, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, errs)
			}
			if got := matchedCNs(t, out); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("matches %q, want %q", got, tc.want)
			}
			if !strings.Contains(errs, " of 5 certificates match") {
				t.Errorf("stderr %q lacks the summary", errs)
			}
		})
	}

	// Text output: a source line, then facts.
	code, out, _ := runCmd(t, "certs", "--filter", strong, "--cert", pemFile)
	if code != 0 || !strings.Contains(out, pemFile+" #1\n") || !strings.Contains(out, "  key.size           2048\n") ||
		!strings.Contains(out, "  cert.subject.ou    Staff; Signers\n") || strings.Contains(out, "Weak") {
		t.Errorf("text output (exit %d):\n%s", code, out)
	}
}

func TestCertsErrors(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t)
	certFile := testpki.WriteFile(t, dir, "c.der", ca.Cert.Raw)
	bad := testpki.WriteFile(t, dir, "bad.json", []byte("{\"op\":\"and\",\"value\":[\n  {\"op\":\"nope\",\"value\":[]},\n  {\"op\":\"co\",\"param\":\"cert.subject.cn\",\"value\":5}]}"))
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"malformed filter", []string{"--filter", bad, "--cert", certFile}, 2,
			bad + ":2:9: value[0].op: unknown op \"nope\"\n" + bad + ":3:48: value[1].value: \"co\" takes a string value, not a number\n"},
		{"missing filter file", []string{"--filter", filepath.Join(dir, "none.json"), "--cert", certFile}, 2, "reading the filter"},
		{"missing cert file", []string{"--cert", filepath.Join(dir, "none.pem")}, 1, "reading certificates"},
		{"not a certificate", []string{"--cert", bad}, 1, "parsing DER"},
		{"PEM without certificate", []string{"--cert", testpki.WriteFile(t, dir, "k.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}))}, 1, "no CERTIFICATE block"},
		{"positional argument", []string{certFile}, 2, "certificate files go with --cert"},
		{"unknown flag", []string{"--bogus"}, 2, "flag provided but not defined"},
		{"no module", []string{"--config", testpki.WriteFile(t, dir, "empty.cfg", nil)}, 1, "no PKCS#11 module configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCmd(t, append([]string{"certs"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, errs, tc.code, tc.want)
			}
			if out != "" {
				t.Errorf("stdout %q, want none", out)
			}
		})
	}
	if code, _, _ := runCmd(t, "certs", "-h"); code != 0 {
		t.Errorf("-h: exit %d", code)
	}
}

// TestCertsSoftHSM puts certificates from a test CA (RSA and EC, several
// subjects, keys with CKA_IDs) on a fresh SoftHSM2 token and checks that
// `cardwright certs --module` returns exactly the expected set for several
// filters. SoftHSM2 reads SOFTHSM2_CONF once per process, so the work runs
// in a child test process with a token directory of its own.
func TestCertsSoftHSM(t *testing.T) {
	module := os.Getenv("CARDWRIGHT_CERTS_TEST_MODULE")
	if module == "" {
		s := stacktest.Require(t)
		module = s.Get(t, "SOFTHSM_MODULE")
		conf := testpki.SoftHSMConf(t, t.TempDir())
		cmd := exec.Command(os.Args[0], "-test.run=^TestCertsSoftHSM$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "CARDWRIGHT_CERTS_TEST_MODULE="+module, "SOFTHSM2_CONF="+conf)
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestCertsSoftHSM")) {
			t.Fatalf("child test: %v\n%s", err, out)
		}
		t.Logf("child test:\n%s", out)
		return
	}

	so, pin := secret.New("so-certs-8812"), secret.New("pin-certs-4420")
	_, tok, s := testpki.SoftHSMSession(t, module, so, pin, "certs-test")
	ca := testpki.NewCA(t)
	ids := map[string]string{}
	for i, k := range []struct {
		cn, label string
		spec      p11.KeySpec
		id        []byte
	}{
		{"Samuel", "signing", p11.RSA2048, []byte{0x01}},
		{"Samuel", "auth", p11.ECP256, []byte{0x02}},
		{"Bob", "signing", p11.ECP384, []byte{0xAB, 0xCD}},
		{"Alice", "signing", p11.RSA2048, nil}, // CKA_ID from the public key
	} {
		key, err := s.GenerateKeyPair(k.spec, k.label, k.id)
		if err != nil {
			t.Fatal(err)
		}
		cert := ca.Issue(t, k.cn, int64(100+i), key.Public())
		if _, err := s.WriteCertificate(cert, k.label, key.ID); err != nil {
			t.Fatal(err)
		}
		ids[k.cn+"/"+k.label] = strings.ToUpper(hex.EncodeToString(key.ID))
	}
	s.Close()

	dir := t.TempDir()
	cfg := testpki.WriteFile(t, dir, "empty.cfg", nil)
	filter := func(name, src string) string { return testpki.WriteFile(t, dir, name, []byte(src)) }
	for _, tc := range []struct {
		name, filter string
		want         []string
	}{
		{"all", "", []string{"Alice", "Bob", "Samuel", "Samuel"}},
		{"seed simple", filter("simple.json", seedSimpleFilter), []string{"Alice", "Bob", "Samuel", "Samuel"}},
		{"strong keys", filter("strong.json", strongKeyFilter), []string{"Alice", "Bob", "Samuel"}},
		{"key id", filter("id.json", `{"op":"eq","param":"key.id","value":"abcd"}`), []string{"Bob"}},
		{"derived key id", filter("id2.json", `{"op":"eq","param":"key.id","value":"`+ids["Alice/signing"]+`"}`), []string{"Alice"}},
		{"token facts", filter("tok.json", `{"value":[{"op":"eq","param":"token.type","value":"SOFTWARE"},{"op":"eq","param":"token.id","value":"`+tok.Serial()+`"},{"op":"eq","param":"cert.subject.cn","value":"Samuel"}]}`), []string{"Samuel", "Samuel"}},
		{"not", filter("not.json", `{"op":"not","value":[{"op":"eq","param":"key.type","value":"ECC"},{"op":"eq","param":"cert.subject.cn","value":"Alice"}]}`), []string{"Samuel"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"certs", "--json", "--config", cfg, "--module", module}
			if tc.filter != "" {
				args = append(args, "--filter", tc.filter)
			}
			code, out, errs := runCmd(t, args...)
			if code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", code, errs)
			}
			if got := matchedCNs(t, out); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("matches %q, want %q\n%s", got, tc.want, out)
			}
			if strings.Contains(out+errs, pin.Reveal()) || strings.Contains(out+errs, so.Reveal()) {
				t.Error("a PIN in the output")
			}
		})
	}
	none := filter("none.json", `{"op":"eq","param":"cert.subject.cn","value":"Nobody"}`)
	if code, _, _ := runCmd(t, "certs", "--config", cfg, "--module", module, "--filter", none); code != 1 {
		t.Errorf("no match: exit %d, want 1", code)
	}
}
