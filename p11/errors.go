package p11

import (
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// ErrNotSupported: the token refused an operation as unsupported
// (CKR_FUNCTION_NOT_SUPPORTED and kin). The CKR stays in the chain too.
var ErrNotSupported = errors.New("not supported by this token")

// ErrTokenNotFound: no token matches a label, serial, reader or mapping.
var ErrTokenNotFound = errors.New("token not found")

// ErrAmbiguous: more than one token matches.
var ErrAmbiguous = errors.New("more than one token matches")

// ErrObjectNotFound: no object matches.
var ErrObjectNotFound = errors.New("object not found")

// RetriesUnknown is PINError.Retries when the token's flags do not say.
const RetriesUnknown = -1

// PINError is a failed PIN verification or change. Err holds the module's
// pkcs11.Error (CKR_PIN_INCORRECT, CKR_PIN_LOCKED, …). The flags are those
// of CK_TOKEN_INFO read right after the failure (PKCS#11 v2.40 §5.5,
// CKF_USER_PIN_COUNT_LOW / _FINAL_TRY / _LOCKED and the SO_ versions).
type PINError struct {
	SO       bool // the SO credential (PUK), not the user PIN
	Err      error
	CountLow bool // at least one wrong entry since the last good one
	FinalTry bool // one try left
	Locked   bool // no tries left
}

// Retries is how many tries are left as far as the token's flags tell:
// 0 locked, 1 final try, RetriesUnknown otherwise (PKCS#11 gives no count).
func (e *PINError) Retries() int {
	switch {
	case e.Locked || errors.Is(e.Err, pkcs11.Error(pkcs11.CKR_PIN_LOCKED)):
		return 0
	case e.FinalTry:
		return 1
	}
	return RetriesUnknown
}

func (e *PINError) Error() string {
	who := "user PIN"
	if e.SO {
		who = "SO PIN"
	}
	var note string
	switch r := e.Retries(); {
	case r == 0:
		note = " (locked)"
	case r == 1:
		note = " (one try left)"
	case e.CountLow:
		note = " (tries left are running low)"
	}
	return fmt.Sprintf("%s: %v%s", who, e.Err, note)
}

func (e *PINError) Unwrap() error { return e.Err }

// isPINFailure reports whether err is a wrong or locked PIN.
func isPINFailure(err error) bool {
	var ck pkcs11.Error
	if !errors.As(err, &ck) {
		return false
	}
	switch uint(ck) {
	case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_LOCKED, pkcs11.CKR_PIN_EXPIRED:
		return true
	}
	return false
}

// isUnsupported reports whether err says the token does not offer the call.
func isUnsupported(err error) bool {
	var ck pkcs11.Error
	if !errors.As(err, &ck) {
		return false
	}
	switch uint(ck) {
	case pkcs11.CKR_FUNCTION_NOT_SUPPORTED, pkcs11.CKR_MECHANISM_INVALID,
		pkcs11.CKR_FUNCTION_REJECTED, pkcs11.CKR_USER_TYPE_INVALID:
		return true
	}
	return false
}

// is reports whether err carries the CKR value rv.
func is(err error, rv uint) bool { return errors.Is(err, pkcs11.Error(rv)) }

// unsupported wraps err with ErrNotSupported, keeping the CKR in the chain.
type unsupportedError struct {
	what string
	err  error
}

func (e *unsupportedError) Error() string {
	return fmt.Sprintf("%s: %v: %v", e.what, ErrNotSupported, e.err)
}
func (e *unsupportedError) Unwrap() []error { return []error{ErrNotSupported, e.err} }
