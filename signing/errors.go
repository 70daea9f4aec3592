package signing

import (
	"context"
	"errors"
	"fmt"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/prompt"
)

// Errors of Sign and Authenticate. Adapters (Store, Prompter) wrap the ones
// that describe their failures so Code can classify them; the library
// errors stay in the chain.
var (
	ErrInvalidRequest = errors.New("invalid request")
	ErrInvalidOrigin  = errors.New("origin not usable for authentication")
	ErrInvalidNonce   = errors.New("invalid challenge nonce")
	ErrNoCertificate  = errors.New("no certificate matches")
	ErrAmbiguous      = errors.New("more than one certificate matches")
	ErrNotSupported   = errors.New("not supported")
	ErrKeyNotFound    = errors.New("no private key for the certificate")
	ErrKeyMismatch    = errors.New("the token key does not match the certificate")
	ErrTokenNotFound  = errors.New("token not present")
	ErrTokenBusy      = errors.New("token in use by another operation")
	ErrToken          = errors.New("token operation failed")

	// Verify's errors.
	ErrInvalidToken   = errors.New("malformed authentication token")
	ErrBadSignature   = errors.New("signature does not verify")
	ErrBadCertificate = errors.New("certificate not trusted for authentication")
)

// PINError is a wrong or blocked PIN, as a Store reports it.
type PINError struct {
	Retries int  // tries left; RetriesUnknown when the token does not say
	Blocked bool // no tries left
	Err     error
}

// RetriesUnknown is PINError.Retries when the token gives no count.
const RetriesUnknown = -1

func (e *PINError) Error() string {
	switch {
	case e.Blocked:
		return "PIN blocked"
	case e.Retries == 1:
		return "PIN incorrect (final try left)"
	case e.Retries > 1:
		return fmt.Sprintf("PIN incorrect (%d tries left)", e.Retries)
	}
	return "PIN incorrect"
}

func (e *PINError) Unwrap() error { return e.Err }

// Codes this package would use that agent/api does not define yet; until it
// does, Code answers with the nearest existing code (see docs/signing.md).
const (
	CodeCertificateNotFound  api.Code = "certificate_not_found"
	CodeCertificateAmbiguous api.Code = "certificate_ambiguous"
)

// Code classifies an error of this package with a stable wire code
// (agent/api).
func Code(err error) api.Code {
	var pe *PINError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &pe):
		if pe.Blocked {
			return api.CodePinBlocked
		}
		return api.CodePinIncorrect
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return api.CodeCancelled
	case errors.Is(err, ErrInvalidOrigin):
		return api.CodeOriginNotAllowed
	case errors.Is(err, ErrInvalidNonce), errors.Is(err, ErrInvalidRequest):
		return api.CodeInvalidField
	case errors.Is(err, ErrNoCertificate):
		return api.CodeCardNotFound
	case errors.Is(err, ErrAmbiguous):
		return api.CodeCardAmbiguous
	case errors.Is(err, prompt.ErrRefused):
		return api.CodePromptRefused
	case errors.Is(err, prompt.ErrUnavailable):
		return api.CodePromptUnavailable
	case errors.Is(err, ErrNotSupported):
		return api.CodeNotSupported
	case errors.Is(err, ErrTokenNotFound):
		return api.CodeTokenNotFound
	case errors.Is(err, ErrTokenBusy):
		return api.CodeBusy
	case errors.Is(err, ErrKeyNotFound), errors.Is(err, ErrKeyMismatch), errors.Is(err, ErrToken), errors.Is(err, ErrBadSignature):
		return api.CodeTokenError
	}
	return api.CodeInternal
}

// JobError gives err in the agent's wire form: its Code and its message.
// Messages never hold a PIN: no error of this package is built from one.
func JobError(err error) *api.JobError {
	if err == nil {
		return nil
	}
	var je *api.JobError
	if errors.As(err, &je) {
		return je
	}
	return &api.JobError{Code: Code(err), Message: err.Error()}
}
