package p11

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
)

// keypad makes the pinlimit module play a PIN-pad reader: its tokens show
// CKF_PROTECTED_AUTHENTICATION_PATH and a C_Login without PIN reads the
// FIFO this returns, which the test writes as the person at the reader.
func keypad(t *testing.T) string {
	t.Helper()
	fifo := filepath.Join(t.TempDir(), "keypad")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PINLIMIT_PAD", fifo)
	return fifo
}

// padLogin runs LoginPad and, while it waits, "types" on the keypad.
func padLogin(t *testing.T, s *Session, fifo string, so bool, typed string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.LoginPad(so) }()
	if err := os.WriteFile(fifo, []byte(typed+"\n"), 0o600); err != nil { // blocks until the module reads
		t.Fatal(err)
	}
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("LoginPad did not return after the keypad entry")
	}
	return nil
}

func TestLoginPad(t *testing.T) {
	m := pinLimit(t)
	fifo := keypad(t)
	tok := newToken(t, m)
	if info, err := tok.Refresh(); err != nil || !info.ProtectedAuthPath() {
		t.Fatalf("token flags %v, %v: want PROTECTED_AUTHENTICATION_PATH", info.FlagNames(), err)
	}
	s, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// The right PIN on the pad logs in; the login is this session's, and
	// a PIN shown by another operation does not join it (no PIN is kept).
	if err := padLogin(t, s, fifo, false, testPIN.Reveal()); err != nil {
		t.Fatalf("pad login with the right PIN: %v", err)
	}
	if in, err := s.LoggedIn(); err != nil || !in {
		t.Fatalf("logged in = %v, %v after the pad login", in, err)
	}
	other, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := other.LoginShared(testPIN); !errors.Is(err, ErrLoggedInElsewhere) {
		t.Errorf("LoginShared while a pad login holds the token = %v; want ErrLoggedInElsewhere", err)
	}
	other.Close()
	if err := s.WriteData("written after a pad login", []byte("ok")); err != nil {
		t.Errorf("writing a private data object after the pad login: %v", err)
	}
	if err := s.Logout(); err != nil {
		t.Fatal(err)
	}

	// A wrong PIN on the pad is the same PIN error as a typed one, with
	// the tries left.
	err = padLogin(t, s, fifo, false, "wrong-1234")
	var pe *PINError
	if !errors.As(err, &pe) || !errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)) || !pe.CountLow || pe.Retries() != RetriesUnknown {
		t.Fatalf("wrong PIN on the pad: %v (%+v)", err, pe)
	}
	err = padLogin(t, s, fifo, false, "wrong-1234")
	if !errors.As(err, &pe) || pe.Retries() != 1 {
		t.Fatalf("second wrong PIN on the pad: %v; want one try left", err)
	}
	noSecrets(t, err.Error())

	// Cancel on the pad.
	err = padLogin(t, s, fifo, false, "CANCEL")
	if !errors.Is(err, ErrPadCancelled) || !errors.Is(err, pkcs11.Error(pkcs11.CKR_FUNCTION_CANCELED)) {
		t.Fatalf("cancel on the pad = %v; want ErrPadCancelled with CKR_FUNCTION_CANCELED", err)
	}
	if in, _ := s.LoggedIn(); in {
		t.Fatal("logged in after a cancelled pad entry")
	}

	// The right PIN still works (and resets the count); the SO too.
	if err := padLogin(t, s, fifo, false, testPIN.Reveal()); err != nil {
		t.Fatalf("pad login after the wrong ones: %v", err)
	}
	if info, _ := tok.Refresh(); info.Flags&pkcs11.CKF_USER_PIN_COUNT_LOW != 0 {
		t.Errorf("flags after a good pad login: %v", info.FlagNames())
	}
	if err := s.Logout(); err != nil {
		t.Fatal(err)
	}
	if err := padLogin(t, s, fifo, true, testSO.Reveal()); err != nil {
		t.Fatalf("SO pad login: %v", err)
	}
	if err := s.Logout(); err != nil {
		t.Fatal(err)
	}
}

// A token without a PIN pad refuses a pad login before C_Login.
func TestLoginPadNotSupported(t *testing.T) {
	m := pinLimit(t)
	t.Setenv("PINLIMIT_PAD", "")
	tok := newToken(t, m)
	if tok.Info().ProtectedAuthPath() {
		t.Fatalf("flags %v without a keypad", tok.Info().FlagNames())
	}
	s, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.LoginPad(false); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("LoginPad without the flag = %v; want ErrNotSupported", err)
	}
	if info, _ := tok.Refresh(); info.Flags&pkcs11.CKF_USER_PIN_COUNT_LOW != 0 {
		t.Errorf("a refused pad login counted as a wrong PIN: %v", info.FlagNames())
	}
}
