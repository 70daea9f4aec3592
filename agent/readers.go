package agent

// readers.go: the readers request and its subscription (reader and card
// events, changes only).

import (
	"context"
	"sort"
	"sync"

	"github.com/cardwright/cardwright/agent/api"
)

func (c *conn) onReaders(id string, raw []byte) {
	var m api.Readers
	if !decode(c, id, raw, &m) {
		return
	}
	list := []api.Reader{}
	if src := c.s.deps.Readers; src != nil {
		l, err := src.Readers(c.ctx)
		if err != nil {
			c.fail(id, api.CodeReaderUnavailable, err.Error())
			return
		}
		if l != nil {
			list = l
		}
	}
	c.send(&api.ReaderList{Type: api.TypeReaderList, ID: id, Readers: list})
	if m.Subscribe == nil || c.s.deps.Readers == nil {
		return
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if *m.Subscribe {
		ctx, cancel = context.WithCancel(c.ctx)
	}
	c.mu.Lock()
	if prev, ok := c.subs[id]; ok {
		prev()
		delete(c.subs, id)
	}
	if cancel != nil {
		c.subs[id] = cancel
	}
	c.mu.Unlock()
	if cancel == nil {
		return
	}
	src := c.s.deps.Readers
	view := newReaderView(list)
	go func() {
		defer func() {
			c.mu.Lock()
			if c.subs[id] != nil && ctx.Err() == nil {
				delete(c.subs, id) // Watch ended by itself
			}
			c.mu.Unlock()
			cancel()
		}()
		err := src.Watch(ctx, func(ev any) {
			for _, e := range view.apply(ev) {
				switch e := e.(type) {
				case *api.ReaderEvent:
					e.Type, e.ID = api.TypeReaderEvent, id
				case *api.CardEvent:
					e.Type, e.ID = api.TypeCardEvent, id
				}
				c.send(e)
			}
		})
		if err != nil && ctx.Err() == nil {
			c.s.log.Warn("reader events ended", "err", err)
			c.fail(id, api.CodeReaderUnavailable, "reader events ended: "+truncate(err.Error(), 200))
		}
	}()
}

// readerView turns a source's watch into the events of a subscription:
// changes to what the subscriber was told, and nothing else
// (docs/protocol.md, "readers"). A watch begins by reporting the current
// state (an added event per reader, an inserted event per card); those
// repeat the reader_list and are dropped, while a difference between the
// list and the watch's first state is a change made in between and is
// sent.
type readerView struct {
	mu     sync.Mutex
	told   map[string]*readerState // what the subscriber knows
	seen   map[string]*readerState // what the watch reported
	synced bool
}

type readerState struct {
	card bool
	atr  string
}

func newReaderView(list []api.Reader) *readerView {
	v := &readerView{told: map[string]*readerState{}, seen: map[string]*readerState{}}
	for _, r := range list {
		v.told[r.Name] = &readerState{card: r.Card, atr: r.ATR}
	}
	return v
}

// apply records a watch event and returns the events to send (Type and ID
// not set).
func (v *readerView) apply(ev any) []any {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []any
	readerAdded := func(name string) *readerState {
		t := v.told[name]
		if t == nil {
			t = &readerState{}
			v.told[name] = t
			out = append(out, &api.ReaderEvent{Event: api.EventReaderAdded, Reader: name})
		}
		return t
	}
	cardRemoved := func(name string, t *readerState) {
		if t.card {
			t.card, t.atr = false, ""
			out = append(out, &api.CardEvent{Event: api.EventCardRemoved, Reader: name})
		}
	}
	seen := func(name string) *readerState {
		w := v.seen[name]
		if w == nil {
			w = &readerState{}
			v.seen[name] = w
		}
		return w
	}
	switch e := ev.(type) {
	case WatchSynced:
		if v.synced {
			break
		}
		v.synced = true
		// What the list showed and the watch's first state lacks went
		// away in between; what it added was sent as it came.
		names := make([]string, 0, len(v.told))
		for name := range v.told {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			t, w := v.told[name], v.seen[name]
			if w == nil || !w.card || w.atr != t.atr {
				cardRemoved(name, t)
			}
			if w == nil {
				delete(v.told, name)
				out = append(out, &api.ReaderEvent{Event: api.EventReaderRemoved, Reader: name})
			}
		}
	case api.ReaderEvent:
		switch e.Event {
		case api.EventReaderAdded:
			seen(e.Reader)
			readerAdded(e.Reader)
		case api.EventReaderRemoved:
			delete(v.seen, e.Reader)
			if t := v.told[e.Reader]; t != nil {
				cardRemoved(e.Reader, t)
				delete(v.told, e.Reader)
				out = append(out, &api.ReaderEvent{Event: api.EventReaderRemoved, Reader: e.Reader})
			}
		}
	case api.CardEvent:
		switch e.Event {
		case api.EventCardInserted:
			w := seen(e.Reader)
			w.card, w.atr = true, e.ATR
			t := readerAdded(e.Reader)
			if t.card && t.atr == e.ATR {
				break // the subscriber knows this card
			}
			cardRemoved(e.Reader, t) // another card than the one it knows
			t.card, t.atr = true, e.ATR
			out = append(out, &api.CardEvent{Event: api.EventCardInserted, Reader: e.Reader, ATR: e.ATR})
		case api.EventCardRemoved:
			if w := v.seen[e.Reader]; w != nil {
				w.card, w.atr = false, ""
			}
			if t := v.told[e.Reader]; t != nil {
				cardRemoved(e.Reader, t)
			}
		}
	}
	return out
}
