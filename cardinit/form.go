package cardinit

import (
	"strings"

	"github.com/cardwright/cardwright/dsc"
)

// Kind is how the form asks for a field's value.
type Kind uint8

const (
	// Text is a line of text.
	Text Kind = iota
	// Secret is masked: a PIN, PUK or PKCS#12 password.
	Secret
	// Param is a card-profile parameter: typed as text and base64-encoded
	// for the job, or typed as base64 with the raw switch.
	Param
	// Bool is a check box.
	Bool
	// Number is an integer.
	Number
	// Data is binary data carried base64-encoded (a PKCS#12, a
	// certificate list); the form loads it from a file.
	Data
)

// Field is one input of the form.
type Field struct {
	Name    string // as declared
	Kind    Kind
	Default string         // from [Fields]
	Uses    []dsc.FieldUse // where the description refers to it
	Output  bool           // the job also writes it back
}

// UsedBy names the keys that use the field, for the form's hint
// ("PIN, ClearFields").
func (f Field) UsedBy() string {
	var keys []string
	seen := map[string]bool{}
	for _, u := range f.Uses {
		if !seen[u.Key] {
			seen[u.Key] = true
			keys = append(keys, u.Key)
		}
	}
	return strings.Join(keys, ", ")
}

// form derives the inputs from the description's fields: each field is
// asked for unless the description only writes it; a field with several
// uses takes the most careful kind (a PIN anywhere is masked).
func form(d *dsc.Description) (inputs []Field, outputs []string) {
	for _, f := range d.Fields {
		uses := d.Uses(f.Name)
		fl := Field{Name: f.Name, Default: f.Default, Uses: uses}
		in := len(uses) == 0 // a field nothing uses is still the job's to give (portals send all)
		rank := -1
		for _, u := range uses {
			k, r, input := kindOf(u.Role)
			if u.Role == dsc.RoleOutput {
				fl.Output = true
			}
			in = in || input
			if r > rank {
				fl.Kind, rank = k, r
			}
		}
		if fl.Output {
			outputs = append(outputs, f.Name)
		}
		if in {
			inputs = append(inputs, fl)
		}
	}
	return inputs, outputs
}

// kindOf is the form kind of a role, its rank (higher wins when a field
// has several uses) and whether the role reads a value from the job.
func kindOf(r dsc.FieldRole) (Kind, int, bool) {
	switch r {
	case dsc.RolePIN, dsc.RolePassword:
		return Secret, 5, true
	case dsc.RoleCleared:
		return Text, 0, false // ClearFields says nothing about the value's kind
	case dsc.RoleData:
		return Data, 4, true
	case dsc.RoleProfileParam:
		return Param, 3, true
	case dsc.RoleBool:
		return Bool, 2, true
	case dsc.RoleNumber:
		return Number, 1, true
	case dsc.RoleOutput:
		return Text, 0, false
	}
	return Text, 0, true
}
