package cpf

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/iso7816"
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

// TestLifeCycleOnMemcard runs the golden life-cycle profile on the
// project's card and checks the states with independent APDUs: SELECT
// answers 6283 for the deactivated DF and 6285 for the terminated one
// (ISO/IEC 7816-4 §5.6), the deactivated DF is activated again only with
// its activate= credential, and the terminated one stays terminated.
func TestLifeCycleOnMemcard(t *testing.T) {
	_, gc := readGolden(t, "testdata/golden/lifecycle.txtar")
	prog, err := Compile("lifecycle.cpf", gc.profile, Config{})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := prog.Prepare(Params{})
	if err != nil {
		t.Fatal(err)
	}
	card := memcard.New(memcard.Config{})
	if _, err := plan.Execute(context.Background(), card); err != nil {
		t.Fatal(err)
	}
	sw := func(c iso7816.Command) uint16 {
		t.Helper()
		b, err := c.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		r, err := card.Transmit(b)
		if err != nil || len(r) < 2 {
			t.Fatalf("%X: %X %v", b, r, err)
		}
		return uint16(r[len(r)-2])<<8 | uint16(r[len(r)-1])
	}
	tests := []struct {
		what string
		cmd  iso7816.Command
		want uint16
	}{
		{"select the deactivated DF", iso7816.SelectPath(true, 0x5016), 0x6283},
		{"select the terminated DF", iso7816.SelectPath(true, 0x5017), 0x6285},
		{"select INFO", iso7816.SelectPath(true, 0x2F00), 0x9000},
		{"select MF", iso7816.SelectMF(), 0x9000},
		{"activate SIG without the PUK", iso7816.ActivateFile(0x5016), 0x6982},
		{"terminate UNSOLD again", iso7816.TerminateDF(0x5017), 0x6985},
		{"verify the PUK", iso7816.Verify(0x84, plan.Secrets["SEC_PUK"].Bytes()), 0x9000},
		{"select MF again", iso7816.SelectMF(), 0x9000},
		{"activate SIG with the PUK", iso7816.ActivateFile(0x5016), 0x9000},
		{"select SIG now", iso7816.SelectPath(true, 0x5016), 0x9000},
		{"select the terminated DF still", iso7816.SelectPath(true, 0x5017), 0x6285},
	}
	for _, tc := range tests {
		if got := sw(tc.cmd); got != tc.want {
			t.Errorf("%s: SW %04X, want %04X", tc.what, got, tc.want)
		}
	}
}
