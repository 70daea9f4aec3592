// Package p11tokens adapts package p11 to the runner: Tokens is
// runner.Tokens (and its tokens runner.Token) over the PKCS#11 modules of
// the configuration's allow-list. It owns the policy of which token stands
// for the card in a reader: the token whose slot names the reader, else the
// one the configuration's [tokens] section maps to the reader (found by
// label; while it is not initialised, a free slot of the module), which then
// stands in for a card without middleware of its own. cmd/cardwright (and
// later the GUI) choose it; the runner sees only runner.Tokens.
package p11tokens

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/iotime"
	"github.com/cardwright/cardwright/secret"
)

// Tokens is runner.Tokens over package p11: modules from the
// configuration's allow-list; the token for a reader is the one whose slot
// names the reader, else the one the [tokens] section maps to the reader
// (found by label; while it is not initialised, a free slot of the module).
type Tokens struct {
	cfg   *config.Config
	clock *iotime.Clock
}

// New returns the tokens of cfg's modules, counting PKCS#11 time on clock
// (nil: none).
func New(cfg *config.Config, clock *iotime.Clock) *Tokens { return &Tokens{cfg: cfg, clock: clock} }

// Allowed implements runner.Tokens: the configuration's allow-list.
func (t *Tokens) Allowed(module string) bool { return t.cfg.ModuleAllowed(module) }

// Open implements runner.Tokens.
func (t *Tokens) Open(ctx context.Context, module, reader string, loc runner.Location) (runner.Token, error) {
	defer t.clock.TokenCall(time.Now())
	m, err := p11.Load(module, t.cfg.ModuleAllowed)
	if err != nil {
		return nil, mapErr(err)
	}
	if tm, ok := t.cfg.TokenFor(reader); ok && sameModule(tm.Module, module) {
		if loc == runner.LocationSignature {
			return nil, fmt.Errorf("the configuration maps reader %q to one token, no signature token: %w", reader, runner.ErrTokenNotFound)
		}
		pt := &token{m: m, fixed: tm.Label, standIn: true, clock: t.clock}
		tok, err := m.FindToken(tm.Label)
		if errors.Is(err, p11.ErrTokenNotFound) {
			return pt, nil // not initialised yet: InitToken takes a free slot
		}
		if err != nil {
			return nil, mapErr(err)
		}
		return pt, pt.open(tok)
	}
	pl := p11.LocationDefault
	if loc == runner.LocationSignature {
		pl = p11.LocationSignature
	}
	tok, err := m.TokenForReader(reader, pl, nil)
	if err != nil {
		return nil, mapErr(err)
	}
	pt := &token{m: m, clock: t.clock}
	return pt, pt.open(tok)
}

func sameModule(a, b string) bool {
	if filepath.IsAbs(a) || filepath.IsAbs(b) {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return a == b
}

// mapErr puts the one word for its meaning in front of each of package p11's
// errors, keeping p11's error (and the pkcs11.Error in it) in the chain. The
// token stands for the card, so the card-level meanings take iso7816's
// words, the lowest layer both the card and the token side reach (p11
// imports nothing of ours, so it cannot say them itself): a wrong or locked
// PIN becomes a *runner.PINError, which unwraps to
// iso7816.ErrVerificationFailed or iso7816.ErrAuthBlocked, and an
// unsupported operation (CKR_FUNCTION_NOT_SUPPORTED and kin) wraps
// iso7816.ErrNotSupported. Meanings only PKCS#11 has take the runner's
// words.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var pe *p11.PINError
	var me *p11.ModuleError
	switch {
	case errors.As(err, &pe):
		who := "PIN"
		if pe.SO {
			who = "SO PIN"
		}
		return &runner.PINError{Who: who, Retries: pe.Retries(), Err: err}
	case errors.Is(err, p11.ErrPadCancelled):
		// The pad's cancel key is the dialog's Cancel button.
		return fmt.Errorf("%w: %w", prompt.ErrRefused, err)
	case errors.Is(err, p11.ErrNotAllowed):
		return fmt.Errorf("%w: %w", runner.ErrModuleNotAllowed, err)
	case errors.As(err, &me):
		return fmt.Errorf("%w: %w", runner.ErrModule, err)
	case errors.Is(err, p11.ErrTokenNotFound), errors.Is(err, p11.ErrAmbiguous):
		return fmt.Errorf("%w: %w", runner.ErrTokenNotFound, err)
	case errors.Is(err, p11.ErrObjectNotFound):
		return fmt.Errorf("%w: %w", runner.ErrObjectNotFound, err)
	case errors.Is(err, p11.ErrNotSupported):
		return &notSupported{err}
	}
	return fmt.Errorf("%w: %w", runner.ErrToken, err)
}

// notSupported is iso7816.ErrNotSupported for a token that refuses an
// operation, with the text the runner has always given it ("not supported",
// where iso7816's word for a card's 6A81 reads "function not supported")
// followed by p11's error, if there is one.
type notSupported struct{ err error }

func (e *notSupported) Error() string {
	if e.err == nil {
		return "not supported"
	}
	return "not supported: " + e.err.Error()
}

// Unwrap returns iso7816.ErrNotSupported and p11's error.
func (e *notSupported) Unwrap() []error { return []error{iso7816.ErrNotSupported, e.err} }

// token is runner.Token over one p11 session.
type token struct {
	m       *p11.Module
	t       *p11.Token   // nil: a mapped token not initialised yet
	s       *p11.Session // open while t is set
	fixed   string
	standIn bool // a [tokens] mapping: the token stands in for the card
	clock   *iotime.Clock
}

func (p *token) open(t *p11.Token) error {
	s, err := t.Open()
	if err != nil {
		return mapErr(err)
	}
	p.t, p.s = t, s
	return nil
}

// do runs op on the session, timing it and mapping its error.
func (p *token) do(op func(s *p11.Session) error) error {
	defer p.clock.TokenCall(time.Now())
	if p.s == nil {
		return fmt.Errorf("the token is not initialised: %w", runner.ErrToken)
	}
	return mapErr(op(p.s))
}

func (p *token) Info() (runner.TokenInfo, error) {
	defer p.clock.TokenCall(time.Now())
	if p.t == nil {
		return runner.TokenInfo{FixedLabel: p.fixed, StandIn: p.standIn}, nil
	}
	ti, err := p.t.Refresh()
	if err != nil {
		return runner.TokenInfo{}, mapErr(err)
	}
	return runner.TokenInfo{Label: ti.Label, Serial: ti.Serial, Initialized: ti.Initialized(),
		UserPIN: ti.UserPINInitialized(), FixedLabel: p.fixed, StandIn: p.standIn,
		MinPIN: pinLen(ti.MinPIN), MaxPIN: pinLen(ti.MaxPIN), PinPad: ti.ProtectedAuthPath()}, nil
}

// pinLen is a CK_TOKEN_INFO PIN length; CK_UNAVAILABLE_INFORMATION and
// other absurd values mean "not said".
func pinLen(n uint) int {
	if n > 1<<16 {
		return 0
	}
	return int(n)
}

func (p *token) InitToken(so secret.Value, label string) error {
	defer p.clock.TokenCall(time.Now())
	target := p.t
	if p.t != nil && !p.t.Info().Initialized() && p.fixed != "" {
		target = nil
	}
	if p.s != nil {
		p.s.Close()
		p.s = nil
	}
	nt, err := p.m.InitToken(target, so, label)
	if err != nil {
		return mapErr(err)
	}
	return p.open(nt)
}

func (p *token) Login(pin secret.Value) error {
	return p.do(func(s *p11.Session) error { return s.Login(pin) })
}

// LoginPad implements runner.Token: p11's pad login, which blocks while
// the person types on the keypad.
func (p *token) LoginPad(so bool) error {
	return p.do(func(s *p11.Session) error { return s.LoginPad(so) })
}

func (p *token) LoginSO(cred secret.Value) error {
	return p.do(func(s *p11.Session) error { return s.LoginSO(cred) })
}

func (p *token) Logout() error {
	if p.s == nil {
		return nil
	}
	return p.do(func(s *p11.Session) error { return s.Logout() })
}

func (p *token) InitPIN(pin secret.Value) error {
	return p.do(func(s *p11.Session) error { return s.InitPIN(pin) })
}

func (p *token) SetPIN(old, new secret.Value) error {
	return p.do(func(s *p11.Session) error { return s.SetPIN(old, new) })
}

func (p *token) GenerateKeyPair(spec runner.KeySpec) (crypto.Signer, error) {
	var ks p11.KeySpec
	switch {
	case spec.Type == "RSA":
		ks.RSABits = spec.Bits
	case spec.Type == "EC" && spec.Bits == 256:
		ks.Curve = elliptic.P256()
	case spec.Type == "EC" && spec.Bits == 384:
		ks.Curve = elliptic.P384()
	default:
		return nil, fmt.Errorf("%s key of %d bits: %w", spec.Type, spec.Bits, &notSupported{})
	}
	var k *p11.Key
	err := p.do(func(s *p11.Session) (err error) {
		k, err = s.GenerateKeyPair(ks, spec.Label, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	return timedSigner{k, p.clock}, nil
}

// timedSigner counts the token's signing time as PKCS#11 time.
type timedSigner struct {
	k     *p11.Key
	clock *iotime.Clock
}

func (t timedSigner) Public() crypto.PublicKey { return t.k.Public() }
func (t timedSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	defer t.clock.TokenCall(time.Now())
	return t.k.Sign(r, digest, opts)
}

func (p *token) Signer(id []byte) (crypto.Signer, error) {
	var k *p11.Key
	err := p.do(func(s *p11.Session) (err error) {
		k, err = s.FindKey(id, "")
		return err
	})
	if err != nil {
		return nil, err
	}
	return timedSigner{k, p.clock}, nil
}

func (p *token) WriteCertificate(der []byte, label string, id []byte) error {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("parsing the certificate: %w", err)
	}
	return p.do(func(s *p11.Session) error {
		_, err := s.WriteCertificate(cert, label, id)
		return err
	})
}

func (p *token) ImportPKCS12(data []byte, password secret.Value, label string, id []byte) error {
	return p.do(func(s *p11.Session) error {
		_, err := s.ImportPKCS12(data, password, label, id)
		return err
	})
}

func (p *token) Find(c runner.Criteria) ([]runner.Object, error) {
	cls, err := p11.ParseClass(c.Class)
	if err != nil {
		return nil, err
	}
	attr, err := p11.ParseAttribute(c.Attr, c.Type, c.Text)
	if err != nil {
		return nil, err
	}
	var objs []p11.Object
	err = p.do(func(s *p11.Session) (err error) {
		objs, err = s.Find(p11.Criteria{cls, attr})
		return err
	})
	out := make([]runner.Object, 0, len(objs))
	for _, o := range objs {
		out = append(out, runner.Object{Class: o.Class, ID: o.ID, Label: o.Label})
	}
	return out, err
}

// WriteData stores a public data object: CMSCardSerialNumber, or the
// card's "Encrypted PINs" on a stand-in token.
func (p *token) WriteData(label string, value []byte) error {
	return p.do(func(s *p11.Session) error { return s.WriteData(label, value) })
}

func (p *token) ReadData(label string) ([]byte, error) {
	var v []byte
	err := p.do(func(s *p11.Session) error {
		objs, err := s.Find(p11.Criteria{p11.ClassIs(p11.ClassData), p11.LabelIs(label)})
		if err != nil {
			return err
		}
		if len(objs) == 0 {
			return fmt.Errorf("data object %q: %w", label, p11.ErrObjectNotFound)
		}
		v, err = s.Value(objs[0])
		return err
	})
	return v, err
}

func (p *token) Erase() error {
	return p.do(func(s *p11.Session) error {
		_, err := s.EraseObjects()
		return err
	})
}

func (p *token) Close() error {
	if p.s == nil {
		return nil
	}
	err := p.s.Close()
	p.s = nil
	return err
}

var _ runner.Tokens = (*Tokens)(nil)
