package agent

// state.go: a snapshot of the agent for the tray menu (spec/gui.md,
// "Tray": status line, readers, recent jobs, sites) and the notification
// that it changed.

import (
	"context"
	"sync"
	"time"

	"github.com/cardwright/cardwright/agent/api"
)

// State is a snapshot of the agent, plain data the tray draws its menu
// from.
type State struct {
	Version string // as in welcome: the agent's version
	Addr    string // listening address ("127.0.0.1:27140"); empty before Serve
	TLS     bool   // the agent serves wss://
	Running int    // jobs running now (WebSocket and POST /CardJob)

	// Readers with their cards (Card, ATR); nil without a ReaderSource.
	// ReadersErr is the ReaderSource's error when it could not list them.
	Readers    []api.Reader
	ReadersErr string

	Recent []RecentJob // finished jobs, newest first, at most Config.RecentJobs
	Sites  []Site      // as Sites returns them
}

// RecentJob is a finished job as the tray lists it.
type RecentJob struct {
	Origin            string // the page's checked origin; empty for a local program
	ID                string // the portal's id of the job
	Reader            string // the reader the job ran on, or the one it asked for
	OK                bool
	Code              api.Code // the error code when not OK
	ICCSN             string   // the card's serial when the job reported one
	Started, Finished time.Time
}

// stateHub keeps what State needs beyond the Server's own fields and the
// subscribers to changes. mu is a leaf lock: nothing is called under it.
type stateHub struct {
	mu      sync.Mutex
	running int
	recent  []RecentJob // oldest first
	subs    map[chan struct{}]struct{}
	unwatch context.CancelFunc // ends the reader watch while someone subscribes
}

func (h *stateHub) jobStarted() {
	h.mu.Lock()
	h.running++
	h.mu.Unlock()
}

func (h *stateHub) jobFinished(r RecentJob, keep int) {
	h.mu.Lock()
	h.running--
	h.recent = append(h.recent, r)
	if n := len(h.recent) - keep; n > 0 {
		h.recent = append(h.recent[:0], h.recent[n:]...)
	}
	h.mu.Unlock()
}

// State returns a snapshot of the agent. It asks the ReaderSource for its
// readers with ctx; everything else is in memory.
func (s *Server) State(ctx context.Context) State {
	st := State{Version: s.cfg.Version, Sites: s.Sites()}
	s.mu.Lock()
	st.Addr, st.TLS = s.addr, s.tls
	s.mu.Unlock()
	s.state.mu.Lock()
	st.Running = s.state.running
	st.Recent = make([]RecentJob, 0, len(s.state.recent))
	for i := len(s.state.recent) - 1; i >= 0; i-- {
		st.Recent = append(st.Recent, s.state.recent[i])
	}
	s.state.mu.Unlock()
	if src := s.deps.Readers; src != nil {
		l, err := src.Readers(ctx)
		if err != nil {
			st.ReadersErr = err.Error()
		}
		st.Readers = append([]api.Reader{}, l...)
	}
	return st
}

// StateChanges subscribes to changes of State: the channel receives a
// value after a change (a job started or finished, a reader or card came
// or went, a site was paired or removed, the agent started listening).
// Changes are coalesced — the channel holds at most one value, so a slow
// reader sees one notification for many changes and then calls State —
// and sending never blocks the agent. stop ends the subscription; the
// channel is not closed. While anyone subscribes, the agent watches the
// ReaderSource for reader and card events.
func (s *Server) StateChanges() (changes <-chan struct{}, stop func()) {
	ch := make(chan struct{}, 1)
	h := &s.state
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[chan struct{}]struct{}{}
	}
	h.subs[ch] = struct{}{}
	if len(h.subs) == 1 && s.deps.Readers != nil {
		ctx, cancel := context.WithCancel(s.baseCtx)
		h.unwatch = cancel
		go func() {
			err := s.deps.Readers.Watch(ctx, func(any) { s.changed() })
			if err != nil && ctx.Err() == nil {
				s.log.Warn("reader events for the state ended", "err", err)
				s.changed() // State now shows the ReaderSource's error, if any
			}
		}()
	}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			delete(h.subs, ch)
			if len(h.subs) == 0 && h.unwatch != nil {
				h.unwatch()
				h.unwatch = nil
			}
		})
	}
}

// changed tells every subscriber that State changed, without blocking.
func (s *Server) changed() {
	h := &s.state
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- struct{}{}:
		default: // a notification is pending already
		}
	}
}
