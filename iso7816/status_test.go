package iso7816_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/iso7816"
)

func TestStatusErrSentinels(t *testing.T) {
	tests := []struct {
		sw   uint16
		want error
	}{
		{0x6282, iso7816.ErrEndOfFile},
		{0x6283, iso7816.ErrFileDeactivated},
		{0x6285, iso7816.ErrFileTerminated},
		{0x6281, iso7816.ErrWarning},
		{0x6300, iso7816.ErrVerificationFailed},
		{0x6381, iso7816.ErrWarning},
		{0x6581, iso7816.ErrMemoryFailure},
		{0x6700, iso7816.ErrWrongLength},
		{0x6881, iso7816.ErrNotSupported},
		{0x6882, iso7816.ErrSecureMessaging},
		{0x6883, iso7816.ErrChaining},
		{0x6884, iso7816.ErrChaining},
		{0x6981, iso7816.ErrIncompatible},
		{0x6982, iso7816.ErrSecurityStatus},
		{0x6983, iso7816.ErrAuthBlocked},
		{0x6984, iso7816.ErrReferenceDataUnusable},
		{0x6985, iso7816.ErrConditionsNotSatisfied},
		{0x6986, iso7816.ErrNoCurrentEF},
		{0x6A80, iso7816.ErrWrongData},
		{0x6A81, iso7816.ErrNotSupported},
		{0x6A82, iso7816.ErrFileNotFound},
		{0x6A83, iso7816.ErrRecordNotFound},
		{0x6A84, iso7816.ErrNoSpace},
		{0x6A86, iso7816.ErrIncorrectP1P2},
		{0x6A88, iso7816.ErrDataNotFound},
		{0x6A89, iso7816.ErrFileExists},
		{0x6A8A, iso7816.ErrFileExists},
		{0x6B00, iso7816.ErrWrongP1P2},
		{0x6D00, iso7816.ErrINSNotSupported},
		{0x6E00, iso7816.ErrCLANotSupported},
		{0x6F00, iso7816.ErrNoDiagnosis},
		{0x6A87, iso7816.ErrUnknownStatus},
		{0x6400, iso7816.ErrUnknownStatus},
		{0x9001, iso7816.ErrUnknownStatus},
	}
	all := []error{
		iso7816.ErrWarning, iso7816.ErrEndOfFile, iso7816.ErrVerificationFailed, iso7816.ErrMemoryFailure,
		iso7816.ErrWrongLength, iso7816.ErrChaining, iso7816.ErrSecureMessaging, iso7816.ErrIncompatible,
		iso7816.ErrSecurityStatus, iso7816.ErrAuthBlocked, iso7816.ErrReferenceDataUnusable,
		iso7816.ErrConditionsNotSatisfied, iso7816.ErrNoCurrentEF, iso7816.ErrWrongData,
		iso7816.ErrNotSupported, iso7816.ErrFileNotFound, iso7816.ErrRecordNotFound, iso7816.ErrNoSpace,
		iso7816.ErrIncorrectP1P2, iso7816.ErrDataNotFound, iso7816.ErrFileExists, iso7816.ErrWrongP1P2,
		iso7816.ErrINSNotSupported, iso7816.ErrCLANotSupported, iso7816.ErrNoDiagnosis,
		iso7816.ErrFileDeactivated, iso7816.ErrFileTerminated, iso7816.ErrUnknownStatus,
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%04X", tt.sw), func(t *testing.T) {
			err := iso7816.StatusErr(tt.sw)
			if err == nil {
				t.Fatal("StatusErr = nil")
			}
			// Wrapped by a caller, as the house style does.
			wrapped := fmt.Errorf("selecting DF 1234: %w", err)
			for _, s := range all {
				if got := errors.Is(wrapped, s); got != (s == tt.want) {
					t.Errorf("errors.Is(%v, %q) = %v, want %v", wrapped, s, got, !got)
				}
			}
			var se *iso7816.StatusError
			if !errors.As(wrapped, &se) || se.SW != tt.sw {
				t.Errorf("errors.As StatusError = %v (%v), want SW %04X", se, err, tt.sw)
			}
			if want := fmt.Sprintf("%04X", tt.sw); !strings.Contains(err.Error(), want) {
				t.Errorf("Error() = %q, does not name %s", err.Error(), want)
			}
			r := iso7816.Response{SW: tt.sw}
			if r.OK() || r.Err() == nil {
				t.Errorf("Response{SW: %04X}: OK %v, Err %v", tt.sw, r.OK(), r.Err())
			}
		})
	}
}

func TestStatusErrOK(t *testing.T) {
	if err := iso7816.StatusErr(0x9000); err != nil {
		t.Errorf("StatusErr(9000) = %v", err)
	}
	r := iso7816.Response{Data: []byte{1}, SW: 0x9000}
	if !r.OK() || r.Err() != nil {
		t.Errorf("9000: OK %v Err %v", r.OK(), r.Err())
	}
}

func TestAuthErrorRetries(t *testing.T) {
	for x := range 16 {
		sw := uint16(0x63C0 | x)
		err := fmt.Errorf("verifying PIN 81: %w", iso7816.StatusErr(sw))
		var ae *iso7816.AuthError
		if !errors.As(err, &ae) {
			t.Fatalf("%04X: not an AuthError: %v", sw, err)
		}
		if ae.Retries != x || ae.SW != sw {
			t.Errorf("%04X: AuthError %+v, want retries %d", sw, ae, x)
		}
		if !errors.Is(err, iso7816.ErrVerificationFailed) {
			t.Errorf("%04X: does not unwrap to ErrVerificationFailed", sw)
		}
		if errors.Is(err, iso7816.ErrAuthBlocked) || errors.Is(err, iso7816.ErrWarning) {
			t.Errorf("%04X: unwraps to a wrong sentinel", sw)
		}
		if want := fmt.Sprintf("%d tries left", x); !strings.Contains(err.Error(), want) {
			t.Errorf("%04X: message %q lacks %q", sw, err, want)
		}
		var se *iso7816.StatusError
		if errors.As(err, &se) {
			t.Errorf("%04X: is also a StatusError", sw)
		}
	}
	// 6300 carries no counter: a StatusError, not an AuthError.
	var ae *iso7816.AuthError
	if errors.As(iso7816.StatusErr(0x6300), &ae) {
		t.Error("6300 is an AuthError")
	}
}

func TestSWMeaning(t *testing.T) {
	tests := []struct {
		sw   uint16
		want string
	}{
		{0x9000, "success"},
		{0x6110, "16 response bytes still available"},
		{0x6100, "256 response bytes still available"},
		{0x6C08, "wrong Le, 8 bytes available"},
		{0x6C00, "wrong Le, 256 bytes available"},
		{0x63C2, "verification failed, 2 tries left"},
		{0x6A82, "file or application not found"},
		{0x6982, "security status not satisfied"},
		{0x6983, "authentication method blocked"},
		{0x6281, "warning"},
		{0x6400, "execution error, non-volatile memory unchanged"},
		{0x6501, "execution error, non-volatile memory changed"},
		{0x6600, "security-related issue"},
		{0x6701, "wrong length"},
		{0x6800, "functions in CLA not supported"},
		{0x6999, "command not allowed"},
		{0x6A99, "wrong parameters P1-P2"},
		{0x6B01, "wrong parameters P1-P2"},
		{0x9001, "unknown status"},
		{0x0000, "unknown status"},
	}
	for _, tt := range tests {
		if got := iso7816.SWMeaning(tt.sw); got != tt.want {
			t.Errorf("SWMeaning(%04X) = %q, want %q", tt.sw, got, tt.want)
		}
	}
}
