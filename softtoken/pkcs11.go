package softtoken

import (
	"context"
	"errors"
	"fmt"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/prompt"
)

// PKCS11 stores soft tokens on a token of a configured PKCS#11 module
// ([pkcs11] module, [tokens]) named by the request's Token (its label or
// serial), with p11.Session.ImportPKCS12: the one import path, the one
// the runner's AppWriteP12 step takes. The key is written sensitive and
// not extractable. The token's user PIN is asked in a second dialog (kind
// prompt.OneField, operation OpSoftToken) after the passphrase was
// checked, so a wrong passphrase never logs in and stores nothing.
type PKCS11 struct {
	// Modules returns the loaded modules (the certificate service's).
	Modules func() []*p11.Module
	// Lock, if set, holds the token (module path, serial) for the whole
	// login, as signing/p11store does for its keys, and returns the
	// unlock.
	Lock     func(module, serial string) (unlock func())
	Prompter prompt.Prompter
}

func (PKCS11) ID() string   { return api.StorePKCS11 }
func (PKCS11) Text() string { return "a smart card or token (PKCS#11)" }

// Check finds the token before the passphrase dialog opens.
func (p PKCS11) Check(_ context.Context, token string) error {
	_, err := p.find(token)
	return err
}

// find returns the one present token whose serial or label is ref among
// all modules.
func (p PKCS11) find(ref string) (*p11.Token, error) {
	if ref == "" {
		return nil, fmt.Errorf("%w: store pkcs11 needs token, the token's label or serial", ErrTokenNotFound)
	}
	var mods []*p11.Module
	if p.Modules != nil {
		mods = p.Modules()
	}
	var found *p11.Token
	for _, m := range mods {
		t, err := m.FindToken(ref)
		if errors.Is(err, p11.ErrTokenNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrTokenNotFound, err)
		}
		if found != nil {
			return nil, fmt.Errorf("%w: token %q is in two modules, name it by serial", ErrTokenNotFound, ref)
		}
		found = t
	}
	if found == nil {
		return nil, fmt.Errorf("%w: no token %q in the configured PKCS#11 modules", ErrTokenNotFound, ref)
	}
	return found, nil
}

// Put logs in with the PIN the user types (again after a wrong one, while
// the token does not block, MaxTries times at most) and imports the
// PKCS#12.
func (p PKCS11) Put(ctx context.Context, d *Delivery) (*Stored, error) {
	t, err := p.find(d.Token)
	if err != nil {
		return nil, err
	}
	if p.Prompter == nil {
		return nil, fmt.Errorf("asking for the PIN of token %q: %w", t.Label(), prompt.ErrUnavailable)
	}
	if p.Lock != nil {
		defer p.Lock(t.Module().Path(), t.Serial())()
	}
	sess, err := t.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	defer sess.Close() // logs out
	pr := prompt.Request{Kind: prompt.OneField, Operation: prompt.OpSoftToken, Label: "user PIN",
		Origin: d.Origin, Card: t.Label(), MinLen: int(t.Info().MinPIN), MaxLen: int(t.Info().MaxPIN)}
	for try := 0; ; try++ {
		if err := p.login(ctx, sess, pr, d.Notify); err == nil {
			break
		} else {
			var pe *p11.PINError
			if !errors.As(err, &pe) || pe.Locked || try+1 >= MaxTries {
				return nil, err
			}
			pr.Retry, pr.TriesLeft = true, max(pe.Retries(), 0)
		}
	}
	imp, err := sess.ImportPKCS12(d.P12, d.Passphrase, d.Label, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	return &Stored{Token: t.Label(), KeyID: imp.Key.ID}, nil
}

// login asks the PIN once and logs in.
func (p PKCS11) login(ctx context.Context, sess *p11.Session, pr prompt.Request, notify func(string)) error {
	if notify != nil {
		notify(api.PromptWaiting)
	}
	a, err := p.Prompter.Ask(ctx, pr)
	if notify != nil {
		notify(api.PromptDone)
	}
	defer a.Wipe()
	if err != nil {
		return fmt.Errorf("asking for the PIN of token %q: %w", pr.Card, err)
	}
	if a.PIN.IsZero() {
		return fmt.Errorf("asking for the PIN of token %q: %w", pr.Card, prompt.ErrRefused)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return sess.Login(a.PIN) // p11 keeps a copy for re-login until Close
}
