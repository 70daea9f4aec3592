package p11

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cardwright/cardwright/secret"
	"github.com/miekg/pkcs11"
)

// Session is an R/W session with a token (C_OpenSession with CKF_RW_SESSION
// | CKF_SERIAL_SESSION). PKCS#11 allows one operation at a time per session
// (v2.40 §5.6): a Session serialises its calls with a mutex, so sharing one
// between goroutines is safe but not parallel; open one per goroutine for
// parallel work.
//
// Login state belongs to the application, not the session (PKCS#11 v2.40
// §5.6): all sessions of this process on a token share it. Which Sessions
// hold it is kept per token in the Module (see Login).
type Session struct {
	mu   sync.Mutex
	t    *Token
	h    pkcs11.SessionHandle
	tl   *tokenLogin // the token's login bookkeeping
	done bool
}

// Open opens an R/W session with the token.
func (t *Token) Open() (*Session, error) {
	h, err := t.m.ctx.OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return nil, fmt.Errorf("opening a session with token %q (slot %d): %w", t.label, t.slot, err)
	}
	return &Session{t: t, h: h, tl: t.m.loginOf(t.slot, t.serial)}, nil
}

// Token is the session's token.
func (s *Session) Token() *Token { return s.t }

// Close ends the session (C_CloseSession). A session holding the login
// releases it first as Logout does: the last holder logs the token out,
// even while sessions that hold no login stay open (closing the last
// session of the process would end the login too, PKCS#11 v2.40 §5.6, but
// other sessions may be open).
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	s.done = true
	lerr := s.release("logging out of")
	if err := s.t.m.ctx.CloseSession(s.h); err != nil {
		return fmt.Errorf("closing the session: %w", err)
	}
	return lerr
}

// SOCredential is the credential an SO login uses: the PUK, or the
// operator PIN when the description says OperatorPinIsSOCredential.
func SOCredential(puk, operatorPIN secret.Value, operatorPinIsSOCredential bool) secret.Value {
	if operatorPinIsSOCredential {
		return operatorPIN
	}
	return puk
}

// pinError turns a PIN failure into a *PINError carrying the token's
// retry flags; other errors pass unchanged.
func (s *Session) pinError(err error, so bool) error {
	if !isPINFailure(err) {
		return err
	}
	pe := &PINError{SO: so, Err: err}
	if ti, e := s.t.m.ctx.GetTokenInfo(s.t.slot); e == nil {
		f := ti.Flags
		if so {
			pe.CountLow, pe.FinalTry, pe.Locked = f&pkcs11.CKF_SO_PIN_COUNT_LOW != 0, f&pkcs11.CKF_SO_PIN_FINAL_TRY != 0, f&pkcs11.CKF_SO_PIN_LOCKED != 0
		} else {
			pe.CountLow, pe.FinalTry, pe.Locked = f&pkcs11.CKF_USER_PIN_COUNT_LOW != 0, f&pkcs11.CKF_USER_PIN_FINAL_TRY != 0, f&pkcs11.CKF_USER_PIN_LOCKED != 0
		}
	}
	return pe
}

// LoggedIn reports whether the token is logged in for this process, as
// user or SO, by this session or any other (C_GetSessionInfo: a state of
// CKS_RO_USER_FUNCTIONS, CKS_RW_USER_FUNCTIONS or CKS_RW_SO_FUNCTIONS,
// PKCS#11 v2.40 §5.6). While it is, C_Login does not check a PIN (and
// Login refuses, see ErrLoggedInElsewhere).
func (s *Session) LoggedIn() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return false, errClosed
	}
	info, err := s.t.m.ctx.GetSessionInfo(s.h)
	if err != nil {
		return false, fmt.Errorf("reading the session state: %w", err)
	}
	switch info.State {
	case pkcs11.CKS_RO_USER_FUNCTIONS, pkcs11.CKS_RW_USER_FUNCTIONS, pkcs11.CKS_RW_SO_FUNCTIONS:
		return true, nil
	}
	return false, nil
}

// InitPIN sets the user PIN (C_InitPIN); the SO must be logged in.
func (s *Session) InitPIN(pin secret.Value) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.t.m.ctx.InitPIN(s.h, pin.Reveal()); err != nil {
		return fmt.Errorf("setting the user PIN of token %q: %w", s.t.label, err)
	}
	return nil
}

// SetPIN changes the PIN of whoever is logged in, or the user PIN when no
// one is (C_SetPIN, PKCS#11 v2.40 §5.6).
func (s *Session) SetPIN(old, new secret.Value) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	so := s.loginUser() == pkcs11.CKU_SO
	if err := s.t.m.ctx.SetPIN(s.h, old.Reveal(), new.Reveal()); err != nil {
		who := "user PIN"
		if so {
			who = "SO PIN"
			if isUnsupported(err) {
				return &unsupportedError{what: fmt.Sprintf("changing the SO PIN of token %q", s.t.label), err: err}
			}
		}
		return fmt.Errorf("changing the %s of token %q: %w", who, s.t.label, s.pinError(err, so))
	}
	if !so {
		s.pinChanged(new)
	}
	return nil
}

// InitToken initialises a token (C_InitToken): it sets the SO PIN and the
// label and destroys every object. t nil means the first slot whose token
// is not initialised yet. It returns the token found again afterwards by
// its serial or new label, since modules may renumber the slot (SoftHSM2
// does). The user PIN is not set: call InitPIN (or InitTokenAndPIN).
func (m *Module) InitToken(t *Token, so secret.Value, label string) (*Token, error) {
	m.initMu.Lock()
	defer m.initMu.Unlock()
	var slot uint
	known := map[string]bool{}
	if t != nil {
		slot = t.slot
	} else {
		before, err := m.Tokens()
		if err != nil {
			return nil, err
		}
		found := false
		for _, bt := range before {
			if bt.info.Initialized() {
				known[bt.info.Serial] = true
			} else if !found {
				slot, found = bt.slot, true
			}
		}
		if !found {
			return nil, fmt.Errorf("initialising token %q: no slot with an uninitialised token: %w", label, ErrTokenNotFound)
		}
	}
	if err := m.ctx.InitToken(slot, so.Reveal(), label); err != nil {
		if isPINFailure(err) {
			err = &PINError{SO: true, Err: err}
		}
		return nil, fmt.Errorf("initialising the token in slot %d as %q: %w", slot, label, err)
	}
	// Re-initialised in place: usually the same slot still holds it.
	if t != nil {
		if nt, err := m.TokenInSlot(slot); err == nil && nt.serial == t.serial && nt.label == label {
			return nt, nil
		}
	}
	after, err := m.Tokens()
	if err != nil {
		return nil, err
	}
	for _, at := range after {
		if t != nil && t.serial != "" && at.serial == t.serial && at.label == label {
			return at, nil
		}
	}
	for _, at := range after {
		if t == nil && at.info.Initialized() && at.info.Label == label && !known[at.info.Serial] {
			return at, nil
		}
	}
	return nil, fmt.Errorf("finding token %q again after C_InitToken: %w", label, ErrTokenNotFound)
}

// InitTokenAndPIN is InitToken, then an SO session that sets the user PIN
// (C_Login CKU_SO, C_InitPIN, C_Logout).
func (m *Module) InitTokenAndPIN(t *Token, so, pin secret.Value, label string) (*Token, error) {
	nt, err := m.InitToken(t, so, label)
	if err != nil {
		return nil, err
	}
	if err := nt.InitPIN(so, pin); err != nil {
		return nil, err
	}
	nt.mu.Lock()
	nt.info.Flags |= pkcs11.CKF_USER_PIN_INITIALIZED // set by a good C_InitPIN (v2.40 §5.6)
	nt.mu.Unlock()
	return nt, nil
}

// InitPIN sets the user PIN as SO: C_OpenSession, C_Login CKU_SO,
// C_InitPIN, C_CloseSession.
func (t *Token) InitPIN(so, pin secret.Value) error {
	return t.asSO(so, func(s *Session) error { return s.InitPIN(pin) })
}

// UnblockPIN resets a blocked (or forgotten) user PIN with the PUK: an SO
// login with the PUK, then C_InitPIN with the new PIN. A wrong PUK is a
// *PINError with SO set.
func (t *Token) UnblockPIN(puk, newPIN secret.Value) error {
	return t.asSO(puk, func(s *Session) error { return s.InitPIN(newPIN) })
}

// ChangePUK changes the SO credential: SO login, C_SetPIN. A module that
// refuses gives an error wrapping ErrNotSupported.
func (t *Token) ChangePUK(old, new secret.Value) error {
	return t.asSO(old, func(s *Session) error { return s.SetPIN(old, new) })
}

// ChangePIN changes the user PIN with C_SetPIN in a session that is not
// logged in (the user PIN is the one changed, PKCS#11 v2.40 §5.6).
func (t *Token) ChangePIN(old, new secret.Value) error {
	s, err := t.Open()
	if err != nil {
		return err
	}
	defer s.Close()
	return s.SetPIN(old, new)
}

func (t *Token) asSO(cred secret.Value, op func(*Session) error) error {
	s, err := t.Open()
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.LoginSO(cred); err != nil {
		if isUnsupported(err) {
			return &unsupportedError{what: fmt.Sprintf("logging in as SO to token %q", t.label), err: err}
		}
		return err
	}
	err = op(s)
	if lerr := s.Logout(); err == nil {
		err = lerr
	}
	return err
}

// errClosed is returned by calls on a closed session.
var errClosed = errors.New("session is closed")
