package iso7816

import (
	"errors"
	"fmt"
)

// Status words (ISO/IEC 7816-4 §5.6, tables 5 and 6).
const (
	SWOK                      uint16 = 0x9000
	SWEndOfFile               uint16 = 0x6282 // end of file reached before Ne bytes
	SWVerifyFail              uint16 = 0x6300 // verification failed, no counter information
	SWMemoryFailure           uint16 = 0x6581
	SWWrongLength             uint16 = 0x6700
	SWLogicalChannelNotSupp   uint16 = 0x6881
	SWSecureMessagingNotSupp  uint16 = 0x6882
	SWLastCommandExpected     uint16 = 0x6883 // chaining: last command of the chain expected
	SWChainingNotSupported    uint16 = 0x6884
	SWCommandIncompatible     uint16 = 0x6981 // with file structure
	SWSecurityStatus          uint16 = 0x6982 // security status not satisfied
	SWAuthMethodBlocked       uint16 = 0x6983
	SWReferenceDataNotUsable  uint16 = 0x6984
	SWConditionsNotSatisfied  uint16 = 0x6985
	SWCommandNotAllowedNoEF   uint16 = 0x6986
	SWWrongData               uint16 = 0x6A80 // incorrect parameters in the data field
	SWFuncNotSupported        uint16 = 0x6A81
	SWFileNotFound            uint16 = 0x6A82
	SWRecordNotFound          uint16 = 0x6A83
	SWNotEnoughMemory         uint16 = 0x6A84
	SWIncorrectP1P2           uint16 = 0x6A86
	SWReferencedDataNotFound  uint16 = 0x6A88
	SWFileExists              uint16 = 0x6A89
	SWDFNameExists            uint16 = 0x6A8A
	SWWrongP1P2               uint16 = 0x6B00
	SWINSNotSupported         uint16 = 0x6D00
	SWCLANotSupported         uint16 = 0x6E00
	SWUnknown                 uint16 = 0x6F00
	SWSelectedFileDeactivated uint16 = 0x6283
	SWSelectedFileTerminated  uint16 = 0x6285
)

// Sentinel errors that status errors unwrap to, so callers can write
// errors.Is(err, iso7816.ErrFileNotFound) whatever the layer that wrapped it.
var (
	ErrWarning                = errors.New("warning status")
	ErrEndOfFile              = errors.New("end of file reached before reading Ne bytes")
	ErrVerificationFailed     = errors.New("verification failed")
	ErrMemoryFailure          = errors.New("memory failure")
	ErrWrongLength            = errors.New("wrong length")
	ErrChaining               = errors.New("command chaining error")
	ErrSecureMessaging        = errors.New("secure messaging not supported")
	ErrIncompatible           = errors.New("command incompatible with file structure")
	ErrSecurityStatus         = errors.New("security status not satisfied")
	ErrAuthBlocked            = errors.New("authentication method blocked")
	ErrReferenceDataUnusable  = errors.New("reference data not usable")
	ErrConditionsNotSatisfied = errors.New("conditions of use not satisfied")
	ErrNoCurrentEF            = errors.New("command not allowed (no current EF)")
	ErrWrongData              = errors.New("incorrect parameters in the data field")
	ErrNotSupported           = errors.New("function not supported")
	ErrFileNotFound           = errors.New("file or application not found")
	ErrRecordNotFound         = errors.New("record not found")
	ErrNoSpace                = errors.New("not enough memory space in the file")
	ErrIncorrectP1P2          = errors.New("incorrect parameters P1-P2")
	ErrDataNotFound           = errors.New("referenced data not found")
	ErrFileExists             = errors.New("file already exists")
	ErrWrongP1P2              = errors.New("wrong parameters P1-P2")
	ErrINSNotSupported        = errors.New("instruction code not supported or invalid")
	ErrCLANotSupported        = errors.New("class not supported")
	ErrNoDiagnosis            = errors.New("no precise diagnosis")
	ErrFileDeactivated        = errors.New("selected file deactivated")
	ErrFileTerminated         = errors.New("selected file in termination state")
	ErrUnknownStatus          = errors.New("unknown status")
)

// StatusError is a status word other than 9000. It unwraps to one of the
// sentinels above.
type StatusError struct {
	SW uint16
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("card returned %04X (%s)", e.SW, SWMeaning(e.SW))
}

// Unwrap returns the sentinel for the status word.
func (e *StatusError) Unwrap() error { return sentinel(e.SW) }

// AuthError is 63Cx: a VERIFY (or CHANGE/RESET) with wrong reference data,
// x tries left (ISO/IEC 7816-4 §5.6, table 6 and §11.5.6). It unwraps to
// ErrVerificationFailed.
type AuthError struct {
	SW      uint16
	Retries int
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("card returned %04X (verification failed, %d tries left)", e.SW, e.Retries)
}

// Unwrap returns ErrVerificationFailed.
func (e *AuthError) Unwrap() error { return ErrVerificationFailed }

// StatusErr returns the error for a status word; nil for 9000.
func StatusErr(sw uint16) error {
	switch {
	case sw == SWOK:
		return nil
	case sw&0xFFF0 == 0x63C0:
		return &AuthError{SW: sw, Retries: int(sw & 0x0F)}
	}
	return &StatusError{SW: sw}
}

func sentinel(sw uint16) error {
	switch sw {
	case SWVerifyFail:
		return ErrVerificationFailed
	case SWEndOfFile:
		return ErrEndOfFile
	case SWSelectedFileDeactivated:
		return ErrFileDeactivated
	case SWSelectedFileTerminated:
		return ErrFileTerminated
	case SWMemoryFailure:
		return ErrMemoryFailure
	case SWWrongLength:
		return ErrWrongLength
	case SWLogicalChannelNotSupp, SWFuncNotSupported:
		return ErrNotSupported
	case SWSecureMessagingNotSupp:
		return ErrSecureMessaging
	case SWLastCommandExpected, SWChainingNotSupported:
		return ErrChaining
	case SWCommandIncompatible:
		return ErrIncompatible
	case SWSecurityStatus:
		return ErrSecurityStatus
	case SWAuthMethodBlocked:
		return ErrAuthBlocked
	case SWReferenceDataNotUsable:
		return ErrReferenceDataUnusable
	case SWConditionsNotSatisfied:
		return ErrConditionsNotSatisfied
	case SWCommandNotAllowedNoEF:
		return ErrNoCurrentEF
	case SWWrongData:
		return ErrWrongData
	case SWFileNotFound:
		return ErrFileNotFound
	case SWRecordNotFound:
		return ErrRecordNotFound
	case SWNotEnoughMemory:
		return ErrNoSpace
	case SWIncorrectP1P2:
		return ErrIncorrectP1P2
	case SWReferencedDataNotFound:
		return ErrDataNotFound
	case SWFileExists, SWDFNameExists:
		return ErrFileExists
	case SWWrongP1P2:
		return ErrWrongP1P2
	case SWINSNotSupported:
		return ErrINSNotSupported
	case SWCLANotSupported:
		return ErrCLANotSupported
	case SWUnknown:
		return ErrNoDiagnosis
	}
	if sw>>8 == 0x62 || sw>>8 == 0x63 {
		return ErrWarning
	}
	return ErrUnknownStatus
}

// SWMeaning returns a short English description of a status word, for
// diagnostics (cardwright apdu) and error messages.
func SWMeaning(sw uint16) string {
	switch {
	case sw == SWOK:
		return "success"
	case sw>>8 == 0x61:
		return fmt.Sprintf("%d response bytes still available", shortNe(byte(sw)))
	case sw>>8 == 0x6C:
		return fmt.Sprintf("wrong Le, %d bytes available", shortNe(byte(sw)))
	case sw&0xFFF0 == 0x63C0:
		return fmt.Sprintf("verification failed, %d tries left", sw&0x0F)
	}
	if s := sentinel(sw); s != ErrUnknownStatus && s != ErrWarning {
		return s.Error()
	}
	switch sw >> 8 {
	case 0x62, 0x63:
		return "warning"
	case 0x64:
		return "execution error, non-volatile memory unchanged"
	case 0x65:
		return "execution error, non-volatile memory changed"
	case 0x66:
		return "security-related issue"
	case 0x67:
		return "wrong length"
	case 0x68:
		return "functions in CLA not supported"
	case 0x69:
		return "command not allowed"
	case 0x6A, 0x6B:
		return "wrong parameters P1-P2"
	}
	return "unknown status"
}
