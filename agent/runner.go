// Package agent serves card jobs to web portals over a local WebSocket (and
// the Card-SDK-style POST /CardJob), with the security checks of
// spec/agent.md, a journal that keeps results until the portal has them,
// and structured logs that never hold a secret. It reaches card readers and
// tokens only through the interfaces declared here (Runner, ReaderSource,
// Approver, CertService); cmd/cardwright wires the real ones.
package agent

import (
	"context"
	"crypto/x509"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/secret"
)

// Runner executes one card job to the end. It validates the whole job before
// any card I/O, serialises jobs per reader (a second job for a card that is
// already in use ends at once with api.CodeBusy), honours ctx cancellation
// (api.CodeCancelled), and reports through hooks. Run never panics on bad
// input: every failure is a Result with a code.
type Runner interface {
	Run(ctx context.Context, job *Job, hooks Hooks) Result
}

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ctx context.Context, job *Job, hooks Hooks) Result

// Run calls f.
func (f RunnerFunc) Run(ctx context.Context, job *Job, hooks Hooks) Result { return f(ctx, job, hooks) }

// Job is a validated-for-transport job as the runner receives it. Field
// values are secrets by type: a field may carry a PIN, and nothing in the
// agent knows which, so none of them can reach a log by accident.
type Job struct {
	ID            string            // the agent's journal key (not the client's request id)
	Description   []byte            // .dsc text; empty when DSZ is set
	DSZ           []byte            // .dsz zip; empty when Description is set
	Files         map[string][]byte // referenced .cpf/.apdu files
	Fields        map[string]secret.Value
	SecretOutputs []string // output fields the portal accepts secrets in
	Reader        string   // explicit reader; empty lets the runner choose
	Headless      bool     // no local dialogs: jobs needing one fail with prompt_unavailable
}

// IsSecretOutput reports whether name is an output the job declared secret
// (field names compare case-insensitively, as in descriptions).
func (j *Job) IsSecretOutput(name string) bool {
	for _, s := range j.SecretOutputs {
		if equalFold(s, name) {
			return true
		}
	}
	return false
}

// Hooks are how a running job talks back. Every hook may be nil.
type Hooks struct {
	// Progress reports step n of total (n counts from 1).
	Progress func(step string, n, total int)
	// Prompt tells the portal that the local user is being asked for
	// something (state api.PromptWaiting) or has answered (api.PromptDone).
	Prompt func(kind, state, reader string)
	// Issue asks the portal to issue a certificate for req.CSR and waits for
	// its answer (or ctx). It returns *api.JobError with api.CodeIssuerError
	// when the portal refuses or goes away.
	Issue CertificateIssuer
}

// CertificateIssuer sends a PKCS#10 request to the portal and waits for the
// certificate or PKCS#12.
type CertificateIssuer func(ctx context.Context, req CertRequest) (*CertAnswer, error)

// CertRequest is one mid-job certificate request.
type CertRequest struct {
	Application string // [Application_X] id
	Template    string // CertTempl
	CSR         []byte // DER PKCS#10
	KeyArchival bool   // the server generates and archives the key: answer is a PKCS#12
}

// CertAnswer is the portal's answer: a certificate with its chain, or a
// PKCS#12 and its password.
type CertAnswer struct {
	Certificate *x509.Certificate
	Chain       []*x509.Certificate
	PKCS12      []byte
	Password    secret.Value
}

// Result is how a job ended. Fields are plain outputs; Secrets holds only
// outputs the job declared secret (the agent drops the whole result with
// api.CodeSecretOutput if a runner breaks that rule).
type Result struct {
	Fields  map[string]string
	Secrets map[string]secret.Value
	Err     *api.JobError // nil on success
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

// CertService serves certificates, sign and authenticate (the certfilter
// issue). Without one the agent answers those requests with not_supported.
type CertService interface {
	Certificates(ctx context.Context, req *api.Certificates) (*api.CertificateList, error)
	Sign(ctx context.Context, req *api.Sign) (*api.Signature, error)
	Authenticate(ctx context.Context, req *api.Authenticate) (*api.Authentication, error)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
