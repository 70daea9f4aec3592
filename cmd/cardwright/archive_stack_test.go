package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/secret"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// archiveDSC is the demo job's card and token set-up followed by the
// seed's Application_B (KeyArchivalRequest with WriteP12Data, the
// Certificate field left empty: the server makes the key) and a
// CertKeyList of PKCS#12s.
const archiveDSC = `[Encoding]
Type=1024,Chip
Devices=8711

[Fields]
ICCSN=
PIN_FIELD=
PUK_FIELD=
HOLDER=
CARD_SERIAL=
TOKEN_LABEL=
P12CERTIFICATE_B=
P12PASSWORD_B=
P12_LIST=
P12_LIST_PASSWORD=
WRITTEN=

[Description]
PKCS11LibraryLinux=/usr/lib/softhsm/libsofthsm2.so
iccsnfield=ICCSN
DeleteProfile=true
InitToken=true
ChipProfile=demo.cpf
ProfileParameters=HOLDER
InitialPUK=PUK_FIELD
PIN=PIN_FIELD
InitialLabel=TOKEN_LABEL
ClearFields=PIN_FIELD, PUK_FIELD, P12_LIST_PASSWORD

[Application_B]
CardSerialNumberField=CARD_SERIAL
CertTempl=EncHardCodedValues
KeyArchivalRequest=true
WriteP12Data=true
Certificate=P12CERTIFICATE_B
P12PASSWORD=P12PASSWORD_B

[Application_C]
WriteCertKeyList=true
CertKeyList=P12_LIST
CertKeyListMode=p12
P12PASSWORD=P12_LIST_PASSWORD
CertKeyListReturnField=WRITTEN
`

// readBackKey is what the signing read-back child finds for one
// certificate on the token: the certificate, whether a private key goes
// with it, and a signature that key made over signedText.
type readBackKey struct {
	DER       []byte
	Linked    bool
	Signature []byte
	Error     string
}

const signedText = "signed on the token after the job"

// TestArchiveReadBackHelper is the child process of readBackKeys: it loads
// SoftHSM2 with the test's SOFTHSM2_CONF, logs in to token args[0] with
// DEMO_PIN and signs signedText with the key of every certificate.
func TestArchiveReadBackHelper(t *testing.T) {
	if os.Getenv("CARDWRIGHT_ARCHIVE_CHILD") == "" {
		t.Skip("helper process for TestKeyArchivalOnStack")
	}
	args := os.Args[slices.Index(os.Args, "--")+1:]
	var out []readBackKey
	defer func() { json.NewEncoder(os.Stdout).Encode(out); os.Exit(0) }()
	fail := func(err error) { out = append(out, readBackKey{Error: err.Error()}) }
	m, err := p11.Load(os.Getenv("SOFTHSM_MODULE"), p11.Trusted)
	if err != nil {
		fail(err)
		return
	}
	tok, err := m.FindToken(args[0])
	if err != nil {
		fail(err)
		return
	}
	s, err := tok.Open()
	if err != nil {
		fail(err)
		return
	}
	defer s.Close()
	if err := s.Login(secret.New(os.Getenv("DEMO_PIN"))); err != nil {
		fail(err)
		return
	}
	certs, err := s.Certificates()
	if err != nil {
		fail(err)
		return
	}
	for _, c := range certs {
		rk := readBackKey{DER: c.DER, Linked: c.HasKey}
		if c.Cert != nil && c.HasKey {
			key, err := s.KeyFor(c.Cert)
			if err == nil {
				digest := sha256.Sum256([]byte(signedText))
				rk.Signature, err = key.Sign(rand.Reader, digest[:], crypto.SHA256)
			}
			if err != nil {
				rk.Error = err.Error()
			}
		}
		out = append(out, rk)
	}
}

// readBackKeys runs TestArchiveReadBackHelper for token label.
func (e *stackEnv) readBackKeys(label string) []readBackKey {
	e.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestArchiveReadBackHelper$", "--", label)
	cmd.Env = append(os.Environ(), "CARDWRIGHT_ARCHIVE_CHILD=1", "SOFTHSM2_CONF="+e.conf, "SOFTHSM_MODULE="+e.module, "DEMO_PIN="+demoPIN)
	out, err := cmd.Output()
	var keys []readBackKey
	if jerr := json.Unmarshal(out, &keys); jerr != nil {
		e.t.Fatalf("read-back: %v %v: %s", err, jerr, out)
	}
	return keys
}

// verifies reports whether sig is a signature over signedText by the
// certificate's key.
func verifies(cert *x509.Certificate, sig []byte) bool {
	digest := sha256.Sum256([]byte(signedText))
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(pub, digest[:], sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil
	}
	return false
}

// listP12 makes a PKCS#12 of a new P-256 key and a demo-CA certificate for
// it with subject CN cn.
func listP12(t *testing.T, ca *issuer.LocalCA, cn, password string) ([]byte, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	der, _, err := ca.Issue(context.Background(), issuer.Request{CSR: csr})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p12, err := pkcs12.Modern.Encode(key, cert, []*x509.Certificate{ca.Certificate()}, password)
	if err != nil {
		t.Fatal(err)
	}
	return p12, cert
}

// TestKeyArchivalOnStack: `cardwright serve` (real runner) with the demo
// portal runs, on the own virtual card and its SoftHSM2 token, the seed's
// Application_B without a PKCS#12 in the job and a CertKeyList of two
// PKCS#12s. The agent's key-archival request goes to the demo portal's
// POST /issue, as the demo page sends it, and the demo CA answers with a
// PKCS#12 and its password. A separate process then reads the token back:
// three certificates from the demo CA, each with its private key, and a
// signature each key makes verifies against its certificate; the return
// field lists the two list items written. No PIN or PKCS#12 password is in
// the agent's log.
func TestKeyArchivalOnStack(t *testing.T) {
	e := newStackEnv(t)
	ca, err := issuer.OpenLocalCA(e.ca) // the demo portal's CA (--demo-ca)
	if err != nil {
		t.Fatal(err)
	}
	const listPassword = "list-p12-pw-40917"
	one, c1 := listP12(t, ca, "List One", listPassword)
	two, c2 := listP12(t, ca, "List Two", listPassword)
	agentURL, demoURL, logs := e.serve("--demo-portal", "--demo-ca", e.ca)
	origin := strings.TrimSuffix(demoURL, "/")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, agentURL, client.Options{Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cpfSrc, err := os.ReadFile(filepath.Join(demoDir, "demo.cpf"))
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	job := &api.Job{Description: archiveDSC, Files: map[string]string{"demo.cpf": b64(cpfSrc)}, Reader: e.own[0],
		Fields: map[string]string{"PIN_FIELD": demoPIN, "PUK_FIELD": demoPUK, "HOLDER": b64([]byte("Key Archival")),
			"CARD_SERIAL": "CW-000042", "TOKEN_LABEL": "cardwright demo 1", "P12CERTIFICATE_B": "", "P12PASSWORD_B": "",
			"P12_LIST": b64(one) + "," + b64(two), "P12_LIST_PASSWORD": listPassword}}
	var asked []*api.Request
	var passwords []string
	res, err := c.Run(ctx, job, func(ctx context.Context, r *api.Request) *api.Answer {
		asked = append(asked, r)
		// What web/demo.js does with a request: POST /issue on the
		// portal's own origin, the answer passed on as it comes.
		body, _ := json.Marshal(map[string]any{"csr": r.CSR, "template": r.Template, "application": r.Application, "key_archival": r.KeyArchival})
		resp, err := http.Post(origin+"/issue", "application/json", bytes.NewReader(body))
		if err != nil {
			return &api.Answer{Error: err.Error()}
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return &api.Answer{Error: fmt.Sprintf("issuing failed: HTTP %d", resp.StatusCode)}
		}
		var a api.Answer
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			return &api.Answer{Error: err.Error()}
		}
		passwords = append(passwords, a.Password)
		return &a
	}, nil)
	if err != nil || !res.OK {
		t.Fatalf("job: %+v %v\n%s", res, err, logs())
	}
	c.Ack(ctx, res.ID)
	if len(asked) != 1 || !asked[0].KeyArchival || asked[0].CSR != "" || asked[0].Application != "B" || asked[0].Template != "EncHardCodedValues" {
		t.Fatalf("requests %+v; want one key-archival request of Application_B", asked)
	}
	if len(passwords) != 1 || passwords[0] == "" {
		t.Fatal("the demo portal answered without a password")
	}
	if want := fmt.Sprintf("%X,%X", c1.SerialNumber, c2.SerialNumber); res.Fields["WRITTEN"] != want {
		t.Errorf("WRITTEN = %q, want %q", res.Fields["WRITTEN"], want)
	}

	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	got := map[string]bool{}
	for _, k := range e.readBackKeys("cardwright demo 1") {
		if k.Error != "" {
			t.Fatalf("read-back: %s", k.Error)
		}
		cert, err := x509.ParseCertificate(k.DER)
		if err != nil {
			t.Fatal(err)
		}
		if cert.IsCA {
			continue // the chain's CA certificate, stored with a PKCS#12
		}
		cn := cert.Subject.CommonName
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%q is not from the demo CA: %v", cn, err)
		}
		if !k.Linked || !verifies(cert, k.Signature) {
			t.Errorf("%q: linked %v; the signature its token key made does not verify", cn, k.Linked)
		}
		// The portal names the archived key's subject itself (the request
		// carries template and application only); the demo CA uses the
		// template as CN.
		got[cn] = true
	}
	if len(got) != 3 || !got["EncHardCodedValues"] || !got["List One"] || !got["List Two"] {
		t.Errorf("certificates with keys on the token: %v; want EncHardCodedValues, List One, List Two", got)
	}
	readCard(t, e.own[0], "Key Archival", demoPIN)
	noPINs(t, logs())
	for _, p := range append(passwords, listPassword) {
		if strings.Contains(logs(), p) {
			t.Errorf("a PKCS#12 password is in the agent's log")
		}
	}
}
