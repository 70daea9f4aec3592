package dsc

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func mustLoad(t *testing.T, src string) *Description {
	t.Helper()
	d, diags := Load("t.dsc", []byte(src), CheckOptions{})
	if diags.HasErrors() {
		t.Fatalf("check: %v", diags)
	}
	return d
}

func TestPlanErrors(t *testing.T) {
	files := fstest.MapFS{"p.cpf": {Data: []byte("; profile\n")}, "s.apdu": {Data: []byte("00 A4 04 00 | ${<hex>AID}\n")}}
	tests := []struct {
		name   string
		src    string
		job    Job
		kind   error
		field  string
		substr string
	}{
		{"profile param not base64",
			"[Fields]\nv=\n[Description]\nInitToken=true\nChipProfile=p.cpf\nProfileParameters=v\n",
			Job{Fields: map[string]string{"v": "not base64!"}, Files: files}, ErrInvalidField, "v", "field v is not base64"},
		{"bool field",
			"[Fields]\nB=\n[Description]\nDeleteProfile=B\n",
			Job{Fields: map[string]string{"B": "maybe"}}, ErrInvalidField, "B", `field B has "maybe", want true or false`},
		{"missing profile",
			"[Description]\nInitToken=true\nChipProfile=gone.cpf\n",
			Job{Files: files}, ErrMissingFile, "", "file gone.cpf is not in the job"},
		{"no files at all",
			"[Description]\nInitToken=true\nChipProfile=p.cpf\n",
			Job{}, ErrMissingFile, "", "file p.cpf is not in the job"},
		{"secret output to plain field",
			"[Fields]\nOUT=\n[Description]\nCardPinDecryption_Output_PIN1=OUT\n",
			Job{Secret: map[string]bool{"other": true}}, ErrSecretOutput, "OUT", "not a secret output"},
		{"platform",
			"[Description]\nPKCS11LibraryWindows32=C:/p.dll\nDeleteProfile=true\n",
			Job{Platform: Platform{"windows", "amd64"}}, ErrPlatform, "", "DeleteProfile needs a PKCS#11 library, but no key applies to windows/amd64 (found PKCS11LibraryWindows32)"},
		{"certificate not base64",
			"[Fields]\nC=\n[Description]\nPKCS11Library=x.so\n[Application_A]\nWriteCertificate=true\nCertificate=C\n",
			Job{Fields: map[string]string{"C": "%%%"}}, ErrInvalidField, "C", "field C is not base64"},
		{"certificate not DER",
			"[Fields]\nC=\n[Description]\n[Application_A]\nWriteCertificate=true\nCertificate=C\n",
			Job{Fields: map[string]string{"C": "AAEC"}}, ErrInvalidField, "C", "is not a DER certificate"},
		{"p12 not DER",
			"[Fields]\nC=\nP=\n[Application_A]\nWriteP12Data=true\nCertificate=C\nP12PASSWORD=P\n",
			Job{Fields: map[string]string{"C": "MAMCAQE=x"}}, ErrInvalidField, "C", "not base64"},
		{"p12 not a SEQUENCE",
			"[Fields]\nC=\nP=\n[Application_A]\nWriteP12Data=true\nCertificate=C\nP12PASSWORD=P\n",
			Job{Fields: map[string]string{"C": "AgEB"}}, ErrInvalidField, "C", "not a DER PKCS#12"},
		{"p12 empty",
			"[Fields]\nC=\nP=\n[Application_A]\nWriteP12Data=true\nCertificate=C\nP12PASSWORD=P\n",
			Job{}, ErrInvalidField, "C", "field C is empty"},
		{"application list field",
			"[Fields]\nL=\n[Description]\nApplicationListField=L\n[Application_A]\nKeySize=2048\nCertTempl=T\n",
			Job{Fields: map[string]string{"L": "AB"}}, ErrInvalidField, "L", "no section [Application_B]"},
		{"key size from field",
			"[Fields]\nN=\n[Application_A]\nCertTempl=T\nKeySize=N\n",
			Job{Fields: map[string]string{"N": "1000"}}, ErrInvalidField, "N", "KeySize 1000"},
		{"set pin without old pin or SO",
			"[Fields]\nP=\n[Description]\nPIN=P\nSetPIN=true\n",
			Job{Fields: map[string]string{"P": "1234"}}, ErrInvalidField, "", "SetPIN needs the old PIN"},
		{"C_InitToken without SO PIN",
			"[Description]\nInitToken=true\n",
			Job{}, ErrInvalidField, "", "needs the SO PIN"},
		{"apdu placeholder not hex",
			"[Fields]\nAID=\n[Description]\nApduFile=s.apdu\n",
			Job{Files: files, Fields: map[string]string{"AID": "xyz"}}, ErrInvalidField, "", "field AID: value is not hex"},
		{"select criteria empty",
			"[Fields]\nS=\n[Description]\nUseSelectCriteriaIccsn=true\nSelectCriteriaIccsn=S\n",
			Job{}, ErrInvalidField, "S", "SelectCriteriaIccsn: S is empty"},
		{"profile assigns a parameter",
			"[Fields]\nv=\n[Description]\nInitToken=true\nChipProfile=p.cpf\nProfileParameters=v\n",
			Job{Fields: map[string]string{"v": "AA=="}, Files: files, ProfileAssigns: func(string, []byte) ([]string, error) { return []string{"V"}, nil }},
			ErrInvalidDescription, "v", "profile p.cpf assigns v itself"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := mustLoad(t, tc.src)
			if tc.job.Platform.IsZero() {
				tc.job.Platform = Platform{"linux", "amd64"}
			}
			p, err := NewPlan(d, tc.job)
			if err == nil {
				t.Fatalf("no error; plan has %d steps", len(p.Steps))
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %v is not %v", err, tc.kind)
			}
			var pe *PlanError
			if !errors.As(err, &pe) {
				t.Fatalf("not a *PlanError: %T", err)
			}
			if pe.Field != tc.field || !strings.Contains(pe.Msg, tc.substr) {
				t.Errorf("got field %q msg %q; want field %q and %q", pe.Field, pe.Msg, tc.field, tc.substr)
			}
			if !pe.Pos.IsValid() {
				t.Errorf("no position: %v", pe)
			}
		})
	}
}

func TestPlanRefusesInvalidDescription(t *testing.T) {
	d, diags := Load("bad.dsc", []byte("[Description]\nSignPUK=#1\n"), CheckOptions{})
	if !diags.HasErrors() {
		t.Fatal("want errors")
	}
	if _, err := NewPlan(d, Job{}); !errors.Is(err, ErrInvalidDescription) {
		t.Fatalf("got %v", err)
	}
}

func TestPlanOrderAndSecrets(t *testing.T) {
	const pin, puk, newPUK = "480213", "99120377", "55318806"
	src := `[Fields]
PIN=
PUK=
NEWPUK=
ICCSN=
CODES=
AID=
[Description]
PKCS11LibraryLinux=/usr/lib/x.so
PKCS11LibraryWindows64=C:/x.dll
DeleteProfile=true
PIN=PIN
InitialPUK=PUK
PUK=NEWPUK
SetPIN=true
ICCSN=ICCSN
ApduFile=s.apdu
ApduResponseCodesField=CODES
ClearFields=CODES
BlockCard=#true
[Application_Z]
KeySize=2048
CertTempl=T
Location=#signature
[Application_A]
KeyType=EC
CertTempl=T
`
	files := fstest.MapFS{"s.apdu": {Data: []byte("; select then verify\n00 A4 04 00 | ${AID} | 00 => 9000, 61XX\n00 20 00 81 | ${<string>PIN}\n")}}
	d := mustLoad(t, src)
	p, err := NewPlan(d, Job{Platform: Platform{"linux", "amd64"}, Files: files,
		Fields: map[string]string{"pin": pin, "PUK": puk, "NEWPUK": newPUK, "AID": "A000000063"},
		Secret: map[string]bool{"PUK": true, "NEWPUK": true}}) // PIN is sensitive as the PIN key's field
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, st := range p.Steps {
		kinds = append(kinds, st.Kind().String())
	}
	want := "select_card delete_profile set_pin change_puk application application apdu_script block_card read_iccsn clear_fields"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("steps\n got %s\nwant %s", got, want)
	}
	if p.Module == nil || p.Module.Key != "PKCS11LibraryLinux" {
		t.Errorf("module %+v", p.Module)
	}
	app := stepAs[*ApplicationStep](t, p, 4).App
	if app.ID != "Z" || !app.Signature || p.Steps[4].Header().Login != LoginSignature || app.KeySize != 2048 || app.KeyType != "RSA" {
		t.Errorf("Z = %+v", app)
	}
	if a := stepAs[*ApplicationStep](t, p, 5).App; a.KeyType != "EC" || a.KeySize != 256 {
		t.Errorf("A = %+v", a)
	}
	if ps := stepAs[*SetPINStep](t, p, 2).PIN; ps.Mode != PINReset || ps.New.Value.Reveal() != pin || ps.SO.Value.Reveal() != puk {
		t.Errorf("set pin = %+v", ps)
	}
	if ps := stepAs[*ChangePUKStep](t, p, 3).PIN; ps.Mode != PINChangeSO || ps.New.Value.Reveal() != newPUK || ps.Old.Value.Reveal() != puk {
		t.Errorf("change puk = %+v", ps)
	}
	sc := stepAs[*ApduScriptStep](t, p, 6).Script
	if len(sc.Commands) != 2 || string(sc.Commands[0].APDU) != "\x00\xA4\x04\x00\x05\xA0\x00\x00\x00\x63\x00" || sc.Commands[0].Secret {
		t.Errorf("script %x", sc.Commands[0].APDU)
	}
	if c := sc.Commands[1]; !c.Secret || string(c.APDU[5:]) != pin || c.APDU[4] != 6 {
		t.Errorf("verify %x secret=%v", c.APDU, c.Secret)
	}
	if !sc.Commands[0].Accepts(0x6110) || sc.Commands[0].Accepts(0x6A82) || !sc.Commands[1].Accepts(0x6A82) {
		t.Error("Accepts")
	}
	if len(p.Outputs) != 1 || p.Outputs[0].Field != "ICCSN" {
		t.Errorf("outputs %+v (CODES is cleared)", p.Outputs)
	}
	// Nothing secret prints.
	for _, s := range []string{fmtPlan(t, p)} {
		for _, v := range []string{pin, puk, newPUK} {
			if strings.Contains(s, v) {
				t.Errorf("secret %s printed", v)
			}
		}
	}
}

func TestPlanRetrieveAllTokensShortCircuits(t *testing.T) {
	d := mustLoad(t, "[Fields]\nL=\n[Description]\nRetrieveAllTokens=true\nAllTokensIccsnsField=L\nDeleteProfile=true\nUseICCSNwithATR=true\n")
	p, err := NewPlan(d, Job{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 1 || p.Steps[0].Kind() != StepRetrieveTokens {
		t.Fatalf("%+v", p.Steps)
	}
	if r := p.Steps[0].(*RetrieveTokensStep).Retrieve; r.Field != "L" || !r.WithATR {
		t.Fatalf("%+v", p.Steps)
	}
}

func TestPlanPlaceholders(t *testing.T) {
	d := mustLoad(t, "[Fields]\nv=\nC=\nP=\nL=\n[Description]\nInitToken=true\nChipProfile=p.cpf\nProfileParameters=v\nApplicationListField=L\n[Application_A]\nWriteP12Data=true\nCertificate=C\nP12PASSWORD=P\n")
	p, err := NewPlan(d, PlaceholderJob(Platform{"linux", "amd64"}, fstest.MapFS{"p.cpf": {Data: []byte("x")}}))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 3 {
		t.Fatalf("%s", fmtPlan(t, p))
	}
	if string(stepAs[*InitProfileStep](t, p, 1).Init.Params[0].Value) != "<v>" || stepAs[*ApplicationStep](t, p, 2).App.Action != AppWriteP12 {
		t.Fatalf("%s", fmtPlan(t, p))
	}
}
