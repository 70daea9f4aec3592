package dsc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPINSources(t *testing.T) {
	tests := []struct {
		in   string
		want PINSource
		ok   bool
	}{
		{"!FROM_USER_DIALOG_1_FIELD", PINSource{Dialog: 1}, true},
		{"!from_user_dialog_2_field", PINSource{Dialog: 2}, true},
		{"!FROM_USER_DIALOG_3_FIELD_AUTO", PINSource{Dialog: 3, Auto: true}, true},
		{"!FROM_PROTECTED_AUTHENTICATION_PATH", PINSource{PinPad: true}, true},
		{"!FROM_USER_DIALOG_0_FIELD", PINSource{}, false},
		{"!FROM_USER_DIALOG_2_FIELDS", PINSource{}, false},
		{"!FROM_USER_DIALOG_", PINSource{}, false},
	}
	for _, tc := range tests {
		got, ok := parseSource(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: %+v %v", tc.in, got, ok)
		}
		if ok && "!"+got.String() != strings.ToUpper(tc.in) {
			t.Errorf("%s prints as %s", tc.in, got)
		}
	}
}

func TestDiagnosticsError(t *testing.T) {
	var ds Diagnostics
	for i := 15; i > 0; i-- {
		ds = append(ds, Diagnostic{Pos: Pos{File: "f", Line: i, Col: 1}, Msg: fmt.Sprint("m", i)})
	}
	ds = append(ds, Diagnostic{Pos: Pos{File: "f", Line: 1, Col: 1}, Severity: SeverityWarning, Msg: "w"})
	err := ds.Err()
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 11 || lines[0] != "f:1:1: error: m1" || lines[9] != "f:10:1: error: m10" || lines[10] != "(and 5 more)" {
		t.Fatalf("%q", lines)
	}
	if len(ds.Warnings()) != 1 || (Diagnostics{}).Err() != nil || (Diagnostics{ds[15]}).Err() != nil {
		t.Fatal("Warnings/Err")
	}
}

func TestSplitApplicationList(t *testing.T) {
	for in, want := range map[string][]string{"ABC": {"A", "B", "C"}, " A, SIGN ,B,": {"A", "SIGN", "B"}, "A B": {"A", "B"}, "": nil} {
		if got := SplitApplicationList(in); !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %q", in, got)
		}
	}
}

func TestBundleFS(t *testing.T) {
	b := &Bundle{Files: map[string][]byte{"p.cpf": []byte("xyz"), "sub/s.apdu": []byte("00A40000")}}
	f, err := b.Open("SUB/S.APDU")
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	data, _ := io.ReadAll(f)
	if st.Name() != "s.apdu" || st.Size() != 8 || st.IsDir() || string(data) != "00A40000" || f.Close() != nil {
		t.Fatalf("%v %q", st, data)
	}
	if _, err := b.Open("../p.cpf"); !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("got %v", err)
	}
	if _, err := b.Open("q.cpf"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
	b.Files["P.CPF"] = []byte("other")
	if _, err := b.Open("p.Cpf"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ambiguous case-insensitive match: %v", err)
	}
}

func testCert(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dsc test"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestPlanApplicationPayloads(t *testing.T) {
	cert := testCert(t)
	b64 := base64.StdEncoding.EncodeToString(cert)
	p12 := base64.StdEncoding.EncodeToString([]byte{0x30, 0x03, 0x02, 0x01, 0x03})
	const pwd = "p12-Pa55"
	d := mustLoad(t, `[Fields]
CERT=
P12=
PWD=
LIST=
RET=
MODE=
[Application_C]
WriteCertificate=true
Certificate=CERT
[Application_P]
WriteP12Data=true
Certificate=P12
P12PASSWORD=PWD
[Application_L]
WriteCertKeyList=true
CertKeyList=LIST
CertKeyListReturnField=RET
CertKeyListMode=MODE
[Application_K]
KeyArchivalRequest=true
CertTempl=Archived
`)
	p, err := NewPlan(d, Job{
		Fields: map[string]string{"CERT": b64[:20] + "\n" + b64[20:], "P12": p12, "PWD": pwd, "LIST": b64 + ", " + b64, "MODE": "Certificates"},
		Secret: map[string]bool{"PWD": true}})
	if err != nil {
		t.Fatal(err)
	}
	apps := map[string]*AppStep{}
	for _, st := range p.Steps {
		if st, ok := st.(*ApplicationStep); ok {
			apps[st.App.ID] = &st.App
		}
	}
	if a := apps["C"]; a.Action != AppWriteCertificate || string(a.Certificate) != string(cert) {
		t.Errorf("C: %+v", a)
	}
	if a := apps["P"]; a.Action != AppWriteP12 || len(a.P12) != 5 || a.P12Password.Value.Reveal() != pwd {
		t.Errorf("P: %+v", a)
	}
	if a := apps["L"]; a.Action != AppWriteCertKeyList || len(a.CertKeyList) != 2 || a.ReturnField != "RET" || a.CertKeyListMode != "certificates" {
		t.Errorf("L: %+v", a)
	}
	if a := apps["K"]; a.Action != AppKeyArchival || a.Template != "Archived" {
		t.Errorf("K: %+v", a)
	}
	if len(p.Outputs) != 1 || p.Outputs[0].Field != "RET" {
		t.Errorf("outputs %+v", p.Outputs)
	}
	if s := fmtPlan(t, p); strings.Contains(s, pwd) {
		t.Error("password printed")
	}
	// All switches off from fields: no application step.
	d = mustLoad(t, "[Fields]\nW=\nC=\n[Application_A]\nWriteCertificate=W\nCertificate=C\n")
	if p, err := NewPlan(d, Job{Fields: map[string]string{"W": "0"}}); err != nil || len(p.Steps) != 1 {
		t.Fatalf("%v %+v", err, p)
	}
}

func TestValueItems(t *testing.T) {
	src := "[Fields]\nalpha=\nBeta=\n[Description]\nInitToken=true\nChipProfile=p.cpf\nProfileParameters = alpha ,  beta\n"
	d, ds := Load("e.dsc", []byte(src), CheckOptions{})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	got := d.Settings.ProfileParameters.Items()
	want := []ListItem{{Text: "alpha", Pos: Pos{File: "e.dsc", Line: 7, Col: 21}}, {Text: "beta", Pos: Pos{File: "e.dsc", Line: 7, Col: 30}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Items = %+v, want %+v", got, want)
	}
	if (*Value)(nil).Items() != nil {
		t.Error("nil value has items")
	}
}
