package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/iotime"
	"github.com/cardwright/cardwright/runner/pcscreaders"
	"github.com/cardwright/cardwright/secret"
	"golang.org/x/term"
)

var encodeCmd = &command{
	name:    "encode",
	args:    "(--dsc FILE | --dsz FILE) [flags]",
	summary: "run one encoding job (.dsc/.dsz) on a card",
	detail:  encodeDetail,
}

func init() {
	encodeCmd.run = runEncode
	register(encodeCmd)
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

const encodeDetail = `Runs one encoding job with the job runner: validates the description, its
files and the field values (no card I/O before), chooses the card, and runs
the job's steps. Progress goes to stderr, the result to stdout.

Field values: --field NAME=VALUE, --field NAME=@FILE (the file's content,
trailing newline removed) or --field-env NAME=VAR (an environment variable;
keeps PINs out of the process list). Fields marked --secret-field receive
secrets (decrypted PINs) and are printed as <secret> unless --show-secrets.
A PIN the description takes from a dialog (!FROM_USER_DIALOG_…) is asked for
on the terminal.

Exit status: 0 the job succeeded, 1 it failed (the result says why), 2 usage.`

type encodeResult struct {
	Reader  string            `json:"reader,omitempty"`
	Fields  map[string]string `json:"fields"`
	Secrets map[string]string `json:"secrets,omitempty"`
	Error   *api.JobError     `json:"error,omitempty"`
	Timing  *encodeTiming     `json:"timing,omitempty"`
}

type encodeTiming struct {
	TotalMS  float64 `json:"total_ms"`
	CardMS   float64 `json:"card_io_ms"`
	APDUs    int64   `json:"apdus"`
	TokenMS  float64 `json:"pkcs11_ms"`
	Calls    int64   `json:"pkcs11_calls"`
	IssuerMS float64 `json:"issuer_ms"`
	OursMS   float64 `json:"ours_ms"`
}

func runEncode(ctx context.Context, env *cmdEnv, args []string) int {
	fs := encodeCmd.flags(env)
	var (
		dscFile    = fs.String("dsc", "", "encoding description `FILE` (.dsc)")
		dszFile    = fs.String("dsz", "", "encoding description container `FILE` (.dsz zip, or its base64)")
		filesDir   = fs.String("files", "", "`DIR` holding the .cpf/.apdu files of a .dsc (default: the .dsc's directory)")
		reader     = fs.String("reader", "", "reader `NAME` (default: the one card present, or the job's selection)")
		issuerCA   = fs.String("issuer-ca", "", "test CA `DIR` that issues the job's certificates (created when empty)")
		cfgFile    = fs.String("config", "", "configuration `FILE` (default: $"+config.EnvVar+", then the standard locations)")
		asJSON     = fs.Bool("json", false, "print the result as JSON")
		showSecret = fs.Bool("show-secrets", false, "print secret outputs in clear")
		timing     = fs.Bool("timing", false, "report time spent in card I/O, PKCS#11, the issuer and the runner")
		fields     multiFlag
		fieldEnvs  multiFlag
		secretOuts multiFlag
	)
	fs.Var(&fields, "field", "field value `NAME=VALUE` or NAME=@FILE (repeatable)")
	fs.Var(&fieldEnvs, "field-env", "field value from an environment variable, `NAME=VAR` (repeatable)")
	fs.Var(&secretOuts, "secret-field", "output field `NAME` that may receive secrets (repeatable)")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	usage := func(msg string) int { return fs.usageError("%s", msg) }
	if fs.NArg() > 0 {
		return usage("unexpected arguments: " + strings.Join(fs.Args(), " "))
	}
	if (*dscFile == "") == (*dszFile == "") {
		return usage("give exactly one of --dsc and --dsz")
	}
	job := &runner.Job{Fields: map[string]secret.Value{}, SecretOutputs: secretOuts, Reader: *reader}
	for _, f := range fields {
		name, val, ok := strings.Cut(f, "=")
		if !ok || name == "" {
			return usage(fmt.Sprintf("--field %q: want NAME=VALUE", f))
		}
		if strings.HasPrefix(val, "@") {
			b, err := os.ReadFile(val[1:])
			if err != nil {
				fmt.Fprintf(env.stderr, "cardwright encode: reading field %s: %v\n", name, err)
				return exitUsage
			}
			val = strings.TrimRight(string(b), "\r\n")
		}
		job.Fields[name] = secret.New(val)
	}
	for _, f := range fieldEnvs {
		name, v, ok := strings.Cut(f, "=")
		if !ok || name == "" || v == "" {
			return usage(fmt.Sprintf("--field-env %q: want NAME=VAR", f))
		}
		job.Fields[name] = secret.New(env.getenv(v))
	}
	var err error
	if *dscFile != "" {
		job.Name = filepath.Base(*dscFile)
		if job.Description, err = os.ReadFile(*dscFile); err != nil {
			fmt.Fprintf(env.stderr, "cardwright encode: %v\n", err)
			return exitFailure
		}
		dir := *filesDir
		if dir == "" {
			dir = filepath.Dir(*dscFile)
		}
		job.Files = os.DirFS(dir)
	} else {
		job.Name = filepath.Base(*dszFile)
		if job.DSZ, err = os.ReadFile(*dszFile); err != nil {
			fmt.Fprintf(env.stderr, "cardwright encode: %v\n", err)
			return exitFailure
		}
	}

	cfg, err := config.Load(*cfgFile)
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright encode: %v\n", err)
		return exitFailure
	}
	// The station's audit log (spec/station.md "Audit"): no job without
	// its record, so a log that does not open stops encode here.
	auditLog, err := openCLIAudit(env, cfg, "encode") // audit.go
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright encode: %v\n", err)
		return exitFailure
	}
	if auditLog != nil {
		defer auditLog.Close()
	}
	clock := &iotime.Clock{}
	readers := pcscreaders.New(clock)
	defer readers.Close()
	r, err := newRunner(cfg, readers, &termPrompter{env: env}, clock)
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright encode: %v\n", err)
		return exitFailure
	}
	book, err := openPace(env, cfg)
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright encode: %v\n", err)
		return exitFailure
	}
	if book.Discarded != nil {
		fmt.Fprintf(env.stderr, "cardwright encode: warning: %v\n", book.Discarded)
	}
	defer book.Save()
	r.Engine.Pace = book
	if *issuerCA != "" {
		ca, err := issuer.OpenLocalCA(*issuerCA)
		if err != nil {
			fmt.Fprintf(env.stderr, "cardwright encode: %v\n", err)
			return exitFailure
		}
		r.Deps.Issuer = iotime.Issuer(ca, clock)
	}
	start := time.Now()
	res := r.Run(ctx, job, func(p runner.Progress) {
		if p.ETAKnown {
			fmt.Fprintf(env.stderr, "[%d/%d] %s (%s, about %s left)\n", p.N, p.Total, p.Step, p.Reader, p.ETA.Round(100*time.Millisecond))
			return
		}
		fmt.Fprintf(env.stderr, "[%d/%d] %s (%s)\n", p.N, p.Total, p.Step, p.Reader)
	})
	total := time.Since(start)
	if auditLog != nil {
		auditLog.Record(job, &res, start, start.Add(total))
	}
	out := encodeResult{Reader: res.Reader, Fields: res.Fields, Error: res.Err}
	if len(res.Secrets) > 0 {
		out.Secrets = map[string]string{}
		for k, v := range res.Secrets {
			if *showSecret {
				out.Secrets[k] = v.Reveal()
			} else {
				out.Secrets[k] = secret.Masked
			}
		}
	}
	if *timing {
		ms := func(ns int64) float64 { return float64(ns) / 1e6 }
		spent := clock.Totals()
		t := &encodeTiming{TotalMS: ms(int64(total)), CardMS: ms(int64(spent.Card)), APDUs: spent.APDUs,
			TokenMS: ms(int64(spent.Token)), Calls: spent.Calls, IssuerMS: ms(int64(spent.Issuer))}
		t.OursMS = t.TotalMS - t.CardMS - t.TokenMS - t.IssuerMS
		out.Timing = t
		fmt.Fprintf(env.stderr, "time: total %.1f ms = card I/O %.1f ms (%d APDUs) + PKCS#11 %.1f ms (%d calls) + issuer %.1f ms + runner %.1f ms\n",
			t.TotalMS, t.CardMS, t.APDUs, t.TokenMS, t.Calls, t.IssuerMS, t.OursMS)
	}
	printEncodeResult(env.stdout, out, *asJSON)
	if res.Err != nil {
		return exitFailure
	}
	return exitOK
}

func printEncodeResult(w io.Writer, r encodeResult, asJSON bool) {
	if asJSON {
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		e.Encode(r)
		return
	}
	if r.Error != nil {
		where := r.Error.Step
		if r.Error.Key != "" {
			where += ", " + r.Error.Key
		}
		if r.Error.File != "" {
			where += fmt.Sprintf(", %s:%d", r.Error.File, r.Error.Line)
		}
		fmt.Fprintf(w, "ProductionResult=error\nerror: %s: %s (%s)\n", r.Error.Code, r.Error.Message, where)
	} else {
		fmt.Fprintln(w, "ProductionResult=ok")
	}
	if r.Reader != "" {
		fmt.Fprintf(w, "reader: %s\n", r.Reader)
	}
	var names []string
	for k := range r.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(w, "%s=%s\n", k, r.Fields[k])
	}
	names = names[:0]
	for k := range r.Secrets {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(w, "%s=%s\n", k, r.Secrets[k])
	}
}

// termPrompter asks for PINs on the terminal: dialog 1 once, a new PIN
// (dialogs 2 and 3) twice, dialog 3's current PIN first. Without a
// terminal it reads one line per value from standard input.
type termPrompter struct {
	env *cmdEnv
}

// Ask implements prompt.Prompter.
func (p *termPrompter) Ask(ctx context.Context, r prompt.Request) (prompt.Answer, error) {
	if r.Kind.Fields() == 0 {
		return prompt.Answer{}, fmt.Errorf("PIN pad entry (%s): %w", r.Kind, prompt.ErrUnavailable)
	}
	var a prompt.Answer
	var err error
	if r.Kind == prompt.ThreeFields {
		if a.Current, err = p.value(r, "current "+r.Label, false); err != nil {
			return prompt.Answer{}, err
		}
	}
	label := r.Label
	if r.Kind != prompt.OneField {
		label = "new " + r.Label
	}
	if a.PIN, err = p.value(r, label, r.Kind == prompt.TwoFields || r.Kind == prompt.ThreeFields); err != nil {
		a.Wipe()
		return prompt.Answer{}, err
	}
	return a, nil
}

// value reads one value, twice (compared) when twice is set and a
// terminal asks.
func (p *termPrompter) value(r prompt.Request, label string, twice bool) (secret.Value, error) {
	f, ok := p.env.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return p.fromLine(string(r.Kind), label)
	}
	ask := func(question string) (secret.Value, error) {
		fmt.Fprintf(p.env.stderr, "%s: ", question)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(p.env.stderr)
		if err != nil {
			return secret.Value{}, fmt.Errorf("reading the %s: %w", label, err)
		}
		v := secret.FromBytes(b)
		clear(b)
		if v.IsZero() {
			return v, prompt.ErrRefused
		}
		return v, nil
	}
	v, err := ask(fmt.Sprintf("%s for the card in %s", label, r.Reader))
	if err != nil || !twice {
		return v, err
	}
	again, err := ask("the same " + label + " again")
	defer again.Wipe()
	if err != nil {
		v.Wipe()
		return secret.Value{}, err
	}
	if !v.Equal(again) {
		v.Wipe()
		return secret.Value{}, fmt.Errorf("the two entries of the %s differ: %w", label, prompt.ErrRefused)
	}
	return v, nil
}

// fromLine reads one line from a non-terminal stdin (scripts and tests);
// end of input refuses.
func (p *termPrompter) fromLine(kind, label string) (secret.Value, error) {
	if p.env.stdin == nil {
		return secret.Value{}, prompt.ErrUnavailable
	}
	fmt.Fprintf(p.env.stderr, "%s (%s): reading from standard input\n", label, kind)
	br, ok := p.env.stdin.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(p.env.stdin)
		p.env.stdin = br
	}
	line, err := br.ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		if err != nil {
			return secret.Value{}, prompt.ErrRefused
		}
		return secret.Value{}, prompt.ErrRefused
	}
	return secret.New(line), nil
}
