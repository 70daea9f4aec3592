package pcsc

import (
	"errors"
	"testing"

	"github.com/ebfe/scard"

	"github.com/cardwright/cardwright/iso7816"
)

// TestReaderGoneWord: the two ways of losing the reader keep their own
// words and both unwrap to iso7816.ErrReaderGone, the one word for the
// meaning; a removed card is iso7816.ErrCardRemoved and nothing else.
func TestReaderGoneWord(t *testing.T) {
	for _, c := range []struct {
		in   scard.Error
		kind error
		gone bool
	}{
		{scard.ErrNoService, ErrNoService, true},
		{scard.ErrServiceStopped, ErrNoService, true},
		{scard.ErrUnknownReader, ErrUnknownReader, true},
		{scard.ErrReaderUnavailable, ErrUnknownReader, true},
		{scard.ErrRemovedCard, iso7816.ErrCardRemoved, false},
		{scard.ErrNoSmartcard, ErrNoCard, false},
		{scard.ErrSharingViolation, ErrSharingViolation, false},
	} {
		err := wrap("connecting", "R", c.in)
		if !errors.Is(err, c.kind) || errors.Is(err, iso7816.ErrReaderGone) != c.gone {
			t.Errorf("%v: Is %v %v, Is ErrReaderGone %v, want true and %v", err,
				c.kind, errors.Is(err, c.kind), errors.Is(err, iso7816.ErrReaderGone), c.gone)
		}
		var se scard.Error
		if !errors.As(err, &se) || se != c.in {
			t.Errorf("%v: lost the scard.Error", err)
		}
	}
	if ErrNoService.Error() != "pc/sc service not available" || ErrUnknownReader.Error() != "unknown reader" {
		t.Errorf("messages changed: %q, %q", ErrNoService, ErrUnknownReader)
	}
}
