package main

// audit.go: `cardwright audit verify|export` (spec/station.md "Audit") and
// the folder serve writes the audit log to.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/journal"
	"github.com/cardwright/cardwright/audit"
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/runner"
)

const auditFolderHelp = `The folder is --dir, else the configuration's [log] audit (--config FILE, else
$` + config.EnvVar + `, else the standard files), else "audit" in the journal folder.`

var (
	auditVerifyCmd = &command{
		name:    "verify",
		args:    "[--dir DIR] [--config FILE] [--anchor SEQ:HASH]...",
		summary: "check the audit log's hash chain: every record unchanged, none removed, inserted or reordered",
		detail: auditFolderHelp + `
Prints the records and files read, the first and last record, and each problem on a
line of its own (file:line: seq N: kind: what). Exit status 0 when the chain is whole
(an unfinished last line, a record cut off by a crash, is reported but allowed), 1
when a record was changed, removed, inserted or reordered or the folder cannot be
read. An anchor is a record's hash kept elsewhere (an earlier verify's "last" line,
the server's copy of an export); it catches records removed from the end and a chain
rewritten with recomputed hashes, which the files alone cannot show.`,
	}
	auditExportCmd = &command{
		name:    "export",
		args:    "[--dir DIR] [--config FILE] [--since SEQ] [--out FILE]",
		summary: "write the audit log's records as JSON lines, byte for byte, for the server",
		detail: auditFolderHelp + `
The lines are those of the log, hashes and all, so the receiver checks the chain
itself; --since starts at that seq (the export then begins with a prev the receiver
knows). An unfinished last line is left out.`,
	}
	auditCmd = &command{
		name:    "audit",
		summary: "check (verify) or export the station's audit log of jobs",
		subs:    []*command{auditVerifyCmd, auditExportCmd},
	}
)

func init() {
	auditVerifyCmd.run, auditExportCmd.run = runAuditVerify, runAuditExport
	register(auditCmd)
}

// auditFolder is where the audit log of cfg lives ("" when [log] audit is
// off): [log] audit, else audit in the journal folder.
func auditFolder(env *cmdEnv, cfg *config.Config) string {
	switch cfg.Audit {
	case "off":
		return ""
	case "":
		return filepath.Join(journalDir(env, cfg.Journal), "audit")
	}
	return cfg.Audit
}

// openAuditLog opens serve's audit log: nil when [log] audit is off.
func openAuditLog(env *cmdEnv, cfg *config.Config) (*audit.Log, error) {
	dir := auditFolder(env, cfg)
	if dir == "" {
		return nil, nil
	}
	l, err := audit.Open(dir, int64(cfg.AuditRotateMiB)<<20)
	if err != nil {
		return nil, fmt.Errorf("opening the audit log: %w", err)
	}
	return l, nil
}

// auditFlags are the flags verify and export share.
type auditFlags struct{ dir, config string }

func (a *auditFlags) define(fs *flagSet) {
	fs.StringVar(&a.dir, "dir", "", "the audit `folder` (default: [log] audit, else audit in the journal folder)")
	fs.StringVar(&a.config, "config", "", "configuration `file` (default: $"+config.EnvVar+", then the standard locations)")
}

// folder resolves the audit folder.
func (a *auditFlags) folder(env *cmdEnv) (string, error) {
	if a.dir != "" {
		return a.dir, nil
	}
	path := a.config
	if path == "" {
		path = env.getenv(config.EnvVar)
	}
	cfg, err := config.Load(path)
	if err != nil {
		return "", fmt.Errorf("loading configuration: %w", err)
	}
	dir := auditFolder(env, cfg)
	if dir == "" {
		return "", errors.New("[log] audit is off in the configuration: there is no audit log (name a folder with --dir)")
	}
	return dir, nil
}

// anchorList is the repeatable --anchor.
type anchorList []audit.Anchor

func (l *anchorList) String() string { return fmt.Sprint(*l) }
func (l *anchorList) Set(v string) error {
	a, err := audit.ParseAnchor(v)
	if err != nil {
		return err
	}
	*l = append(*l, a)
	return nil
}

func runAuditVerify(_ context.Context, env *cmdEnv, args []string) int {
	var a auditFlags
	var anchors anchorList
	fs := auditVerifyCmd.flags(env)
	a.define(fs)
	fs.Var(&anchors, "anchor", "a record's hash kept elsewhere, `SEQ:HASH` (repeatable): the chain must hold it")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	dir, err := a.folder(env)
	if err != nil {
		fmt.Fprintln(env.stderr, "cardwright audit verify:", err)
		return exitFailure
	}
	rep, err := audit.Verify(dir, anchors...)
	if err != nil {
		fmt.Fprintln(env.stderr, "cardwright audit verify:", err)
		return exitFailure
	}
	printAuditReport(env.stdout, dir, rep)
	if !rep.OK() {
		return exitFailure
	}
	return exitOK
}

// printAuditReport prints what verify found, for a person.
func printAuditReport(w io.Writer, dir string, rep *audit.Report) {
	files := "files"
	if len(rep.Files) == 1 {
		files = "file"
	}
	fmt.Fprintf(w, "audit log %s: %d records in %d %s\n", dir, rep.Records, len(rep.Files), files)
	if rep.First.Seq != 0 {
		fmt.Fprintf(w, "first: seq %d at %s\n", rep.First.Seq, rep.First.Time.UTC().Format(time.RFC3339))
	}
	if rep.Last.Seq != 0 {
		fmt.Fprintf(w, "last:  seq %d at %s (anchor %d:%s)\n", rep.Last.Seq, rep.Last.Time.UTC().Format(time.RFC3339), rep.Last.Seq, rep.Last.Hash)
	}
	bad := 0
	for _, p := range rep.Problems {
		if p.Kind != audit.Torn {
			bad++
		}
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(w, p.String())
	}
	switch {
	case bad == 0:
		fmt.Fprintln(w, "the chain is whole")
	case bad == 1:
		fmt.Fprintln(w, "1 problem: the chain is broken")
	default:
		fmt.Fprintf(w, "%d problems: the chain is broken\n", bad)
	}
}

func runAuditExport(_ context.Context, env *cmdEnv, args []string) int {
	var a auditFlags
	fs := auditExportCmd.flags(env)
	a.define(fs)
	since := fs.String("since", "", "the first `SEQ` to export (default: all)")
	out := fs.String("out", "", "write to `FILE` instead of stdout")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	var from uint64
	if *since != "" {
		n, err := strconv.ParseUint(*since, 10, 64)
		if err != nil || n == 0 {
			return fs.usageError("--since %q: want a seq (1, 2, …)", *since)
		}
		from = n
	}
	dir, err := a.folder(env)
	if err != nil {
		fmt.Fprintln(env.stderr, "cardwright audit export:", err)
		return exitFailure
	}
	if *out == "" {
		if _, err := audit.Export(dir, env.stdout, from); err != nil {
			fmt.Fprintln(env.stderr, "cardwright audit export:", err)
			return exitFailure
		}
		return exitOK
	}
	n, err := exportFile(dir, *out, from)
	if err != nil {
		fmt.Fprintln(env.stderr, "cardwright audit export:", err)
		return exitFailure
	}
	fmt.Fprintf(env.stdout, "%d records written to %s\n", n, *out)
	return exitOK
}

// exportFile writes the export to path through a temporary file, so a
// failed export leaves no half file behind.
func exportFile(dir, path string, since uint64) (int, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, fmt.Errorf("creating the export: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	n, err := audit.Export(dir, f, since)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, fmt.Errorf("writing the export: %w", err)
	}
	return n, nil
}

// auditSummary is the log line of an opened audit log.
func auditSummary(l *audit.Log) []any {
	seq, hash := l.Last()
	args := []any{"folder", l.Dir(), "last_seq", seq}
	if hash != "" {
		args = append(args, "last_hash", hash)
	}
	return args
}

// serveAudit opens serve's audit log and logs where it is (a record cut
// off by a crash as a warning); nil and a no-op when [log] audit is off.
func serveAudit(env *cmdEnv, cfg *config.Config, log *slog.Logger) (agent.AuditLog, func(), error) {
	l, err := openAuditLog(env, cfg)
	if err != nil {
		return nil, nil, err
	}
	if l == nil {
		log.Warn("audit log off ([log] audit = off): jobs are not recorded")
		return nil, func() {}, nil
	}
	if l.Torn > 0 {
		log.Warn("audit log: an unfinished last record (cut off by a crash before it was reported) was removed", "folder", l.Dir(), "bytes", l.Torn)
	}
	log.Info("audit log", auditSummary(l)...)
	return l, func() { l.Close() }, nil
}

// auditInterrupted appends the record of each job the journal found
// running at start (result interrupted, via ws or cardjob, no description
// digest: agent.InterruptedRecord). A record that cannot be written is
// logged as an error; the log's Err then refuses the agent's jobs.
func auditInterrupted(l agent.AuditLog, recs []journal.Record, log *slog.Logger) {
	if l == nil {
		return
	}
	for _, r := range recs {
		rec := agent.InterruptedRecord(r)
		if err := l.Append(rec); err != nil {
			log.Error("AUDIT RECORD NOT WRITTEN for a job interrupted by the previous run", "via", rec.Via, "origin", rec.Origin, "id", rec.Job, "reader", rec.Reader, "err", err)
			continue
		}
		log.Info("audit log: job interrupted by the previous run recorded", "via", rec.Via, "origin", rec.Origin, "id", rec.Job, "seq", rec.Seq)
	}
}

// cliAudit is the audit log of the jobs `cardwright encode` and `init-gui`
// run (via "cli"): the station's folder, shared with serve and batch
// (several processes may append). It implements cardinit.Auditor.
type cliAudit struct {
	log    *audit.Log
	cmd    string // "encode", "init-gui": for the error lines
	stderr io.Writer
}

// openCLIAudit opens the audit log for encode and init-gui: nil when
// [log] audit is off. An error means the station cannot record jobs: the
// command refuses to start (a station never encodes without a record).
func openCLIAudit(env *cmdEnv, cfg *config.Config, cmd string) (*cliAudit, error) {
	l, err := openAuditLog(env, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: no job runs without its audit record; fix the folder, or name another with [log] audit (or set [log] audit = off)", err)
	}
	if l == nil {
		return nil, nil
	}
	return &cliAudit{log: l, cmd: cmd, stderr: env.stderr}, nil
}

// Err is nil while the log takes records.
func (a *cliAudit) Err() error { return a.log.Err() }

// Record appends the record of a job that ran. A failure is printed as an
// error; the job's result stands (the card was encoded or not as it says).
func (a *cliAudit) Record(job *runner.Job, res *runner.Result, started, finished time.Time) {
	if err := a.log.Append(agent.Report("cli", "", "", job, res, started, finished)); err != nil {
		fmt.Fprintf(a.stderr, "cardwright %s: error: the job ran (its result stands) but the station's audit log has no record of it: %v\n", a.cmd, err)
	}
}

func (a *cliAudit) Close() error { return a.log.Close() }
