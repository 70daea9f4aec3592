package runnertest

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/runner"
)

// MemReaders is runner.Readers over in-memory cards (iso7816/memcard), for tests,
// benchmarks and dry runs. A nil card is an empty reader. It is safe for
// concurrent use; the transaction is a per-card mutex, as PC/SC's is.
type MemReaders struct {
	mu    sync.Mutex
	cards map[string]*memSlot
}

type memSlot struct {
	card *memcard.Card
	tx   sync.Mutex
}

// NewMemReaders returns readers holding the given cards.
func NewMemReaders(cards map[string]*memcard.Card) *MemReaders {
	m := &MemReaders{cards: map[string]*memSlot{}}
	for n, c := range cards {
		m.cards[n] = &memSlot{card: c}
	}
	return m
}

// Card returns the card in a reader.
func (m *MemReaders) Card(reader string) *memcard.Card {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.cards[reader]; s != nil {
		return s.card
	}
	return nil
}

// Put puts card into reader in place of the one there (nil: empty). A
// connection to the old card keeps talking to the reader, as a PC/SC handle
// does until the reader reports the change.
func (m *MemReaders) Put(reader string, card *memcard.Card) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.cards[reader]; s != nil {
		s.card = card
		return
	}
	m.cards[reader] = &memSlot{card: card}
}

// List implements runner.Readers.
func (m *MemReaders) List(context.Context) ([]runner.ReaderInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var l []runner.ReaderInfo
	for n, s := range m.cards {
		ri := runner.ReaderInfo{Name: n, Present: s.card != nil}
		if ri.Present {
			ri.ATR = s.card.ATR()
		}
		l = append(l, ri)
	}
	sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	return l, nil
}

// Connect implements runner.Readers.
func (m *MemReaders) Connect(_ context.Context, reader string) (runner.Conn, error) {
	m.mu.Lock()
	s := m.cards[reader]
	m.mu.Unlock()
	if s == nil {
		return nil, fmt.Errorf("connecting to %q: %w", reader, iso7816.ErrReaderGone)
	}
	if s.card == nil {
		return nil, fmt.Errorf("connecting to %q: %w", reader, iso7816.ErrCardRemoved)
	}
	return &memConn{s: s}, nil
}

type memConn struct {
	s    *memSlot
	inTx bool
}

func (c *memConn) Transmit(cmd []byte) ([]byte, error) {
	if c.s.card == nil {
		return nil, fmt.Errorf("transmitting: %w", iso7816.ErrCardRemoved)
	}
	return c.s.card.Transmit(cmd)
}
func (c *memConn) ATR() []byte {
	if c.s.card == nil {
		return nil
	}
	return c.s.card.ATR()
}

func (c *memConn) Begin() error {
	c.s.tx.Lock()
	c.inTx = true
	return nil
}

func (c *memConn) End() error {
	if c.inTx {
		c.inTx = false
		c.s.tx.Unlock()
	}
	return nil
}

// Serial reads the ICCSN with GET DATA 005A (ISO 7816-4 §11.4.3).
func (c *memConn) Serial() ([]byte, error) { return runner.ReadSerial(c) }

var _ runner.SerialReader = (*memConn)(nil)

// SerialVia implements runner.SerialReader: Serial, its GET DATA sent
// through card (a job's recording wrapper of c).
func (c *memConn) SerialVia(card iso7816.Card) ([]byte, error) { return runner.ReadSerial(card) }

func (c *memConn) Close() error { return c.End() }
