package signing

import (
	"context"
	"crypto"
	"errors"
	"fmt"

	"github.com/cardwright/cardwright/secret"
)

// Owner is implemented by a Store that can tell its own candidates, so
// Stores knows which store opens a key.
type Owner interface {
	Owns(c *Candidate) bool
}

// Stores is one Store over several (PKCS#11 tokens and the agent's soft
// tokens, spec/certfilter.md "Where filters are used"): candidates in
// store order; Key goes to the store that Owns the candidate, else to the
// only store without Owns. A store that fails to list is left out while
// another lists; the errors are returned only when none could.
type Stores []Store

// Candidates implements Store.
func (ss Stores) Candidates(ctx context.Context) ([]*Candidate, error) {
	var out []*Candidate
	var errs []error
	for _, s := range ss {
		got, err := s.Candidates(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			errs = append(errs, err)
			continue
		}
		out = append(out, got...)
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Key implements Store.
func (ss Stores) Key(ctx context.Context, c *Candidate, pin secret.Value) (crypto.Signer, func(), error) {
	var fallback []Store
	for _, s := range ss {
		o, ok := s.(Owner)
		if !ok {
			fallback = append(fallback, s)
			continue
		}
		if o.Owns(c) {
			return s.Key(ctx, c, pin)
		}
	}
	if len(fallback) == 1 {
		return fallback[0].Key(ctx, c, pin)
	}
	return nil, nil, fmt.Errorf("%w: no store holds %s", ErrTokenNotFound, c)
}
