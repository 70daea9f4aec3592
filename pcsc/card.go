package pcsc

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/ebfe/scard"

	"github.com/cardwright/cardwright/iso7816"
)

// ShareMode says whether other applications may use the card meanwhile.
type ShareMode int

const (
	// Shared lets other applications connect too; use transactions
	// (Card.Begin/End) to keep a sequence of APDUs together.
	Shared ShareMode = iota
	// Exclusive keeps every other application out while connected.
	Exclusive
)

func (m ShareMode) scard() scard.ShareMode {
	if m == Exclusive {
		return scard.ShareExclusive
	}
	return scard.ShareShared
}

func (m ShareMode) String() string {
	if m == Exclusive {
		return "exclusive"
	}
	return "shared"
}

// Card is a connection to the card in one reader. It implements
// iso7816.Card and is safe for concurrent use (calls are serialised).
type Card struct {
	reader string
	mode   ShareMode

	mu     sync.Mutex
	sc     *scard.Context // the connection's own context
	h      *scard.Card    // nil once closed or lost
	proto  scard.Protocol
	atr    []byte
	closed bool
	inTx   bool
}

var _ iso7816.Card = (*Card)(nil)

// Connect connects to the card in the named reader with T=0 or T=1,
// whichever the card and reader agree on. Unknown reader names fail with
// ErrUnknownReader, an empty reader with ErrNoCard.
func (c *Context) Connect(reader string, mode ShareMode) (*Card, error) {
	const op = "connecting"
	// Through the shared context first, so a restarted daemon is noticed
	// and the reader name is checked before a context is spent on it.
	var known bool
	if err := c.do(op, reader, func(sc *scard.Context) error {
		names, err := listReaders(sc)
		for _, n := range names {
			known = known || n == reader
		}
		return err
	}); err != nil {
		return nil, err
	}
	if !known {
		return nil, &Error{Op: op, Reader: reader, Kind: ErrUnknownReader, Err: scard.ErrUnknownReader}
	}
	sc, err := establish()
	if err != nil {
		return nil, wrap(op, reader, err)
	}
	h, err := sc.Connect(reader, mode.scard(), scard.ProtocolAny)
	if err != nil {
		_ = sc.Release()
		return nil, wrap(op, reader, err)
	}
	k := &Card{reader: reader, mode: mode, sc: sc, h: h, proto: h.ActiveProtocol()}
	if err := k.refreshStatus(); err != nil {
		k.Close()
		return nil, wrap(op, reader, err)
	}
	return k, nil
}

func (k *Card) refreshStatus() error {
	st, err := k.h.Status()
	if err != nil {
		return err
	}
	k.atr = bytes.Clone(iso7816.TrimATR(st.Atr))
	if st.ActiveProtocol != 0 {
		k.proto = st.ActiveProtocol
	}
	return nil
}

// Reader is the name of the reader the card is in.
func (k *Card) Reader() string { return k.reader }

// ATR is the card's answer to reset, as read at connect or last reset.
func (k *Card) ATR() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return bytes.Clone(k.atr)
}

// Status asks the reader for the card's state now (SCardStatus) and returns
// its ATR: a job re-identifies its card with it after a wait. A removed card
// fails with an error that unwraps to iso7816.ErrCardRemoved.
func (k *Card) Status() ([]byte, error) {
	const op = "reading the card status"
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := k.handle(op); err != nil {
		return nil, err
	}
	if err := k.refreshStatus(); err != nil {
		return nil, k.fail(op, err)
	}
	return bytes.Clone(k.atr), nil
}

// Protocol is the transmission protocol in use: "T=0", "T=1" or "".
func (k *Card) Protocol() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return protocolName(k.proto)
}

func protocolName(p scard.Protocol) string {
	switch p {
	case scard.ProtocolT0:
		return "T=0"
	case scard.ProtocolT1:
		return "T=1"
	}
	return ""
}

func (k *Card) handle(op string) (*scard.Card, error) {
	if k.closed {
		return nil, &Error{Op: op, Reader: k.reader, Err: ErrClosed}
	}
	if k.h == nil {
		return nil, &Error{Op: op, Reader: k.reader, Kind: iso7816.ErrCardRemoved, Err: scard.ErrRemovedCard}
	}
	return k.h, nil
}

// Transmit sends one command APDU and returns the response APDU. A card
// that another application reset is reconnected (keeping its new state)
// and the command sent again once. A removed card fails with an error
// that unwraps to iso7816.ErrCardRemoved; a lost service with ErrNoService.
func (k *Card) Transmit(cmd []byte) ([]byte, error) {
	const op = "transmitting"
	k.mu.Lock()
	defer k.mu.Unlock()
	h, err := k.handle(op)
	if err != nil {
		return nil, err
	}
	if len(cmd) < 4 { // scard would index cmd[0]; ISO 7816-4 §5.1: a header is 4 bytes
		return nil, &Error{Op: op, Reader: k.reader, Err: fmt.Errorf("%d-byte command: %w", len(cmd), iso7816.ErrMalformedAPDU)}
	}
	if k.proto != scard.ProtocolT0 && k.proto != scard.ProtocolT1 {
		return nil, &Error{Op: op, Reader: k.reader, Kind: ErrCardUnresponsive, Err: scard.ErrProtoMismatch}
	}
	rsp, err := h.Transmit(cmd)
	if errors.Is(err, scard.ErrResetCard) && !k.inTx {
		// Reset by someone else: reconnect without a further reset and
		// retry. Inside a transaction the caller's state is gone, so the
		// error is reported instead.
		if err2 := k.reconnect(scard.LeaveCard); err2 != nil {
			return nil, k.fail(op, err2)
		}
		rsp, err = h.Transmit(cmd)
	}
	if err != nil {
		return nil, k.fail(op, err)
	}
	return rsp, nil
}

// fail wraps err; a removed card or a lost service makes the handle
// useless, so it is dropped and later calls fail the same way.
func (k *Card) fail(op string, err error) error {
	kind := kindOf(err)
	if kind == nil && errors.Is(err, scard.ErrNotTransacted) && k.gone() {
		// pcscd reports a card pulled in the middle of an exchange as
		// SCARD_E_NOT_TRANSACTED ("Transaction failed") with some
		// drivers (vpcd among them); the reader state says what happened.
		kind = iso7816.ErrCardRemoved
	}
	switch kind {
	case ErrNoCard, iso7816.ErrCardRemoved:
		kind = iso7816.ErrCardRemoved
		k.drop()
	case ErrNoService, ErrUnknownReader:
		k.drop()
	}
	return &Error{Op: op, Reader: k.reader, Kind: kind, Err: err}
}

// gone reports whether the card has left the reader, per SCardStatus.
func (k *Card) gone() bool {
	if k.h == nil {
		return true
	}
	st, err := k.h.Status()
	if err != nil {
		return kindOf(err) == iso7816.ErrCardRemoved || kindOf(err) == ErrNoCard
	}
	return st.State&scard.Present == 0
}

func (k *Card) drop() {
	if k.h != nil {
		_ = k.h.Disconnect(scard.LeaveCard)
		k.h = nil
	}
}

func (k *Card) reconnect(d scard.Disposition) error {
	if err := k.h.Reconnect(k.mode.scard(), scard.ProtocolAny, d); err != nil {
		return err
	}
	k.proto = k.h.ActiveProtocol()
	k.inTx = false
	return k.refreshStatus()
}

// Reset resets the card (a warm reset, ISO 7816-3 §6.2.3) and reconnects;
// the ATR is read again. The card's volatile state (selected files,
// verified PINs) is lost.
func (k *Card) Reset() error {
	const op = "resetting the card"
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := k.handle(op); err != nil {
		return err
	}
	if err := k.reconnect(scard.ResetCard); err != nil {
		return k.fail(op, err)
	}
	return nil
}

// Begin starts a transaction: other applications cannot use the card
// until End. Nested calls are an error.
func (k *Card) Begin() error {
	const op = "beginning a transaction"
	k.mu.Lock()
	defer k.mu.Unlock()
	h, err := k.handle(op)
	if err != nil {
		return err
	}
	if k.inTx {
		return &Error{Op: op, Reader: k.reader, Err: errors.New("a transaction is already open")}
	}
	err = h.BeginTransaction()
	if errors.Is(err, scard.ErrResetCard) {
		if err = k.reconnect(scard.LeaveCard); err == nil {
			err = h.BeginTransaction()
		}
	}
	if err != nil {
		return k.fail(op, err)
	}
	k.inTx = true
	return nil
}

// End ends the transaction; reset resets the card on the way out, so the
// next user finds no verified PIN.
func (k *Card) End(reset bool) error {
	const op = "ending a transaction"
	k.mu.Lock()
	defer k.mu.Unlock()
	h, err := k.handle(op)
	if err != nil {
		return err
	}
	if !k.inTx {
		return nil
	}
	k.inTx = false
	d := scard.LeaveCard
	if reset {
		d = scard.ResetCard
	}
	if err := h.EndTransaction(d); err != nil {
		return k.fail(op, err)
	}
	return nil
}

// Close disconnects, leaving the card as it is, and releases the
// connection's context. Closing twice is harmless.
func (k *Card) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	var err error
	if k.h != nil {
		if k.inTx {
			_ = k.h.EndTransaction(scard.LeaveCard)
		}
		err = k.h.Disconnect(scard.LeaveCard)
		if kindOf(err) != nil { // the card or service is gone: nothing left to close
			err = nil
		}
		k.h = nil
	}
	if k.sc != nil {
		_ = k.sc.Release()
		k.sc = nil
	}
	return wrap("disconnecting", k.reader, err)
}
