package p11store

import (
	"context"
	"encoding/asn1"
	"errors"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/signing"
	"github.com/miekg/pkcs11"
)

// TestAlreadyLoggedIn: while another session of the process is logged in,
// C_Login would accept any PIN; Key refuses (busy) instead, for a wrong PIN
// and the right one alike, and works again once that session logs out.
func TestAlreadyLoggedIn(t *testing.T) {
	m := softhsm(t)
	f := newFixture(t, m, newCA(t), keyDef{"Heidi", p11.ECP256, []byte{0x11}})
	store := New(m)
	sel := signing.Selector{Filter: filter(t, `{"op":"eq","param":"token.id","value":"`+f.tok.Serial()+`"}`)}
	sign := func(p *prompter) error {
		_, err := signing.Sign(context.Background(), store, p, signing.Request{Select: sel, Data: []byte("x")})
		return err
	}
	other, err := f.tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Login(testPIN); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*prompter{{pin: wrongPIN}, {pin: testPIN}} {
		if err := sign(p); !errors.Is(err, signing.ErrTokenBusy) || signing.Code(err) != api.CodeBusy {
			t.Errorf("token logged in elsewhere: %v (code %s), want busy", err, signing.Code(err))
		}
	}
	if err := other.Logout(); err != nil {
		t.Fatal(err)
	}
	if err := sign(&prompter{pin: wrongPIN}); signing.Code(err) != api.CodePinIncorrect {
		t.Errorf("wrong PIN after logout: %v", err)
	}
	if err := sign(&prompter{pin: testPIN}); err != nil {
		t.Errorf("right PIN after logout: %v", err)
	}
	// Key logs out when released: a wrong PIN right after a good signature
	// is still checked.
	if err := sign(&prompter{pin: wrongPIN}); signing.Code(err) != api.CodePinIncorrect {
		t.Errorf("wrong PIN after a signature: %v", err)
	}
}

// TestPublicPrivateKey: a private key stored with CKA_PRIVATE false is
// visible without login (an earlier heuristic took that for another
// operation's login); it changes nothing, the PIN is checked.
func TestPublicPrivateKey(t *testing.T) {
	m := softhsm(t)
	f := newFixture(t, m, newCA(t), keyDef{"Ivan", p11.ECP256, []byte{0x12}})

	// A second key pair, its private half not private, made with the raw
	// API: p11 always stores private keys as private objects. The same
	// library handle is shared, so this does not initialise it again.
	ctx := pkcs11.New(m.Path())
	if ctx == nil {
		t.Fatal("opening the module with the raw API")
	}
	if err := ctx.Initialize(); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		t.Fatal(err)
	}
	h, err := ctx.OpenSession(f.tok.SlotID(), pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	if err := ctx.Login(h, pkcs11.CKU_USER, testPIN.Reveal()); err != nil {
		t.Fatal(err)
	}
	p256, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7})
	_, _, err = ctx.GenerateKeyPair(h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)},
		[]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, p256),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true), pkcs11.NewAttribute(pkcs11.CKA_ID, []byte{0x13})},
		[]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true), pkcs11.NewAttribute(pkcs11.CKA_ID, []byte{0x13})})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Logout(h)
	ctx.CloseSession(h)

	store := New(m)
	sel := signing.Selector{Filter: filter(t, `{"op":"eq","param":"token.id","value":"`+f.tok.Serial()+`"}`)}
	sign := func(p *prompter) error {
		_, err := signing.Sign(context.Background(), store, p, signing.Request{Select: sel, Data: []byte("x")})
		return err
	}
	if err := sign(&prompter{pin: wrongPIN}); signing.Code(err) != api.CodePinIncorrect {
		t.Errorf("wrong PIN next to a non-private private key: %v (code %s), want %s", err, signing.Code(err), api.CodePinIncorrect)
	}
	if err := sign(&prompter{pin: testPIN}); err != nil {
		t.Errorf("right PIN next to a non-private private key: %v", err)
	}
}

// TestLoggedInOutsideStore: logins the store did not make — a configured
// decryption key's (p11.Module.OpenKey, a shared login) and one made with
// the raw API — make Key refuse with busy for any PIN; no PIN reaches the
// token (no failed try is counted), and the store works again after.
func TestLoggedInOutsideStore(t *testing.T) {
	m := softhsm(t)
	f := newFixture(t, m, newCA(t), keyDef{"Judy", p11.ECP256, []byte{0x14}})
	store := New(m)
	sel := signing.Selector{Filter: filter(t, `{"op":"eq","param":"token.id","value":"`+f.tok.Serial()+`"}`)}
	sign := func(p *prompter) error {
		_, err := signing.Sign(context.Background(), store, p, signing.Request{Select: sel, Data: []byte("x")})
		return err
	}
	busy := func(when string) {
		t.Helper()
		for _, p := range []*prompter{{pin: wrongPIN}, {pin: testPIN}} {
			if err := sign(p); !errors.Is(err, signing.ErrTokenBusy) || !errors.Is(err, p11.ErrLoggedInElsewhere) {
				t.Errorf("%s: %v, want busy", when, err)
			}
		}
		if info, _ := f.tok.Refresh(); info.Flags&pkcs11.CKF_USER_PIN_COUNT_LOW != 0 {
			t.Errorf("%s: a refused PIN reached the token: %v", when, info.FlagNames())
		}
	}
	k, err := m.OpenKey(int(f.tok.SlotID()), "Judy", testPIN)
	if err != nil {
		t.Fatal(err)
	}
	busy("configured key open")
	k.Session().Close()
	if err := sign(&prompter{pin: testPIN}); err != nil {
		t.Errorf("after the configured key closed: %v", err)
	}

	ctx := pkcs11.New(m.Path())
	if err := ctx.Initialize(); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		t.Fatal(err)
	}
	h, err := ctx.OpenSession(f.tok.SlotID(), pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.CloseSession(h)
	if err := ctx.Login(h, pkcs11.CKU_USER, testPIN.Reveal()); err != nil {
		t.Fatal(err)
	}
	busy("raw login")
	if err := ctx.Logout(h); err != nil {
		t.Fatal(err)
	}
	if err := sign(&prompter{pin: wrongPIN}); signing.Code(err) != api.CodePinIncorrect {
		t.Errorf("wrong PIN after the raw logout: %v", err)
	}
	if err := sign(&prompter{pin: testPIN}); err != nil {
		t.Errorf("right PIN after the raw logout: %v", err)
	}
}
