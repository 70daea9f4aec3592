package agent_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
)

// stateReaders is a ReaderSource that behaves like the PC/SC one: Watch
// begins with the current state (an added event per reader, an inserted
// event per card, optionally agent.WatchSynced) and then reports changes.
// between runs after Readers has answered, as a change made between the
// list and the watch's start.
type stateReaders struct {
	synced  bool
	between func(s map[string]string)

	mu      sync.Mutex
	state   map[string]string // reader -> ATR ("" no card)
	fn      func(any)
	started chan struct{}
}

func (s *stateReaders) Readers(context.Context) ([]api.Reader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []api.Reader
	for name, atr := range s.state {
		out = append(out, api.Reader{Name: name, Card: atr != "", ATR: atr})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if s.between != nil {
		s.between(s.state)
		s.between = nil
	}
	return out, nil
}

func (s *stateReaders) Watch(ctx context.Context, fn func(any)) error {
	s.mu.Lock()
	names := make([]string, 0, len(s.state))
	for name := range s.state {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, n := range names {
		fn(api.ReaderEvent{Type: api.TypeReaderEvent, Event: api.EventReaderAdded, Reader: n})
	}
	for _, n := range names {
		if atr := s.state[n]; atr != "" {
			fn(api.CardEvent{Type: api.TypeCardEvent, Event: api.EventCardInserted, Reader: n, ATR: atr})
		}
	}
	if s.synced {
		fn(agent.WatchSynced{})
	}
	s.fn = fn
	s.mu.Unlock()
	close(s.started)
	<-ctx.Done()
	s.mu.Lock()
	s.fn = nil
	s.mu.Unlock()
	return nil
}

// change reports a real change to the watch.
func (s *stateReaders) change(ev any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fn(ev)
}

func describeEvent(ev any) string {
	switch e := ev.(type) {
	case *api.ReaderEvent:
		return fmt.Sprintf("reader %s %s", e.Event, e.Reader)
	case *api.CardEvent:
		if e.ATR != "" {
			return fmt.Sprintf("card %s %s %s", e.Event, e.Reader, e.ATR)
		}
		return fmt.Sprintf("card %s %s", e.Event, e.Reader)
	}
	return fmt.Sprintf("%T", ev)
}

// TestSubscribeSendsChangesOnly: readers with subscribe sends the list and
// then only changes. The watch's opening state (added per reader, inserted
// per card) repeats the list and is not sent; a change made between the
// list and the watch's start is (with WatchSynced also a card or reader
// that went away); a change after the start is sent as it comes. The end
// marker (a card removed after the watch started) is the first event the
// client sees after the expected ones, so nothing synthetic can hide
// behind it.
func TestSubscribeSendsChangesOnly(t *testing.T) {
	tests := []struct {
		name    string
		synced  bool
		between func(s map[string]string)
		want    []string
	}{
		{name: "no change", want: nil},
		{name: "no change, synced", synced: true, want: nil},
		{
			name: "changes between list and watch",
			between: func(s map[string]string) {
				s["R1"] = "3B01" // inserted
				s["R2"] = "3B99" // another card
				s["R5"] = ""     // a new reader
				s["R6"] = "3B06" // a new reader with a card
				s["R3"] = ""     // removed: needs WatchSynced
				delete(s, "R4")  // reader gone: needs WatchSynced
			},
			want: []string{"reader added R5", "reader added R6", "card inserted R1 3B01",
				"card removed R2", "card inserted R2 3B99", "card inserted R6 3B06"},
		},
		{
			name:   "changes between list and watch, synced",
			synced: true,
			between: func(s map[string]string) {
				s["R1"] = "3B01"
				s["R2"] = "3B99"
				s["R5"] = ""
				s["R6"] = "3B06"
				s["R3"] = ""
				delete(s, "R4")
			},
			want: []string{"reader added R5", "reader added R6", "card inserted R1 3B01",
				"card removed R2", "card inserted R2 3B99", "card inserted R6 3B06",
				"card removed R3", "card removed R4", "reader removed R4"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &stateReaders{synced: tc.synced, between: tc.between, started: make(chan struct{}),
				state: map[string]string{"R0": "3B00", "R1": "", "R2": "3B02", "R3": "3B03", "R4": "3B04"}}
			ta := startAgent(t, func(_ *agent.Config, d *agent.Deps) { d.Readers = src })
			c := ta.dial(client.Options{})
			ctx := ctxT(t)
			list, events, err := c.Subscribe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 5 || !list[0].Card || list[1].Card {
				t.Fatalf("reader list = %+v", list)
			}
			select {
			case <-src.started:
			case <-ctx.Done():
				t.Fatal("the watch did not start")
			}
			// R0 keeps its card in every case: its removal ends the stream.
			src.change(api.CardEvent{Type: api.TypeCardEvent, Event: api.EventCardRemoved, Reader: "R0"})
			var got []string
			for {
				select {
				case ev := <-events:
					d := describeEvent(ev)
					if d == "card removed R0" {
						if fmt.Sprint(got) != fmt.Sprint(tc.want) {
							t.Fatalf("events before the real change:\n got %q\nwant %q", got, tc.want)
						}
						return
					}
					got = append(got, d)
				case <-ctx.Done():
					t.Fatalf("no event for the real change; got %q", got)
				}
			}
		})
	}
}

// TestSubscribeRealChangesAfterStart: once the watch runs, every change
// reaches the subscriber, including the same card taken out and put back
// and a reader that goes away with its card (reported removed first); a
// repeated report of a state the subscriber knows is not sent again.
func TestSubscribeRealChangesAfterStart(t *testing.T) {
	src := &stateReaders{synced: true, started: make(chan struct{}),
		state: map[string]string{"R0": "3B00", "R1": ""}}
	ta := startAgent(t, func(_ *agent.Config, d *agent.Deps) { d.Readers = src })
	c := ta.dial(client.Options{})
	ctx := ctxT(t)
	_, events, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-src.started:
	case <-ctx.Done():
		t.Fatal("the watch did not start")
	}
	card := func(ev, reader, atr string) api.CardEvent {
		return api.CardEvent{Type: api.TypeCardEvent, Event: ev, Reader: reader, ATR: atr}
	}
	for _, ev := range []any{
		card(api.EventCardRemoved, "R0", ""),
		card(api.EventCardInserted, "R0", "3B00"),
		card(api.EventCardInserted, "R0", "3B00"), // repeated: not sent
		card(api.EventCardInserted, "R1", "3B11"),
		api.ReaderEvent{Type: api.TypeReaderEvent, Event: api.EventReaderRemoved, Reader: "R1"},
		api.ReaderEvent{Type: api.TypeReaderEvent, Event: api.EventReaderAdded, Reader: "R9"},
	} {
		src.change(ev)
	}
	want := []string{"card removed R0", "card inserted R0 3B00", "card inserted R1 3B11",
		"card removed R1", "reader removed R1", "reader added R9"}
	var got []string
	for len(got) < len(want) {
		select {
		case ev := <-events:
			got = append(got, describeEvent(ev))
		case <-ctx.Done():
			t.Fatalf("events %q, want %q", got, want)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
}
