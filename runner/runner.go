// Package runner executes card jobs: it validates a whole job before any card
// I/O, chooses the card, holds it in a transaction for the job, runs the
// steps in the order of docs/dsc.md ("Order of a job"), and ends every job
// with a Result that carries a stable code on failure.
//
// It reaches hardware only through the interfaces declared here (Readers,
// Conn, Tokens, Prompter, CertificateIssuer); runner/pcscreaders and
// runner/p11tokens implement them over pcsc and p11, cmd/cardwright chooses
// them, tests use in-memory fakes.
package runner

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/secret"
)

// Readers lists PC/SC readers and connects to the card in one.
type Readers interface {
	// List returns the readers and whether each has a card.
	List(ctx context.Context) ([]ReaderInfo, error)
	// Connect opens the card in the named reader (exclusive or shared).
	Connect(ctx context.Context, reader string) (Conn, error)
}

// ReaderInfo describes one reader.
type ReaderInfo struct {
	Name    string
	Present bool
	ATR     []byte
}

// Conn is a connected card. Transmit follows iso7816.Card.
type Conn interface {
	Transmit(cmd []byte) ([]byte, error)
	ATR() []byte
	// Begin and End bracket a PC/SC transaction (SCardBeginTransaction).
	Begin() error
	End() error
	// Serial reads the card's ICCSN (GET DATA 5A or the token serial).
	Serial() ([]byte, error)
	Close() error
}

// Readers and Conn report a card that left the reader with an error wrapping
// iso7816.ErrCardRemoved, and a reader or PC/SC service that went away with
// one wrapping iso7816.ErrReaderGone: the one word for each meaning, which
// iso7816 declares because every Card and every adapter below the runner
// reaches it (runner/pcscreaders wraps pcsc's errors so, keeping them and
// the scard.Error in the chain).

// Progress is one progress event.
type Progress struct {
	Step     string
	N, Total int
	Reader   string
	// ETA is the expected work time of this step and the ones after it,
	// from what Engine.Pace learned of the card model; ETAKnown is false
	// until it knows every remaining kind of step.
	ETA      time.Duration
	ETAKnown bool
}

// Failure is the error a step returns to end a job with a stable code.
type Failure struct {
	Code    api.Code
	Message string
	Step    string
	Key     string
	File    string
	Line    int
	Column  int
	Err     error
	Done    []string // steps that completed before this one (what the card holds)
}

func (f *Failure) Error() string {
	if f.Err != nil {
		return fmt.Sprintf("%s: %s: %v", f.Code, f.Message, f.Err)
	}
	return string(f.Code) + ": " + f.Message
}

func (f *Failure) Unwrap() error { return f.Err }

// JobError converts a failure to the wire form.
func (f *Failure) JobError() *api.JobError {
	msg := f.Message
	if f.Err != nil {
		msg += ": " + f.Err.Error()
	}
	if len(f.Done) > 0 {
		msg += " (done before: " + strings.Join(f.Done, ", ") + ")"
	}
	return &api.JobError{Code: f.Code, Message: msg, Step: f.Step, Key: f.Key, File: f.File, Line: f.Line, Column: f.Column}
}

func fail(code api.Code, err error, format string, args ...any) *Failure {
	return &Failure{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// Result is how a job ended.
type Result struct {
	Reader  string
	Fields  map[string]string       // plain outputs
	Secrets map[string]secret.Value // outputs the job declared secret
	// Transcript is set when the job asked for it (Job.Transcript): the
	// commands sent to the job's card, up to the failure for a job that
	// failed, one line each as in DryResult.Transcript, secret data
	// masked. PKCS#11 token operations are not in it: the module talks
	// to its token itself.
	Transcript []string
	APDUs      int // command APDUs in Transcript (GET RESPONSE and chained parts included)
	// ATR and Serial identify the card the job ran on (the ICCSN as read
	// when the job began); nil when no card was reached.
	ATR, Serial []byte
	// Steps is how long each step took, in order, the engine's own
	// "select" first and "finish" last; a failed job ends with the step
	// that failed (OK false).
	Steps []StepTime
	Err   *api.JobError // nil on success
}

// lockSet serialises jobs per reader. A second job for a busy reader ends at
// once with api.CodeBusy (the busy policy, docs/runner.md): a portal retries,
// a station queues per reader itself; waiting silently would hide a stuck card.
type lockSet struct {
	mu   sync.Mutex
	busy map[string]bool
}

func (l *lockSet) tryLock(reader string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy == nil {
		l.busy = map[string]bool{}
	}
	if l.busy[reader] {
		return false
	}
	l.busy[reader] = true
	return true
}

func (l *lockSet) unlock(reader string) {
	l.mu.Lock()
	delete(l.busy, reader)
	l.mu.Unlock()
}

// Selection says how to choose the card.
type Selection struct {
	Reader  string // explicit reader; wins over everything else
	ICCSN   string // encode only the card with this ICCSN (SelectCriteriaIccsn)
	WithATR bool   // ICCSNs compare as ICCSN-ATRHEX (UseICCSNwithATR)
	// ChipSerial: the chip's serial is the ICCSN even of a card that carries
	// a CMS serial (useChipSerialAsIccsn).
	ChipSerial bool
	// CMSSerial, if set and ChipSerial is not, reads the CMS serial the
	// card in reader carries (CMSCardSerialNumber written by an earlier
	// job); ok is false when it carries none. It is that card's ICCSN for
	// SelectCriteriaIccsn and RetrieveAllTokens (docs/dsc.md, "Card
	// selection and identity"). Build sets it when the job names a PKCS#11
	// module; it logs in to nothing, writes nothing and shows no dialog.
	CMSSerial func(ctx context.Context, reader string) (serial string, ok bool, err error)
	Skip      func(reader string) bool
	AllCards  bool // RetrieveAllTokens: no choice needed
}

// identity is the ICCSN as the job compares it.
func identity(serial, atr []byte, withATR bool) string {
	return withSuffix(strings.ToUpper(fmt.Sprintf("%X", serial)), atr, withATR)
}

// withSuffix appends "-ATRHEX" to id with UseICCSNwithATR.
func withSuffix(id string, atr []byte, withATR bool) string {
	if withATR {
		id += "-" + strings.ToUpper(fmt.Sprintf("%X", atr))
	}
	return id
}

// cardID reads the ICCSN of the card in reader as selection and
// RetrieveAllTokens see it: its CMS serial, else (none written, or
// ChipSerial) the chip's GET DATA serial; "-ATRHEX" with WithATR. The
// caller holds the reader's lock; the card is not held in a transaction
// and nothing is written.
func cardID(ctx context.Context, rd Readers, reader string, sel Selection) (string, error) {
	c, err := rd.Connect(ctx, reader)
	if err != nil {
		return "", err
	}
	serial, err := c.Serial()
	atr := c.ATR()
	c.Close()
	if sel.CMSSerial != nil && !sel.ChipSerial {
		// After the PC/SC connection is closed: the module may talk to
		// the card itself.
		cms, ok, cerr := sel.CMSSerial(ctx, reader)
		if cerr != nil {
			return "", cerr
		}
		if ok {
			return withSuffix(cms, atr, sel.WithATR), nil
		}
	}
	if err != nil {
		return "", err
	}
	if len(serial) == 0 {
		return "", errors.New("the card has no serial number (GET DATA 5A)")
	}
	return identity(serial, atr, sel.WithATR), nil
}

// choose picks the reader for a job (step 2 of the order of a job).
func (e *Engine) choose(ctx context.Context, sel Selection) (string, error) {
	rd := e.Readers
	list, err := rd.List(ctx)
	if err != nil {
		return "", fail(api.CodeReaderUnavailable, err, "listing readers")
	}
	if sel.Reader != "" {
		if sel.Skip != nil && sel.Skip(sel.Reader) {
			// The skip list names readers that are not ours to use (a
			// virtual smart card, another application's reader): naming
			// one does not override it.
			return "", skipped(sel.Reader)
		}
		for _, r := range list {
			if r.Name == sel.Reader {
				if !r.Present {
					return "", fail(api.CodeNoCard, nil, "no card in reader %q", sel.Reader)
				}
				return r.Name, nil
			}
		}
		return "", fail(api.CodeReaderUnavailable, nil, "no reader named %q", sel.Reader)
	}
	var cands []string
	for _, r := range list {
		if r.Present && (sel.Skip == nil || !sel.Skip(r.Name)) {
			cands = append(cands, r.Name)
		}
	}
	sort.Strings(cands)
	if len(cands) == 0 {
		return "", fail(api.CodeNoCard, nil, "no card present")
	}
	if sel.ICCSN != "" {
		return e.chooseByICCSN(ctx, sel, cands)
	}
	if len(cands) > 1 {
		return "", fail(api.CodeCardAmbiguous, nil, "%d cards present (%s); name a reader", len(cands), strings.Join(cands, ", "))
	}
	return cands[0], nil
}

// chooseByICCSN picks the one card among cands whose ICCSN (cardID) is
// sel.ICCSN, compared without regard to case. A reader busy with another
// job is not read (its card is the other job's); when no free card
// matches and one was busy, the job ends with busy so the portal tries
// again. Two matching cards end it with card_ambiguous: encoding either
// could be the wrong one.
func (e *Engine) chooseByICCSN(ctx context.Context, sel Selection, cands []string) (string, error) {
	var found, busy, unread []string
	for _, name := range cands {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if !e.locks.tryLock(name) {
			busy = append(busy, name)
			continue
		}
		id, err := cardID(ctx, e.Readers, name, sel)
		e.locks.unlock(name)
		switch {
		case err != nil:
			unread = append(unread, fmt.Sprintf("%s: %v", name, err))
		case strings.EqualFold(id, sel.ICCSN):
			found = append(found, name)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return "", fail(api.CodeCardAmbiguous, nil, "%d cards have ICCSN %s (%s); name a reader", len(found), sel.ICCSN, strings.Join(found, ", "))
	case len(busy) > 0:
		return "", fail(api.CodeBusy, nil, "no free card has ICCSN %s; reader %s is running another job", sel.ICCSN, strings.Join(busy, ", "))
	}
	msg := fmt.Sprintf("no card with ICCSN %s", sel.ICCSN)
	if sel.CMSSerial != nil && !sel.ChipSerial {
		msg += " (a card that carries a CMS serial is matched by it, not by its chip serial, unless useChipSerialAsIccsn)"
	}
	if len(unread) > 0 {
		msg += "; not read: " + strings.Join(unread, "; ")
	}
	return "", fail(api.CodeCardNotFound, nil, "%s", msg)
}

// skipped is the failure of a job that names a reader the skip list excludes.
func skipped(reader string) *Failure {
	return &Failure{Code: api.CodeReaderUnavailable, Step: "select",
		Message: fmt.Sprintf("reader %q is excluded by the configuration ([readers] skip) and is not used for jobs", reader)}
}

// codes is classify's table: the first word in an error's chain decides the
// code. There is one word per meaning, at the lowest layer that knows it:
// card-level meanings are iso7816's (adapters wrap their own errors so that
// errors.Is finds them); what only the PKCS#11 side or the runner knows
// (module, token, prompt) is the runner's, declared with the port its
// implementations serve (Tokens, Prompter). Order matters where a chain can
// hold two words: cancellation first, a blocked PIN before a wrong one.
var codes = []struct {
	word error
	code api.Code
	msg  string
}{
	{context.Canceled, api.CodeCancelled, "job cancelled"},
	{context.DeadlineExceeded, api.CodeCancelled, "job cancelled"},
	{iso7816.ErrCardRemoved, api.CodeCardRemoved, "card removed"},
	{iso7816.ErrReaderGone, api.CodeReaderUnavailable, "reader unavailable"},
	{prompt.ErrRefused, api.CodePromptRefused, "PIN dialog cancelled"},
	{prompt.ErrUnavailable, api.CodePromptUnavailable, "a PIN dialog is needed but none can be shown"},
	{iso7816.ErrAuthBlocked, api.CodePinBlocked, "PIN blocked"},
	{iso7816.ErrVerificationFailed, api.CodePinIncorrect, "wrong PIN"},
	{ErrModuleNotAllowed, api.CodeModuleNotAllowed, "PKCS#11 module not allowed"},
	{ErrModule, api.CodeModuleError, "PKCS#11 module failed"},
	{ErrTokenNotFound, api.CodeTokenNotFound, "no token for the card"},
	{iso7816.ErrNotSupported, api.CodeNotSupported, "not supported by the card"},
	{ErrToken, api.CodeTokenError, "token operation failed"},
	{ErrObjectNotFound, api.CodeTokenError, "token operation failed"},
}

// classify maps an error from a card or token operation to a Failure: a
// Failure in the chain as it is, else the code of the first word of codes
// the chain holds, else card_error.
func classify(step string, err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		if f.Step == "" {
			f.Step = step
		}
		return f
	}
	f = fail(api.CodeCardError, err, "Error Accessing Smartcard")
	for _, c := range codes {
		if errors.Is(err, c.word) {
			f = fail(c.code, err, "%s", c.msg)
			break
		}
	}
	f.Step = step
	return f
}

// Code is the stable code a job ending with err gets (docs/runner.md, "Error
// codes"). Adapters' tests use it to check that their errors reach the
// documented code.
func Code(err error) api.Code { return classify("", err).Code }
