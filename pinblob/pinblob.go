// Package pinblob is cardwright's encrypted-PIN blob: the card's PINs and
// PUKs, sealed for a "PIN encryption certificate" when a card is
// pre-personalized, stored on the card in a data object labelled
// "Encrypted PINs", and opened later by whoever holds the certificate's
// private key (a PKCS#12 file or a PKCS#11 key).
//
// The format is cardwright's own (the incumbent's is not public); it is
// documented with test vectors in docs/pinblob.md. Blob version 1:
//
//	magic "CWPB" | version 0x01 | alg | key id (20) | len (2, big endian) |
//	key field (len) | nonce (12) | AES-256-GCM ciphertext and tag
//
// The key id is the first 20 bytes of SHA-256 over the recipient
// certificate's DER SubjectPublicKeyInfo. For alg 0x01 the key field is a
// fresh AES-256 key wrapped with RSA-OAEP (SHA-256, MGF1-SHA-256, empty
// label; RFC 8017 §7.1); for alg 0x02..0x04 it is an ephemeral uncompressed
// EC point (SEC 1 §2.3.3) on P-256, P-384 or P-521, and the AES key is
// HKDF-SHA-256 (RFC 5869) over the ECDH shared secret (SEC 1 §3.3.1, the
// x-coordinate) with the header up to and including the key field as info.
// The whole header, up to and including the nonce, is the GCM additional
// data, so no header byte can change unnoticed.
//
// The plaintext is DER: SEQUENCE OF SEQUENCE { name UTF8String, value
// OCTET STRING }, names from PIN1, PIN2, PIN3, PUK, PUK1, PUK2, OP, MAN.
//
// The package does no I/O; randomness comes from the caller.
package pinblob

import (
	"encoding/hex"
	"errors"
	"strings"

	"github.com/cardwright/cardwright/secret"
)

// Label is the label of the data object that holds the blob in a card file.
const Label = "Encrypted PINs"

// The names a blob may carry (docs/pinblob.md).
const (
	PIN1 = "PIN1"
	PIN2 = "PIN2"
	PIN3 = "PIN3"
	PUK  = "PUK"
	PUK1 = "PUK1"
	PUK2 = "PUK2"
	OP   = "OP"
	MAN  = "MAN"
)

// Names lists the secret names a blob may carry.
func Names() []string { return []string{PIN1, PIN2, PIN3, PUK, PUK1, PUK2, OP, MAN} }

// ValidName reports whether name is one of Names.
func ValidName(name string) bool {
	switch name {
	case PIN1, PIN2, PIN3, PUK, PUK1, PUK2, OP, MAN:
		return true
	}
	return false
}

// PIN is one named secret in a blob.
type PIN struct {
	Name  string // one of Names
	Value secret.Value
}

var (
	// ErrNoBlob means the card file holds no "Encrypted PINs" data object
	// (a blank card, or a card personalized without one).
	ErrNoBlob = errors.New("no encrypted PINs on this card")

	// ErrMalformed means the card file or the blob is not well formed.
	ErrMalformed = errors.New("malformed encrypted-PIN blob")

	// ErrUnsupported means a blob version or algorithm this build does not
	// know, or a recipient key type it cannot seal for.
	ErrUnsupported = errors.New("unsupported encrypted-PIN blob")

	// ErrAuthentication means the blob does not decrypt: it was changed,
	// or the key with its id is not the key it was sealed for.
	ErrAuthentication = errors.New("encrypted PINs do not authenticate")
)

// NoKeyError is returned by Open when none of the keys has the blob's key
// id.
type NoKeyError struct {
	ID []byte // the blob's key id
}

func (e *NoKeyError) Error() string {
	return "no decryption key found matching #" + strings.ToUpper(hex.EncodeToString(e.ID))
}
