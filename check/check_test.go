package check

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/cardwright/cardwright/dsc"
)

const desc = "[Fields]\nHolder=\n[Description]\nInitToken=true\nChipProfile=p.cpf\nProfileParameters=Holder\nPIN=#12345678\n"

// A profile error is reported at its position in the .cpf file, named as
// Display names it; a description and profile that agree give nothing.
func TestDescription(t *testing.T) {
	clean := "CardModel 'ISO7816'\nCreatePin PIN1 value=SEC_PIN1 minlen=6\nMasterFile\nCreateEf EFHOLDER id=0x5001 maxsize=auto read=always\nEndfile\nFile Dynamic EFHOLDER\ndata = Holder\nEndfile\nCreateFiles()\n"
	opts := Options{MissingFiles: dsc.SeverityError, Display: func(n string) string { return "jobs/" + n }}

	d, diags := Description("jobs/e.dsc", []byte(desc), fstest.MapFS{"p.cpf": {Data: []byte(clean)}}, opts)
	if d == nil || len(diags) != 0 {
		t.Fatalf("clean: description %v, diagnostics %v", d != nil, diags)
	}

	// A second PIN the description gives no value for.
	bad := strings.Replace(clean, "MasterFile\n", "CreatePin PIN2 value=SEC_PIN2\nMasterFile\n", 1)
	_, diags = Description("jobs/e.dsc", []byte(desc), fstest.MapFS{"p.cpf": {Data: []byte(bad)}}, opts)
	want := "jobs/p.cpf:3:22: error: SEC_PIN2 is never assigned in the profile and e.dsc has no SignPIN key to give it"
	if len(diags) != 1 || diags[0].String() != want {
		t.Fatalf("diagnostics:\n%v\nwant\n%s", diags, want)
	}
}

// A lone profile's syntax error is positioned in it.
func TestProfile(t *testing.T) {
	prog, diags := Profile("p.cpf", []byte("CardModel 'ISO7816'\nCreatePin\n"), Options{})
	if prog != nil || len(diags) == 0 || !diags.HasErrors() || diags[0].Pos.File != "p.cpf" || diags[0].Pos.Line != 2 {
		t.Fatalf("program %v, diagnostics %v", prog != nil, diags)
	}
}
