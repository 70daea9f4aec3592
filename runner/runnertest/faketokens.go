// Package runnertest holds test doubles for package runner: FakeTokens, an
// in-process PKCS#11 stand-in, and MemReaders, readers over in-memory cards
// (iso7816/memcard). Tests, benchmarks and dry runs use them; production
// code does not.
package runnertest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"sync"

	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/secret"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// FakeTokens is an in-process PKCS#11 stand-in for tests and benchmarks: one
// token per reader and location, created uninitialised on first use, with
// PIN retry counters (3), objects, and keys made with crypto/rand. It is safe
// for concurrent use.
type FakeTokens struct {
	// Modules allowed; empty allows every module.
	Modules []string
	// FailOn makes the named operation ("InitToken", "Login",
	// "GenerateKeyPair", "WriteCertificate", …) fail with the error.
	FailOn map[string]error
	// NewKey, if set, makes the key pairs instead of crypto/rand key
	// generation (benchmarks hand out pre-made keys to measure the runner,
	// not RSA).
	NewKey func(spec runner.KeySpec) (crypto.Signer, error)
	// StandIn marks the tokens as stand-ins for cards without middleware
	// (TokenInfo.StandIn).
	StandIn bool
	// Fixed, if set, is reported as TokenInfo.FixedLabel (a configuration
	// that finds the token by this label).
	Fixed string
	// PINLen is reported as TokenInfo.MinPIN and MaxPIN.
	PINLen [2]int
	// After, if set, runs after the named operation succeeded (a card
	// pulled while the token works).
	After map[string]func()
	// Pad, if set, gives the tokens a PIN pad (TokenInfo.PinPad): LoginPad
	// calls it, without the fake's lock, for what the person types on the
	// keypad of reader; an error is the pad's (wrap prompt.ErrRefused
	// for its cancel key). Without Pad, LoginPad is not supported.
	Pad func(reader string, so bool) (secret.Value, error)

	mu     sync.Mutex
	tokens map[string]*FakeToken
	serial int
	calls  []string
}

// FakeToken is the state of one fake token.
type FakeToken struct {
	f       *FakeTokens
	reader  string
	Label   string
	Serial  string
	SO, PIN secret.Value
	// SOTries and PINTries are the retry counters (3 when not blocked).
	SOTries, PINTries int
	Objects           []FakeObject
	login             int  // 0 none, 1 user, 2 SO
	Inited            bool // InitToken ran
}

// FakeObject is one object on a fake token.
type FakeObject struct {
	Class uint
	Label string
	ID    []byte
	Value []byte
	Key   crypto.Signer
}

// PKCS#11 v2.40 §4 object classes (FakeObject.Class) and attributes
// (runner.Criteria.AttrID) the fake knows.
const (
	ClassData        = 0
	ClassCertificate = 1
	ClassPublicKey   = 2
	ClassPrivateKey  = 3
	AttrLabel        = 0x03
	AttrID           = 0x102
)

// Allowed implements runner.Tokens.
func (f *FakeTokens) Allowed(module string) bool {
	if len(f.Modules) == 0 {
		return true
	}
	for _, m := range f.Modules {
		if m == module {
			return true
		}
	}
	return false
}

// Token returns the fake token of a reader (creating it), for assertions.
func (f *FakeTokens) Token(reader string, loc runner.Location) *FakeToken {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.token(reader, loc)
}

func (f *FakeTokens) token(reader string, loc runner.Location) *FakeToken {
	if f.tokens == nil {
		f.tokens = map[string]*FakeToken{}
	}
	k := reader + "\x00" + loc.String()
	t := f.tokens[k]
	if t == nil {
		f.serial++
		t = &FakeToken{f: f, reader: reader, Serial: fmt.Sprintf("%016X", 0xC0DE0000+f.serial), SOTries: 3, PINTries: 3}
		f.tokens[k] = t
	}
	return t
}

// Calls returns the operations done so far, in order.
func (f *FakeTokens) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Open implements runner.Tokens.
func (f *FakeTokens) Open(ctx context.Context, module, reader string, loc runner.Location) (runner.Token, error) {
	if !f.Allowed(module) {
		return nil, fmt.Errorf("loading %s: %w", module, runner.ErrModuleNotAllowed)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.op("Open"); err != nil {
		return nil, err
	}
	return &fakeSession{t: f.token(reader, loc)}, nil
}

// op records a call and returns its injected failure (f.mu held).
func (f *FakeTokens) op(name string) error {
	f.calls = append(f.calls, name)
	return f.FailOn[name]
}

type fakeSession struct {
	t      *FakeToken
	closed bool
}

func (s *fakeSession) do(name string, fn func(t *FakeToken) error) error {
	f := s.t.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.op(name); err != nil {
		return err
	}
	if s.closed {
		return fmt.Errorf("%s: session closed: %w", name, runner.ErrToken)
	}
	if err := fn(s.t); err != nil {
		return err
	}
	if after := f.After[name]; after != nil {
		after()
	}
	return nil
}

func (s *fakeSession) Info() (ti runner.TokenInfo, err error) {
	f := s.t.f
	err = s.do("Info", func(t *FakeToken) error {
		ti = runner.TokenInfo{Label: t.Label, Serial: t.Serial, Initialized: t.Inited, UserPIN: !t.PIN.IsZero(), FixedLabel: f.Fixed, StandIn: f.StandIn,
			MinPIN: f.PINLen[0], MaxPIN: f.PINLen[1], PinPad: f.Pad != nil}
		return nil
	})
	return ti, err
}

func (s *fakeSession) InitToken(so secret.Value, label string) error {
	return s.do("InitToken", func(t *FakeToken) error {
		if t.Inited && !t.SO.Equal(so) {
			return &runner.PINError{Who: "SO PIN", Retries: -1}
		}
		t.Inited, t.Label, t.SO, t.PIN = true, label, secret.FromBytes(so.Bytes()), secret.Value{}
		t.Objects, t.login, t.SOTries, t.PINTries = nil, 0, 3, 3
		return nil
	})
}

func check(who string, have, got secret.Value, tries *int) error {
	if *tries == 0 {
		return &runner.PINError{Who: who, Retries: 0}
	}
	if !have.Equal(got) || have.IsZero() {
		*tries--
		return &runner.PINError{Who: who, Retries: *tries}
	}
	*tries = 3
	return nil
}

func (s *fakeSession) Login(pin secret.Value) error {
	return s.do("Login", func(t *FakeToken) error { return t.loginUser(pin) })
}

func (s *fakeSession) LoginSO(cred secret.Value) error {
	return s.do("LoginSO", func(t *FakeToken) error { return t.loginSO(cred) })
}

// LoginPad reads the keypad (FakeTokens.Pad) and logs in with what was
// typed, as Login or LoginSO.
func (s *fakeSession) LoginPad(so bool) error {
	pad := s.t.f.Pad
	if pad == nil {
		return s.do("LoginPad", func(*FakeToken) error {
			return fmt.Errorf("logging in on a PIN pad: the token has none: %w", iso7816.ErrNotSupported)
		})
	}
	typed, err := pad(s.t.reader, so)
	defer typed.Wipe()
	return s.do("LoginPad", func(t *FakeToken) error {
		switch {
		case err != nil:
			return err
		case so:
			return t.loginSO(typed)
		}
		return t.loginUser(typed)
	})
}

func (t *FakeToken) loginUser(pin secret.Value) error {
	if err := check("PIN", t.PIN, pin, &t.PINTries); err != nil {
		return err
	}
	t.login = 1
	return nil
}

func (t *FakeToken) loginSO(cred secret.Value) error {
	if !t.Inited {
		return fmt.Errorf("logging in: token not initialised: %w", runner.ErrToken)
	}
	if err := check("PUK", t.SO, cred, &t.SOTries); err != nil {
		return err
	}
	t.login = 2
	return nil
}

func (s *fakeSession) Logout() error {
	return s.do("Logout", func(t *FakeToken) error { t.login = 0; return nil })
}

func (s *fakeSession) InitPIN(pin secret.Value) error {
	return s.do("InitPIN", func(t *FakeToken) error {
		if t.login != 2 {
			return fmt.Errorf("C_InitPIN without SO login: %w", runner.ErrToken)
		}
		t.PIN, t.PINTries = secret.FromBytes(pin.Bytes()), 3
		return nil
	})
}

func (s *fakeSession) SetPIN(old, new secret.Value) error {
	return s.do("SetPIN", func(t *FakeToken) error {
		if t.login == 2 {
			if err := check("PUK", t.SO, old, &t.SOTries); err != nil {
				return err
			}
			t.SO = secret.FromBytes(new.Bytes())
			return nil
		}
		if err := check("PIN", t.PIN, old, &t.PINTries); err != nil {
			return err
		}
		t.PIN = secret.FromBytes(new.Bytes())
		return nil
	})
}

func (s *fakeSession) user(t *FakeToken, what string) error {
	if t.login != 1 {
		return fmt.Errorf("%s: user not logged in: %w", what, runner.ErrToken)
	}
	return nil
}

func (s *fakeSession) GenerateKeyPair(spec runner.KeySpec) (crypto.Signer, error) {
	var key crypto.Signer
	f := s.t.f
	err := s.do("GenerateKeyPair", func(t *FakeToken) error {
		if err := s.user(t, "generating a key pair"); err != nil {
			return err
		}
		var err error
		switch {
		case f.NewKey != nil:
			key, err = f.NewKey(spec)
		case spec.Type == "RSA":
			key, err = rsa.GenerateKey(rand.Reader, spec.Bits)
		case spec.Type == "EC":
			var c elliptic.Curve
			switch spec.Bits {
			case 256:
				c = elliptic.P256()
			case 384:
				c = elliptic.P384()
			case 521:
				c = elliptic.P521()
			default:
				return fmt.Errorf("EC key of %d bits: %w", spec.Bits, iso7816.ErrNotSupported)
			}
			key, err = ecdsa.GenerateKey(c, rand.Reader)
		default:
			return fmt.Errorf("key type %q: %w", spec.Type, iso7816.ErrNotSupported)
		}
		if err != nil {
			return err
		}
		id, err := runner.KeyID(key.Public())
		if err != nil {
			return err
		}
		t.Objects = append(t.Objects,
			FakeObject{Class: ClassPrivateKey, Label: spec.Label, ID: id, Key: key},
			FakeObject{Class: ClassPublicKey, Label: spec.Label, ID: id, Key: key})
		return nil
	})
	return key, err
}

func (s *fakeSession) Signer(id []byte) (crypto.Signer, error) {
	var key crypto.Signer
	err := s.do("Signer", func(t *FakeToken) error {
		if err := s.user(t, "finding a private key"); err != nil {
			return err
		}
		for _, o := range t.Objects {
			if o.Class == ClassPrivateKey && bytes.Equal(o.ID, id) && o.Key != nil {
				key = o.Key
				return nil
			}
		}
		return fmt.Errorf("private key with id %X: %w", id, runner.ErrObjectNotFound)
	})
	return key, err
}

func (s *fakeSession) WriteCertificate(der []byte, label string, id []byte) error {
	return s.do("WriteCertificate", func(t *FakeToken) error {
		if err := s.user(t, "writing a certificate"); err != nil {
			return err
		}
		t.Objects = append(t.Objects, FakeObject{Class: ClassCertificate, Label: label, ID: id, Value: der})
		return nil
	})
}

func (s *fakeSession) ImportPKCS12(p12 []byte, password secret.Value, label string, id []byte) error {
	return s.do("ImportPKCS12", func(t *FakeToken) error {
		if err := s.user(t, "importing a PKCS#12"); err != nil {
			return err
		}
		key, cert, chain, err := pkcs12.DecodeChain(p12, password.Reveal())
		if err != nil {
			return fmt.Errorf("decoding the PKCS#12: %w", err)
		}
		sg, _ := key.(crypto.Signer)
		t.Objects = append(t.Objects, FakeObject{Class: ClassPrivateKey, Label: label, ID: id, Key: sg},
			FakeObject{Class: ClassCertificate, Label: label, ID: id, Value: cert.Raw})
		for _, c := range chain {
			t.Objects = append(t.Objects, FakeObject{Class: ClassCertificate, Label: c.Subject.CommonName, Value: c.Raw})
		}
		return nil
	})
}

func (s *fakeSession) Find(c runner.Criteria) ([]runner.Object, error) {
	var out []runner.Object
	err := s.do("Find", func(t *FakeToken) error {
		if err := s.user(t, "finding objects"); err != nil {
			return err
		}
		for _, o := range t.Objects {
			if o.Class != c.ClassID {
				continue
			}
			var v []byte
			switch c.AttrID {
			case AttrLabel:
				v = []byte(o.Label)
			case AttrID:
				v = o.ID
			default:
				return fmt.Errorf("attribute %s in the fake: %w", c.Attr, iso7816.ErrNotSupported)
			}
			if bytes.Equal(v, c.Bytes) {
				out = append(out, runner.Object{Class: o.Class, ID: o.ID, Label: o.Label})
			}
		}
		return nil
	})
	return out, err
}

func (s *fakeSession) WriteData(label string, value []byte) error {
	return s.do("WriteData", func(t *FakeToken) error {
		if err := s.user(t, "writing a data object"); err != nil {
			return err
		}
		for i, o := range t.Objects {
			if o.Class == ClassData && o.Label == label {
				t.Objects[i].Value = append([]byte(nil), value...)
				return nil
			}
		}
		t.Objects = append(t.Objects, FakeObject{Class: ClassData, Label: label, Value: append([]byte(nil), value...)})
		return nil
	})
}

func (s *fakeSession) ReadData(label string) (v []byte, err error) {
	err = s.do("ReadData", func(t *FakeToken) error {
		for _, o := range t.Objects {
			if o.Class == ClassData && o.Label == label {
				v = o.Value
				return nil
			}
		}
		return fmt.Errorf("data object %q: %w", label, runner.ErrObjectNotFound)
	})
	return v, err
}

func (s *fakeSession) Erase() error {
	return s.do("Erase", func(t *FakeToken) error {
		t.Objects = nil
		return nil
	})
}

func (s *fakeSession) Close() error {
	return s.do("Close", func(t *FakeToken) error {
		s.closed = true
		t.login = 0
		return nil
	})
}

// Certificates returns the DER certificates on the token, for assertions.
func (t *FakeToken) Certificates() [][]byte {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	var out [][]byte
	for _, o := range t.Objects {
		if o.Class == ClassCertificate {
			out = append(out, o.Value)
		}
	}
	return out
}

// Snapshot returns the token's state (copied) under the lock.
func (t *FakeToken) Snapshot() FakeToken {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	c := *t
	c.Objects = append([]FakeObject(nil), t.Objects...)
	return c
}

// Initialized reports whether InitToken ran.
func (t *FakeToken) Initialized() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	return t.Inited
}
