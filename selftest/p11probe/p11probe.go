// Package p11probe is the self-test's PKCS#11 adapter (selftest.Modules):
// modules load through the configured allow-list (p11.Load), tokens are
// listed, and the key-generation timing makes a session key pair
// (p11.Session.ProbeKeyPair) that is destroyed at once.
package p11probe

import (
	"context"
	"errors"
	"fmt"

	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/secret"
	"github.com/cardwright/cardwright/selftest"
)

// Modules implements selftest.Modules.
type Modules struct {
	Allow func(path string) bool // the allow-list (config.ModuleAllowed)
}

// Load loads a module (once per process, as everywhere).
func (m Modules) Load(path string) (selftest.Module, error) {
	mod, err := p11.Load(path, m.Allow)
	if err != nil {
		return nil, err
	}
	return module{mod}, nil
}

type module struct{ m *p11.Module }

func (m module) Describe() string {
	i, err := m.m.Info()
	if err != nil {
		return "no module info: " + err.Error()
	}
	return fmt.Sprintf("%s %s %s, Cryptoki %s", i.Manufacturer, i.Description, i.LibraryVersion, i.Cryptoki)
}

// Tokens lists the present tokens with their slot descriptions (card
// middleware names the reader there; the self-test maps tokens to readers
// by it).
func (m module) Tokens() ([]selftest.Token, error) {
	slots, err := m.m.Slots()
	if err != nil {
		return nil, err
	}
	toks, err := m.m.Tokens()
	if err != nil {
		return nil, err
	}
	desc := make(map[uint]string, len(slots))
	for _, s := range slots {
		desc[s.ID] = s.Description
	}
	out := make([]selftest.Token, 0, len(toks))
	for _, t := range toks {
		out = append(out, token{t, desc[t.SlotID()]})
	}
	return out, nil
}

type token struct {
	t    *p11.Token
	slot string // slot description
}

func (t token) Label() string      { return t.t.Label() }
func (t token) Serial() string     { return t.t.Serial() }
func (t token) Initialized() bool  { return t.t.Info().Initialized() }
func (t token) Slot() string       { return t.slot }
func (t token) ModulePath() string { return t.t.Module().Path() }

// Keygen opens a session, logs in when a PIN is given, and makes and
// destroys a session key pair. The PIN goes to the token only.
func (t token) Keygen(ctx context.Context, k selftest.Keygen, pin secret.Value) error {
	spec := p11.ECP256
	if k == selftest.KeygenRSA2048 {
		spec = p11.RSA2048
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s, err := t.t.Open()
	if err != nil {
		return err
	}
	defer s.Close()
	loggedIn := false
	if !pin.IsZero() {
		if err := s.Login(pin); err != nil {
			return err
		}
		loggedIn = true
	}
	err = s.ProbeKeyPair(spec, loggedIn)
	if !loggedIn && errors.Is(err, p11.ErrLoginNeeded) {
		return fmt.Errorf("generating a key pair on token %q: %w", t.t.Label(), selftest.ErrNeedsLogin)
	}
	return err
}
