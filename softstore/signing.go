package softstore

import (
	"context"
	"crypto"
	"errors"
	"fmt"

	"github.com/cardwright/cardwright/certfilter"
	"github.com/cardwright/cardwright/secret"
	"github.com/cardwright/cardwright/signing"
)

// Module is signing.TokenInfo.Module of the store's candidates: it tells
// them apart from PKCS#11 tokens (whose Module is a library path).
const Module = "cardwright:softstore"

// Candidates implements signing.Store: one candidate a stored token, with
// token.type SOFTWARE, token.profiletype the token's profile type and
// token.id its key id. No passphrase is needed to list.
func (s *Store) Candidates(ctx context.Context) ([]*signing.Candidate, error) {
	ents, err := s.List()
	if len(ents) == 0 && err != nil {
		return nil, fmt.Errorf("listing soft tokens: %w: %w", signing.ErrToken, err)
	}
	out := make([]*signing.Candidate, 0, len(ents))
	for _, e := range ents {
		out = append(out, &signing.Candidate{Cert: e.Cert, KeyID: e.KeyID, KeyLabel: e.Label,
			Token: signing.TokenInfo{Module: Module, Serial: e.KeyIDHex(), Label: e.Label,
				Type: certfilter.TokenSoftware, ProfileType: e.ProfileType, Secret: "passphrase"}})
	}
	return out, nil
}

// Owns reports whether c is one of this store's (signing.Stores asks).
func (s *Store) Owns(c *signing.Candidate) bool { return c.Token.Module == Module }

// Key implements signing.Store: the passphrase unseals the key. A wrong
// one is a *signing.PINError without a retry count (a soft token has no
// counter; Argon2id makes each guess cost).
func (s *Store) Key(ctx context.Context, c *signing.Candidate, passphrase secret.Value) (crypto.Signer, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	key, _, err := s.Open(c.KeyID, passphrase)
	switch {
	case errors.Is(err, ErrWrongPassphrase):
		return nil, nil, &signing.PINError{Retries: signing.RetriesUnknown, Err: err}
	case errors.Is(err, ErrNotFound):
		return nil, nil, fmt.Errorf("%w: %w", signing.ErrTokenNotFound, err)
	case err != nil:
		return nil, nil, fmt.Errorf("%w: %w", signing.ErrToken, err)
	}
	return key, func() {}, nil
}
