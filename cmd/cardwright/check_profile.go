package main

import (
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cardwright/cardwright/cpf"
	"github.com/cardwright/cardwright/dsc"
)

// A description's card profile (ChipProfile) is checked with it: the
// profile's own errors are reported at positions in the .cpf file, and
// what the description hands the profile (ProfileParameters, the PIN keys
// that fill SEC_PIN1, SEC_PIN2, SEC_PUK and SEC_OP) is matched against what
// the profile uses and assigns (docs/dsc.md, ProfileParameters; docs/cpf.md,
// reserved variables).

// compileProfile compiles a profile with the card models of opts and
// returns its diagnostics; the program is nil when it has errors.
func compileProfile(name string, src []byte, opts checkOptions) (*cpf.Program, dsc.Diagnostics) {
	var diags dsc.Diagnostics
	if opts.configErr != nil {
		diags = append(diags, dsc.Diagnostic{Pos: dsc.Pos{File: name}, Severity: dsc.SeverityWarning,
			Msg: "configuration not read, built-in card models only: " + opts.configErr.Error()})
	}
	prog, err := cpf.Compile(name, src, cpf.Config{Models: opts.models})
	if err == nil {
		return prog, diags
	}
	list, ok := err.(cpf.ErrorList)
	if !ok {
		list = cpf.ErrorList{{File: name, Msg: err.Error()}}
	}
	for _, e := range list {
		diags = append(diags, dsc.Diagnostic{Pos: dsc.Pos{File: e.File, Line: e.Pos.Line, Col: e.Pos.Col}, Severity: dsc.SeverityError, Msg: e.Msg})
	}
	return nil, diags
}

// profilePINKey is a description key that fills a reserved profile secret.
type profilePINKey struct {
	variable string
	key      string // the key's name in docs/dsc.md
	value    func(s *dsc.Settings) *dsc.Value
}

var profilePINKeys = []profilePINKey{
	{dsc.ProfileVariable.PIN1, "PIN", func(s *dsc.Settings) *dsc.Value { return s.PIN }},
	{dsc.ProfileVariable.PIN2, "SignPIN", func(s *dsc.Settings) *dsc.Value { return s.SignPIN }},
	{dsc.ProfileVariable.PUK, "InitialPUK", func(s *dsc.Settings) *dsc.Value { return s.InitialPUK }},
	{dsc.ProfileVariable.OP, "Operator_Pin", func(s *dsc.Settings) *dsc.Value { return s.OperatorPIN }},
}

func profilePINKeyFor(variable string) *profilePINKey {
	for i := range profilePINKeys {
		if profilePINKeys[i].variable == variable {
			return &profilePINKeys[i]
		}
	}
	return nil
}

func given(v *dsc.Value) bool { return v != nil && v.Kind != dsc.ValueEmpty }

// checkChipProfile checks the profile d names, when files holds it (a
// missing one is reported by dsc), and matches it with d. display turns
// the profile's name into the path printed in its positions.
func checkChipProfile(d *dsc.Description, files fs.FS, display func(string) string, opts checkOptions) dsc.Diagnostics {
	if d == nil || files == nil || !given(d.Settings.ChipProfile) {
		return nil
	}
	s := &d.Settings
	profile := s.ChipProfile.Text
	src, err := fs.ReadFile(files, profile)
	if err != nil {
		return nil
	}
	name := display(profile)
	desc := filepath.Base(d.Name)
	prog, diags := compileProfile(name, src, opts)
	if prog == nil {
		return diags
	}
	at := func(p cpf.Pos) string { return fmt.Sprintf("%s:%d:%d", name, p.Line, p.Col) }
	cpfPos := func(p cpf.Pos) dsc.Pos { return dsc.Pos{File: name, Line: p.Line, Col: p.Col} }
	errorf := func(p dsc.Pos, format string, a ...any) {
		diags = append(diags, dsc.Diagnostic{Pos: p, Severity: dsc.SeverityError, Msg: fmt.Sprintf(format, a...)})
	}

	used := map[string]bool{} // profile parameters the profile uses
	for _, in := range prog.Inputs() {
		if !in.Secret {
			used[in.Name] = true
		}
	}
	assigned := prog.Assigned()

	// What the description passes.
	params := map[string]bool{} // field names as declared
	for _, it := range s.ProfileParameters.Items() {
		f := d.Field(it.Text)
		if f == nil {
			continue // dsc reports it
		}
		n := f.Name
		params[n] = true
		if profilePINKeyFor(strings.ToUpper(n)) != nil {
			continue // the four PIN variables: dsc reports them
		}
		if isProfileSecret(n) {
			errorf(it.Pos, "ProfileParameters: %s is a secret variable of profile %s; a profile parameter cannot set it", n, profile)
			continue
		}
		if a := foldMatch(assigned, n); a != "" {
			p, _ := prog.Assignment(a)
			errorf(it.Pos, "ProfileParameters: profile %s assigns %s itself (%s); it may not be set from a field", profile, a, at(p))
			continue
		}
		if !used[n] && foldMatchSet(used, n) == "" {
			diags = append(diags, dsc.Diagnostic{Pos: it.Pos, Severity: dsc.SeverityWarning,
				Msg: fmt.Sprintf("ProfileParameters: profile %s does not use %s; its value is ignored", profile, n)})
		}
	}

	// What the profile expects.
	for _, in := range prog.Inputs() {
		if !in.Secret {
			if params[in.Name] {
				continue
			}
			msg := fmt.Sprintf("%s is a profile parameter (used, never assigned), but ProfileParameters of %s does not pass it", in.Name, desc)
			if m := foldMatchSet(params, in.Name); m != "" {
				msg += fmt.Sprintf(" (it passes %s: profile variables are case-sensitive)", m)
			}
			errorf(cpfPos(in.Pos), "%s", msg)
			continue
		}
		k := profilePINKeyFor(in.Name)
		switch {
		case k == nil:
			errorf(cpfPos(in.Pos), "%s is never assigned and no description key gives it: assign it in the profile, e.g. %s = SECRANDOM(8)", in.Name, in.Name)
		case !given(k.value(s)):
			errorf(cpfPos(in.Pos), "%s is never assigned in the profile and %s has no %s key to give it", in.Name, desc, k.key)
		}
	}

	// PIN keys the profile assigns itself, and literal PINs shorter than
	// the profile's minlen.
	for _, k := range profilePINKeys {
		v := k.value(s)
		if !given(v) {
			continue
		}
		if p, ok := prog.Assignment(k.variable); ok {
			errorf(v.Pos, "%s: profile %s assigns %s itself (%s); the description's value would collide with it", v.Key, profile, k.variable, at(p))
			continue
		}
		if v.Kind != dsc.ValueLiteral {
			continue
		}
		for _, c := range prog.Credentials() {
			if c.Value == k.variable && len(v.Text) < c.MinLen {
				// The length only: the literal is a PIN.
				errorf(v.ValPos, "%s: a literal of %d characters; credential %s of profile %s (%s) needs minlen=%d", v.Key, len(v.Text), c.Name, profile, at(c.Pos), c.MinLen)
			}
		}
	}
	return diags
}

// isProfileSecret reports the reserved SEC_* variables of docs/cpf.md
// (variables are case-sensitive).
func isProfileSecret(name string) bool {
	switch name {
	case "SEC_PIN1", "SEC_PIN2", "SEC_PIN3", "SEC_PUK", "SEC_PUK1", "SEC_PUK2", "SEC_OP", "SEC_MAN":
		return true
	}
	return false
}

// foldMatch returns the name in names equal to n without regard to case.
func foldMatch(names []string, n string) string {
	for _, m := range names {
		if strings.EqualFold(m, n) {
			return m
		}
	}
	return ""
}

// foldMatchSet returns a name of set that differs from n only in case.
func foldMatchSet(set map[string]bool, n string) string {
	for _, m := range slices.Sorted(maps.Keys(set)) {
		if m != n && strings.EqualFold(m, n) {
			return m
		}
	}
	return ""
}
