package agent

// pairing.go: pairing a new origin with the local user's approval, and the
// policy that holds whatever the dialog does (spec/gui.md property 4;
// docs/protocol.md, "pair → pairing → paired"):
//
//   - one open request per origin: a second pair from the same origin (another
//     tab, a reload) joins the open one — same code, same answer, no second
//     dialog;
//   - at most Config.PairPerMinute dialogs per origin per minute, and at most
//     maxOpenPairings dialogs open at once over all origins; more are refused
//     with rate_limited;
//   - a request not answered within Config.PairTimeout is denied and its pages
//     told so (not_paired), even when the Approver does not return: only an
//     approval returned in time pairs;
//   - a request whose pages have all gone away is withdrawn (the Approver's
//     ctx ends, so the dialog closes).

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/time/rate"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/prompt"
)

// maxOpenPairings caps the pairing dialogs open at once over all origins,
// so that a page that can use many origins (a.evil.example,
// b.evil.example, …) cannot cover the desktop with dialogs.
const maxOpenPairings = 3

// pairRequest is an open pairing request of one origin. Its fields other
// than waiters are set once; waiters is guarded by Server.mu.
type pairRequest struct {
	origin, code string
	cancel       context.CancelFunc
	waiters      map[*conn]string // connection → id of its pair message
}

func (c *conn) onPair(id string, raw []byte) {
	c.mu.Lock()
	paired, pairing := c.paired, c.pairing
	c.mu.Unlock()
	if paired {
		c.send(&api.Paired{Type: api.TypePaired, ID: id, Origin: c.origin})
		return
	}
	s := c.s
	if s.deps.Approver == nil {
		c.fail(id, api.CodeNotPaired, "this agent runs headless: origins are added in its configuration only")
		return
	}
	if pairing {
		c.fail(id, api.CodeBadRequest, "a pairing request is already waiting")
		return
	}
	select {
	case <-c.closing:
		return // removed or shutting down: no dialog for a page being closed
	default:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.allowed[c.origin] { // another page of the origin paired meanwhile
		c.mu.Lock()
		c.paired = true
		c.mu.Unlock()
		c.send(&api.Paired{Type: api.TypePaired, ID: id, Origin: c.origin})
		return
	}
	pr := s.pairs[c.origin]
	if pr == nil {
		if len(s.pairs) >= maxOpenPairings {
			s.log.Warn("pairing refused: too many open requests", "origin", c.origin, "open", len(s.pairs))
			c.fail(id, api.CodeRateLimited, "too many pairing requests are waiting for the local user; try again later")
			return
		}
		if !s.pairLimiter(c.origin).Allow() {
			s.log.Warn("pairing refused: rate limit", "origin", c.origin, "per_minute", s.cfg.PairPerMinute)
			c.fail(id, api.CodeRateLimited, fmt.Sprintf("at most %d pairing requests a minute from %s; try again later", s.cfg.PairPerMinute, c.origin))
			return
		}
		ctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.PairTimeout)
		pr = &pairRequest{origin: c.origin, code: pairingCode(), cancel: cancel, waiters: map[*conn]string{}}
		s.pairs[c.origin] = pr
		go s.askPairing(ctx, pr)
	} else {
		s.log.Info("pairing request joins the open one", "origin", c.origin)
	}
	pr.waiters[c] = id
	c.mu.Lock()
	c.pairing = true
	c.mu.Unlock()
	// Under Server.mu, so the pairing event goes before the answer, which
	// askPairing sends only after taking the waiters under the same lock.
	c.send(&api.Pairing{Type: api.TypePairing, ID: id, Code: pr.code, Origin: c.origin})
}

// pairLimiter returns the origin's pairing rate limiter. Called with
// Server.mu held. Limiters that are full again are forgotten when many
// origins have asked, so the map stays small.
func (s *Server) pairLimiter(origin string) *rate.Limiter {
	l := s.pairRate[origin]
	if l != nil {
		return l
	}
	burst := s.cfg.PairPerMinute
	if len(s.pairRate) >= 256 {
		for o, ol := range s.pairRate {
			if ol.Tokens() >= float64(burst) {
				delete(s.pairRate, o)
			}
		}
	}
	l = rate.NewLimiter(rate.Every(time.Minute/time.Duration(burst)), burst)
	s.pairRate[origin] = l
	return l
}

// askPairing asks the Approver and tells every waiting page the outcome.
func (s *Server) askPairing(ctx context.Context, pr *pairRequest) {
	defer pr.cancel()
	s.log.Info("pairing requested", "origin", pr.origin, "code", pr.code)
	type answer struct {
		ok  bool
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- answer{err: fmt.Errorf("approver panicked: %v", p)}
			}
		}()
		ok, err := s.deps.Approver.Approve(ctx, pr.origin, pr.code)
		ch <- answer{ok, err}
	}()
	var a answer
	select {
	case a = <-ch:
	case <-ctx.Done(): // the Approver may still be showing its dialog: it is denied all the same
	}
	// An approval that comes after the deadline or the withdrawal is a
	// denial.
	approved := a.err == nil && a.ok && ctx.Err() == nil
	var why string
	switch {
	case approved:
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		why = fmt.Sprintf("the pairing request timed out: the local user did not approve %s within %s", pr.origin, s.cfg.PairTimeout)
	case ctx.Err() != nil:
		why = "the pairing request was withdrawn"
	case a.err != nil && errors.Is(a.err, prompt.ErrUnavailable):
		why = "no pairing dialog can be shown on this computer now (the desktop app is not running); try again"
	default:
		why = "the local user did not approve " + pr.origin
	}
	now := time.Now().UTC().Truncate(time.Second)
	if approved {
		if err := s.deps.Journal.AddPaired(pr.origin); err != nil {
			s.log.Error("storing paired origin", "err", err)
		}
	}
	s.mu.Lock()
	if s.pairs[pr.origin] == pr {
		delete(s.pairs, pr.origin)
	}
	if approved {
		s.allowed[pr.origin] = true
		s.paired[pr.origin] = now
	}
	waiters := pr.waiters
	pr.waiters = nil
	for c := range waiters {
		c.mu.Lock()
		c.pairing = false
		if approved {
			c.paired = true
		}
		c.mu.Unlock()
	}
	s.mu.Unlock()
	if approved {
		s.log.Info("origin paired", "origin", pr.origin)
		s.changed()
	} else {
		s.log.Warn("pairing refused", "origin", pr.origin, "reason", why, "err", a.err)
	}
	for c, id := range waiters {
		if approved {
			c.send(&api.Paired{Type: api.TypePaired, ID: id, Origin: pr.origin})
		} else {
			c.fail(id, api.CodeNotPaired, why)
		}
	}
}

// leavePairing takes a closing connection off its origin's open pairing
// request; the last one to leave withdraws it, which closes the dialog.
func (s *Server) leavePairing(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pr := s.pairs[c.origin]
	if pr == nil || pr.waiters == nil {
		return
	}
	if _, ok := pr.waiters[c]; !ok {
		return
	}
	delete(pr.waiters, c)
	if len(pr.waiters) == 0 {
		delete(s.pairs, c.origin) // a page that comes back asks afresh
		pr.cancel()
	}
}

// pairingCode is six uniformly random decimal digits from crypto/rand, easy
// to compare by eye.
func pairingCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1000000))
	if err != nil {
		panic("reading crypto/rand: " + err.Error()) // crypto/rand does not fail on supported platforms
	}
	return fmt.Sprintf("%06d", n.Int64())
}
