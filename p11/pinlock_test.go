package p11

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/secret"
	"github.com/miekg/pkcs11"
)

// pinLimit builds testdata/pinlimit, a module that forwards to SoftHSM2 and
// adds the PIN retry counter SoftHSM2 does not have (it never locks a PIN),
// and loads it. Tokens made through it are SoftHSM2 tokens.
func pinLimit(t *testing.T) *Module {
	t.Helper()
	soft := softhsm(t)
	inc, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/miekg/pkcs11").Output()
	if err != nil {
		t.Fatalf("finding the PKCS#11 headers: %v", err)
	}
	lib := filepath.Join(t.TempDir(), "libpinlimit.so")
	out, err := exec.Command("gcc", "-shared", "-fPIC", "-Wall", "-Werror", "-I"+strings.TrimSpace(string(inc)),
		"-o", lib, filepath.Join("testdata", "pinlimit", "pinlimit.c"), "-ldl").CombinedOutput()
	if err != nil {
		t.Fatalf("building the pinlimit module: %v\n%s", err, out)
	}
	t.Setenv("PINLIMIT_TARGET", soft.Path())
	t.Setenv("PINLIMIT_TRIES", "3")
	m, err := Load(lib, Trusted)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPINCountsDownLocksUnblocks(t *testing.T) {
	m := pinLimit(t)
	tok := newToken(t, m)
	wrong := secret.New("wrong-7730")
	s, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	type want struct {
		ckr     uint
		retries int
		low     bool
	}
	login := func(pin secret.Value, w want, so bool) {
		t.Helper()
		var err error
		if so {
			err = s.LoginSO(pin)
		} else {
			err = s.Login(pin)
		}
		var pe *PINError
		if !errors.As(err, &pe) || pe.SO != so || !errors.Is(err, pkcs11.Error(w.ckr)) || pe.Retries() != w.retries || pe.CountLow != w.low {
			t.Fatalf("login: %v (%+v); want CKR %#x, %d retries, count low %v", err, pe, w.ckr, w.retries, w.low)
		}
		noSecrets(t, err.Error(), wrong)
		t.Log(err)
	}
	login(wrong, want{pkcs11.CKR_PIN_INCORRECT, RetriesUnknown, true}, false) // 2 left
	login(wrong, want{pkcs11.CKR_PIN_INCORRECT, 1, true}, false)              // final try
	login(wrong, want{pkcs11.CKR_PIN_INCORRECT, 0, true}, false)              // locked
	login(testPIN, want{pkcs11.CKR_PIN_LOCKED, 0, true}, false)               // the right PIN no longer helps
	if info, _ := tok.Refresh(); info.Flags&pkcs11.CKF_USER_PIN_LOCKED == 0 {
		t.Fatalf("token flags %v: want USER_PIN_LOCKED", info.FlagNames())
	}

	// A wrong PUK fails cleanly and counts down the SO counter only.
	if err := tok.UnblockPIN(wrong, testPIN); !errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)) {
		t.Fatalf("unblock with a wrong PUK: %v", err)
	}
	login(testPIN, want{pkcs11.CKR_PIN_LOCKED, 0, true}, false)
	// The right PUK unblocks and sets a new PIN.
	newPIN := secret.New("pin-after-unblock-42")
	if err := tok.UnblockPIN(testSO, newPIN); err != nil {
		t.Fatal(err)
	}
	if info, _ := tok.Refresh(); info.Flags&(pkcs11.CKF_USER_PIN_LOCKED|pkcs11.CKF_USER_PIN_COUNT_LOW|pkcs11.CKF_SO_PIN_COUNT_LOW) != 0 {
		t.Errorf("flags after unblocking: %v", info.FlagNames())
	}
	if err := s.Login(newPIN); err != nil {
		t.Fatalf("login after unblocking: %v", err)
	}
	s.Logout()

	// Three wrong PUKs lock the SO credential too; then even the right one fails.
	login(wrong, want{pkcs11.CKR_PIN_INCORRECT, RetriesUnknown, true}, true)
	login(wrong, want{pkcs11.CKR_PIN_INCORRECT, 1, true}, true)
	login(wrong, want{pkcs11.CKR_PIN_INCORRECT, 0, true}, true)
	err = tok.ChangePUK(testSO, secret.New("new-puk-1"))
	var pe *PINError
	if !errors.As(err, &pe) || !pe.SO || !errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_LOCKED)) {
		t.Fatalf("change PUK with the SO PIN locked: %v", err)
	}
}

// A token that refuses to change the PUK says so plainly.
func TestChangePUKNotSupported(t *testing.T) {
	m := pinLimit(t)
	tok := newToken(t, m)
	t.Setenv("PINLIMIT_REFUSE_SO_SETPIN", "1")
	err := tok.ChangePUK(testSO, secret.New("new-puk-77"))
	if !errors.Is(err, ErrNotSupported) || !errors.Is(err, pkcs11.Error(pkcs11.CKR_FUNCTION_NOT_SUPPORTED)) ||
		!strings.Contains(err.Error(), "not supported by this token") {
		t.Fatalf("ChangePUK = %v; want ErrNotSupported with CKR_FUNCTION_NOT_SUPPORTED", err)
	}
	t.Log(err)
	noSecrets(t, err.Error())
	if err := tok.UnblockPIN(testSO, testPIN); err != nil { // the PUK is unchanged
		t.Fatal(err)
	}
}
