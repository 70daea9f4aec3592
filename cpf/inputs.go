package cpf

import (
	"maps"
	"slices"
	"strings"
)

// Input is a variable a profile uses without assigning it: a profile
// parameter (the description's ProfileParameters supply it) or a reserved
// secret the description fills (SEC_PIN1 from PIN, …).
type Input struct {
	Name   string
	Pos    Pos  // the first use
	Secret bool // a reserved SEC_* variable
}

// Inputs returns what the profile expects from the encoding description,
// in the order of first use. cardwright check matches them against the
// description's ProfileParameters and PIN keys.
func (p *Program) Inputs() []Input {
	out := make([]Input, 0, len(p.free))
	for name, at := range p.free {
		out = append(out, Input{Name: name, Pos: at, Secret: isReservedSecret(name)})
	}
	slices.SortFunc(out, func(a, b Input) int {
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line - b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col - b.Pos.Col
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// Assignment returns where the profile assigns name (compared with case,
// as variables are).
func (p *Program) Assignment(name string) (Pos, bool) {
	if v := p.vars[name]; v != nil {
		return v.pos, true
	}
	return Pos{}, false
}

// Assigned returns the names of every variable the profile assigns, sorted.
func (p *Program) Assigned() []string { return slices.Sorted(maps.Keys(p.vars)) }

// Credential is a CreatePin statement as the checker resolved it.
type Credential struct {
	Name    string `json:"name"`
	Pos     Pos    `json:"pos"`
	Ref     byte   `json:"ref"`
	Value   string `json:"value"`             // the secret variable holding its value
	MinLen  int    `json:"min_len,omitempty"` // 0: no minimum
	Retries int    `json:"retries"`
}

// Credentials returns the profile's CreatePin statements in order.
func (p *Program) Credentials() []Credential {
	out := make([]Credential, 0, len(p.pinOrder))
	for _, pin := range p.pinOrder {
		c := Credential{Name: pin.name, Pos: pin.pos, Ref: pin.ref, MinLen: pin.minLen, Retries: pin.retries}
		if pin.value != nil {
			c.Value = pin.value.Name
		}
		out = append(out, c)
	}
	return out
}
