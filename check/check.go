// Package check checks an encoding description together with the card
// profiles it names, without a card (docs/dsc.md, ProfileParameters;
// docs/cpf.md, reserved variables): the description's own diagnostics (dsc),
// the profile's errors at positions in the .cpf file (cpf), and whether what
// the description hands the profile (ProfileParameters, the PIN keys that
// fill SEC_PIN1, SEC_PIN2, SEC_PUK and SEC_OP) matches what the profile uses
// and assigns.
//
// `cardwright check` and the desktop app's windows share it. The package is
// pure: it reads referenced files only from the fs.FS it is given.
package check

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

// Options tune Description and Profile.
type Options struct {
	// Platform, if set, is the target of the PKCS11Library* keys.
	Platform dsc.Platform
	// Models map card models beyond the built-in ones to dialects
	// (cpf.Config.Models).
	Models map[string]string
	// ConfigErr, if not nil, is why the configuration's card models are
	// missing from Models; every profile checked gets a warning saying so.
	ConfigErr error
	// MissingFiles is how a referenced file absent from the files is
	// reported (dsc.CheckOptions.MissingFiles).
	MissingFiles dsc.Severity
	// Display, if set, names a referenced file in diagnostics (e.g. its
	// path on disk); nil: the name as referenced.
	Display func(name string) string
}

// Description checks the description name/src with the files it references
// (nil: none) and returns its model (nil when it does not parse) and every
// diagnostic of the description and its card profile, sorted.
func Description(name string, src []byte, files fs.FS, opts Options) (*dsc.Description, dsc.Diagnostics) {
	d, diags := dsc.Load(name, src, dsc.CheckOptions{Platform: opts.Platform, Files: files, MissingFiles: opts.MissingFiles})
	diags = append(diags, chipProfile(d, files, opts)...)
	diags.Sort()
	return d, diags
}

// Profile compiles a lone profile name/src with the card models of opts and
// returns it (nil when it has errors) and its diagnostics.
func Profile(name string, src []byte, opts Options) (*cpf.Program, dsc.Diagnostics) {
	var diags dsc.Diagnostics
	if opts.ConfigErr != nil {
		diags = append(diags, dsc.Diagnostic{Pos: dsc.Pos{File: name}, Severity: dsc.SeverityWarning,
			Msg: "configuration not read, built-in card models only: " + opts.ConfigErr.Error()})
	}
	prog, err := cpf.Compile(name, src, cpf.Config{Models: opts.Models})
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

// pinKey is a description key that fills a reserved profile secret.
type pinKey struct {
	variable string
	key      string // the key's name in docs/dsc.md
	value    func(s *dsc.Settings) *dsc.Value
}

var pinKeys = []pinKey{
	{dsc.ProfileVariable.PIN1, "PIN", func(s *dsc.Settings) *dsc.Value { return s.PIN }},
	{dsc.ProfileVariable.PIN2, "SignPIN", func(s *dsc.Settings) *dsc.Value { return s.SignPIN }},
	{dsc.ProfileVariable.PUK, "InitialPUK", func(s *dsc.Settings) *dsc.Value { return s.InitialPUK }},
	{dsc.ProfileVariable.OP, "Operator_Pin", func(s *dsc.Settings) *dsc.Value { return s.OperatorPIN }},
}

func pinKeyFor(variable string) *pinKey {
	for i := range pinKeys {
		if pinKeys[i].variable == variable {
			return &pinKeys[i]
		}
	}
	return nil
}

func given(v *dsc.Value) bool { return v != nil && v.Kind != dsc.ValueEmpty }

// chipProfile checks the profile d names, when files holds it (a missing
// one is reported by dsc), and matches it with d.
func chipProfile(d *dsc.Description, files fs.FS, opts Options) dsc.Diagnostics {
	if d == nil || files == nil || !given(d.Settings.ChipProfile) {
		return nil
	}
	s := &d.Settings
	profile := s.ChipProfile.Text
	src, err := fs.ReadFile(files, profile)
	if err != nil {
		return nil
	}
	name := profile
	if opts.Display != nil {
		name = opts.Display(profile)
	}
	desc := filepath.Base(d.Name) // the description's name is a path of the OS
	prog, diags := Profile(name, src, opts)
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
		if pinKeyFor(strings.ToUpper(n)) != nil {
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
		k := pinKeyFor(in.Name)
		switch {
		case k == nil:
			errorf(cpfPos(in.Pos), "%s is never assigned and no description key gives it: assign it in the profile, e.g. %s = SECRANDOM(8)", in.Name, in.Name)
		case !given(k.value(s)):
			errorf(cpfPos(in.Pos), "%s is never assigned in the profile and %s has no %s key to give it", in.Name, desc, k.key)
		}
	}

	// PIN keys the profile assigns itself, and literal PINs shorter than
	// the profile's minlen.
	for _, k := range pinKeys {
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
