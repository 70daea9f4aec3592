// Package agent serves card jobs to web portals over a local WebSocket (and
// the Card-SDK-style POST /CardJob), with the security checks of
// docs/protocol.md ("Security checks"), a journal that keeps results until
// the portal has them, and structured logs that never hold a secret. It
// reaches card readers and tokens only through the interfaces declared here
// (Runner, ReaderSource, Approver, CertService); cmd/cardwright wires the
// real ones.
package agent

import (
	"context"
	"strings"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/runner"
)

// Runner executes one card job to the end: *runner.Runner, or a fake in
// tests and in `serve --fake-runner`. It validates the whole job before any
// card I/O, serialises jobs per reader (a second job for a card that is
// already in use ends at once with api.CodeBusy), honours ctx cancellation
// (api.CodeCancelled), and reports progress. The agent gives each job the
// portal as its issuer (runner.Job.Issuer) and tells the portal when a local
// dialog is open (runner.Job.PromptNotify). Run never panics on bad input:
// every failure is a Result with a code.
//
// The job is the runner's own type: one in-process job and result type
// from the socket to the engine; the wire types in agent/api are the only
// others.
type Runner interface {
	Run(ctx context.Context, job *runner.Job, progress func(runner.Progress)) runner.Result
}

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ctx context.Context, job *runner.Job, progress func(runner.Progress)) runner.Result

// Run calls f.
func (f RunnerFunc) Run(ctx context.Context, job *runner.Job, progress func(runner.Progress)) runner.Result {
	return f(ctx, job, progress)
}

// isSecretOutput reports whether name is an output the job declared secret
// (field names compare case-insensitively, as in descriptions).
func isSecretOutput(job *runner.Job, name string) bool {
	for _, s := range job.SecretOutputs {
		if strings.EqualFold(s, name) {
			return true
		}
	}
	return false
}

// ReaderSource lists readers and reports reader and card events.
type ReaderSource interface {
	Readers(ctx context.Context) ([]api.Reader, error)
	// Watch calls fn for each event until ctx ends, one call at a time.
	// ev is an api.ReaderEvent or api.CardEvent with Type set and ID
	// empty, or WatchSynced. A watch may begin by reporting the current
	// state (an added event per reader, an inserted event per card
	// present); the agent sends subscribers only what differs from the
	// reader list they were given.
	Watch(ctx context.Context, fn func(ev any)) error
}

// WatchSynced is the event a ReaderSource's Watch passes once it has
// reported the current state, when it begins with it. A reader or card
// that the reader list showed and that state lacks went away between the
// list and the watch: the agent reports it removed. Without WatchSynced
// only additions and changed cards made in between are reported.
type WatchSynced struct{}

// Approver asks the local user whether a new origin may use the agent. The
// code is shown both in the page and in the dialog. Headless agents have no
// Approver: origins come from configuration only.
type Approver interface {
	Approve(ctx context.Context, origin, code string) (bool, error)
}

// CertService serves certificates, sign and authenticate. origin is the
// connection's checked Origin header, never a value the page chose: the PIN
// dialog names it and authenticate binds it into the token. Without a
// CertService the agent answers those requests with not_supported.
type CertService interface {
	Certificates(ctx context.Context, origin string, req *api.Certificates) (*api.CertificateList, error)
	Sign(ctx context.Context, origin string, req *api.Sign) (*api.Signature, error)
	Authenticate(ctx context.Context, origin string, req *api.Authenticate) (*api.Authentication, error)
}
