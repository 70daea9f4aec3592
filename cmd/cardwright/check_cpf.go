package main

import (
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/cpf"
	"github.com/cardwright/cardwright/dsc"
)

// `cardwright check FILE.cpf`: card profiles are checked by package cpf
// (syntax and every rule that needs no card), with the card models of the
// configuration's [dialects] besides the built-in ones.
func init() {
	fileCheckers[".cpf"] = checkCPFFile
}

// profileReport is the --json form of one checked profile.
type profileReport struct {
	File        string          `json:"file"`
	Diagnostics dsc.Diagnostics `json:"diagnostics"`
}

func checkCPFFile(path string, data []byte, opts checkOptions) checkReport {
	var models map[string]string
	var diags dsc.Diagnostics
	if cfg, err := config.Load(""); err == nil {
		models = cfg.Dialects
	} else {
		diags = append(diags, dsc.Diagnostic{Pos: dsc.Pos{File: path}, Severity: dsc.SeverityWarning,
			Msg: "configuration not read, built-in card models only: " + err.Error()})
	}
	for _, e := range cpf.Check(path, data, models) {
		diags = append(diags, dsc.Diagnostic{Pos: dsc.Pos{File: e.File, Line: e.Pos.Line, Col: e.Pos.Col}, Severity: dsc.SeverityError, Msg: e.Msg})
	}
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
