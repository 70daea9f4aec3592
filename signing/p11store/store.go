// Package p11store is the PKCS#11 side of package signing: a signing.Store
// over the tokens of loaded p11 modules. It is an adapter (it imports p11);
// cmd/cardwright wires it, the agent sees only signing.Store.
package p11store

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/cardwright/cardwright/certfilter"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/secret"
	"github.com/cardwright/cardwright/signing"
)

// Store lists the certificates of every initialised token of its modules
// and opens their keys. It is safe for concurrent use: each Key call has a
// session of its own; Key calls on one token, and listings of it, wait for
// each other.
type Store struct {
	// Modules are the modules at the start; set before first use, then
	// add with Add.
	Modules []*p11.Module

	mu    sync.Mutex
	locks map[string]*sync.Mutex // per module path + token serial
}

// New returns a Store over the loaded modules.
func New(mods ...*p11.Module) *Store { return &Store{Modules: mods} }

// Add adds a module loaded after the Store was made (one that could not be
// loaded at first); safe while the Store is in use. A module already
// present is not added twice.
func (s *Store) Add(m *p11.Module) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, have := range s.Modules {
		if have.Path() == m.Path() {
			return
		}
	}
	s.Modules = append(s.Modules[:len(s.Modules):len(s.Modules)], m)
}

// modules returns the current modules.
func (s *Store) modules() []*p11.Module {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Modules
}

// Loaded returns the current modules, for other adapters over the same
// loaded modules (softtoken.PKCS11).
func (s *Store) Loaded() []*p11.Module { return s.modules() }

// LockToken holds one token's lock (the one Key holds from login to
// logout) and returns the unlock: another adapter that logs in to a token
// of these modules takes it so that its login and the Store's never meet.
func (s *Store) LockToken(module, serial string) (unlock func()) {
	l := s.tokenLock(module, serial)
	l.Lock()
	return l.Unlock
}

// TryLockToken takes the token's lock (LockToken's) only if it is free: ok
// false means a certificate, sign or softtoken operation holds the token.
// The station self-test's probe uses it so that a health request never
// waits behind a login (spec/station.md "Self-test").
func (s *Store) TryLockToken(module, serial string) (unlock func(), ok bool) {
	l := s.tokenLock(module, serial)
	if !l.TryLock() {
		return nil, false
	}
	return l.Unlock, true
}

// TokenType is token.type for a token: certfilter.TokenSoftware for
// SoftHSM, else certfilter.TokenSmartCard.
func TokenType(info p11.TokenInfo) string {
	if strings.Contains(strings.ToLower(info.Model), "softhsm") || strings.Contains(strings.ToLower(info.Manufacturer), "softhsm") {
		return certfilter.TokenSoftware
	}
	return certfilter.TokenSmartCard
}

// Candidates implements signing.Store. No login happens: the key of each
// certificate is the one with the certificate's CKA_ID (PKCS#11 v2.40
// §4.6.3), found at Key time. A token that cannot be read is skipped; the
// errors are returned only when nothing could be listed.
func (s *Store) Candidates(ctx context.Context) ([]*signing.Candidate, error) {
	var out []*signing.Candidate
	var errs []error
	for _, m := range s.modules() {
		toks, err := m.Tokens()
		if err != nil {
			errs = append(errs, fmt.Errorf("listing tokens of %s: %w", m.Path(), mapErr(err)))
			continue
		}
		for _, t := range toks {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			info := t.Info()
			if !info.Initialized() {
				continue
			}
			// Under the token's lock: a Key call's C_Logout in the middle
			// of the listing would invalidate the private-key handles it
			// is reading (PKCS#11 v2.40 §5.6) and drop the token.
			lock := s.tokenLock(m.Path(), info.Serial)
			lock.Lock()
			got, err := tokenCandidates(m, t, info)
			lock.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("reading token %q: %w", info.Label, mapErr(err)))
				continue
			}
			out = append(out, got...)
		}
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func tokenCandidates(m *p11.Module, t *p11.Token, info p11.TokenInfo) ([]*signing.Candidate, error) {
	sess, err := t.Open()
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	entries, err := sess.Certificates()
	if err != nil {
		return nil, err
	}
	tok := signing.TokenInfo{Module: m.Path(), Serial: info.Serial, Label: info.Label, Type: TokenType(info)}
	var out []*signing.Candidate
	for _, e := range entries {
		if e.Cert == nil {
			continue // not X.509 or not parsable: nothing to sign with
		}
		label := e.Label
		if e.HasKey {
			label = e.KeyLabel
		}
		out = append(out, &signing.Candidate{Cert: e.Cert, KeyID: e.ID, KeyLabel: label, Token: tok})
	}
	return out, nil
}

// tokenLock returns the lock of one token.
func (s *Store) tokenLock(module, serial string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks == nil {
		s.locks = map[string]*sync.Mutex{}
	}
	k := module + "\x00" + serial
	if s.locks[k] == nil {
		s.locks[k] = new(sync.Mutex)
	}
	return s.locks[k]
}

// Key implements signing.Store: it finds the token again by serial, opens
// a session, logs the user in and finds the private key with the
// candidate's CKA_ID whose public key is the certificate's (else any key
// whose public key is). release logs out and closes the session.
//
// Login state belongs to the application, not the session (PKCS#11 v2.40
// §5.6): while another operation of this process holds the token logged
// in, C_Login would not look at the PIN. p11's Login refuses then
// (p11.ErrLoggedInElsewhere), which Key reports as ErrTokenBusy; the PIN
// is never sent or compared. Key holds the token's lock from login to
// logout so that its own calls never meet that case.
func (s *Store) Key(ctx context.Context, c *signing.Candidate, pin secret.Value) (crypto.Signer, func(), error) {
	var mod *p11.Module
	for _, m := range s.modules() {
		if m.Path() == c.Token.Module {
			mod = m
		}
	}
	if mod == nil {
		return nil, nil, fmt.Errorf("%w: module %s is not loaded", signing.ErrTokenNotFound, c.Token.Module)
	}
	t, err := mod.FindToken(c.Token.Serial)
	if err != nil {
		return nil, nil, mapErr(err)
	}
	if t.Serial() != c.Token.Serial {
		return nil, nil, fmt.Errorf("%w: serial %s", signing.ErrTokenNotFound, c.Token.Serial)
	}
	lock := s.tokenLock(c.Token.Module, c.Token.Serial)
	lock.Lock()
	sess, err := t.Open()
	if err != nil {
		lock.Unlock()
		return nil, nil, mapErr(err)
	}
	release := func() {
		sess.Close() // logs out: this session is the token's only holder (p11.Session.Close)
		lock.Unlock()
	}
	if err := ctx.Err(); err != nil {
		release()
		return nil, nil, err
	}
	if err := sess.Login(pin); err != nil {
		release()
		return nil, nil, mapErr(err)
	}
	var key *p11.Key
	if len(c.KeyID) > 0 {
		if k, err := sess.FindKey(c.KeyID, ""); err == nil && samePublic(k.Public(), c.Cert.PublicKey) {
			key = k
		}
	}
	if key == nil {
		if key, err = sess.KeyFor(c.Cert); err != nil {
			release()
			return nil, nil, mapErr(err)
		}
	}
	return key, release, nil
}

func samePublic(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// mapErr classifies p11's errors with signing's, keeping them in the chain.
func mapErr(err error) error {
	var pe *p11.PINError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe):
		return &signing.PINError{Retries: pe.Retries(), Blocked: pe.Locked, Err: err}
	case errors.Is(err, p11.ErrLoggedInElsewhere):
		return fmt.Errorf("%w: %w", signing.ErrTokenBusy, err)
	case errors.Is(err, p11.ErrTokenNotFound), errors.Is(err, p11.ErrAmbiguous):
		return fmt.Errorf("%w: %w", signing.ErrTokenNotFound, err)
	case errors.Is(err, p11.ErrObjectNotFound):
		return fmt.Errorf("%w: %w", signing.ErrKeyNotFound, err)
	case errors.Is(err, p11.ErrNotSupported):
		return fmt.Errorf("%w: %w", signing.ErrNotSupported, err)
	}
	return fmt.Errorf("%w: %w", signing.ErrToken, err)
}
