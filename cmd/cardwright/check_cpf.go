package main

import (
	"github.com/cardwright/cardwright/dsc"
)

// `cardwright check FILE.cpf`: card profiles are checked by package cpf
// (syntax and every rule that needs no card), with the card models of the
// configuration's [dialects] and --model besides the built-in ones.
func init() {
	fileCheckers[".cpf"] = checkCPFFile
}

// profileReport is the --json form of one checked profile.
type profileReport struct {
	File        string          `json:"file"`
	Diagnostics dsc.Diagnostics `json:"diagnostics"`
}

func checkCPFFile(path string, data []byte, opts checkOptions) checkReport {
	_, diags := compileProfile(path, data, opts)
	r := checkReport{diags: diags}
	if opts.json {
		rep := profileReport{File: path, Diagnostics: diags}
		if rep.Diagnostics == nil {
			rep.Diagnostics = dsc.Diagnostics{}
		}
		r.json = rep
	}
	return r
}
