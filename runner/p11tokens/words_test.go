package p11tokens

import (
	"errors"
	"fmt"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/runner"
)

// TestErrorWords walks PKCS#11 return values, as package p11 reports them,
// through this adapter to the code a job gets (docs/runner.md, "Error
// codes"): a token's wrong or locked PIN and an unsupported call find the
// same iso7816 words as a card's 63Cx, 6983 and 6A81, the pkcs11.Error stays
// in the chain, and the message is the one the runner has always given.
func TestErrorWords(t *testing.T) {
	incorrect := pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)
	locked := pkcs11.Error(pkcs11.CKR_PIN_LOCKED)
	unsupported := pkcs11.Error(pkcs11.CKR_FUNCTION_NOT_SUPPORTED)
	canceled := pkcs11.Error(pkcs11.CKR_FUNCTION_CANCELED)
	for _, c := range []struct {
		name string
		in   error // as p11 returns it
		ckr  pkcs11.Error
		word error
		code api.Code
		text string
	}{
		{"CKR_PIN_INCORRECT", &p11.PINError{Err: incorrect}, incorrect,
			iso7816.ErrVerificationFailed, api.CodePinIncorrect, "wrong PIN"},
		{"CKR_PIN_INCORRECT, final try", &p11.PINError{Err: incorrect, CountLow: true, FinalTry: true}, incorrect,
			iso7816.ErrVerificationFailed, api.CodePinIncorrect, "wrong PIN (1 tries left)"},
		{"CKR_PIN_INCORRECT, SO", &p11.PINError{SO: true, Err: incorrect}, incorrect,
			iso7816.ErrVerificationFailed, api.CodePinIncorrect, "wrong SO PIN"},
		{"CKR_PIN_LOCKED", &p11.PINError{Err: locked}, locked,
			iso7816.ErrAuthBlocked, api.CodePinBlocked, "PIN blocked"},
		{"CKR_PIN_INCORRECT, now locked", &p11.PINError{Err: incorrect, Locked: true}, incorrect,
			iso7816.ErrAuthBlocked, api.CodePinBlocked, "PIN blocked"},
		{"CKR_FUNCTION_NOT_SUPPORTED",
			fmt.Errorf("changing the SO PIN: %w: %w", p11.ErrNotSupported, unsupported), unsupported,
			iso7816.ErrNotSupported, api.CodeNotSupported,
			"not supported: changing the SO PIN: not supported by this token: pkcs11: 0x54: CKR_FUNCTION_NOT_SUPPORTED"},
		{"CKR_FUNCTION_CANCELED on the PIN pad",
			fmt.Errorf("logging in to token \"t\": %w: %w", p11.ErrPadCancelled, canceled), canceled,
			prompt.ErrRefused, api.CodePromptRefused,
			"PIN entry cancelled: logging in to token \"t\": PIN entry cancelled on the PIN pad: pkcs11: 0x50: CKR_FUNCTION_CANCELED"},
	} {
		got := mapErr(c.in)
		if !errors.Is(got, c.word) {
			t.Errorf("%s: %v does not unwrap to %q", c.name, got, c.word)
		}
		if c.word == iso7816.ErrAuthBlocked && errors.Is(got, iso7816.ErrVerificationFailed) {
			t.Errorf("%s: %v is a wrong PIN too", c.name, got)
		}
		var ck pkcs11.Error
		if !errors.As(got, &ck) || ck != c.ckr || !errors.Is(got, c.in) {
			t.Errorf("%s: %v lost p11's error or the pkcs11.Error", c.name, got)
		}
		if code := runner.Code(got); code != c.code {
			t.Errorf("%s: code %s, want %s (%v)", c.name, code, c.code, got)
		}
		if got.Error() != c.text {
			t.Errorf("%s: message %q, want %q", c.name, got, c.text)
		}
	}
	// A key the adapter cannot ask p11 for is refused with the same word.
	if _, err := (&token{}).GenerateKeyPair(runner.KeySpec{Type: "EC", Bits: 521}); !errors.Is(err, iso7816.ErrNotSupported) ||
		runner.Code(err) != api.CodeNotSupported || err.Error() != "EC key of 521 bits: not supported" {
		t.Errorf("EC 521: %v (code %s), want not_supported", err, runner.Code(err))
	}
}
