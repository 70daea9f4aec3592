// Package softtoken delivers PKCS#12 software tokens (token profile type
// FILEP12SW) from a portal to the local user (docs/protocol.md,
// "softtoken"): the passphrase is typed into the agent's dialog, never into
// the page; the key and certificate go to the store the page named or the
// user chose (the agent's own store, the user's NSS database, a PKCS#11
// token). A wrong passphrase stores nothing.
package softtoken

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/secret"
	"github.com/cardwright/cardwright/softstore"
)

// MaxTries is how often the dialog asks again after a wrong passphrase
// before the request fails (a PKCS#12 has no retry counter; the limit
// keeps a page from holding the dialog open forever).
const MaxTries = 3

// Target is one place a soft token can go.
type Target interface {
	// ID is the store's wire name: api.StoreAgent, api.StoreNSS,
	// api.StorePKCS11.
	ID() string
	// Text names the store in the dialog.
	Text() string
	// Put stores the opened PKCS#12.
	Put(ctx context.Context, d *Delivery) (*Stored, error)
}

// Delivery is one PKCS#12 to store, its passphrase checked.
type Delivery struct {
	Opened      *softstore.Opened
	P12         []byte       // the file as delivered
	Passphrase  secret.Value // its passphrase
	Label       string
	ProfileType string
	Token       string // the request's Token
	Origin      string // the page's checked origin, for a second dialog
	// Notify is the request's prompt-event callback (may be nil), for a
	// Target that opens a dialog of its own.
	Notify func(state string)
}

// checker is implemented by Targets that can refuse a request's Token
// before the passphrase dialog opens (a PKCS#11 token that is not there),
// so the user does not type a passphrase for nothing.
type checker interface {
	Check(ctx context.Context, token string) error
}

// Stored says where a token went.
type Stored struct {
	Token string // the store's name for where it went
	KeyID []byte
}

// Service answers softtoken requests.
type Service struct {
	Targets  []Target
	Prompter prompt.Prompter // nil: headless, every request is prompt_unavailable
}

// DeliverSoftToken runs one request (agent.SoftTokenService). notify is told api.PromptWaiting when the
// dialog opens and api.PromptDone when it closes. Failures are
// *api.JobError.
func (s *Service) DeliverSoftToken(ctx context.Context, origin string, req *api.SoftToken, notify func(state string)) (*api.SoftTokenStored, error) {
	p12, err := base64.StdEncoding.DecodeString(req.PKCS12)
	if err != nil || len(p12) == 0 {
		return nil, &api.JobError{Code: api.CodeInvalidField, Key: "pkcs12", Message: "pkcs12 is not base64 of a PKCS#12 file"}
	}
	// Before any dialog: a file over the size and key-derivation limits
	// is refused without a round derived.
	if err := softstore.CheckP12(p12); err != nil {
		return nil, &api.JobError{Code: api.CodeInvalidField, Key: "pkcs12", Message: err.Error()}
	}
	want := req.Store
	if want == "" {
		want = api.StoreAsk
	}
	var choices []prompt.Choice
	var target Target
	for _, t := range s.Targets {
		if want == api.StoreAsk {
			// A store that cannot take this request (a PKCS#11 token
			// that is not there) is not offered.
			if c, ok := t.(checker); ok && c.Check(ctx, req.Token) != nil {
				continue
			}
			choices = append(choices, prompt.Choice{ID: t.ID(), Text: t.Text()})
		} else if t.ID() == want {
			target = t
		}
	}
	if want != api.StoreAsk && target == nil {
		return nil, &api.JobError{Code: api.CodeInvalidField, Key: "store", Message: fmt.Sprintf("store %q is not offered by this agent (%s)", want, s.ids())}
	}
	if want == api.StoreAsk && len(choices) == 0 {
		return nil, &api.JobError{Code: api.CodeNotSupported, Key: "store", Message: "this agent has no soft-token store"}
	}
	if s.Prompter == nil {
		return nil, jobError(fmt.Errorf("asking for the passphrase: %w", prompt.ErrUnavailable))
	}
	if c, ok := target.(checker); ok {
		if err := c.Check(ctx, req.Token); err != nil {
			return nil, jobError(fmt.Errorf("finding the %s store's token: %w", target.ID(), err))
		}
	}
	label := req.Label
	pr := prompt.Request{Kind: prompt.Passphrase, Operation: prompt.OpSoftToken, Label: "passphrase",
		Origin: origin, Card: label, Stores: choices}
	var (
		opened *softstore.Opened
		pass   secret.Value
	)
	defer func() { pass.Wipe() }()
	for try := 0; ; try++ {
		if notify != nil {
			notify(api.PromptWaiting)
		}
		a, err := s.Prompter.Ask(ctx, pr)
		if notify != nil {
			notify(api.PromptDone)
		}
		if err != nil {
			a.Wipe()
			return nil, jobError(fmt.Errorf("asking for the passphrase: %w", err))
		}
		if a.PIN.IsZero() {
			a.Wipe()
			return nil, jobError(fmt.Errorf("asking for the passphrase: %w", prompt.ErrRefused))
		}
		if want == api.StoreAsk {
			id := pr.Stores[0].ID // the preselected one
			for _, c := range pr.Stores {
				if c.ID == a.Store {
					id = c.ID
				}
			}
			for _, t := range s.Targets {
				if t.ID() == id {
					target = t
				}
			}
		}
		pass = a.PIN
		a.Current.Wipe()
		opened, err = softstore.Decode(p12, pass)
		if err == nil {
			break
		}
		pass.Wipe()
		if !errors.Is(err, softstore.ErrWrongPassphrase) {
			return nil, &api.JobError{Code: api.CodeInvalidField, Key: "pkcs12", Message: err.Error()}
		}
		if try+1 >= MaxTries {
			return nil, &api.JobError{Code: api.CodePinIncorrect, Message: fmt.Sprintf("wrong passphrase %d times; nothing was stored", MaxTries)}
		}
		if want == api.StoreAsk {
			// The choice stays as made; the dialog shows it preselected.
			pr.Stores = reorder(choices, target.ID())
			target = nil
		}
		pr.Retry = true
	}
	if err := ctx.Err(); err != nil {
		return nil, jobError(err)
	}
	if label == "" {
		label = opened.Cert.Subject.CommonName
	}
	profile := req.ProfileType
	if profile == "" {
		profile = softstore.ProfileFileP12SW
	}
	st, err := target.Put(ctx, &Delivery{Opened: opened, P12: p12, Passphrase: pass, Label: label,
		ProfileType: profile, Token: req.Token, Origin: origin, Notify: notify})
	if err != nil {
		return nil, jobError(fmt.Errorf("storing the soft token in %s: %w", target.ID(), err))
	}
	return &api.SoftTokenStored{Store: target.ID(), Token: st.Token, Label: label, ProfileType: profile,
		KeyID:       strings.ToUpper(fmt.Sprintf("%x", st.KeyID)),
		Certificate: base64.StdEncoding.EncodeToString(opened.Cert.Raw)}, nil
}

func (s *Service) ids() string {
	var ids []string
	for _, t := range s.Targets {
		ids = append(ids, t.ID())
	}
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

// reorder puts the choice with id first.
func reorder(cs []prompt.Choice, id string) []prompt.Choice {
	out := make([]prompt.Choice, 0, len(cs))
	for _, c := range cs {
		if c.ID == id {
			out = append(out, c)
		}
	}
	for _, c := range cs {
		if c.ID != id {
			out = append(out, c)
		}
	}
	return out
}

// Errors a Target reports that have a wire code of their own.
var (
	ErrTokenNotFound = errors.New("token not found")
	ErrStore         = errors.New("store failed")
)

// jobError gives err a wire code.
func jobError(err error) *api.JobError {
	var (
		je *api.JobError
		pe *p11.PINError
	)
	code := api.CodeInternal
	switch {
	case errors.As(err, &je):
		return je
	case errors.As(err, &pe) && pe.Locked:
		code = api.CodePinBlocked
	case errors.As(err, &pe):
		code = api.CodePinIncorrect
	case errors.Is(err, p11.ErrLoggedInElsewhere):
		code = api.CodeBusy
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = api.CodeCancelled
	case errors.Is(err, prompt.ErrUnavailable):
		code = api.CodePromptUnavailable
	case errors.Is(err, prompt.ErrRefused):
		code = api.CodePromptRefused
	case errors.Is(err, ErrTokenNotFound):
		code = api.CodeTokenNotFound
	case errors.Is(err, ErrStore):
		code = api.CodeTokenError
	}
	return &api.JobError{Code: code, Message: err.Error()}
}

// AgentStore is the agent's own store as a Target.
type AgentStore struct{ Store *softstore.Store }

func (AgentStore) ID() string   { return api.StoreAgent }
func (AgentStore) Text() string { return "cardwright's soft-token store" }

// Put re-seals the key under the same passphrase (softstore).
func (a AgentStore) Put(_ context.Context, d *Delivery) (*Stored, error) {
	e, err := a.Store.PutOpened(d.Opened, d.Passphrase, d.Label, d.ProfileType)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	return &Stored{Token: e.KeyIDHex(), KeyID: e.KeyID}, nil
}
