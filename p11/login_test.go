package p11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cardwright/cardwright/secret"
	"github.com/miekg/pkcs11"
)

// loggedIn reports the token's login state as a fresh session sees it.
func loggedIn(t testing.TB, tok *Token) bool {
	t.Helper()
	s, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, err := s.LoggedIn()
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// signOnce signs with k and verifies the signature.
func signOnce(k *Key) error {
	h := sha256.Sum256([]byte("login test"))
	sig, err := k.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		return err
	}
	if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), h[:], sig) {
		return errors.New("signature does not verify")
	}
	return nil
}

// While one session of the process holds the login, C_Login in another
// would not check the PIN (C_Login, PKCS#11 v2.40 §5.6). Login refuses for a
// wrong PIN and the right one alike, without sending either; LoginShared
// joins with the PIN the token accepted and refuses any other.
func TestLoginWhileLoggedIn(t *testing.T) {
	m := softhsm(t)
	tok := newToken(t, m)
	wrong := secret.New("wrong-7731")
	a := userSession(t, tok)
	ka, err := a.GenerateKeyPair(ECP256, "login", []byte{0x7A})
	if err != nil {
		t.Fatal(err)
	}
	b, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, tt := range []struct {
		name  string
		login func(secret.Value) error
		pin   secret.Value
	}{
		{"Login, wrong PIN", b.Login, wrong},
		{"Login, right PIN", b.Login, testPIN},
		{"LoginSO", b.LoginSO, testSO},
		{"LoginShared, wrong PIN", b.LoginShared, wrong},
		{"LoginShared, empty PIN", b.LoginShared, secret.Value{}},
	} {
		err := tt.login(tt.pin)
		if !errors.Is(err, ErrLoggedInElsewhere) {
			t.Errorf("%s while another session holds the login: %v, want ErrLoggedInElsewhere", tt.name, err)
			continue
		}
		var pe *PINError
		if errors.As(err, &pe) {
			t.Errorf("%s: a *PINError (%v) for a PIN the token never saw", tt.name, err)
		}
		noSecrets(t, err.Error(), wrong)
	}
	// Nothing reached the token: no failed try was counted.
	if info, _ := tok.Refresh(); info.Flags&pkcs11.CKF_USER_PIN_COUNT_LOW != 0 {
		t.Errorf("a refused login counted as a failed try: %v", info.FlagNames())
	}

	if err := b.LoginShared(testPIN); err != nil {
		t.Fatalf("LoginShared with the PIN of the login: %v", err)
	}
	kb, err := b.FindKey([]byte{0x7A}, "")
	if err != nil {
		t.Fatal(err)
	}
	// The first holder logs out: the second keeps working, the token
	// stays logged in.
	if err := a.Logout(); err != nil {
		t.Fatal(err)
	}
	if err := signOnce(kb); err != nil {
		t.Errorf("sign in the remaining session after the other logged out: %v", err)
	}
	if !loggedIn(t, tok) {
		t.Error("the token was logged out while a session still holds the login")
	}
	// A session that holds no login logs out nothing.
	if err := a.Logout(); err != nil {
		t.Fatal(err)
	}
	if err := signOnce(kb); err != nil {
		t.Errorf("sign after a second Logout of the other session: %v", err)
	}
	// The last holder's Logout ends the login; the token checks PINs again.
	if err := b.Logout(); err != nil {
		t.Fatal(err)
	}
	if loggedIn(t, tok) {
		t.Error("still logged in after the last holder logged out")
	}
	var pe *PINError
	if err := a.Login(wrong); !errors.As(err, &pe) || !errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)) {
		t.Errorf("wrong PIN after the login ended: %v, want a *PINError", err)
	}
	if err := a.Login(testPIN); err != nil {
		t.Fatal(err)
	}
	if ka, err = a.FindKey(ka.ID, ""); err == nil { // SoftHSM2 drops handles at logout
		err = signOnce(ka)
	}
	if err != nil {
		t.Errorf("sign after logging in again: %v", err)
	}
	a.Logout()
}

// A session that alone holds the login and logs in again has the new PIN
// checked by the token (log out, log in), not waved through.
func TestLoginAgainSameSession(t *testing.T) {
	m := softhsm(t)
	tok := newToken(t, m)
	s := userSession(t, tok)
	wrong := secret.New("wrong-6620")
	var pe *PINError
	if err := s.Login(wrong); !errors.As(err, &pe) || !errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)) {
		t.Fatalf("the holder logging in again with a wrong PIN: %v, want a *PINError", err)
	}
	if loggedIn(t, tok) {
		t.Error("still logged in after a failed login again")
	}
	if err := s.Login(testPIN); err != nil {
		t.Fatal(err)
	}
	if err := s.Login(testPIN); err != nil {
		t.Fatalf("logging in again with the right PIN: %v", err)
	}
	if err := s.LoginSO(testSO); err != nil {
		t.Fatalf("user to SO in one session: %v", err)
	}
	if err := s.Logout(); err != nil || loggedIn(t, tok) {
		t.Fatalf("Logout after SO login: %v (logged in %v)", err, loggedIn(t, tok))
	}
}

// Close releases the login like Logout: the last holder's Close logs the
// token out even while a session that holds no login stays open (closing
// alone would not end the login then).
func TestCloseReleasesLogin(t *testing.T) {
	m := softhsm(t)
	tok := newToken(t, m)
	idle, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	a, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	b, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Login(testPIN); err != nil {
		t.Fatal(err)
	}
	if err := b.LoginShared(testPIN); err != nil {
		t.Fatal(err)
	}
	kb, err := b.GenerateKeyPair(ECP256, "close", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := signOnce(kb); err != nil {
		t.Errorf("sign after the other holder closed: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if in, err := idle.LoggedIn(); err != nil || in {
		t.Errorf("after the last holder closed: LoggedIn = %v, %v; want false", in, err)
	}
	if err := idle.Login(secret.New("wrong-1187")); !errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)) {
		t.Errorf("wrong PIN after the holders closed: %v", err)
	}
}

// A login made outside p11 (the raw API on the same library) is not one
// p11 can vouch for: Login and LoginShared refuse whatever the PIN.
func TestLoginOutsideBookkeeping(t *testing.T) {
	m := softhsm(t)
	tok := newToken(t, m)
	h, err := m.ctx.OpenSession(tok.SlotID(), pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer m.ctx.CloseSession(h)
	if err := m.ctx.Login(h, pkcs11.CKU_USER, testPIN.Reveal()); err != nil {
		t.Fatal(err)
	}
	s, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, pin := range []secret.Value{secret.New("wrong-3309"), testPIN} {
		if err := s.Login(pin); !errors.Is(err, ErrLoggedInElsewhere) || !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
			t.Errorf("Login with a raw login in place: %v, want ErrLoggedInElsewhere with CKR_USER_ALREADY_LOGGED_IN", err)
		}
		if err := s.LoginShared(pin); !errors.Is(err, ErrLoggedInElsewhere) {
			t.Errorf("LoginShared with a raw login in place: %v, want ErrLoggedInElsewhere", err)
		}
	}
	// s holds nothing: its Logout leaves the raw login alone.
	if err := s.Logout(); err != nil {
		t.Fatal(err)
	}
	if !loggedIn(t, tok) {
		t.Error("Logout of a session holding no login ended a login made elsewhere")
	}
	if err := m.ctx.Logout(h); err != nil {
		t.Fatal(err)
	}
	if err := s.Login(testPIN); err != nil {
		t.Errorf("Login after the raw logout: %v", err)
	}
}

// A user PIN changed while logged in is the one later joins and re-logins
// use.
func TestPINChangeWhileLoggedIn(t *testing.T) {
	m := softhsm(t)
	tok := newToken(t, m)
	a := userSession(t, tok)
	k, err := a.GenerateKeyPair(ECP256, "change", nil)
	if err != nil {
		t.Fatal(err)
	}
	newPIN := secret.New("pin-new-4410")
	if err := a.SetPIN(testPIN, newPIN); err != nil {
		t.Fatal(err)
	}
	b, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.LoginShared(testPIN); !errors.Is(err, ErrLoggedInElsewhere) {
		t.Errorf("LoginShared with the old PIN: %v, want ErrLoggedInElsewhere", err)
	}
	if err := b.LoginShared(newPIN); err != nil {
		t.Errorf("LoginShared with the new PIN: %v", err)
	}
	b.Logout()
	// Module-initiated logout: the key logs in again with the new PIN.
	if err := m.ctx.Logout(a.h); err != nil {
		t.Fatal(err)
	}
	if err := signOnce(k); err != nil {
		t.Errorf("sign after a module logout, PIN changed: %v", err)
	}
	a.Logout()
}

// Many goroutines, a session each, on one token (run with -race): holders
// by LoginShared sign and log out while others try wrong PINs with Login
// and LoginShared. A wrong PIN never succeeds, the right PIN with Login
// either logs in (nobody else holds) or is refused, and signatures made
// under a shared login keep working while other holders log out. At the
// end nobody holds the login and the token is logged out.
func TestLoginConcurrent(t *testing.T) {
	m := softhsm(t)
	tok := newToken(t, m)
	setup := userSession(t, tok)
	if _, err := setup.GenerateKeyPair(ECP256, "conc", []byte{0xC0}); err != nil {
		t.Fatal(err)
	}
	setup.Logout()
	wrong := secret.New("wrong-5058")
	const workers, rounds = 6, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := tok.Open()
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			for r := range rounds {
				switch (w + r) % 3 {
				case 0: // a shared holder signs
					err := s.LoginShared(testPIN)
					if errors.Is(err, ErrLoggedInElsewhere) {
						continue // a strict login holds the token right now
					}
					if err != nil {
						errs <- fmt.Errorf("worker %d: LoginShared: %w", w, err)
						return
					}
					k, err := s.FindKey([]byte{0xC0}, "")
					if err == nil {
						err = signOnce(k)
					}
					if err != nil {
						errs <- fmt.Errorf("worker %d: signing under a shared login: %w", w, err)
					}
					if err := s.Logout(); err != nil {
						errs <- err
					}
				case 1: // wrong PINs
					if err := s.Login(wrong); err == nil {
						errs <- fmt.Errorf("worker %d: Login with a wrong PIN succeeded", w)
						s.Logout()
					}
					if err := s.LoginShared(wrong); err == nil {
						errs <- fmt.Errorf("worker %d: LoginShared with a wrong PIN succeeded", w)
						s.Logout()
					}
				case 2: // the right PIN, strictly
					err := s.Login(testPIN)
					switch {
					case err == nil:
						s.Logout()
					case !errors.Is(err, ErrLoggedInElsewhere):
						errs <- fmt.Errorf("worker %d: Login with the right PIN: %w", w, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if loggedIn(t, tok) {
		t.Error("logged in after every worker logged out")
	}
	if n := len(tok.m.loginOf(tok.slot, tok.serial).holders); n != 0 {
		t.Errorf("%d holders left", n)
	}
}
