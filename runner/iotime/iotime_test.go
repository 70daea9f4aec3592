package iotime

import (
	"context"
	"testing"
	"time"

	"github.com/cardwright/cardwright/issuer"
)

type slowIssuer struct{}

func (slowIssuer) Issue(context.Context, issuer.Request) ([]byte, [][]byte, error) {
	time.Sleep(time.Millisecond)
	return []byte{1}, nil, nil
}

// TestClock: each kind of time goes to its own sum; a nil Clock counts
// nothing and does not panic.
func TestClock(t *testing.T) {
	var none *Clock
	start := time.Now().Add(-time.Millisecond)
	none.APDU(start)
	none.CardTime(start)
	none.TokenCall(start)
	none.IssuerTime(start)
	if none.Totals() != (Totals{}) {
		t.Errorf("nil clock: %+v", none.Totals())
	}
	if _, _, err := Issuer(slowIssuer{}, nil).Issue(context.Background(), issuer.Request{}); err != nil {
		t.Fatal(err)
	}

	c := &Clock{}
	c.APDU(start)
	c.APDU(start)
	c.CardTime(start)
	c.TokenCall(start)
	der, _, err := Issuer(slowIssuer{}, c).Issue(context.Background(), issuer.Request{})
	if err != nil || len(der) != 1 {
		t.Fatalf("timed issuer: %v, %v", der, err)
	}
	got := c.Totals()
	if got.APDUs != 2 || got.Calls != 1 || got.Card < 3*time.Millisecond || got.Token < time.Millisecond || got.Issuer < time.Millisecond {
		t.Errorf("totals %+v", got)
	}
}

// TestClockOnAPDU: the hook sees each APDU's round trip, and only APDUs.
func TestClockOnAPDU(t *testing.T) {
	var seen []time.Duration
	c := &Clock{OnAPDU: func(d time.Duration) { seen = append(seen, d) }}
	start := time.Now().Add(-time.Millisecond)
	c.APDU(start)
	c.CardTime(start)
	c.TokenCall(start)
	c.APDU(start)
	if len(seen) != 2 || seen[0] < time.Millisecond || seen[1] < time.Millisecond {
		t.Errorf("hook saw %v, want two round trips of at least 1ms", seen)
	}
	if got := c.Totals(); got.APDUs != 2 {
		t.Errorf("totals %+v", got)
	}
}

// TestIssuerKeepsArchiver: a LocalCA wrapped for timing still answers
// key-archival requests; an issuer without Archive does not become one.
func TestIssuerKeepsArchiver(t *testing.T) {
	ca, err := issuer.OpenLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, ok := Issuer(ca, &Clock{}).(issuer.Archiver)
	if !ok {
		t.Fatal("the wrapped LocalCA is no issuer.Archiver")
	}
	got, err := a.Archive(context.Background(), issuer.Request{KeyArchival: true, Application: "B"})
	if err != nil || len(got.PKCS12) == 0 || got.Password.IsZero() {
		t.Fatalf("Archive: %v", err)
	}
	if _, ok := Issuer(slowIssuer{}, nil).(issuer.Archiver); ok {
		t.Error("an issuer without Archive became an Archiver")
	}
}
