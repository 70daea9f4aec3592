package runner

import (
	"context"
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/secret"
)

// Tokens opens the PKCS#11 token that stands for the card in a reader.
// runner/p11tokens implements it with package p11 (the module allow-list, the
// slot whose description names the reader, or the [tokens] mapping of the
// configuration); tests use runnertest.FakeTokens.
type Tokens interface {
	// Allowed reports whether module may be loaded (the configuration's
	// allow-list). Build calls it before any card I/O.
	Allowed(module string) bool
	// Open loads module (once per process) and opens the token for the card
	// in reader at loc. A token that is not initialised yet is returned too
	// (Info().Initialized false): InitToken sets it up.
	Open(ctx context.Context, module, reader string, loc Location) (Token, error)
}

// Location is which of a card's tokens a step means.
type Location int

const (
	LocationDefault   Location = iota
	LocationSignature          // the signature slot (Location=Signature, SignPIN)
)

func (l Location) String() string {
	if l == LocationSignature {
		return "Signature"
	}
	return "Default"
}

// TokenInfo is what a step needs to know about a token.
type TokenInfo struct {
	Label       string
	Serial      string // CK_TOKEN_INFO serialNumber
	Initialized bool   // CKF_TOKEN_INITIALIZED
	UserPIN     bool   // CKF_USER_PIN_INITIALIZED
	// StandIn: the token stands in for a card that has no PKCS#11
	// middleware of its own (a [tokens] mapping of the configuration, the
	// test stack). After a card profile the runner initialises it with the
	// job's SO credential, label and PIN, so both views agree.
	StandIn bool
	// FixedLabel is the label the configuration finds the token by; another
	// label would lose it for the next job ("" when not found by label).
	FixedLabel string
	// MinPIN and MaxPIN are the PIN lengths the token accepts
	// (ulMinPinLen, ulMaxPinLen); 0 when it does not say.
	MinPIN, MaxPIN int
	// PinPad: the token takes PINs on a keypad of its own
	// (CKF_PROTECTED_AUTHENTICATION_PATH), see Token.LoginPad.
	PinPad bool
}

// KeySpec says what key pair to generate. The token gives the keys the
// CKA_ID KeyID(public key) (SHA-1 of the subjectPublicKey bits), so that
// certificates written later with that id are linked to them.
type KeySpec struct {
	Type  string // "RSA" or "EC"
	Bits  int    // RSA modulus bits, or EC curve size (256, 384, 521)
	Label string
}

// Criteria selects existing token objects (ObjectCriteria): the names as
// written in the description and their PKCS#11 v2.40 values.
type Criteria struct {
	Class   string // "CKO_PUBLIC_KEY"
	ClassID uint
	Attr    string // "CKA_LABEL"
	AttrID  uint
	Type    string // string, hex, bool or int
	Text    string // the value as written, quotes removed
	Bytes   []byte // the value as PKCS#11 stores it (not for int)
}

func (c Criteria) String() string { return c.Class + "," + c.Attr + "," + c.Type + "," + c.Text }

// Object is a token object found by Criteria.
type Object struct {
	Class uint
	ID    []byte
	Label string
}

// Token is one opened PKCS#11 token for the length of a job. Methods that
// need a login say which; Login and LoginSO stay in force until Logout or
// Close.
type Token interface {
	Info() (TokenInfo, error)
	// InitToken initialises the token (C_InitToken): SO credential and
	// label; every object is destroyed. The token handle stays usable.
	InitToken(so secret.Value, label string) error
	Login(pin secret.Value) error
	LoginSO(cred secret.Value) error
	// LoginPad logs the user in, or with so the SO, on the token's PIN pad
	// (C_Login without a PIN; the person types it on the reader's keypad).
	// It blocks until they have; a cancel on the pad wraps
	// prompt.ErrRefused, a wrong PIN is a *PINError as for Login, and a
	// token without a pad wraps iso7816.ErrNotSupported. A method of its
	// own, not Login with a marker value: a PIN that is not one could reach
	// C_Login as an empty PIN through an adapter that forgot to look.
	LoginPad(so bool) error
	Logout() error
	// InitPIN sets the user PIN (C_InitPIN); the SO is logged in.
	InitPIN(pin secret.Value) error
	// SetPIN changes the PIN of whoever is logged in, the user PIN when no
	// one is (C_SetPIN).
	SetPIN(old, new secret.Value) error
	// GenerateKeyPair makes a key pair on the token (user logged in), with
	// CKA_ID KeyID(public key), and returns a signer for its private key.
	GenerateKeyPair(spec KeySpec) (crypto.Signer, error)
	// Signer returns a signer for the private key with this CKA_ID.
	Signer(id []byte) (crypto.Signer, error)
	// WriteCertificate stores a DER certificate (user logged in).
	WriteCertificate(der []byte, label string, id []byte) error
	// ImportPKCS12 stores the key, certificate and chain of a DER PKCS#12
	// (user logged in), the key and certificate with CKA_ID id.
	ImportPKCS12(p12 []byte, password secret.Value, label string, id []byte) error
	// Find lists the objects that match (user logged in).
	Find(c Criteria) ([]Object, error)
	// WriteData stores or replaces a CKO_DATA object (user logged in).
	WriteData(label string, value []byte) error
	// ReadData returns a CKO_DATA object's value, or ErrObjectNotFound.
	ReadData(label string) ([]byte, error)
	// Erase destroys every object the logged-in user (or anyone, when no
	// one is logged in) may destroy.
	Erase() error
	Close() error
}

// Errors token adapters wrap (with %w, keeping their own error in the chain)
// so that classify gives the stable codes. They are the meanings only the
// PKCS#11 side knows; their lowest layer is this port, because package p11
// imports nothing of ours and the runner does not import p11 (its test
// doubles in runnertest report them too). A token that stands for the card
// reports the card-level meanings with iso7816's words instead: a wrong or
// blocked PIN as a *PINError, an operation it does not offer wrapping
// iso7816.ErrNotSupported.
var (
	ErrTokenNotFound    = errors.New("token not found")
	ErrObjectNotFound   = errors.New("object not found")
	ErrModule           = errors.New("PKCS#11 module failed")
	ErrModuleNotAllowed = errors.New("PKCS#11 module not allowed")
	ErrToken            = errors.New("token operation failed")
)

// PINError is a wrong PIN with what the token says about the tries left
// (-1 unknown). It is not a word of its own: it unwraps to
// iso7816.ErrVerificationFailed, or iso7816.ErrAuthBlocked with no tries
// left — the words a card's 63Cx and 6983 unwrap to, since the token stands
// for the card and a wrong PIN means the same to the job whichever of the
// two said it — and to the adapter's error (a *p11.PINError with the
// pkcs11.Error). It carries what the message names: whose PIN, the tries.
type PINError struct {
	Who     string // "PIN", "PUK", "SignPIN", "operator PIN"
	Retries int
	Err     error
}

func (e *PINError) Error() string {
	switch {
	case e.Retries == 0:
		return e.Who + " blocked"
	case e.Retries > 0:
		return fmt.Sprintf("wrong %s (%d tries left)", e.Who, e.Retries)
	}
	return "wrong " + e.Who
}

// Unwrap returns iso7816's word for the failure and the adapter's error.
func (e *PINError) Unwrap() []error {
	if e.Retries == 0 {
		return []error{iso7816.ErrAuthBlocked, e.Err}
	}
	return []error{iso7816.ErrVerificationFailed, e.Err}
}

// KeyID is the CKA_ID of a key pair and its certificates: the SHA-1 of the
// subjectPublicKey bits (RFC 5280 §4.2.1.2, method 1), as package p11 gives
// keys it generates.
func KeyID(pub any) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding the public key: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("decoding the public key: %w", err)
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}
