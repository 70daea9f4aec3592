package pcscprobe

import (
	"context"
	"testing"

	"github.com/cardwright/cardwright/internal/stacktest"
)

// TestStatusOnStack: every reader of the stack is listed, a card with its
// ATR. (Whether a card is in is up to the tests before: some pull cards.)
func TestStatusOnStack(t *testing.T) {
	s := stacktest.Require(t)
	list, err := Readers{}.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"READER_VICC_1", "READER_VICC_2", "READER_OWN_1", "READER_OWN_2"} {
		name, found := s.Get(t, key), false
		for _, r := range list {
			if r.Name == name {
				found = true
				if r.Card && (len(r.ATR) < 2 || r.ATR[0] != 0x3B) || !r.Card && r.ATR != nil {
					t.Errorf("%s: %+v", name, r)
				}
			}
		}
		if !found {
			t.Errorf("%q not in %+v", name, list)
		}
	}
}

// BenchmarkStatus: the self-test's reader listing (a fresh PC/SC context,
// every reader's state, release).
//
//	go test ./selftest/pcscprobe/ -run '^$' -bench Status
func BenchmarkStatus(b *testing.B) {
	stacktest.Require(b)
	for b.Loop() {
		if _, err := (Readers{}).Status(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
