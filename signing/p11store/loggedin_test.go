package p11store

import (
	"context"
	"errors"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/signing"
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
