// Package selftest is the station self-test (spec/station.md "Self-test"):
// readers present as configured, each card's ATR mapped to a dialect,
// PKCS#11 modules that load and see their tokens, a key-generation timing
// per token, the journal writable, the port free (or served by this agent),
// the TLS certificate valid. `cardwright selftest` prints its Report;
// `/v1/health?full=1` returns it as JSON.
//
// Each check is a small function over the narrow ports declared here
// (Readers, Modules, the journal probe), so it runs with fakes in unit tests
// and with the real adapters (selftest/pcscprobe, selftest/p11probe) on a
// station; main wires them.
package selftest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cardwright/cardwright/secret"
)

// Status is a check's outcome.
type Status string

// A check is ok, a warning (the station works, someone should look), a
// failure (the station must not run jobs), or skipped (not applicable, or
// not asked for).
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Check is one line of the report.
type Check struct {
	Name     string        `json:"name"`
	Status   Status        `json:"status"`
	Detail   string        `json:"detail,omitempty"`
	Duration time.Duration `json:"-"`
}

// MarshalJSON writes the duration in milliseconds.
func (c Check) MarshalJSON() ([]byte, error) {
	type plain Check
	return json.Marshal(struct {
		plain
		DurationMS float64 `json:"duration_ms"`
	}{plain(c), float64(c.Duration.Microseconds()) / 1000})
}

// Report is the list of checks in the order they ran.
type Report struct {
	Checks []Check
}

// OK reports whether no check failed (warnings and skips allowed).
func (r *Report) OK() bool {
	for _, c := range r.Checks {
		if c.Status == Fail {
			return false
		}
	}
	return true
}

// Failed names the checks that failed.
func (r *Report) Failed() []string {
	var out []string
	for _, c := range r.Checks {
		if c.Status == Fail {
			out = append(out, c.Name)
		}
	}
	return out
}

func (r *Report) count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// Summary is the report's last line.
func (r *Report) Summary() string {
	warn := ""
	if n := r.count(Warn); n > 0 {
		warn = fmt.Sprintf(", %d warning%s", n, plural(n))
	}
	skip := ""
	if n := r.count(Skip); n > 0 {
		skip = fmt.Sprintf(", %d skipped", n)
	}
	if r.OK() {
		return fmt.Sprintf("self-test passed: %d checks%s%s", len(r.Checks), warn, skip)
	}
	f := r.Failed()
	return fmt.Sprintf("self-test FAILED: %d of %d checks failed (%s)%s%s", len(f), len(r.Checks), strings.Join(f, "; "), warn, skip)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// MarshalJSON writes {"status": "ok"|"fail", "checks": [...], "summary": "..."}.
func (r *Report) MarshalJSON() ([]byte, error) {
	st := "ok"
	if !r.OK() {
		st = "fail"
	}
	checks := r.Checks
	if checks == nil {
		checks = []Check{}
	}
	return json.Marshal(struct {
		Status  string  `json:"status"`
		Checks  []Check `json:"checks"`
		Summary string  `json:"summary"`
	}{st, checks, r.Summary()})
}

// words are the status words of the text report: plain words a technician
// reads on any console, the failures in capitals.
var words = map[Status]string{OK: "ok", Warn: "warn", Fail: "FAIL", Skip: "skip"}

// WriteText writes the report as aligned columns (status, check, detail,
// time) and the summary line.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range r.Checks {
		d := ""
		if c.Duration > 0 && c.Status != Skip {
			d = FormatDuration(c.Duration)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", words[c.Status], c.Name, oneLine(c.Detail), d)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, r.Summary())
	return err
}

// FormatDuration writes a check's time: tenths of a millisecond below
// 100 ms, whole milliseconds up to 10 s, then tenths of a second.
func FormatDuration(d time.Duration) string {
	switch {
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	case d < 10*time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Keygen is the key pair the key-generation timing makes.
type Keygen string

// Key types for Options.Keygen.
const (
	KeygenEC      Keygen = "ec"      // EC P-256: fractions of a second on cards
	KeygenRSA2048 Keygen = "rsa2048" // seconds to minutes on cards
	KeygenOff     Keygen = "off"
)

// ParseKeygen reads the --keygen flag.
func ParseKeygen(s string) (Keygen, error) {
	switch k := Keygen(strings.ToLower(s)); k {
	case KeygenEC, KeygenRSA2048, KeygenOff:
		return k, nil
	}
	return "", fmt.Errorf("keygen %q: want ec, rsa2048 or off", s)
}

// TokenRef is a token the configuration names ([tokens]: reader pattern =
// module, label).
type TokenRef struct {
	Reader string            // the reader pattern, for the report
	Match  func(string) bool // the pattern; nil: Reader is an exact name
	Module string
	Label  string
}

func (r TokenRef) matches(reader string) bool {
	if r.Match == nil {
		return r.Reader == reader
	}
	return r.Match(reader)
}

// Options is what the self-test checks against: the station's
// configuration, and where it runs.
type Options struct {
	Expect   []string               // [readers] expect: exact names
	Skip     func(string) bool      // [readers] skip
	Dialects map[string]string      // [dialects]; keys that are ATR patterns map cards
	Modules  []string               // [pkcs11] module entries (paths or file names)
	Tokens   []TokenRef             // [tokens]
	Allowed  func(path string) bool // the module allow-list

	Keygen Keygen       // "" is KeygenEC
	PIN    secret.Value // user PIN for the key generation; zero: none (tokens that need a login are skipped)
	Token  string       // only this token label gets the key generation ("" every token)

	JournalDir string
	// InAgent: the self-test runs inside the agent (/v1/health?full=1),
	// which holds the journal and serves the port.
	InAgent bool

	// Busy, if set, reports whether a job holds a reader
	// (runner.Engine.Busy, inside the agent): a token that stands for the
	// card in a busy reader ([tokens], or its slot description names the
	// reader) is not touched; its key generation is skipped "busy with a
	// job". Nil outside the agent: the self-test asks the agent at Listen
	// for its running jobs instead (Run).
	Busy func(reader string) bool
	// TryLock, if set, takes a token's lock without waiting
	// (p11store.Store.TryLockToken, inside the agent) around its key
	// generation, so that certificate, sign and softtoken operations and
	// the probe never interleave; a held lock skips the token.
	TryLock func(module, serial string) (unlock func(), ok bool)

	Listen          string // [server] listen
	TLSCert, TLSKey string

	Now func() time.Time // nil: time.Now
}

// Ports are the hardware and files the checks reach through. A nil port
// skips its checks.
type Ports struct {
	Readers Readers
	Modules Modules
	// Journal opens the journal read-only (journal.Probe).
	Journal func(dir string) error
}

// Run runs every check and returns the report. It stops early only when
// ctx ends (the rest are then reported as skipped).
func Run(ctx context.Context, o Options, p Ports) *Report {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Keygen == "" {
		o.Keygen = KeygenEC
	}
	if o.Skip == nil {
		o.Skip = func(string) bool { return false }
	}
	inUse := readersInUse(ctx, o)
	r := &Report{}
	add := func(cs ...Check) { r.Checks = append(r.Checks, cs...) }
	timed := func(f func() []Check) {
		if err := ctx.Err(); err != nil {
			return
		}
		start := time.Now()
		cs := f()
		if len(cs) == 1 && cs[0].Duration == 0 {
			cs[0].Duration = time.Since(start)
		}
		add(cs...)
	}
	var readers []string
	timed(func() []Check {
		cs, names := checkReaders(ctx, o, p.Readers)
		readers = names
		return cs
	})
	timed(func() []Check { return checkModules(ctx, o, p.Modules, readers, inUse) })
	timed(func() []Check { return []Check{checkJournalFolder(o)} })
	timed(func() []Check { return []Check{checkJournalFile(o, p.Journal)} })
	timed(func() []Check { return []Check{checkPort(ctx, o)} })
	timed(func() []Check { return []Check{checkTLS(o)} })
	if err := ctx.Err(); err != nil {
		add(Check{Name: "self-test", Status: Fail, Detail: fmt.Sprintf("stopped before every check ran: %v", err)})
	}
	return r
}

// readersInUse says whether a reader's card is in use by a job: "" free,
// else why. Inside the agent that is o.Busy. Outside it (the CLI), a
// running agent's readers cannot be seen from this process: when the agent
// at o.Listen has jobs running, every reader counts as in use, so only
// tokens that stand for no reader get the key generation.
func readersInUse(ctx context.Context, o Options) func(string) string {
	switch {
	case o.Busy != nil:
		return func(r string) string {
			if o.Busy(r) {
				return "busy with a job"
			}
			return ""
		}
	case o.InAgent || o.Keygen == KeygenOff:
		return func(string) string { return "" }
	}
	if a := agentAt(ctx, o.Listen, o.TLSCert != ""); a.Jobs > 0 {
		why := fmt.Sprintf("the running agent (%s) has %d job%s running and this process cannot see which readers they hold: run again when it is idle, or ask the agent (/v1/health?full=1&keygen=1)", a.Agent, a.Jobs, plural(a.Jobs))
		return func(string) string { return why }
	}
	return func(string) string { return "" }
}

// ErrNeedsLogin: the token generates keys only after a user login, and no
// PIN was given (Token.Keygen).
var ErrNeedsLogin = errors.New("needs a login")
