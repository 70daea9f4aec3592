// Package pcscreaders adapts package pcsc to the runner and the agent:
// Readers is runner.Readers (and its Conn is runner.Conn) over PC/SC, and
// Source is agent.ReaderSource over the same PC/SC context. It is an
// adapter, not policy: cmd/cardwright (and later the GUI) choose it, the
// runner and the agent see only their interfaces.
//
// Source lives here rather than beside the agent's port because it shares
// the lazily established PC/SC context of a Readers (one SCardEstablishContext
// per process for jobs, reader lists and events) and maps PC/SC errors the
// same way; the agent's part of it is only its wire types.
package pcscreaders

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/pcsc"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/iotime"
)

// Readers is runner.Readers over PC/SC. The PC/SC context is established
// on first use, so a job that fails validation never needs the service;
// while the service is not there, every use tries again (an agent started
// before pcscd recovers once it runs). The zero value is ready to use and
// measures nothing.
type Readers struct {
	mu    sync.Mutex
	ctx   *pcsc.Context
	clock *iotime.Clock
}

// New returns Readers that count their PC/SC time on clock (nil: none).
func New(clock *iotime.Clock) *Readers { return &Readers{clock: clock} }

func (r *Readers) open() (*pcsc.Context, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil {
		ctx, err := pcsc.Open()
		if err != nil {
			return nil, mapErr(err)
		}
		r.ctx = ctx
	}
	return r.ctx, nil
}

// Close releases the PC/SC context, if one was established.
func (r *Readers) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx != nil {
		return r.ctx.Close()
	}
	return nil
}

// List implements runner.Readers.
func (r *Readers) List(context.Context) ([]runner.ReaderInfo, error) {
	pc, err := r.open()
	if err != nil {
		return nil, err
	}
	st, err := pc.Status(nil)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]runner.ReaderInfo, 0, len(st))
	for _, s := range st {
		out = append(out, runner.ReaderInfo{Name: s.Name, Present: s.Present && !s.Mute, ATR: s.ATR})
	}
	return out, nil
}

// Connect implements runner.Readers: a shared connection.
func (r *Readers) Connect(_ context.Context, reader string) (runner.Conn, error) {
	defer r.clock.CardTime(time.Now())
	pc, err := r.open()
	if err != nil {
		return nil, err
	}
	k, err := pc.Connect(reader, pcsc.Shared)
	if err != nil {
		return nil, mapErr(err)
	}
	return &conn{k: k, clock: r.clock}, nil
}

// mapErr puts iso7816's word for its meaning in front of a pcsc error,
// keeping the pcsc.Error and the scard.Error in the chain. A removed card
// already unwraps to iso7816.ErrCardRemoved and passes as it is. An empty
// reader (pcsc.ErrNoCard) is a removed card to the runner, which connects
// only to a reader it saw holding one. pcsc.ErrNoService and ErrUnknownReader
// already unwrap to iso7816.ErrReaderGone; the word is put in front anyway so
// the message reads as it always has ("reader unavailable: …").
func mapErr(err error) error {
	switch {
	case errors.Is(err, pcsc.ErrNoCard):
		return fmt.Errorf("%w: %w", iso7816.ErrCardRemoved, err)
	case errors.Is(err, iso7816.ErrReaderGone):
		return fmt.Errorf("%w: %w", iso7816.ErrReaderGone, err)
	}
	return err
}

// conn is runner.Conn over one PC/SC connection.
type conn struct {
	k     *pcsc.Card
	clock *iotime.Clock
	inTx  bool
}

func (c *conn) Transmit(cmd []byte) ([]byte, error) {
	defer c.clock.APDU(time.Now())
	resp, err := c.k.Transmit(cmd)
	if err != nil {
		return nil, mapErr(err)
	}
	return resp, nil
}

// ATR asks the reader for the card's ATR now; a removed card leaves the one
// read at connect, and the next APDU (Serial) reports the removal.
func (c *conn) ATR() []byte {
	if atr, err := c.k.Status(); err == nil {
		return atr
	}
	return c.k.ATR()
}

func (c *conn) Begin() error {
	defer c.clock.CardTime(time.Now())
	if err := c.k.Begin(); err != nil {
		return mapErr(err)
	}
	c.inTx = true
	return nil
}

// End ends the transaction and resets the card, so the next application
// finds no verified PIN.
func (c *conn) End() error {
	if !c.inTx {
		return nil
	}
	defer c.clock.CardTime(time.Now())
	c.inTx = false
	return c.k.End(true)
}

// Serial reads the ICCSN with GET DATA 005A. A card that has no such data
// object (it answers with a status word) has no chip serial: the runner then
// takes the token's serial.
func (c *conn) Serial() ([]byte, error) { return c.SerialVia(c) }

var _ runner.SerialReader = (*conn)(nil)

// SerialVia implements runner.SerialReader: Serial, its GET DATA sent
// through card (a job's recording wrapper of c).
func (c *conn) SerialVia(card iso7816.Card) ([]byte, error) {
	s, err := runner.ReadSerial(card)
	var se *iso7816.StatusError
	if errors.As(err, &se) {
		return nil, nil
	}
	return s, err
}

func (c *conn) Close() error {
	defer c.clock.CardTime(time.Now())
	return c.k.Close()
}

// Source is agent.ReaderSource over the PC/SC context of a Readers.
type Source struct {
	readers    *Readers
	busy, skip func(reader string) bool
}

// NewSource returns the agent's view of r: busy reports whether a job holds
// a reader (runner.Engine.Busy), skip whether the configuration skips it
// (config.Config.SkipReader); nil means never.
func NewSource(r *Readers, busy, skip func(reader string) bool) *Source {
	never := func(string) bool { return false }
	if busy == nil {
		busy = never
	}
	if skip == nil {
		skip = never
	}
	return &Source{readers: r, busy: busy, skip: skip}
}

// Readers implements agent.ReaderSource.
func (p *Source) Readers(ctx context.Context) ([]api.Reader, error) {
	pc, err := p.readers.open()
	if err != nil {
		return nil, err
	}
	st, err := pc.Status(nil)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]api.Reader, 0, len(st))
	for _, s := range st {
		r := api.Reader{Name: s.Name, Card: s.Present && !s.Mute, Busy: p.busy(s.Name), Skipped: p.skip(s.Name)}
		if r.Card {
			r.ATR = strings.ToUpper(hex.EncodeToString(s.ATR))
		}
		out = append(out, r)
	}
	return out, nil
}

// Watch implements agent.ReaderSource: it reports reader and card events,
// and agent.WatchSynced after the opening state, until ctx ends.
func (p *Source) Watch(ctx context.Context, fn func(ev any)) error {
	pc, err := p.readers.open()
	if err != nil {
		return err
	}
	ch, err := pc.Watch(ctx, nil)
	if err != nil {
		return mapErr(err)
	}
	for ev := range ch {
		switch ev.Kind {
		case pcsc.ReaderAdded:
			fn(api.ReaderEvent{Type: api.TypeReaderEvent, Event: api.EventReaderAdded, Reader: ev.Reader})
		case pcsc.ReaderRemoved:
			fn(api.ReaderEvent{Type: api.TypeReaderEvent, Event: api.EventReaderRemoved, Reader: ev.Reader})
		case pcsc.CardInserted:
			fn(api.CardEvent{Type: api.TypeCardEvent, Event: api.EventCardInserted, Reader: ev.Reader, ATR: strings.ToUpper(hex.EncodeToString(ev.ATR))})
		case pcsc.CardRemoved:
			fn(api.CardEvent{Type: api.TypeCardEvent, Event: api.EventCardRemoved, Reader: ev.Reader})
		case pcsc.Synced:
			fn(agent.WatchSynced{})
		}
	}
	return nil
}

var (
	_ runner.Readers     = (*Readers)(nil)
	_ agent.ReaderSource = (*Source)(nil)
)
