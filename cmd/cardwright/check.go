package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	pathpkg "path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/cardwright/cardwright/check"
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/cpf"
	"github.com/cardwright/cardwright/dsc"
)

// checkOptions are the flags of `cardwright check` that file checkers see.
type checkOptions struct {
	platform dsc.Platform
	json     bool
	// models are the card models beyond the built-in ones: the
	// configuration's [dialects] and --model.
	models map[string]string
	// configErr is why the configuration could not be read (profiles are
	// then checked with the built-in card models and a warning).
	configErr error
}

// packageOptions returns the options of package check for opts.
func (opts checkOptions) packageOptions(missing dsc.Severity, display func(string) string) check.Options {
	return check.Options{Platform: opts.platform, Models: opts.models, ConfigErr: opts.configErr, MissingFiles: missing, Display: display}
}

// checkReport is what a file checker returns: diagnostics (positions name
// the file as given on the command line) and, for --json, a value to print.
type checkReport struct {
	diags dsc.Diagnostics
	json  any
}

// fileCheckers maps a file extension (lower case) to its checker. Other
// file types (the card profile package's .cpf) add themselves here from
// their own file's init.
var fileCheckers = map[string]func(path string, data []byte, opts checkOptions) checkReport{
	".dsc": checkDSCFile,
	".dsz": checkDSZFile,
}

var checkCmd = &command{
	name:    "check",
	args:    "[--json] [--platform GOOS/GOARCH] [--model MODEL=DIALECT]... [--config FILE] FILE...",
	summary: "check encoding descriptions (.dsc, .dsz) and card profiles (.cpf) without touching a card",
	detail: `Checks .dsc, .dsz and .cpf files (a description with the card profile it names);
prints file:line:col: error|warning: message. With --json prints one JSON object
{"files": [...]}, one element per file in the order given (docs/dsc.md).
Exit status 0 without errors, 1 with errors, 2 on usage errors.`,
}

func init() {
	checkCmd.run = runCheck
	register(checkCmd)
}

func runCheck(_ context.Context, env *cmdEnv, args []string) int {
	fl := checkCmd.flags(env)
	asJSON := fl.Bool("json", false, "print the checked model and a plan with placeholder field values as JSON")
	plat := fl.String("platform", runtime.GOOS+"/"+runtime.GOARCH, "target platform GOOS/GOARCH, for the PKCS11Library* keys")
	var models cpfList
	fl.Var(&models, "model", "map a card model to a dialect for profiles: `MODEL=DIALECT`; repeatable, added to the configuration's [dialects]")
	cfgPath := fl.String("config", "", "configuration `FILE` for the card models of [dialects] (default: $CARDWRIGHT_CONFIG, then the standard locations)")
	if code, ok := fl.parse(args); !ok {
		return code
	}
	if fl.NArg() == 0 {
		return fl.usageError("no file given")
	}
	p, err := dsc.ParsePlatform(*plat)
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright check: %v\n", err)
		return exitUsage
	}
	opts := checkOptions{platform: p, json: *asJSON, models: map[string]string{}}
	cfg, err := config.Load(*cfgPath)
	switch {
	case err == nil:
		maps.Copy(opts.models, cfg.Dialects)
	case *cfgPath != "":
		fmt.Fprintf(env.stderr, "cardwright check: %v\n", err)
		return exitFailure
	default:
		opts.configErr = err
	}
	for _, m := range models {
		k, v, ok := strings.Cut(m, "=")
		if !ok || k == "" {
			fmt.Fprintf(env.stderr, "cardwright check: --model %q: want MODEL=DIALECT\n", m)
			return exitUsage
		}
		opts.models[k] = v
	}
	if err := (cpf.Config{Models: opts.models}).Validate(); err != nil {
		fmt.Fprintf(env.stderr, "cardwright check: %v\n", err)
		return exitUsage
	}
	for _, path := range fl.Args() {
		if _, ok := fileCheckers[strings.ToLower(filepath.Ext(path))]; !ok {
			fmt.Fprintf(env.stderr, "cardwright check: %s: unsupported file type (want %s)\n", path, checkerExts())
			return exitUsage
		}
	}
	var all dsc.Diagnostics
	var docs []any
	for _, path := range fl.Args() {
		data, err := os.ReadFile(path)
		if err != nil {
			d := dsc.Diagnostics{{Pos: dsc.Pos{File: path}, Msg: fmt.Sprintf("reading file: %v", unwrapPathError(err))}}
			all = append(all, d...)
			docs = append(docs, descriptionReport{File: path, Diagnostics: d})
			continue
		}
		r := fileCheckers[strings.ToLower(filepath.Ext(path))](path, data, opts)
		all = append(all, r.diags...)
		if r.json != nil {
			docs = append(docs, r.json)
		}
	}
	all.Sort()
	if opts.json {
		// One shape whatever the number of files: an object whose files
		// array has a report per file, in the order given.
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if docs == nil {
			docs = []any{}
		}
		if err := enc.Encode(checkJSON{Files: docs}); err != nil {
			fmt.Fprintf(env.stderr, "cardwright check: writing JSON: %v\n", err)
			return exitFailure
		}
	} else {
		for _, d := range all {
			fmt.Fprintln(env.stdout, d.String())
		}
	}
	if all.HasErrors() {
		return exitFailure
	}
	return exitOK
}

func checkerExts() string {
	exts := make([]string, 0, len(fileCheckers))
	for e := range fileCheckers {
		exts = append(exts, e)
	}
	sort.Strings(exts)
	return strings.Join(exts, ", ")
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// checkJSON is what check --json prints.
type checkJSON struct {
	Files []any `json:"files"`
}

// descriptionReport is the --json form of one checked description (and,
// with file and diagnostics only, of a file that could not be read).
type descriptionReport struct {
	File        string           `json:"file"`
	Diagnostics dsc.Diagnostics  `json:"diagnostics"`
	Description *dsc.Description `json:"description,omitempty"`
	Plan        *dsc.Plan        `json:"plan,omitempty"`
	PlanErrors  dsc.PlanErrors   `json:"plan_errors,omitempty"`
}

// checkDSCFile checks a bare .dsc: referenced files are looked for beside
// it and only warned about when absent (a server may send them per job).
func checkDSCFile(path string, data []byte, opts checkOptions) checkReport {
	dir := filepath.Dir(path)
	display := func(name string) string { return filepath.Join(dir, filepath.FromSlash(name)) }
	return checkDescription(path, data, os.DirFS(dir), display, dsc.SeverityWarning, opts)
}

// checkDSZFile checks a .dsz (zip or base64 zip): it must hold every file
// its description references.
func checkDSZFile(path string, data []byte, opts checkOptions) checkReport {
	b, err := dsc.OpenDSZ(data)
	if err != nil {
		return checkReport{diags: dsc.Diagnostics{{Pos: dsc.Pos{File: path}, Msg: err.Error()}},
			json: descriptionReport{File: path, Diagnostics: dsc.Diagnostics{{Pos: dsc.Pos{File: path}, Msg: err.Error()}}}}
	}
	display := func(name string) string { return path + "/" + pathpkg.Join(pathpkg.Dir(b.Name), name) }
	return checkDescription(path+"/"+b.Name, b.Description, b, display, dsc.SeverityError, opts)
}

// checkDescription checks a description and the card profile it names;
// display gives the path printed for a file of files.
func checkDescription(name string, data []byte, files fs.FS, display func(string) string, missing dsc.Severity, opts checkOptions) checkReport {
	d, diags := check.Description(name, data, files, opts.packageOptions(missing, display))
	r := checkReport{diags: diags}
	if !opts.json {
		return r
	}
	rep := descriptionReport{File: name, Diagnostics: diags, Description: d}
	if rep.Diagnostics == nil {
		rep.Diagnostics = dsc.Diagnostics{}
	}
	if !diags.HasErrors() {
		p, err := dsc.NewPlan(d, dsc.PlaceholderJob(opts.platform, files))
		if err != nil {
			rep.PlanErrors, _ = err.(dsc.PlanErrors)
		}
		rep.Plan = p
	}
	r.json = rep
	return r
}
