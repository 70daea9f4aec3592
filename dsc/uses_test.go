package dsc

import (
	"fmt"
	"strings"
	"testing"
)

func TestUses(t *testing.T) {
	src := `[Fields]
ICCSN=
PIN_FIELD=
HOLDER=
SERIAL=
ERASE=#true
LABEL=
P12=
P12PW=
UNUSED=

[Description]
iccsnfield=ICCSN
DeleteProfile=ERASE
ChipProfile=x.cpf
ProfileParameters=HOLDER
PIN=PIN_FIELD
InitialLabel=LABEL
ClearFields=PIN_FIELD

[Application_A]
CertTempl=DigitalSignature
CardSerialNumberField=SERIAL
Certificate=P12
P12PASSWORD=P12PW
`
	f, err := Parse("t.dsc", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := Check(f, CheckOptions{})
	if d == nil {
		t.Fatal("no model")
	}
	got := map[string]string{}
	for _, fl := range d.Fields {
		var parts []string
		for _, u := range d.Uses(fl.Name) {
			parts = append(parts, fmt.Sprintf("%s:%s@%d:%d", u.Key, u.Role, u.Pos.Line, u.Pos.Col))
		}
		got[fl.Name] = strings.Join(parts, " ")
	}
	want := map[string]string{
		"ICCSN":     "iccsnfield:output@13:12",
		"PIN_FIELD": "PIN:pin@17:5 ClearFields:cleared@19:13",
		"HOLDER":    "ProfileParameters:profile-parameter@16:19",
		"SERIAL":    "CardSerialNumberField:text@23:23",
		"ERASE":     "DeleteProfile:bool@14:15",
		"LABEL":     "InitialLabel:text@18:14",
		"P12":       "Certificate:data@24:13",
		"P12PW":     "P12PASSWORD:password@25:13",
		"UNUSED":    "",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("Uses(%s) = %q, want %q", k, got[k], w)
		}
	}
	if d.Uses("nope") != nil {
		t.Error("Uses of an undeclared field is not nil")
	}
	if u := d.Uses("pin_field"); len(u) != 2 {
		t.Errorf("Uses is not case-insensitive: %v", u)
	}
}
