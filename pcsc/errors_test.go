package pcsc

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ebfe/scard"

	"github.com/cardwright/cardwright/iso7816"
)

func TestKindOf(t *testing.T) {
	tests := []struct {
		err  error
		want error
	}{
		{scard.ErrNoService, ErrNoService},
		{scard.ErrServiceStopped, ErrNoService},
		{scard.ErrInvalidHandle, ErrNoService},
		{scard.ErrUnknownReader, ErrUnknownReader},
		{scard.ErrReaderUnavailable, ErrUnknownReader},
		{scard.ErrRemovedCard, iso7816.ErrCardRemoved},
		{scard.ErrNoSmartcard, ErrNoCard},
		{scard.ErrSharingViolation, ErrSharingViolation},
		{scard.ErrResetCard, ErrCardReset},
		{scard.ErrUnresponsiveCard, ErrCardUnresponsive},
		{scard.ErrTimeout, nil},
		{fmt.Errorf("wrapped: %w", scard.ErrRemovedCard), iso7816.ErrCardRemoved},
		{errors.New("not scard"), nil},
	}
	for _, tt := range tests {
		if got := kindOf(tt.err); got != tt.want {
			t.Errorf("kindOf(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestErrorChain(t *testing.T) {
	err := fmt.Errorf("encoding card: %w", wrap("transmitting", "Reader 00 00", scard.ErrRemovedCard))
	if !errors.Is(err, iso7816.ErrCardRemoved) {
		t.Error("not ErrCardRemoved")
	}
	var se scard.Error
	if !errors.As(err, &se) || se != scard.ErrRemovedCard {
		t.Errorf("scard.Error not in the chain: %v", err)
	}
	var pe *Error
	if !errors.As(err, &pe) || pe.Reader != "Reader 00 00" || pe.Op != "transmitting" {
		t.Errorf("*Error not in the chain: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `"Reader 00 00"`) || !strings.Contains(msg, "card removed") {
		t.Errorf("message %q lacks the reader or the kind", msg)
	}
	if wrap("x", "", nil) != nil {
		t.Error("wrap(nil) != nil")
	}
	if serviceLost(scard.ErrRemovedCard) || !serviceLost(scard.ErrServiceStopped) {
		t.Error("serviceLost misclassifies")
	}
}

func TestSkip(t *testing.T) {
	if _, err := ParseSkip([]string{"("}); err == nil {
		t.Error("ParseSkip accepted a bad pattern")
	}
	s, err := ParseSkip([]string{"^Yubico", "Hello"})
	if err != nil {
		t.Fatal(err)
	}
	in := []string{"Yubico YubiKey 00 00", "Windows Hello 0", "Virtual PCD vicc 00 00"}
	got := s.filter(in)
	if len(got) != 1 || got[0] != "Virtual PCD vicc 00 00" {
		t.Errorf("filter = %q", got)
	}
	if len(in) != 3 || in[0] != "Yubico YubiKey 00 00" {
		t.Errorf("filter changed its input: %q", in)
	}
	var none Skip
	if none.Match("anything") {
		t.Error("empty skip list matched")
	}
}
