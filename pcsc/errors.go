package pcsc

import (
	"errors"
	"fmt"

	"github.com/ebfe/scard"

	"github.com/cardwright/cardwright/iso7816"
)

// Sentinels that errors from this package unwrap to, next to the underlying
// scard.Error, so callers write errors.Is(err, pcsc.ErrNoService) or
// errors.Is(err, iso7816.ErrCardRemoved) and can still errors.As the
// scard.Error for the exact PC/SC return code. A removed card has no word of
// its own here: it is iso7816.ErrCardRemoved, the one word for it. The two
// ways of losing the reader keep their own words (`cardwright apdu` tells
// them apart) and both unwrap to iso7816.ErrReaderGone, the one word for
// "reader or service gone".
var (
	// ErrNoService: the PC/SC service (pcscd, SCardSvr) is not running or
	// went away. The Context re-establishes itself on its next call; card
	// connections made before are lost. It unwraps to iso7816.ErrReaderGone.
	ErrNoService error = &readerGone{"pc/sc service not available"}
	// ErrUnknownReader: no reader of that name (never was, or it was
	// unplugged). It unwraps to iso7816.ErrReaderGone.
	ErrUnknownReader error = &readerGone{"unknown reader"}
	// ErrNoCard: the reader is empty (when connecting).
	ErrNoCard = errors.New("no card in the reader")
	// ErrSharingViolation: another application holds the card exclusively.
	ErrSharingViolation = errors.New("card in use by another application")
	// ErrCardReset: the card was reset by another application and could not
	// be reconnected.
	ErrCardReset = errors.New("card was reset")
	// ErrCardUnresponsive: the card does not answer (mute, unpowered, no ATR).
	ErrCardUnresponsive = errors.New("card does not respond")
	// ErrClosed: the Context or Card was closed by its owner.
	ErrClosed = errors.New("closed")
)

// readerGone is a sentinel of this package that is also
// iso7816.ErrReaderGone.
type readerGone struct{ msg string }

func (e *readerGone) Error() string { return e.msg }

// Unwrap returns iso7816.ErrReaderGone.
func (e *readerGone) Unwrap() error { return iso7816.ErrReaderGone }

// Error is a PC/SC failure: what was being done, on which reader, the
// category sentinel and the scard.Error behind it. It unwraps to both.
type Error struct {
	Op     string // gerund phrase: "connecting", "transmitting", …
	Reader string // empty for context-wide operations
	Kind   error  // one of the sentinels above or iso7816.ErrCardRemoved; nil if none fits
	Err    error  // the scard.Error (or another cause)
}

func (e *Error) Error() string {
	where := ""
	if e.Reader != "" {
		where = fmt.Sprintf(" (reader %q)", e.Reader)
	}
	if e.Kind != nil {
		return fmt.Sprintf("%s%s: %v: %v", e.Op, where, e.Kind, e.Err)
	}
	return fmt.Sprintf("%s%s: %v", e.Op, where, e.Err)
}

// Unwrap returns the category sentinel and the underlying error.
func (e *Error) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// kindOf maps a PC/SC return code to its category sentinel (nil if none).
func kindOf(err error) error {
	var se scard.Error
	if !errors.As(err, &se) {
		return nil
	}
	switch se {
	case scard.ErrNoService, scard.ErrServiceStopped, scard.ErrInvalidHandle, scard.ErrCommError, scard.ErrShutdown:
		return ErrNoService
	case scard.ErrUnknownReader, scard.ErrReaderUnavailable, scard.ErrNoReadersAvailable:
		return ErrUnknownReader
	case scard.ErrRemovedCard:
		return iso7816.ErrCardRemoved
	case scard.ErrNoSmartcard:
		return ErrNoCard
	case scard.ErrSharingViolation:
		return ErrSharingViolation
	case scard.ErrResetCard:
		return ErrCardReset
	case scard.ErrUnresponsiveCard, scard.ErrUnpoweredCard, scard.ErrInvalidAtr:
		return ErrCardUnresponsive
	}
	return nil
}

func wrap(op, reader string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Reader: reader, Kind: kindOf(err), Err: err}
}

// serviceLost reports whether err means the context handle is dead and
// must be re-established (the daemon restarted or is gone).
func serviceLost(err error) bool {
	var se scard.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se {
	case scard.ErrNoService, scard.ErrServiceStopped, scard.ErrInvalidHandle, scard.ErrCommError, scard.ErrShutdown:
		return true
	}
	return false
}
