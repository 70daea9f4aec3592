package p11tokens

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/runner"
)

func TestPINLen(t *testing.T) {
	for _, c := range []struct {
		n    uint
		want int
	}{
		{0, 0}, {4, 4}, {64, 64}, {1 << 16, 1 << 16}, {1<<16 + 1, 0}, {^uint(0), 0}, // CK_UNAVAILABLE_INFORMATION
	} {
		if got := pinLen(c.n); got != c.want {
			t.Errorf("pinLen(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

// TestSameModule: a [tokens] mapping applies to the module the description
// names when both are the same file (absolute paths compared clean) or the
// same bare name.
func TestSameModule(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/softhsm/libsofthsm2.so", true},
		{"/usr/lib/softhsm/../softhsm/libsofthsm2.so", "/usr/lib/softhsm/libsofthsm2.so", true},
		{"libsofthsm2.so", "libsofthsm2.so", true},
		{"libsofthsm2.so", "/usr/lib/softhsm/libsofthsm2.so", false},
		{"/usr/lib/a.so", "/usr/lib/b.so", false},
	} {
		if got := sameModule(c.a, c.b); got != c.want {
			t.Errorf("sameModule(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// TestMapErr: package p11's errors become the runner's words, with p11's
// error kept in the chain.
func TestMapErr(t *testing.T) {
	if mapErr(nil) != nil {
		t.Error("mapErr(nil) is not nil")
	}
	for _, c := range []struct {
		in   error
		want error
	}{
		{fmt.Errorf("loading: %w", p11.ErrNotAllowed), runner.ErrModuleNotAllowed},
		{&p11.ModuleError{Path: "x.so", Kind: errors.New("no such file")}, runner.ErrModule},
		{p11.ErrTokenNotFound, runner.ErrTokenNotFound},
		{p11.ErrAmbiguous, runner.ErrTokenNotFound},
		{p11.ErrObjectNotFound, runner.ErrObjectNotFound},
		{p11.ErrNotSupported, iso7816.ErrNotSupported},
		{errors.New("CKR_DEVICE_ERROR"), runner.ErrToken},
	} {
		got := mapErr(c.in)
		if !errors.Is(got, c.want) {
			t.Errorf("mapErr(%v) = %v, want %v", c.in, got, c.want)
		}
		if !errors.Is(got, c.in) {
			t.Errorf("mapErr(%v) = %v, lost the p11 error", c.in, got)
		}
	}
	for _, so := range []bool{false, true} {
		pe := &p11.PINError{SO: so, FinalTry: true, Err: errors.New("CKR_PIN_INCORRECT")}
		var re *runner.PINError
		if !errors.As(mapErr(pe), &re) || re.Retries != 1 || (re.Who == "SO PIN") != so || !errors.Is(re, pe) {
			t.Errorf("PIN error (SO %v): %#v", so, re)
		}
	}
}
