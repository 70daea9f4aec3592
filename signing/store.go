package signing

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"strings"
	"sync"

	"github.com/cardwright/cardwright/certfilter"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/secret"
)

// TokenInfo identifies the token a candidate lives on.
type TokenInfo struct {
	Module      string // the PKCS#11 module path, or "" for a software store
	Serial      string // token.id
	Label       string
	Type        string // token.type: certfilter.TokenSmartCard, certfilter.TokenSoftware
	UserID      string // token.userid, where known
	ProfileType string // token.profiletype, where known
	Secret      string // what unlocks the key, as the dialog names it: "" is "PIN" (a soft token's is "passphrase")
}

// secretLabel is what the dialog asks for to unlock t's keys.
func (t TokenInfo) secretLabel() string {
	if t.Secret == "" {
		return "PIN"
	}
	return t.Secret
}

// Candidate is a certificate on a token that may be used to sign, with the
// identifiers of its private key (PKCS#11 v2.40 §4.6.3: the key shares the
// certificate's CKA_ID). Stores make them; callers treat them as read-only.
type Candidate struct {
	Cert     *x509.Certificate
	KeyID    []byte // CKA_ID; key.id is its upper-case hex
	KeyLabel string // CKA_LABEL of the key, or of the certificate when the key is not visible yet
	Token    TokenInfo

	once  sync.Once
	facts *certfilter.Candidate
}

// Facts is the candidate as certfilter sees it.
func (c *Candidate) Facts() *certfilter.Candidate {
	c.once.Do(func() {
		c.facts = certfilter.NewCandidate(c.Cert, certfilter.KeyRef{ID: c.KeyID, Label: c.KeyLabel},
			certfilter.Token{ID: c.Token.Serial, Type: c.Token.Type, UserID: c.Token.UserID, ProfileType: c.Token.ProfileType})
	})
	return c.facts
}

// String names the candidate for prompts and errors: subject CN, key id and
// token label.
func (c *Candidate) String() string {
	return fmt.Sprintf("%q (key %X) on token %q", c.Cert.Subject.CommonName, c.KeyID, c.Token.Label)
}

// Store lists the certificates of the present tokens and opens their keys.
type Store interface {
	// Candidates lists every X.509 certificate on every present token
	// (without logging in: private keys may not be visible yet).
	Candidates(ctx context.Context) ([]*Candidate, error)
	// Key logs in to c's token with pin and returns the private key that
	// goes with c.Cert; release ends what Key opened. A wrong PIN is a
	// *PINError; other failures wrap ErrTokenNotFound, ErrTokenBusy (the PIN
	// cannot be checked now), ErrKeyNotFound or ErrToken. A store must
	// never hand out a key without having checked pin.
	Key(ctx context.Context, c *Candidate, pin secret.Value) (key crypto.Signer, release func(), err error)
}

// Chooser is implemented by Prompters (prompt.Prompter) that can let the
// user pick one of several matching certificates. Without it, more than one
// match is ErrAmbiguous. kind is prompt.Sign or prompt.SignIn.
type Chooser interface {
	Choose(ctx context.Context, kind prompt.Kind, cands []*Candidate) (*Candidate, error)
}

// pinRequest is the dialog for c's PIN: the origin as the agent checked it,
// the certificate's subject and its token (spec/gui.md property 3).
func pinRequest(kind prompt.Kind, label, origin string, c *Candidate) prompt.Request {
	op := prompt.OpSign
	if kind == prompt.SignIn {
		op = prompt.OpSignIn
	}
	return prompt.Request{Kind: kind, Operation: op, Label: label, Origin: origin, Card: c.Token.Label, Subject: c.Cert.Subject.String()}
}

// Selector says which candidates a request may use: those the filter
// matches (nil: all) and, when KeyID is set, whose key has that CKA_ID.
type Selector struct {
	Filter *certfilter.Filter
	KeyID  []byte
}

// Empty reports whether the selector admits every candidate.
func (s Selector) Empty() bool { return s.Filter == nil && s.KeyID == nil }

func (s Selector) match(c *Candidate) bool {
	if c.Cert == nil {
		return false
	}
	if s.KeyID != nil && !bytes.Equal(c.KeyID, s.KeyID) {
		return false
	}
	return s.Filter.Match(c.Facts())
}

// describe says what the selector asked for, for errors.
func (s Selector) describe() string {
	var parts []string
	if s.Filter != nil {
		parts = append(parts, "filter "+s.Filter.String())
	}
	if s.KeyID != nil {
		parts = append(parts, fmt.Sprintf("key id %X", s.KeyID))
	}
	if len(parts) == 0 {
		return "any certificate"
	}
	return strings.Join(parts, " and ")
}

// List returns the store's candidates that the selector admits, in store
// order.
func List(ctx context.Context, store Store, sel Selector) ([]*Candidate, error) {
	all, err := store.Candidates(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing certificates: %w", err)
	}
	var out []*Candidate
	for _, c := range all {
		if sel.match(c) {
			out = append(out, c)
		}
	}
	return out, nil
}
