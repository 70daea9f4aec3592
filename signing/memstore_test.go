package signing

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"sync"

	"github.com/cardwright/cardwright/certfilter"
	"github.com/cardwright/cardwright/secret"
)

// MemKey is a certificate and software key in a MemStore, with the PIN
// that unlocks it.
type MemKey struct {
	Cert  *x509.Certificate
	Key   crypto.Signer
	KeyID []byte
	Token TokenInfo // Type defaults to certfilter.TokenSoftware
	PIN   secret.Value
}

// MemStore is a Store of software keys held in memory, the tests' double
// for p11store. A wrong PIN counts down Retries (when set) and blocks the
// key at zero.
type MemStore struct {
	Keys    []MemKey
	Retries int // tries per key; 0: unlimited, wrong PINs give RetriesUnknown

	mu    sync.Mutex
	cands []*Candidate
	left  map[*Candidate]int
}

func (m *MemStore) init() {
	if m.cands != nil {
		return
	}
	m.left = map[*Candidate]int{}
	for _, k := range m.Keys {
		tok := k.Token
		if tok.Type == "" {
			tok.Type = certfilter.TokenSoftware
		}
		c := &Candidate{Cert: k.Cert, KeyID: k.KeyID, Token: tok}
		m.cands = append(m.cands, c)
		m.left[c] = m.Retries
	}
}

// Candidates implements Store.
func (m *MemStore) Candidates(ctx context.Context) ([]*Candidate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	return append([]*Candidate(nil), m.cands...), ctx.Err()
}

// Key implements Store.
func (m *MemStore) Key(ctx context.Context, c *Candidate, pin secret.Value) (crypto.Signer, func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	for i, x := range m.cands {
		if x != c {
			continue
		}
		k := m.Keys[i]
		if m.Retries > 0 && m.left[c] == 0 {
			return nil, nil, &PINError{Blocked: true, Retries: 0}
		}
		if !pin.Equal(k.PIN) {
			if m.Retries == 0 {
				return nil, nil, &PINError{Retries: RetriesUnknown}
			}
			m.left[c]--
			return nil, nil, &PINError{Retries: m.left[c], Blocked: m.left[c] == 0}
		}
		m.left[c] = m.Retries
		if k.Key == nil {
			return nil, nil, fmt.Errorf("%w: %s", ErrKeyNotFound, c)
		}
		return k.Key, func() {}, nil
	}
	return nil, nil, fmt.Errorf("%w: %s is not in this store", ErrTokenNotFound, c)
}
