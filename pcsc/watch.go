package pcsc

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/ebfe/scard"
)

// EventKind says what happened in a reader.
type EventKind int

const (
	ReaderAdded EventKind = iota + 1
	ReaderRemoved
	CardInserted
	CardRemoved
	// Synced follows the opening state (the first ReaderAdded and
	// CardInserted events), once: what was not reported by then was not
	// there when the watch started.
	Synced
)

func (k EventKind) String() string {
	switch k {
	case ReaderAdded:
		return "reader-added"
	case ReaderRemoved:
		return "reader-removed"
	case CardInserted:
		return "card-inserted"
	case CardRemoved:
		return "card-removed"
	case Synced:
		return "synced"
	}
	return "unknown"
}

// Event is one change seen by Watch.
type Event struct {
	Kind   EventKind
	Reader string
	ATR    []byte    // for CardInserted
	Time   time.Time // when the change reached this process
}

// pnpReader is pcsc-lite's and WinSCard's pseudo reader whose state changes
// when a reader is added or removed.
const pnpReader = `\\?PnP?\Notification`

// Watch reports reader and card changes until ctx is done, then closes the
// channel. It starts with the current state: ReaderAdded for each reader and
// CardInserted for each card already present, then Synced. It blocks in
// SCardGetStatusChange (no polling) on a context of its own, which
// SCardCancel interrupts when ctx is done. If the service goes away, every
// known card and reader is reported removed, and the watch re-establishes
// its context as soon as the service is back, reporting what it finds.
//
// The channel is unbuffered beyond a small queue: a subscriber that stops
// reading holds the watch up, it does not lose events.
func (c *Context) Watch(ctx context.Context, skip Skip) (<-chan Event, error) {
	sc, err := establish()
	if err != nil {
		return nil, wrap("watching readers", "", err)
	}
	w := &watcher{skip: skip, out: make(chan Event, 16), known: map[string]*watched{}}
	w.setSC(sc)
	done := make(chan struct{})
	go w.canceller(ctx, done)
	go func() {
		defer close(done)
		defer close(w.out)
		w.run(ctx)
		if sc := w.getSC(); sc != nil {
			_ = sc.Release()
		}
	}()
	return w.out, nil
}

type watched struct {
	state   scard.StateFlag // last event state, CHANGED cleared: the next call's current state
	present bool
}

type watcher struct {
	skip  Skip
	out   chan Event
	known map[string]*watched
	pnp   scard.StateFlag
	sync  bool // Synced was sent
	muSC  sync.Mutex
	sc    *scard.Context
}

func (w *watcher) setSC(sc *scard.Context) {
	w.muSC.Lock()
	w.sc = sc
	w.muSC.Unlock()
}

func (w *watcher) getSC() *scard.Context {
	w.muSC.Lock()
	defer w.muSC.Unlock()
	return w.sc
}

// canceller interrupts the blocking call once ctx is done. SCardCancel only
// affects a call in progress, so it is repeated until the loop has seen ctx
// (the loop may have been between two calls).
func (w *watcher) canceller(ctx context.Context, done <-chan struct{}) {
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if sc := w.getSC(); sc != nil {
			_ = sc.Cancel()
		}
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

func (w *watcher) emit(ctx context.Context, e Event) bool {
	e.Time = time.Now()
	select {
	case w.out <- e:
		return true
	case <-ctx.Done():
		return false
	}
}

func (w *watcher) run(ctx context.Context) {
	for ctx.Err() == nil {
		sc := w.getSC()
		if sc == nil {
			if !w.reestablish(ctx) {
				return
			}
			continue
		}
		if !w.syncReaders(ctx, sc) {
			return
		}
		names := make([]string, 0, len(w.known))
		for n := range w.known {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) == 0 && !w.syncedOnce(ctx) {
			return // no reader: the opening state is complete before the wait
		}
		rs := make([]scard.ReaderState, 0, len(names)+1)
		rs = append(rs, scard.ReaderState{Reader: pnpReader, CurrentState: w.pnp})
		for _, n := range names {
			rs = append(rs, scard.ReaderState{Reader: n, CurrentState: w.known[n].state})
		}
		err := sc.GetStatusChange(rs, -1)
		switch {
		case err == nil:
		case errors.Is(err, scard.ErrCancelled), errors.Is(err, scard.ErrTimeout):
			continue // ctx is checked by the loop
		case serviceLost(err):
			if !w.lost(ctx) {
				return
			}
			continue
		case errors.Is(err, scard.ErrUnknownReader):
			continue // a reader left between listing and waiting: list again
		default:
			// Unexpected: back off briefly so a persistent failure cannot spin.
			if !sleep(ctx, 200*time.Millisecond) {
				return
			}
			continue
		}
		w.pnp = rs[0].EventState &^ scard.StateChanged
		for _, r := range rs[1:] {
			if !w.update(ctx, r) {
				return
			}
		}
		if !w.syncedOnce(ctx) {
			return
		}
	}
}

// syncedOnce sends Synced after the first complete look at the readers.
func (w *watcher) syncedOnce(ctx context.Context) bool {
	if w.sync {
		return true
	}
	w.sync = true
	return w.emit(ctx, Event{Kind: Synced})
}

// syncReaders lists the readers and reports those added and removed.
func (w *watcher) syncReaders(ctx context.Context, sc *scard.Context) bool {
	names, err := listReaders(sc)
	if err != nil {
		if serviceLost(err) {
			return w.lost(ctx)
		}
		return sleep(ctx, 200*time.Millisecond)
	}
	names = w.skip.filter(names)
	now := map[string]bool{}
	for _, n := range names {
		now[n] = true
	}
	gone := []string{}
	for n := range w.known {
		if !now[n] {
			gone = append(gone, n)
		}
	}
	sort.Strings(gone)
	for _, n := range gone {
		if !w.remove(ctx, n) {
			return false
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if w.known[n] == nil {
			// Unaware: the next GetStatusChange returns at once with its state.
			w.known[n] = &watched{state: scard.StateUnaware}
			if !w.emit(ctx, Event{Kind: ReaderAdded, Reader: n}) {
				return false
			}
		}
	}
	return true
}

func (w *watcher) remove(ctx context.Context, n string) bool {
	k := w.known[n]
	delete(w.known, n)
	if k.present && !w.emit(ctx, Event{Kind: CardRemoved, Reader: n}) {
		return false
	}
	return w.emit(ctx, Event{Kind: ReaderRemoved, Reader: n})
}

// update compares a reader's new state with the last one. The upper 16 bits
// of pcsc-lite's event state count insertions and removals, so a card swapped
// between two calls is still reported as removed and inserted.
func (w *watcher) update(ctx context.Context, r scard.ReaderState) bool {
	k := w.known[r.Reader]
	if k == nil {
		return true
	}
	es := r.EventState
	if es&(scard.StateUnknown|scard.StateUnavailable) != 0 {
		return true // the reader is leaving; the next listing reports it
	}
	present := es&scard.StatePresent != 0
	swapped := k.present && present && k.state != scard.StateUnaware &&
		es>>16 != k.state>>16 && es>>16 != 0 && k.state>>16 != 0
	if k.present && (!present || swapped) {
		if !w.emit(ctx, Event{Kind: CardRemoved, Reader: r.Reader}) {
			return false
		}
	}
	if present && (!k.present || swapped) {
		if !w.emit(ctx, Event{Kind: CardInserted, Reader: r.Reader, ATR: bytes.Clone(r.Atr)}) {
			return false
		}
	}
	k.present = present
	k.state = es &^ scard.StateChanged
	return true
}

// lost reports every known reader gone and drops the dead context.
func (w *watcher) lost(ctx context.Context) bool {
	names := make([]string, 0, len(w.known))
	for n := range w.known {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !w.remove(ctx, n) {
			return false
		}
	}
	w.pnp = 0
	if sc := w.getSC(); sc != nil {
		_ = sc.Release()
	}
	w.setSC(nil)
	return true
}

// reestablish waits for the service to come back. There is no PC/SC call
// that blocks until the daemon starts, so this one retries with a backoff.
func (w *watcher) reestablish(ctx context.Context) bool {
	delay := 50 * time.Millisecond
	for {
		sc, err := establish()
		if err == nil {
			w.setSC(sc)
			return true
		}
		if !sleep(ctx, delay) {
			return false
		}
		delay = min(2*delay, time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
