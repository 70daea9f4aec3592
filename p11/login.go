package p11

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"

	"github.com/cardwright/cardwright/secret"
	"github.com/miekg/pkcs11"
)

// ErrLoggedInElsewhere: the token is logged in already by another
// operation of this process (another session, or code outside p11), so
// C_Login would answer CKR_USER_ALREADY_LOGGED_IN without checking the PIN
// (C_Login, PKCS#11 v2.40 §5.6). The login is refused rather than taken as
// proof of the PIN; try again when that operation is done.
var ErrLoggedInElsewhere = errors.New("token is logged in by another operation of this process, so the PIN cannot be checked now")

// tokenLogin is the login this process holds on one token, shared by the
// Sessions that hold it (PKCS#11 v2.40 §5.6: the login state belongs to
// the application, every session of it on the token sees it).
//
// Rule: a Session becomes a holder by a C_Login the token itself checked,
// or (LoginShared only) by showing the very PIN the token accepted for the
// current login. Logout and Close drop the holder; C_Logout is called only
// when the last holder goes, so no operation logs out another one's
// login.
type tokenLogin struct {
	mu      sync.Mutex
	user    int // CKU_USER or CKU_SO while holders is not empty
	holders map[*Session]struct{}
	pin     secret.Value // the user PIN the token accepted; zero for SO
}

type tokenKey struct {
	slot   uint
	serial string
}

// loginOf returns the login bookkeeping of a token, keyed by slot and
// serial: a different token put in the same slot starts afresh.
func (m *Module) loginOf(slot uint, serial string) *tokenLogin {
	m.loginsMu.Lock()
	defer m.loginsMu.Unlock()
	k := tokenKey{slot, serial}
	if m.logins == nil {
		m.logins = map[tokenKey]*tokenLogin{}
	}
	tl := m.logins[k]
	if tl == nil {
		tl = &tokenLogin{holders: map[*Session]struct{}{}}
		m.logins[k] = tl
	}
	return tl
}

// Login logs the user in (C_Login CKU_USER); the token checks the PIN.
//
// When another operation of this process holds a login on the token, the
// token would not check the PIN (CKR_USER_ALREADY_LOGGED_IN, PKCS#11
// v2.40 §5.6): Login then fails with an error wrapping
// ErrLoggedInElsewhere and the PIN is neither sent nor compared. The same
// happens when C_Login answers CKR_USER_ALREADY_LOGGED_IN for a login
// made outside p11. When this session alone holds the login, Login logs
// out and in again, so the new PIN is checked too.
//
// The PIN is kept (as a secret.Value) for transparent re-login until the
// session's login ends.
func (s *Session) Login(pin secret.Value) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.login(pkcs11.CKU_USER, pin, false, false)
}

// ErrPadCancelled: the person at the reader cancelled the PIN entry on its
// keypad (CKR_FUNCTION_CANCELED, which stays in the chain).
var ErrPadCancelled = errors.New("PIN entry cancelled on the PIN pad")

// LoginPad logs the user in, or with so the security officer, through the
// token's protected authentication path (CKF_PROTECTED_AUTHENTICATION_PATH):
// C_Login with no PIN, and the person enters it on the reader's keypad
// (PKCS#11 v2.40 §5.6). It blocks until they have, or have cancelled
// (ErrPadCancelled); a wrong PIN is the *PINError Login gives. A token
// without the flag fails with ErrNotSupported and C_Login is not called (a
// module might count an empty PIN as a wrong one).
//
// The bookkeeping is Login's: the token checks the PIN, so the session
// holds the login; no PIN is kept, so LoginShared never joins a pad login
// and a module that logs the user out cannot be logged in again without
// the pad.
func (s *Session) LoginPad(so bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return errClosed
	}
	ti, err := s.t.m.tokenInfo(s.t.slot)
	if err != nil {
		return fmt.Errorf("reading the flags of token %q: %w", s.t.label, err)
	}
	if ti.Flags&pkcs11.CKF_PROTECTED_AUTHENTICATION_PATH == 0 {
		return fmt.Errorf("logging in to token %q on a PIN pad: the token has no protected authentication path: %w", s.t.label, ErrNotSupported)
	}
	user := uint(pkcs11.CKU_USER)
	if so {
		user = pkcs11.CKU_SO
	}
	return s.login(user, secret.Value{}, false, true)
}

// LoginShared is Login for a PIN from the configuration (a configured
// decryption key), never one a user or a portal typed: when this process
// holds a user login on the token already, the session joins it if pin is
// the PIN the token accepted for that login (compared in constant time),
// and fails with ErrLoggedInElsewhere otherwise. Comparing is no
// substitute for the token's own check with its retry counter, which is
// why Login never does it: an untrusted caller could test PINs against the
// kept one without limit.
func (s *Session) LoginShared(pin secret.Value) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.login(pkcs11.CKU_USER, pin, true, false)
}

// LoginSO logs the security officer in (C_Login CKU_SO) with the SO
// credential (see SOCredential), under the same rule as Login.
func (s *Session) LoginSO(cred secret.Value) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.login(pkcs11.CKU_SO, cred, false, false)
}

// login applies the rule; call with s.mu held. With pad, pin is empty
// and C_Login gets a NULL PIN (miekg/pkcs11 passes NULL for length 0).
func (s *Session) login(user uint, pin secret.Value, shared, pad bool) error {
	if s.done {
		return errClosed
	}
	tl := s.tl
	tl.mu.Lock()
	defer tl.mu.Unlock()
	_, mine := tl.holders[s]
	switch others := len(tl.holders) - btoi(mine); {
	case others > 0 && shared && user == pkcs11.CKU_USER && tl.user == int(user) && samePIN(tl.pin, pin):
		tl.holders[s] = struct{}{}
		return nil
	case others > 0:
		return fmt.Errorf("logging in to token %q: %w", s.t.label, ErrLoggedInElsewhere)
	case mine:
		// This session alone holds the login: end it, so the token
		// checks the credential again.
		delete(tl.holders, s)
		tl.pin.Wipe()
		if err := s.t.m.ctx.Logout(s.h); err != nil && !is(err, pkcs11.CKR_USER_NOT_LOGGED_IN) {
			return fmt.Errorf("logging out of token %q to log in again: %w", s.t.label, err)
		}
	}
	err := s.t.m.ctx.Login(s.h, user, pin.Reveal())
	if is(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) || is(err, pkcs11.CKR_USER_ANOTHER_ALREADY_LOGGED_IN) {
		// Logged in by code outside p11's bookkeeping.
		return fmt.Errorf("logging in to token %q: %w: %w", s.t.label, ErrLoggedInElsewhere, err)
	}
	if pad && is(err, pkcs11.CKR_FUNCTION_CANCELED) {
		return fmt.Errorf("logging in to token %q: %w: %w", s.t.label, ErrPadCancelled, err)
	}
	if err != nil {
		return fmt.Errorf("logging in to token %q: %w", s.t.label, s.pinError(err, user == pkcs11.CKU_SO))
	}
	tl.user = int(user)
	tl.holders[s] = struct{}{}
	if user == pkcs11.CKU_USER && !pad {
		tl.pin = secret.FromBytes(pin.Bytes())
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// samePIN compares a kept PIN with a given one in constant time (over
// their SHA-256, so the length does not show either). An empty kept PIN
// matches nothing.
func samePIN(kept, given secret.Value) bool {
	if kept.IsZero() {
		return false
	}
	a, b := sha256.Sum256(kept.Bytes()), sha256.Sum256(given.Bytes())
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// Logout ends this session's share of the login. C_Logout is called when
// no other session of this process holds the login any more; a session
// that holds no login changes nothing (it never logs out another
// operation's login).
func (s *Session) Logout() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	return s.release("logging out of")
}

// release drops s as a holder and logs the token out when it was the last
// one. Call with s.mu held.
func (s *Session) release(doing string) error {
	tl := s.tl
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if _, ok := tl.holders[s]; !ok {
		return nil
	}
	delete(tl.holders, s)
	if len(tl.holders) > 0 {
		return nil
	}
	tl.pin.Wipe()
	if err := s.t.m.ctx.Logout(s.h); err != nil && !is(err, pkcs11.CKR_USER_NOT_LOGGED_IN) {
		return fmt.Errorf("%s token %q: %w", doing, s.t.label, err)
	}
	return nil
}

// loginUser is the user type of this process's login on the token,
// whichever session holds it, or -1. C_SetPIN acts on that login's PIN,
// held by this session or not (PKCS#11 v2.40 §5.6).
func (s *Session) loginUser() int {
	s.tl.mu.Lock()
	defer s.tl.mu.Unlock()
	if len(s.tl.holders) == 0 {
		return -1
	}
	return s.tl.user
}

// heldPIN is a copy of the user PIN of the login s holds, zero when it
// holds none (or an SO login). The caller wipes it. Call with s.mu held.
func (s *Session) heldPIN() secret.Value {
	s.tl.mu.Lock()
	defer s.tl.mu.Unlock()
	if _, ok := s.tl.holders[s]; !ok || s.tl.user != pkcs11.CKU_USER {
		return secret.Value{}
	}
	return secret.FromBytes(s.tl.pin.Bytes())
}

// pinChanged records a user PIN changed by C_SetPIN while the token is
// logged in as user, so holders log in again with the new one.
func (s *Session) pinChanged(new secret.Value) {
	s.tl.mu.Lock()
	defer s.tl.mu.Unlock()
	if len(s.tl.holders) > 0 && s.tl.user == pkcs11.CKU_USER {
		s.tl.pin.Wipe()
		s.tl.pin = secret.FromBytes(new.Bytes())
	}
}

// relogin runs op; when the module answers CKR_USER_NOT_LOGGED_IN (some
// log the user out after each C_Sign), a session holding a user login
// logs in again with the kept PIN and runs op once more. The PIN was
// checked by the token for this login, so CKR_USER_ALREADY_LOGGED_IN
// (another holder was quicker) is fine here. Call with s.mu held.
func (s *Session) relogin(op func() error) error {
	err := op()
	if err == nil || !is(err, pkcs11.CKR_USER_NOT_LOGGED_IN) {
		return err
	}
	pin := s.heldPIN()
	defer pin.Wipe()
	if pin.IsZero() {
		return err
	}
	if lerr := s.t.m.ctx.Login(s.h, pkcs11.CKU_USER, pin.Reveal()); lerr != nil && !is(lerr, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		return fmt.Errorf("logging in again after %v: %w", err, s.pinError(lerr, false))
	}
	return op()
}
