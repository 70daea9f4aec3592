package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"strings"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/dsc"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/secret"
)

// Job is one encoding job as a portal, the CLI or a station sends it.
type Job struct {
	Name        string // description file name, for messages ("job.dsc")
	Description []byte // .dsc text; empty when DSZ is set
	DSZ         []byte // .dsz zip (or its base64); empty when Description is set
	// Files holds the referenced .cpf/.apdu files of a bare .dsc (nil: none;
	// a .dsz brings its own).
	Files fs.FS
	// Fields are the job's field values. They are secrets by type: any of
	// them may be a PIN.
	Fields map[string]secret.Value
	// SecretOutputs are the output fields the caller accepts secrets in
	// (encrypted datapool fields); decrypted PINs go only there.
	SecretOutputs []string
	Reader        string // explicit reader; empty lets the runner choose
	// ExpectSerial, if set, is the ICCSN (GET DATA serial) of the card
	// the job is for: another card in the chosen reader ends the job with
	// card_changed before any step (a station that checked the card
	// before the job, as batch does, and a card swapped since).
	ExpectSerial []byte
	// Origin is the page's origin as the agent checked it, named in the
	// local PIN dialogs; empty for a local program (CLI, station).
	Origin string

	// PromptNotify, if set, is told when a local dialog opens
	// (api.PromptWaiting) and closes (api.PromptDone): the agent tells the
	// portal that the user is being asked.
	PromptNotify func(kind, state, reader string)
	// Issuer, if set, replaces Deps.Issuer for this job (the agent asks
	// the portal that sent the job).
	Issuer issuer.Issuer
	// Transcript, if set, records the APDUs sent to the card, secrets
	// masked, into Result.Transcript, as a dry run does
	// (DryResult.Transcript). Off by default: portals do not get it, and
	// it costs memory.
	Transcript bool
}

// Files is an in-memory fs.FS of a job's referenced files (flat names, as
// a portal sends them).
type Files map[string][]byte

// Open implements fs.FS.
func (f Files) Open(name string) (fs.File, error) {
	b, ok := f[name]
	if !ok || !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{name: name, r: bytes.NewReader(b)}, nil
}

type memFile struct {
	name string
	r    *bytes.Reader
}

func (f *memFile) Stat() (fs.FileInfo, error) { return memInfo{path.Base(f.name), f.r.Size()}, nil }
func (f *memFile) Read(b []byte) (int, error) { return f.r.Read(b) }
func (f *memFile) Close() error               { return nil }

type memInfo struct {
	name string
	size int64
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o444 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

// Runner validates and runs jobs: the description is checked, the plan made
// with the job's values (dsc.NewPlan), the plan built into steps against the
// dependencies (Build) — all before any card I/O — then executed by the
// engine. It is safe for concurrent use; jobs on different readers run in
// parallel.
type Runner struct {
	Engine   *Engine
	Deps     Deps
	Platform dsc.Platform // zero: this process's GOOS/GOARCH
}

// Run executes one job to the end and always returns a Result.
func (r *Runner) Run(ctx context.Context, job *Job, progress func(Progress)) Result {
	plan, sel, steps, f := r.validate(job)
	if f != nil {
		return Result{Fields: map[string]string{}, Secrets: map[string]secret.Value{}, Err: f.JobError()}
	}
	var res Result
	if sel.AllCards {
		res = r.Engine.Retrieve(ctx, sel, retrieveField(plan))
	} else {
		res = r.Engine.exec(ctx, sel, steps, progress, job)
	}
	// ClearFields never leave the runner, even from a failed job.
	for _, f := range plan.Clear {
		deleteFold(res.Fields, f)
		for k, v := range res.Secrets {
			if strings.EqualFold(k, f) {
				v.Wipe()
				delete(res.Secrets, k)
			}
		}
	}
	return res
}

// Validate is what Run does with a job before any card I/O: the
// description is checked, the plan made with the job's values and built
// against the runner's dependencies (with job.Issuer when set). It returns
// the *Failure such a Run would end with before touching a card, nil when
// the job would start. It does no card or token I/O and shows no dialog.
func (r *Runner) Validate(job *Job) error {
	if _, _, _, f := r.validate(job); f != nil {
		return f
	}
	return nil
}

// validate is the part of Run before any card I/O (plan, Build): Run,
// Validate and DryRun share it.
func (r *Runner) validate(job *Job) (*dsc.Plan, Selection, []Step, *Failure) {
	plan, compiled, err := r.plan(job)
	if err != nil {
		return nil, Selection{}, nil, failure(err)
	}
	deps := r.Deps
	deps.compiled = compiled
	if job.Issuer != nil {
		deps.Issuer = job.Issuer
	}
	sel, steps, err := Build(plan, deps)
	if err != nil {
		return nil, Selection{}, nil, failure(err)
	}
	sel.Reader = job.Reader
	return plan, sel, steps, nil
}

func retrieveField(p *dsc.Plan) string {
	for _, s := range p.Steps {
		if s, ok := s.(*dsc.RetrieveTokensStep); ok {
			return s.Retrieve.Field
		}
	}
	return ""
}

// failure turns a validation error into a *Failure.
func failure(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	return fail(api.CodeInternal, err, "validating the job")
}

// Plan parses and checks the job's description and makes its plan with the
// job's values. Errors are *Failure with a validation code and the position
// of the first problem; no card is touched.
func (r *Runner) Plan(job *Job) (*dsc.Plan, error) {
	plan, _, err := r.plan(job)
	return plan, err
}

// plan is Plan, also returning the card profiles it compiled on the way
// (dsc asks which variables each assigns), for Build to use: one compile of
// each profile per job.
func (r *Runner) plan(job *Job) (*dsc.Plan, map[string]compiledProfile, error) {
	name, src, files, err := openJob(job)
	if err != nil {
		return nil, nil, err
	}
	platform := r.Platform
	if platform.IsZero() {
		platform = dsc.Platform{OS: runtime.GOOS, Arch: runtime.GOARCH}
	}
	// A missing file is left to NewPlan, which reports it as such
	// (missing_file), for a .dsz as for a bare .dsc.
	desc, diags := dsc.Load(name, src, dsc.CheckOptions{Platform: platform, Files: files, MissingFiles: dsc.SeverityWarning})
	if diags.HasErrors() || desc == nil {
		errs := diags.Errors()
		f := fail(api.CodeInvalidDescription, diags.Err(), "the description does not check")
		f.Step = "validate"
		if len(errs) > 0 {
			f.File, f.Line, f.Column = errs[0].Pos.File, errs[0].Pos.Line, errs[0].Pos.Col
			f.Message = errs[0].Msg
			f.Err = nil
			if len(errs) > 1 {
				f.Message += fmt.Sprintf(" (and %d more)", len(errs)-1)
			}
		}
		return nil, nil, f
	}
	fields := map[string]string{}
	for k, v := range job.Fields {
		fields[k] = v.Reveal()
	}
	secretOut := map[string]bool{}
	for _, s := range job.SecretOutputs {
		if desc.Field(s) == nil {
			// A misspelt name would leave the real field plain.
			return nil, nil, &Failure{Code: api.CodeInvalidField, Step: "validate", File: name,
				Message: fmt.Sprintf("secret names field %q, which the description does not declare in [Fields]", s)}
		}
		secretOut[s] = true
	}
	compiled := map[string]compiledProfile{}
	assigns := func(name string, src []byte) ([]string, error) {
		// A profile that does not compile assigns nothing here: Build
		// reports it with its positions (invalid_profile).
		if r.Deps.Profiles == nil {
			return nil, nil
		}
		p, err := r.Deps.Profiles.Compile(name, src)
		compiled[name] = compiledProfile{src: src, p: p, err: err}
		if err != nil {
			return nil, nil
		}
		return p.Assigned(), nil
	}
	plan, err := dsc.NewPlan(desc, dsc.Job{Fields: fields, Secret: secretOut, Platform: platform, Files: files,
		ProfileAssigns: assigns})
	clear(fields)
	if err != nil {
		return nil, nil, planFailure(err)
	}
	return plan, compiled, nil
}

// planFailure maps dsc plan errors to the wire codes.
func planFailure(err error) *Failure {
	code := api.CodeInvalidDescription
	switch {
	case errors.Is(err, dsc.ErrSecretOutput):
		code = api.CodeSecretOutput
	case errors.Is(err, dsc.ErrInvalidField):
		code = api.CodeInvalidField
	case errors.Is(err, dsc.ErrMissingFile):
		code = api.CodeMissingFile
	case errors.Is(err, dsc.ErrPlatform):
		code = api.CodePlatformUnsupported
	}
	f := &Failure{Code: code, Message: err.Error(), Step: "validate"}
	var pes dsc.PlanErrors
	var pe *dsc.PlanError
	if errors.As(err, &pes) && len(pes) > 0 {
		pe = pes[0]
	} else if !errors.As(err, &pe) {
		pe = nil
	}
	if pe != nil {
		// The first error decides the code; the message lists them all.
		for _, k := range []struct {
			err  error
			code api.Code
		}{{dsc.ErrSecretOutput, api.CodeSecretOutput}, {dsc.ErrInvalidField, api.CodeInvalidField},
			{dsc.ErrMissingFile, api.CodeMissingFile}, {dsc.ErrPlatform, api.CodePlatformUnsupported},
			{dsc.ErrInvalidDescription, api.CodeInvalidDescription}} {
			if errors.Is(pe, k.err) {
				f.Code = k.code
				break
			}
		}
		f.Key, f.File, f.Line, f.Column = pe.Key, pe.Pos.File, pe.Pos.Line, pe.Pos.Col
	}
	return f
}

// openJob returns the description's name, text and files: from the .dsz
// when one is given, else the bare .dsc and job.Files.
func openJob(job *Job) (string, []byte, fs.FS, error) {
	if len(job.DSZ) == 0 {
		if len(job.Description) == 0 {
			return "", nil, nil, &Failure{Code: api.CodeInvalidDescription, Message: "the job has no description", Step: "validate"}
		}
		name := job.Name
		if name == "" {
			name = "job.dsc"
		}
		return name, job.Description, job.Files, nil
	}
	// The one .dsz opener (base64 or zip, size and path limits).
	b, err := dsc.OpenDSZ(job.DSZ)
	if err != nil {
		return "", nil, nil, &Failure{Code: api.CodeInvalidDescription, Message: "opening the .dsz", Err: err, Step: "validate"}
	}
	return path.Base(b.Name), b.Description, b, nil
}
