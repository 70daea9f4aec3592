package runner_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/runner"
)

// TestCardErrorCodes walks status words from a card through iso7816.Send,
// wrapped as a profile step wraps them, to the code a job gets
// (docs/runner.md, "Error codes"); runner/pcscreaders and runner/p11tokens
// walk PC/SC's and PKCS#11's errors the same way.
func TestCardErrorCodes(t *testing.T) {
	for _, c := range []struct {
		sw   uint16
		code api.Code
		text string
	}{
		{0x63C2, api.CodePinIncorrect, "2 tries left"},
		{0x6300, api.CodePinIncorrect, "verification failed"},
		{0x6983, api.CodePinBlocked, "authentication method blocked"},
		{0x6A81, api.CodeNotSupported, "function not supported"},
		{0x6881, api.CodeNotSupported, "function not supported"},
		{0x6A82, api.CodeCardError, "file or application not found"},
		{0x6D00, api.CodeCardError, "instruction code not supported"},
	} {
		card := iso7816.CardFunc(func([]byte) ([]byte, error) { return []byte{byte(c.sw >> 8), byte(c.sw)}, nil })
		_, err := iso7816.Send(card, iso7816.Verify(0x81, []byte("1234")))
		err = fmt.Errorf("verifying PIN 81: %w", err)
		if got := runner.Code(err); got != c.code {
			t.Errorf("%04X: code %s, want %s (%v)", c.sw, got, c.code, err)
		}
		if !strings.Contains(err.Error(), c.text) {
			t.Errorf("%04X: message %q lacks %q", c.sw, err, c.text)
		}
	}
	var ae *iso7816.AuthError
	_, err := iso7816.Send(iso7816.CardFunc(func([]byte) ([]byte, error) { return []byte{0x63, 0xC2}, nil }), iso7816.Verify(0x81, nil))
	if !errors.As(err, &ae) || ae.Retries != 2 {
		t.Errorf("63C2: %v, want an *iso7816.AuthError with 2 tries left", err)
	}
	for _, c := range []struct {
		err  error
		code api.Code
	}{
		{fmt.Errorf("transmitting: %w", iso7816.ErrCardRemoved), api.CodeCardRemoved},
		{fmt.Errorf("connecting: %w", iso7816.ErrReaderGone), api.CodeReaderUnavailable},
		{&runner.PINError{Who: "PIN", Retries: 2}, api.CodePinIncorrect},
		{&runner.PINError{Who: "PIN", Retries: 0}, api.CodePinBlocked},
		{fmt.Errorf("erasing: %w", context.Canceled), api.CodeCancelled},
		{errors.New("something else"), api.CodeCardError},
	} {
		if got := runner.Code(c.err); got != c.code {
			t.Errorf("%v: code %s, want %s", c.err, got, c.code)
		}
	}
}
