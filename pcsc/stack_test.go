package pcsc_test

// Integration tests against the real stack (scripts/teststack): pcscd with
// vpcd readers, vicc and the project's own card (bin/vcard).

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/pcsc"
)

var viccATR = []byte{0x3B, 0x95, 0x13, 0x81, 0x01, 0x80, 0x73, 0xFF, 0x01, 0x00, 0x0B}

func open(t testing.TB) *pcsc.Context {
	t.Helper()
	c, err := pcsc.Open()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func connect(t testing.TB, c *pcsc.Context, reader string, mode pcsc.ShareMode) *pcsc.Card {
	t.Helper()
	k, err := c.Connect(reader, mode)
	if err != nil {
		t.Fatalf("Connect(%q): %v", reader, err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// ownReader returns the reader of the project's own card (cmd/vcard).
func ownReader(t testing.TB, s *stacktest.Stack, key string) string {
	t.Helper()
	return s.Get(t, key)
}

var getChallenge = iso7816.Command{CLA: 0x00, INS: 0x84, Ne: 8} // ISO 7816-4 §11.6.3

func TestReadersListed(t *testing.T) {
	s := stacktest.Require(t)
	c := open(t)
	names, err := c.Readers(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"READER_VICC_1", "READER_VICC_2"} {
		if !slices.Contains(names, s.Get(t, key)) {
			t.Errorf("Readers() = %q, missing %s %q", names, key, s.Get(t, key))
		}
	}
	skip, err := pcsc.ParseSkip([]string{"vicc"})
	if err != nil {
		t.Fatal(err)
	}
	names2, err := c.Readers(skip)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names2 {
		if strings.Contains(n, "vicc") {
			t.Errorf("Readers(skip vicc) still lists %q", n)
		}
	}
	if len(names2) != len(names)-2 {
		t.Errorf("skip vicc: %d readers left of %d, want %d", len(names2), len(names), len(names)-2)
	}
}

func TestStatus(t *testing.T) {
	s := stacktest.Require(t)
	c := open(t)
	st, err := c.Status(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := s.Get(t, "READER_VICC_1")
	for _, r := range st {
		if r.Name == want {
			if !r.Present || !bytes.Equal(r.ATR, viccATR) {
				t.Errorf("status of %q = present %v ATR %X, want present with ATR %X", want, r.Present, r.ATR, viccATR)
			}
			return
		}
	}
	t.Errorf("Status() has no %q: %+v", want, st)
}

func TestUnknownReader(t *testing.T) {
	stacktest.Require(t)
	c := open(t)
	_, err := c.Connect("No Such Reader 00 00", pcsc.Shared)
	if !errors.Is(err, pcsc.ErrUnknownReader) {
		t.Fatalf("Connect(unknown) = %v, want ErrUnknownReader", err)
	}
}

func TestTransmitVICC(t *testing.T) {
	s := stacktest.Require(t)
	c := open(t)
	k := connect(t, c, s.Get(t, "READER_VICC_1"), pcsc.Shared)
	if got := k.ATR(); !bytes.Equal(got, viccATR) {
		t.Errorf("ATR = %X, want %X", got, viccATR)
	}
	if p := k.Protocol(); p != "T=1" {
		t.Errorf("Protocol = %q, want T=1", p)
	}
	ch, err := iso7816.Send(k, getChallenge)
	if err != nil || len(ch) != 8 {
		t.Fatalf("GET CHALLENGE = %X, %v; want 8 bytes", ch, err)
	}
	// SELECT MF by FID (ISO 7816-4 §11.2.2), no response data.
	if _, err := iso7816.Send(k, iso7816.Command{INS: 0xA4, P2: 0x0C, Data: []byte{0x3F, 0x00}}); err != nil {
		t.Fatalf("SELECT MF: %v", err)
	}
	// An absent file maps to the typed status error through the whole stack.
	_, err = iso7816.Send(k, iso7816.Command{INS: 0xA4, P2: 0x0C, Data: []byte{0x7E, 0x57}})
	if !errors.Is(err, iso7816.ErrFileNotFound) {
		t.Fatalf("SELECT 7E57 = %v, want ErrFileNotFound", err)
	}
}

func TestTransmitOwnCard(t *testing.T) {
	s := stacktest.Require(t)
	reader := ownReader(t, s, "READER_OWN_1")
	c := open(t)
	k := connect(t, c, reader, pcsc.Exclusive)
	ch, err := iso7816.Send(k, getChallenge)
	if err != nil || len(ch) != 8 {
		t.Fatalf("GET CHALLENGE = %X, %v; want 8 bytes", ch, err)
	}
	// GET DATA 005A: the card serial number (configured by teststack).
	serial, err := iso7816.Send(k, iso7816.Command{INS: 0xCA, P1: 0x00, P2: 0x5A, Ne: 256})
	if err != nil {
		t.Fatalf("GET DATA 5A: %v", err)
	}
	if got, want := strings.ToUpper(hex.EncodeToString(serial)), s.Get(t, "SERIAL_OWN_1"); got != want {
		t.Errorf("serial = %s, want %s", got, want)
	}
}

func TestExclusive(t *testing.T) {
	s := stacktest.Require(t)
	c := open(t)
	reader := s.Get(t, "READER_VICC_1")
	connect(t, c, reader, pcsc.Exclusive)
	k, err := c.Connect(reader, pcsc.Shared)
	if err == nil {
		k.Close()
		t.Fatal("a second connection to an exclusively held card succeeded")
	}
	if !errors.Is(err, pcsc.ErrSharingViolation) {
		t.Fatalf("second Connect = %v, want ErrSharingViolation", err)
	}
}

func TestTransaction(t *testing.T) {
	s := stacktest.Require(t)
	c := open(t)
	reader := s.Get(t, "READER_VICC_1")
	a := connect(t, c, reader, pcsc.Shared)
	b := connect(t, c, reader, pcsc.Shared)
	if err := a.Begin(); err != nil {
		t.Fatal(err)
	}
	if err := a.Begin(); err == nil {
		t.Error("nested Begin succeeded")
	}
	got := make(chan error, 1)
	go func() { got <- b.Begin() }()
	select {
	case err := <-got:
		t.Fatalf("b.Begin returned (%v) while a held the transaction", err)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := iso7816.Send(a, getChallenge); err != nil {
		t.Fatalf("transmit inside the transaction: %v", err)
	}
	if err := a.End(false); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("b.Begin after a.End: %v", err)
	}
	if err := b.End(false); err != nil {
		t.Fatal(err)
	}
}

func TestReset(t *testing.T) {
	s := stacktest.Require(t)
	c := open(t)
	a := connect(t, c, s.Get(t, "READER_VICC_1"), pcsc.Shared)
	b := connect(t, c, s.Get(t, "READER_VICC_1"), pcsc.Shared)
	if err := a.Reset(); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if !bytes.Equal(a.ATR(), viccATR) {
		t.Errorf("ATR after reset = %X", a.ATR())
	}
	// b's handle saw the reset; Transmit reconnects and goes on.
	if _, err := iso7816.Send(b, getChallenge); err != nil {
		t.Fatalf("transmit after another connection reset the card: %v", err)
	}
}

// events collects a watch's events; next waits for one matching kind and
// reader, returning how long the wait took.
type events struct {
	t  testing.TB
	ch <-chan pcsc.Event
}

func watch(t testing.TB, c *pcsc.Context) (*events, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := c.Watch(ctx, nil)
	if err != nil {
		cancel()
		t.Fatalf("Watch: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		for range ch { // the channel closes once the watch has stopped
		}
	})
	return &events{t: t, ch: ch}, cancel
}

func (e *events) next(kind pcsc.EventKind, reader string, within time.Duration) (pcsc.Event, bool) {
	e.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev, ok := <-e.ch:
			if !ok {
				e.t.Fatalf("watch channel closed while waiting for %v on %q", kind, reader)
			}
			if ev.Kind == kind && ev.Reader == reader {
				return ev, true
			}
		case <-deadline:
			return pcsc.Event{}, false
		}
	}
}

func TestCardRemovalAndInsertion(t *testing.T) {
	s := stacktest.Require(t)
	c := open(t)
	reader := s.Get(t, "READER_VICC_2")
	ev, _ := watch(t, c)
	if e, ok := ev.next(pcsc.CardInserted, reader, 5*time.Second); !ok || !bytes.Equal(e.ATR, viccATR) {
		t.Fatalf("no initial CardInserted with the vicc ATR for %q (got %+v)", reader, e)
	}
	k := connect(t, c, reader, pcsc.Shared)
	if _, err := iso7816.Send(k, getChallenge); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	s.StopCard(t, reader)
	// The issue asks for removal to be seen within 1 s.
	e, ok := ev.next(pcsc.CardRemoved, reader, time.Second)
	if !ok {
		t.Fatalf("card removal in %q not seen within 1 s", reader)
	}
	t.Logf("removal seen %v after the card process was killed", e.Time.Sub(start))

	_, err := k.Transmit([]byte{0x00, 0x84, 0x00, 0x00, 0x08})
	if !errors.Is(err, iso7816.ErrCardRemoved) {
		t.Fatalf("Transmit on a removed card = %v, want ErrCardRemoved", err)
	}
	t.Logf("transmit on the removed card: %v", err)
	if _, err := iso7816.Send(k, getChallenge); !errors.Is(err, iso7816.ErrCardRemoved) {
		t.Fatalf("second Send on a removed card = %v, want ErrCardRemoved", err)
	}

	start = time.Now()
	s.StartCardNoWait(t, reader)
	e, ok = ev.next(pcsc.CardInserted, reader, 10*time.Second)
	if !ok {
		t.Fatalf("re-insertion in %q not seen", reader)
	}
	t.Logf("insertion seen %v after the card process was started (includes vicc's Python start-up)", e.Time.Sub(start))
	k2 := connect(t, c, reader, pcsc.Shared)
	if _, err := iso7816.Send(k2, getChallenge); err != nil {
		t.Fatalf("transmit to the re-inserted card: %v", err)
	}
}

func TestWatchCancel(t *testing.T) {
	stacktest.Require(t)
	c := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := c.Watch(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Drain the initial state, then the watch is blocked in GetStatusChange.
	timeout := time.After(10 * time.Second)
	for drained := false; !drained; {
		select {
		case <-ch:
		case <-time.After(300 * time.Millisecond):
			drained = true
		case <-timeout:
			t.Fatal("initial events never stopped")
		}
	}
	cancel()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("watch did not stop after its context was cancelled")
		}
	}
}

func TestPCSCDRestart(t *testing.T) {
	s := stacktest.Require(t)
	c := open(t)
	reader := s.Get(t, "READER_VICC_1")
	ev, _ := watch(t, c)
	if _, ok := ev.next(pcsc.CardInserted, reader, 5*time.Second); !ok {
		t.Fatalf("no initial CardInserted for %q", reader)
	}
	old := connect(t, c, reader, pcsc.Shared)
	if _, err := iso7816.Send(old, getChallenge); err != nil {
		t.Fatal(err)
	}

	s.RestartPCSCD(t)

	// The old connection died with the daemon.
	if _, err := old.Transmit([]byte{0x00, 0x84, 0x00, 0x00, 0x08}); err == nil {
		t.Fatal("transmit on a connection from before the restart succeeded")
	} else if !errors.Is(err, pcsc.ErrNoService) && !errors.Is(err, iso7816.ErrCardRemoved) {
		t.Fatalf("transmit on a connection from before the restart = %v, want ErrNoService or ErrCardRemoved", err)
	} else {
		t.Logf("old connection: %v", err)
	}
	// The same Context works again without being reopened.
	names, err := c.Readers(nil)
	if err != nil || !slices.Contains(names, reader) {
		t.Fatalf("Readers after restart = %q, %v", names, err)
	}
	k := connect(t, c, reader, pcsc.Shared)
	if _, err := iso7816.Send(k, getChallenge); err != nil {
		t.Fatalf("transmit after restart: %v", err)
	}
	// The watch went through removal and is back.
	if _, ok := ev.next(pcsc.ReaderRemoved, reader, 10*time.Second); !ok {
		t.Fatal("watch did not report the reader gone with the daemon")
	}
	if _, ok := ev.next(pcsc.CardInserted, reader, 10*time.Second); !ok {
		t.Fatal("watch did not report the card again after the restart")
	}
}

// TestWatchOpeningStateThenSynced: a watch reports every reader and every
// present card, then Synced once, so a subscriber can tell the opening state
// from later changes.
func TestWatchOpeningStateThenSynced(t *testing.T) {
	stacktest.Require(t)
	c := open(t)
	st, err := c.Status(nil)
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := watch(t, c)
	added, inserted := map[string]bool{}, map[string]bool{}
	for {
		e, ok := <-ev.ch
		if !ok {
			t.Fatal("watch closed before Synced")
		}
		if e.Kind == pcsc.Synced {
			break
		}
		switch e.Kind {
		case pcsc.ReaderAdded:
			added[e.Reader] = true
		case pcsc.CardInserted:
			inserted[e.Reader] = true
		}
	}
	for _, r := range st {
		if !added[r.Name] {
			t.Errorf("reader %q not reported before Synced", r.Name)
		}
		if r.Present && !inserted[r.Name] {
			t.Errorf("card in %q not reported before Synced", r.Name)
		}
	}
}
