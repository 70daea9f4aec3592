package pcscreaders

import (
	"errors"
	"strings"
	"testing"

	"github.com/ebfe/scard"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/pcsc"
	"github.com/cardwright/cardwright/runner"
)

// TestErrorWords walks PC/SC's native errors through pcsc and this adapter
// to the code a job gets (docs/runner.md, "Error codes"): the one word for
// each meaning is found, and pcsc's error and the scard.Error stay in the
// chain.
func TestErrorWords(t *testing.T) {
	// A pcsc.Card whose handle is gone answers every call as after
	// SCARD_W_REMOVED_CARD, which is what pcsc leaves behind when it sees one.
	_, removed := (&conn{k: new(pcsc.Card)}).Transmit([]byte{0x00, 0x84, 0x00, 0x00, 0x08})
	for _, c := range []struct {
		name  string
		err   error
		word  error
		scard scard.Error
		code  api.Code
		text  string
	}{
		{"removed card", removed, iso7816.ErrCardRemoved, scard.ErrRemovedCard, api.CodeCardRemoved, "transmitting: card removed"},
		{"empty reader at connect",
			mapErr(&pcsc.Error{Op: "connecting", Reader: "R", Kind: pcsc.ErrNoCard, Err: scard.ErrNoSmartcard}),
			iso7816.ErrCardRemoved, scard.ErrNoSmartcard, api.CodeCardRemoved, "card removed: connecting"},
		{"service gone",
			mapErr(&pcsc.Error{Op: "listing readers", Kind: pcsc.ErrNoService, Err: scard.ErrNoService}),
			iso7816.ErrReaderGone, scard.ErrNoService, api.CodeReaderUnavailable, "reader unavailable: listing readers"},
		{"unknown reader",
			mapErr(&pcsc.Error{Op: "connecting", Reader: "R", Kind: pcsc.ErrUnknownReader, Err: scard.ErrUnknownReader}),
			iso7816.ErrReaderGone, scard.ErrUnknownReader, api.CodeReaderUnavailable, "reader unavailable: connecting"},
	} {
		if !errors.Is(c.err, c.word) {
			t.Errorf("%s: %v does not unwrap to %q", c.name, c.err, c.word)
		}
		var se scard.Error
		var pe *pcsc.Error
		if !errors.As(c.err, &se) || se != c.scard || !errors.As(c.err, &pe) {
			t.Errorf("%s: %v lost the pcsc.Error or the scard.Error", c.name, c.err)
		}
		if got := runner.Code(c.err); got != c.code {
			t.Errorf("%s: code %s, want %s (%v)", c.name, got, c.code, c.err)
		}
		if !strings.HasPrefix(c.err.Error(), c.text) {
			t.Errorf("%s: message %q, want it to start %q", c.name, c.err, c.text)
		}
	}
}
