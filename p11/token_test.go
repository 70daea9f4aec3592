package p11

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"github.com/cardwright/cardwright/secret"
	"github.com/miekg/pkcs11"
)

func TestTokenInitListFind(t *testing.T) {
	m := softhsm(t)
	tok := newToken(t, m)
	slots, err := m.Slots()
	if err != nil {
		t.Fatal(err)
	}
	var seen bool
	for _, s := range slots {
		if s.TokenPresent && s.Token.Serial == tok.Serial() {
			seen = s.ID == tok.SlotID() && s.Token.Label == tok.Label()
		}
	}
	if !seen {
		t.Fatalf("token %q (serial %s, slot %d) not in the slot list %+v", tok.Label(), tok.Serial(), tok.SlotID(), slots)
	}
	for _, ref := range []string{tok.Label(), tok.Serial()} {
		got, err := m.FindToken(ref)
		if err != nil || got.Serial() != tok.Serial() {
			t.Errorf("FindToken(%q) = %v, %v", ref, got, err)
		}
	}
	if _, err := m.FindToken("no such token"); !errors.Is(err, ErrTokenNotFound) {
		t.Errorf("FindToken(unknown) = %v, want ErrTokenNotFound", err)
	}
	iccsn, err := hex.DecodeString(tok.Serial())
	if err != nil || !bytes.Equal(tok.ICCSN(), iccsn) {
		t.Errorf("ICCSN = %X, want the serial %s decoded", tok.ICCSN(), tok.Serial())
	}

	// Initialising again under another label erases the token and keeps it
	// findable.
	s := userSession(t, tok)
	if err := s.WriteCardSerial([]byte("CARD-1")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	again, err := m.InitTokenAndPIN(tok, testSO, testPIN, tok.Label()+"b")
	if err != nil {
		t.Fatal(err)
	}
	s = userSession(t, again)
	if objs, err := s.Find(nil); err != nil || len(objs) != 0 {
		t.Errorf("objects after re-initialising: %v, %v; want none", objs, err)
	}
}

func TestChooseSlot(t *testing.T) {
	tok := func(label, serial string) TokenInfo {
		return TokenInfo{Label: label, Serial: serial, Flags: pkcs11.CKF_TOKEN_INITIALIZED}
	}
	slots := []Slot{
		{ID: 1, Description: "Gemalto USB Reader 00 00", TokenPresent: true, Token: tok("Auth", "A1")},
		{ID: 2, Description: "Gemalto USB Reader 00 00", TokenPresent: true, Token: tok("Auth (Signature)", "A2")},
		{ID: 3, Description: "OMNIKEY 3x21 01 00", TokenPresent: true, Token: tok("Only", "B1")},
		{ID: 4, Description: "Generic slot", TokenPresent: true, Token: tok("Mapped", "C1")},
		{ID: 5, Description: "Generic slot", TokenPresent: true, Token: TokenInfo{}},
		{ID: 6, Description: "Empty Reader", TokenPresent: false},
	}
	maps := []ReaderMapping{
		{Reader: "Virtual PCD 00 00", Token: "Mapped"},
		{Reader: "Virtual PCD 00 00", Location: LocationSignature, Token: "B1"},
		{Reader: "Broken", Token: "nothing"},
	}
	tests := []struct {
		reader string
		loc    Location
		slots  []Slot
		want   uint
		err    error
	}{
		{"Gemalto USB Reader 00 00", LocationDefault, slots, 1, nil},
		{"Gemalto USB Reader 00 00", LocationSignature, slots, 2, nil},
		{"OMNIKEY 3x21 01 00", LocationDefault, slots, 3, nil},
		{"OMNIKEY 3x21 01 00", LocationSignature, slots, 0, ErrTokenNotFound},
		{"Virtual PCD 00 00", LocationDefault, slots, 4, nil},
		{"Virtual PCD 00 00", LocationSignature, slots, 3, nil},
		{"Broken", LocationDefault, slots, 0, ErrTokenNotFound},
		{"Unknown Reader", LocationDefault, slots, 0, ErrAmbiguous},
		{"Unknown Reader", LocationDefault, slots[2:3], 3, nil},
		{"Unknown Reader", LocationDefault, slots[3:5], 4, nil}, // the only initialised one
		{"Unknown Reader", LocationSignature, slots[2:3], 0, ErrTokenNotFound},
		{"Empty Reader", LocationDefault, slots[5:], 0, ErrTokenNotFound},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v", tt.reader, tt.loc), func(t *testing.T) {
			got, err := ChooseSlot(tt.slots, tt.reader, tt.loc, maps)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got slot %d, %v; want %v", got.ID, err, tt.err)
				}
				return
			}
			if err != nil || got.ID != tt.want {
				t.Fatalf("got slot %d, %v; want %d", got.ID, err, tt.want)
			}
		})
	}
}

// The reader rule on the real module: SoftHSM2's slot description is
// "SoftHSM slot ID 0x…", which stands in for a reader name here.
func TestTokenForReaderSoftHSM(t *testing.T) {
	m := softhsm(t)
	a, b := newToken(t, m), newToken(t, m)
	slots, err := m.Slots()
	if err != nil {
		t.Fatal(err)
	}
	var descA string
	for _, s := range slots {
		if s.ID == a.SlotID() {
			descA = s.Description
		}
	}
	got, err := m.TokenForReader(descA, LocationDefault, nil)
	if err != nil || got.Serial() != a.Serial() {
		t.Fatalf("TokenForReader(%q) = %v, %v; want token %s", descA, got, err, a.Serial())
	}
	got, err = m.TokenForReader("Virtual PCD own 00 01", LocationDefault, []ReaderMapping{{Reader: "Virtual PCD own 00 01", Token: b.Serial()}})
	if err != nil || got.Serial() != b.Serial() {
		t.Fatalf("TokenForReader by mapping = %v, %v; want token %s", got, err, b.Serial())
	}
	if _, err := m.TokenForReader("Virtual PCD own 00 00", LocationDefault, nil); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("TokenForReader with several tokens and no rule = %v, want ErrAmbiguous", err)
	}
}

func TestPINs(t *testing.T) {
	m := softhsm(t)
	tok := newToken(t, m)
	wrong := secret.New("wrong-2871")
	s, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	err = s.Login(wrong)
	var pe *PINError
	if !errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)) || !errors.As(err, &pe) || pe.SO {
		t.Fatalf("wrong PIN: %v; want a user *PINError with CKR_PIN_INCORRECT", err)
	}
	if !pe.CountLow { // SoftHSM2 raises CKF_USER_PIN_COUNT_LOW after a failure
		t.Errorf("wrong PIN: CountLow not set (%+v)", pe)
	}
	noSecrets(t, err.Error(), wrong)
	t.Log(err)
	if err := s.Login(testPIN); err != nil {
		t.Fatal(err)
	}
	if info, _ := tok.Refresh(); info.Flags&pkcs11.CKF_USER_PIN_COUNT_LOW != 0 {
		t.Errorf("count-low flag still set after a good PIN: %v", info.FlagNames())
	}
	s.Logout()

	newPIN, newSO := secret.New("pin-new-5521"), secret.New("so-new-9931")
	if err := tok.ChangePIN(wrong, newPIN); !errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)) || !errors.As(err, &pe) {
		t.Errorf("ChangePIN with a wrong old PIN = %v", err)
	}
	if err := tok.ChangePIN(testPIN, newPIN); err != nil {
		t.Fatal(err)
	}
	if err := s.Login(testPIN); !errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)) {
		t.Errorf("old PIN after the change: %v", err)
	}
	if err := s.Login(newPIN); err != nil {
		t.Fatalf("new PIN: %v", err)
	}
	s.Logout()

	// Unblock (reset) the PIN with the PUK: SO login, C_InitPIN.
	if err := tok.UnblockPIN(wrong, testPIN); !errors.As(err, &pe) || !pe.SO || !errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)) {
		t.Fatalf("UnblockPIN with a wrong PUK = %v; want an SO *PINError", err)
	} else {
		noSecrets(t, err.Error(), wrong, newPIN)
		t.Log(err)
	}
	if err := s.Login(newPIN); err != nil {
		t.Fatalf("a wrong PUK changed the PIN: %v", err)
	}
	s.Logout()
	if err := tok.UnblockPIN(testSO, testPIN); err != nil {
		t.Fatal(err)
	}
	if err := s.Login(testPIN); err != nil {
		t.Fatalf("PIN set by unblocking: %v", err)
	}
	s.Logout()

	// Change the PUK (SO C_SetPIN).
	if err := tok.ChangePUK(wrong, newSO); !errors.As(err, &pe) || !pe.SO {
		t.Fatalf("ChangePUK with a wrong PUK = %v", err)
	}
	if err := tok.ChangePUK(testSO, newSO); err != nil {
		t.Fatal(err)
	}
	if err := tok.UnblockPIN(testSO, testPIN); !errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)) {
		t.Errorf("old PUK after the change: %v", err)
	}
	if err := tok.UnblockPIN(newSO, testPIN); err != nil {
		t.Errorf("new PUK: %v", err)
	}
	if got := SOCredential(newSO, testPIN, false); !got.Equal(newSO) {
		t.Errorf("SOCredential without OperatorPinIsSOCredential is not the PUK")
	}
	if got := SOCredential(newSO, testPIN, true); !got.Equal(testPIN) {
		t.Errorf("SOCredential with OperatorPinIsSOCredential is not the operator PIN")
	}
}

func TestPINErrorRetries(t *testing.T) {
	incorrect := pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)
	tests := []struct {
		e    PINError
		want int
		msg  string
	}{
		{PINError{Err: incorrect}, RetriesUnknown, "user PIN: pkcs11: 0xA0: CKR_PIN_INCORRECT"},
		{PINError{Err: incorrect, CountLow: true}, RetriesUnknown, "user PIN: pkcs11: 0xA0: CKR_PIN_INCORRECT (tries left are running low)"},
		{PINError{Err: incorrect, CountLow: true, FinalTry: true}, 1, "user PIN: pkcs11: 0xA0: CKR_PIN_INCORRECT (one try left)"},
		{PINError{SO: true, Err: incorrect, Locked: true}, 0, "SO PIN: pkcs11: 0xA0: CKR_PIN_INCORRECT (locked)"},
		{PINError{Err: pkcs11.Error(pkcs11.CKR_PIN_LOCKED)}, 0, "user PIN: pkcs11: 0xA4: CKR_PIN_LOCKED (locked)"},
	}
	for _, tt := range tests {
		if got := tt.e.Retries(); got != tt.want {
			t.Errorf("%+v: Retries = %d, want %d", tt.e, got, tt.want)
		}
		if got := tt.e.Error(); got != tt.msg {
			t.Errorf("Error() = %q, want %q", got, tt.msg)
		}
	}
	u := &unsupportedError{what: "changing the SO PIN", err: pkcs11.Error(pkcs11.CKR_FUNCTION_NOT_SUPPORTED)}
	if !errors.Is(u, ErrNotSupported) || !errors.Is(u, pkcs11.Error(pkcs11.CKR_FUNCTION_NOT_SUPPORTED)) {
		t.Errorf("unsupported error chain: %v", u)
	}
	if want := "changing the SO PIN: not supported by this token: pkcs11: 0x54: CKR_FUNCTION_NOT_SUPPORTED"; u.Error() != want {
		t.Errorf("unsupported error = %q, want %q", u, want)
	}
}

// LoggedIn follows the token's login across sessions of the process.
func TestLoggedIn(t *testing.T) {
	m := softhsm(t)
	tok := newToken(t, m)
	a, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string, want bool) {
		t.Helper()
		for i, s := range []*Session{a, b} {
			if got, err := s.LoggedIn(); err != nil || got != want {
				t.Errorf("%s: session %d LoggedIn = %v, %v; want %v", when, i, got, err, want)
			}
		}
	}
	check("fresh", false)
	if err := a.Login(testPIN); err != nil {
		t.Fatal(err)
	}
	check("user login in one session", true)
	// b holds no login: its Logout does not end a's.
	if err := b.Logout(); err != nil {
		t.Fatal(err)
	}
	check("logout from the other", true)
	if err := a.Logout(); err != nil {
		t.Fatal(err)
	}
	check("logout of the holder", false)
	if err := b.LoginSO(testSO); err != nil {
		t.Fatal(err)
	}
	check("SO login", true)
	b.Close()
	if _, err := b.LoggedIn(); err == nil {
		t.Error("LoggedIn on a closed session succeeded")
	}
	// The last holder's Close ends the login even while another session
	// is open.
	if got, err := a.LoggedIn(); err != nil || got {
		t.Errorf("after the SO session closed: LoggedIn = %v, %v; want false", got, err)
	}
}
