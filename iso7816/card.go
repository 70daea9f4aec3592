// Package iso7816 holds the command/response APDU layer of ISO/IEC 7816-4:
// encodings (short and extended), status words as Go errors, the Card
// transport interface, and Send, which hides GET RESPONSE, 6Cxx re-issue and
// command chaining from callers.
//
// The package is pure: it does no I/O of its own and builds with CGO_ENABLED=0.
package iso7816

import "errors"

// The card-level meanings that every layer above a Card shares have one
// word each, declared here, the lowest layer that knows them (status words
// in status.go add the others: ErrVerificationFailed with *AuthError for a
// wrong PIN and its tries left, ErrAuthBlocked, ErrNotSupported). Adapters
// below (pcsc over scard) and beside (the runner's PKCS#11 tokens, whose
// token stands for the card) wrap their own errors so that errors.Is finds
// these words, and keep theirs in the chain; callers above (cpf, the runner)
// test only these.

// ErrCardRemoved is returned (wrapped) by a Card whose card has left the
// reader: the PC/SC adapter maps SCARD_W_REMOVED_CARD and friends to it,
// and the in-memory card returns it after Remove. Test it with errors.Is.
var ErrCardRemoved = errors.New("card removed")

// ErrReaderGone is returned (wrapped) when the reader behind a Card, or the
// service that reaches it (pcscd, SCardSvr), is not there: pcsc's
// ErrNoService and ErrUnknownReader unwrap to it.
var ErrReaderGone = errors.New("reader unavailable")

// Card is the one transport every card implementation satisfies: the PC/SC
// adapter, the in-memory card and test fakes. Transmit sends one encoded
// command APDU and returns the raw response APDU (data followed by SW1 SW2).
//
// Transmit does no protocol handling of its own (no GET RESPONSE, no
// chaining); Send layers that on top.
type Card interface {
	Transmit(cmd []byte) ([]byte, error)
}

// CardFunc adapts a function to the Card interface.
type CardFunc func(cmd []byte) ([]byte, error)

// Transmit calls f.
func (f CardFunc) Transmit(cmd []byte) ([]byte, error) { return f(cmd) }
