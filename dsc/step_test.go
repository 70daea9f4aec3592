package dsc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/cardwright/cardwright/secret"
)

// everyStep returns one step of each kind, its header and payload filled
// (with text the JSON encoder escapes), in kind order.
func everyStep() []Step {
	at := func(line int) Pos { return Pos{File: "t<&>.dsc", Line: line, Col: 3} }
	cred := func(key string) *Credential {
		return &Credential{Key: key, Pos: at(90), Field: key + "_F", Value: secret.New("0000")}
	}
	return []Step{
		&SelectCardStep{StepHeader{Name: "SelectCard", Key: "UseSelectCriteriaIccsn", Pos: at(1)},
			SelectStep{ICCSN: "<ICCSN>", WithATR: true, UseChipSerial: true}},
		&RetrieveTokensStep{StepHeader{Name: "RetrieveAllTokens", Key: "RetrieveAllTokens", Pos: at(2)},
			RetrieveStep{Field: "L&M", WithATR: true}},
		&DeleteProfileStep{StepHeader{Name: "DeleteProfile", Key: "DeleteProfile", Pos: at(3), Login: LoginHighest}},
		&InitProfileStep{StepHeader{Name: "InitToken", Key: "InitToken", Pos: at(4)},
			InitStep{Profile: "p.cpf", ProfileSource: []byte("secret source"), Params: []ProfileParam{{Name: "P", Value: []byte{1, 2}}}, Label: "<label>"}},
		&InitTokenStep{StepHeader{Name: "InitToken", Key: "InitToken", Pos: at(5)}, InitStep{Label: "L"}},
		&WriteSerialStep{StepHeader{Name: "CMSCardSerialNumber", Key: "CMSCardSerialNumber", Pos: at(6), Login: LoginSO},
			SerialStep{Serial: "CMS-1", Field: "SER"}},
		&SetPINStep{StepHeader{Name: "SetPIN", Key: "SetPIN", Pos: at(7), Login: LoginSO},
			PINStep{Mode: PINReset, New: cred("PIN"), SO: cred("InitialPUK")}},
		&ChangePUKStep{StepHeader{Name: "PUK", Key: "PUK", Pos: at(8), Login: LoginSO},
			PINStep{Mode: PINChangeSO, New: cred("PUK"), Old: &Credential{Key: "InitialPUK", Prompt: &PINSource{Dialog: 2}}}},
		&ApplicationStep{StepHeader{Name: "Application_A", Key: "[Application_A]", Pos: at(9), Login: LoginSignature},
			AppStep{ID: "A", Action: AppUseObject, Template: "T<1>", Criteria: &ObjectCriteria{Class: "CKO_PUBLIC_KEY", Type: "string", Text: "x", Bytes: []byte("x")},
				P12Password: cred("P12PASSWORD"), CertKeyList: [][]byte{{3}}, CardSerial: "S", Signature: true}},
		&ApduScriptStep{StepHeader{Name: "ApduFile", Key: "ApduFile", Pos: at(10)},
			ScriptStep{File: "s.apdu", ResponseField: "SW", Commands: []ScriptCommand{{Line: 1, APDU: []byte{0, 0xA4, 0, 0}, Expect: []string{"9000"}}, {Line: 2, APDU: []byte{1}, Secret: true}}}},
		&BlockCardStep{StepHeader{Name: "BlockCard", Key: "BlockCard", Pos: at(11)}},
		&ReadICCSNStep{StepHeader{Name: "ICCSN", Key: "ICCSN", Pos: at(12)},
			FinalizeStep{Field: "ICCSN", CMSSerial: "C", WithATR: true}},
		&ReadEncryptedPINsStep{StepHeader{Name: "CardPinDecryption", Key: "CardPinDecryption_PIN1", Pos: at(13)},
			PINReadStep{Outputs: []PINReadOutput{{Name: "PIN1", Field: "Out"}}}},
		&ClearFieldsStep{StepHeader{Name: "ClearFields"}, ClearStep{Fields: []string{"A", "B"}}},
	}
}

// stepAs returns step i of p as a T, or fails the test.
func stepAs[T Step](t *testing.T, p *Plan, i int) T {
	t.Helper()
	if i >= len(p.Steps) {
		t.Fatalf("no step %d in %d steps", i, len(p.Steps))
	}
	s, ok := p.Steps[i].(T)
	if !ok {
		t.Fatalf("step %d is %T, not %T", i, p.Steps[i], s)
	}
	return s
}

// TestStepKinds: each step kind has its own type, in kind order, and the
// header reaches every type.
func TestStepKinds(t *testing.T) {
	steps := everyStep()
	types := map[string]bool{}
	for i, s := range steps {
		if want := StepKind(i + 1); s.Kind() != want {
			t.Errorf("%T: kind %v, want %v", s, s.Kind(), want)
		}
		if s.Header().Name == "" {
			t.Errorf("%T: no header", s)
		}
		types[fmt.Sprintf("%T", s)] = true
	}
	if len(types) != len(steps) || len(steps) != len(stepKindNames)-1 {
		t.Errorf("%d types for %d steps and %d kinds", len(types), len(steps), len(stepKindNames)-1)
	}
}

// TestStepJSON: every kind of step encodes as testdata/steps.golden says,
// indented and with HTML escaping off. The golden file was written from
// the struct Step had before it became an interface: the JSON form of a
// plan did not change.
func TestStepJSON(t *testing.T) {
	steps := everyStep()
	var out bytes.Buffer
	j, err := json.MarshalIndent(steps, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out.Write(j)
	out.WriteString("\n")
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	for _, s := range steps {
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "testdata/steps.golden", out.Bytes())
}
