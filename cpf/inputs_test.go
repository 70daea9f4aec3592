package cpf

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/secret"
)

const inputsProfile = `CardModel 'ISO7816'
NAME = 'demo'
SEC_PIN2 = SECRANDOM(10)
CreatePin PIN1 value=SEC_PIN1 minlen=12 unblock=PUK
CreatePin PIN2 value=SEC_PIN2 minlen=10
CreatePin PUK value=SEC_PUK
MasterFile
CreateEf EFA id=0x5001 maxsize=auto read=always
CreateEf EFB id=0x5002 maxsize=64 read=PIN1
Endfile
File Dynamic EFA
data = HOLDER
Endfile
File Dynamic EFB
data = Holder
Endfile
CreateFiles()
`

func TestInputs(t *testing.T) {
	p, err := Compile("in.cpf", []byte(inputsProfile), Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Input{
		{Name: "SEC_PIN1", Pos: Pos{4, 22}, Secret: true},
		{Name: "SEC_PUK", Pos: Pos{6, 21}, Secret: true},
		{Name: "HOLDER", Pos: Pos{12, 8}},
		{Name: "Holder", Pos: Pos{15, 8}},
	}
	if got := p.Inputs(); !reflect.DeepEqual(got, want) {
		t.Errorf("Inputs:\n got %+v\nwant %+v", got, want)
	}
	if at, ok := p.Assignment("SEC_PIN2"); !ok || at != (Pos{3, 1}) {
		t.Errorf("Assignment(SEC_PIN2) = %v, %v", at, ok)
	}
	if _, ok := p.Assignment("name"); ok {
		t.Error("Assignment compares without case")
	}
	if got := p.Assigned(); !reflect.DeepEqual(got, []string{"NAME", "SEC_PIN2"}) {
		t.Errorf("Assigned = %q", got)
	}
	creds := p.Credentials()
	if len(creds) != 3 || creds[0].Name != "PIN1" || creds[0].Ref != 0x81 || creds[0].Value != "SEC_PIN1" || creds[0].MinLen != 12 || creds[2].Retries != 3 {
		t.Errorf("Credentials = %+v", creds)
	}
}

// TestStandIn: a trial Prepare before the job's PINs exist must accept a
// profile whose credentials need more than the usual 8 characters, and
// its plan must never reach a card.
func TestStandIn(t *testing.T) {
	p, err := Compile("in.cpf", []byte(inputsProfile), Config{})
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string][]byte{"HOLDER": []byte("Erika"), "Holder": []byte("Mustermann")}
	eight := map[string]secret.Value{"SEC_PIN1": secret.New("00000000"), "SEC_PUK": secret.New("00000000")}
	if _, err := p.Prepare(Params{Values: vals, Secrets: eight}); err == nil || !strings.Contains(err.Error(), "in.cpf:4:1: CreatePin PIN1: SEC_PIN1 has 8 characters, fewer than minlen=12") {
		t.Errorf("short secret without StandIn: %v", err)
	}
	plan, err := p.Prepare(Params{Values: vals, Secrets: eight, StandIn: true})
	if err != nil {
		t.Fatalf("StandIn: %v", err)
	}
	if _, err := plan.Execute(context.Background(), memcard.New(memcard.Config{})); !errors.Is(err, ErrStandIn) {
		t.Errorf("Execute of a stand-in plan: %v", err)
	}
	// Presence still counts: a missing secret is an error also in a trial.
	if _, err := p.Prepare(Params{Values: vals, Secrets: map[string]secret.Value{"SEC_PIN1": secret.New("x")}, StandIn: true}); err == nil || !strings.Contains(err.Error(), "SEC_PUK is neither assigned") {
		t.Errorf("missing SEC_PUK in a trial: %v", err)
	}
	// The real run with real PINs executes.
	real := map[string]secret.Value{"SEC_PIN1": secret.New("123456789012"), "SEC_PUK": secret.New("87654321")}
	plan, err = p.Prepare(Params{Values: vals, Secrets: real})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Execute(context.Background(), memcard.New(memcard.Config{})); err != nil {
		t.Errorf("Execute: %v", err)
	}
}
