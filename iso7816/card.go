// Package iso7816 holds the command/response APDU layer of ISO/IEC 7816-4:
// encodings (short and extended), status words as Go errors, the Card
// transport interface, and Send, which hides GET RESPONSE, 6Cxx re-issue and
// command chaining from callers.
//
// The package is pure: it does no I/O of its own and builds with CGO_ENABLED=0.
package iso7816

import "errors"

// ErrCardRemoved is returned (wrapped) by a Card whose card has left the
// reader: the PC/SC adapter maps SCARD_W_REMOVED_CARD and friends to it,
// and the in-memory card returns it after Remove. Test it with errors.Is.
var ErrCardRemoved = errors.New("card removed")

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
