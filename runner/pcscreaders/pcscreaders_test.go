package pcscreaders

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/pcsc"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/iotime"
)

// TestMapErr: PC/SC's sentinels become the runner's words, with pcsc's
// error kept in the chain; others pass unchanged.
func TestMapErr(t *testing.T) {
	for _, c := range []struct {
		in   error
		want error
	}{
		{fmt.Errorf("transmitting: %w", pcsc.ErrNoCard), iso7816.ErrCardRemoved},
		{pcsc.ErrNoService, iso7816.ErrReaderGone},
		{pcsc.ErrUnknownReader, iso7816.ErrReaderGone},
	} {
		got := mapErr(c.in)
		if !errors.Is(got, c.want) || !errors.Is(got, c.in) {
			t.Errorf("mapErr(%v) = %v, want %v with the pcsc error", c.in, got, c.want)
		}
	}
	other := errors.New("sharing violation")
	if got := mapErr(other); got != other {
		t.Errorf("mapErr(%v) = %v, want it unchanged", other, got)
	}
}

// TestOnStack: Readers lists the stack's readers with their cards, reads a
// card's serial inside a transaction (timed on the clock), and Source
// reports the same readers with the busy and skip answers it is given.
func TestOnStack(t *testing.T) {
	s := stacktest.Require(t)
	own := s.Get(t, "READER_OWN_1")
	vicc := s.Get(t, "READER_VICC_1")
	clock := &iotime.Clock{}
	r := New(clock)
	defer r.Close()
	list, err := r.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(list, func(ri runner.ReaderInfo) bool { return ri.Name == own })
	if i < 0 || !list[i].Present || len(list[i].ATR) == 0 {
		t.Fatalf("reader %q with a card not in %+v", own, list)
	}
	c, err := r.Connect(context.Background(), own)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Begin(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Serial(); err != nil {
		t.Errorf("serial: %v", err)
	}
	if err := c.End(); err != nil {
		t.Error(err)
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
	if spent := clock.Totals(); spent.APDUs == 0 || spent.Card <= 0 || spent.Calls != 0 {
		t.Errorf("clock %+v, want APDUs and card time only", spent)
	}
	if _, err := r.Connect(context.Background(), "no such reader"); !errors.Is(err, iso7816.ErrReaderGone) {
		t.Errorf("unknown reader: %v, want ErrReaderGone", err)
	}

	src := NewSource(r, func(name string) bool { return name == own }, func(name string) bool { return name == vicc })
	readers, err := src.Readers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(readers) != len(list) {
		t.Errorf("%d readers from Source, %d from Readers", len(readers), len(list))
	}
	for _, rd := range readers {
		if rd.Busy != (rd.Name == own) || rd.Skipped != (rd.Name == vicc) || rd.Card != (rd.ATR != "") {
			t.Errorf("reader %+v", rd)
		}
	}
	if rs, err := NewSource(r, nil, nil).Readers(context.Background()); err != nil || slices.ContainsFunc(rs, func(rd api.Reader) bool { return rd.Busy || rd.Skipped }) {
		t.Errorf("no busy or skip functions: %+v, %v", rs, err)
	}
}
