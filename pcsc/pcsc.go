// Package pcsc is the PC/SC adapter: it lists readers, watches card and
// reader events, connects to cards and offers each connection as an
// iso7816.Card. It is the only package that imports github.com/ebfe/scard.
//
// A Context survives a restart of the PC/SC daemon: when a call fails
// because the service went away (SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED,
// SCARD_E_INVALID_HANDLE), the context is established again and the call is
// retried once. Card connections do not survive a restart (the card was
// powered down); their calls fail with ErrNoService and the caller connects
// again.
//
// Each Card and each Watch use a PC/SC context of their own: pcsc-lite
// serialises the calls on one context, and a blocking SCardGetStatusChange
// would otherwise hold up every transmit.
package pcsc

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"sync"

	"github.com/ebfe/scard"
)

// Context is a connection to the PC/SC resource manager. It is safe for
// concurrent use.
type Context struct {
	mu     sync.Mutex
	sc     *scard.Context // nil while the service is unreachable
	closed bool
}

// establish is scard.EstablishContext; a variable so tests can count calls.
var establish = scard.EstablishContext

// Open establishes a PC/SC context. It fails (wrapping ErrNoService) when
// the service is not running.
func Open() (*Context, error) {
	sc, err := establish()
	if err != nil {
		return nil, wrap("establishing the pc/sc context", "", err)
	}
	return &Context{sc: sc}, nil
}

// Close releases the context. Cards connected through it stay usable until
// they are closed.
func (c *Context) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.sc == nil {
		return nil
	}
	err := c.sc.Release()
	c.sc = nil
	return wrap("releasing the pc/sc context", "", err)
}

// do runs f on the context, re-establishing it once if the service was
// lost (daemon restarted) since the last call.
func (c *Context) do(op, reader string, f func(*scard.Context) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return &Error{Op: op, Reader: reader, Err: ErrClosed}
	}
	for attempt := 0; ; attempt++ {
		if c.sc == nil {
			sc, err := establish()
			if err != nil {
				return wrap(op, reader, err)
			}
			c.sc = sc
		}
		err := f(c.sc)
		if err == nil || !serviceLost(err) || attempt > 0 {
			return wrap(op, reader, err)
		}
		_ = c.sc.Release() // the handle is dead; releasing frees the client side
		c.sc = nil
	}
}

// Skip is a list of regular expressions; readers whose name matches any of
// them are left out (e.g. a Windows Hello virtual reader, a YubiKey the
// operator uses for login).
type Skip []*regexp.Regexp

// ParseSkip compiles reader-name patterns.
func ParseSkip(patterns []string) (Skip, error) {
	var s Skip
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("compiling reader skip pattern %q: %w", p, err)
		}
		s = append(s, re)
	}
	return s, nil
}

// Match reports whether the reader name is to be skipped.
func (s Skip) Match(name string) bool {
	for _, re := range s {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

func (s Skip) filter(names []string) []string {
	out := names[:0:0]
	for _, n := range names {
		if !s.Match(n) {
			out = append(out, n)
		}
	}
	return out
}

// Readers lists the reader names the service knows, minus the skipped ones,
// sorted. No reader at all is an empty list, not an error.
func (c *Context) Readers(skip Skip) ([]string, error) {
	var names []string
	err := c.do("listing readers", "", func(sc *scard.Context) error {
		var err error
		names, err = listReaders(sc)
		return err
	})
	if err != nil {
		return nil, err
	}
	names = skip.filter(names)
	sort.Strings(names)
	return names, nil
}

func listReaders(sc *scard.Context) ([]string, error) {
	names, err := sc.ListReaders()
	if errors.Is(err, scard.ErrNoReadersAvailable) {
		return nil, nil
	}
	return names, err
}

// ReaderStatus is a reader's state as the service reports it, without
// connecting to the card.
type ReaderStatus struct {
	Name    string
	Present bool   // a card is in the reader
	ATR     []byte // the card's answer to reset, when present
	InUse   bool   // another application is connected (shared)
	Locked  bool   // another application holds it exclusively
	Mute    bool   // a card is present but did not answer the reset
}

// Status returns the state of every reader not skipped, sorted by name.
func (c *Context) Status(skip Skip) ([]ReaderStatus, error) {
	var out []ReaderStatus
	err := c.do("reading reader status", "", func(sc *scard.Context) error {
		names, err := listReaders(sc)
		if err != nil {
			return err
		}
		names = skip.filter(names)
		if len(names) == 0 {
			out = nil
			return nil
		}
		rs := make([]scard.ReaderState, len(names))
		for i, n := range names {
			rs[i] = scard.ReaderState{Reader: n, CurrentState: scard.StateUnaware}
		}
		// With every current state "unaware" the call returns at once.
		if err := sc.GetStatusChange(rs, 0); err != nil && !errors.Is(err, scard.ErrTimeout) {
			return err
		}
		out = make([]ReaderStatus, 0, len(rs))
		for _, r := range rs {
			out = append(out, statusOf(r))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func statusOf(r scard.ReaderState) ReaderStatus {
	st := ReaderStatus{
		Name:    r.Reader,
		Present: r.EventState&scard.StatePresent != 0,
		InUse:   r.EventState&scard.StateInuse != 0,
		Locked:  r.EventState&scard.StateExclusive != 0,
		Mute:    r.EventState&scard.StateMute != 0,
	}
	if st.Present && len(r.Atr) > 0 {
		st.ATR = bytes.Clone(r.Atr)
	}
	return st
}
