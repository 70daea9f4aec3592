package main

import (
	"github.com/cardwright/cardwright/check"
	"github.com/cardwright/cardwright/cpf"
	"github.com/cardwright/cardwright/dsc"
)

// `cardwright check FILE.cpf`: card profiles are checked by package check (cpf)
// (syntax and every rule that needs no card), with the card models of the
// configuration's [dialects] and --model besides the built-in ones.
func init() {
	fileCheckers[".cpf"] = checkCPFFile
}

// profileReport is the --json form of one checked profile.
type profileReport struct {
	File        string          `json:"file"`
	Diagnostics dsc.Diagnostics `json:"diagnostics"`
	// For a profile without errors: its card model and dialect, what the
	// encoding description must give it, and its credentials.
	Model       string           `json:"model,omitempty"`
	Dialect     string           `json:"dialect,omitempty"`
	Inputs      []profileInput   `json:"inputs,omitempty"`
	Credentials []cpf.Credential `json:"credentials,omitempty"`
}

// profileInput is a cpf.Input with its position as "file:line:col".
type profileInput struct {
	Name   string  `json:"name"`
	Pos    dsc.Pos `json:"pos"`
	Secret bool    `json:"secret,omitempty"`
}

func checkCPFFile(path string, data []byte, opts checkOptions) checkReport {
	prog, diags := check.Profile(path, data, check.Options{Models: opts.models, ConfigErr: opts.configErr})
	r := checkReport{diags: diags}
	if opts.json {
		rep := profileReport{File: path, Diagnostics: diags}
		if rep.Diagnostics == nil {
			rep.Diagnostics = dsc.Diagnostics{}
		}
		if prog != nil {
			rep.Model, rep.Dialect, rep.Credentials = prog.Model, prog.Dialect.Name, prog.Credentials()
			for _, in := range prog.Inputs() {
				rep.Inputs = append(rep.Inputs, profileInput{Name: in.Name, Pos: dsc.Pos{File: path, Line: in.Pos.Line, Col: in.Pos.Col}, Secret: in.Secret})
			}
		}
		r.json = rep
	}
	return r
}
