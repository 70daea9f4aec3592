package agent

// sites.go: the origins that may use the agent, as the tray's Sites window
// shows them (spec/gui.md, "Tray"): configured ones, read-only, and paired
// ones, which the local user may remove.

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// ErrSiteConfigured is returned by RemoveSite for an origin that comes from
// the configuration (or AllowOrigin): it is removed there, not here.
var ErrSiteConfigured = errors.New("origin is in the configuration")

// ErrSiteNotPaired is returned by RemoveSite for an origin that is not
// paired.
var ErrSiteNotPaired = errors.New("origin is not paired")

// closeSiteRemoved is the close reason of a removed site's connections.
const closeSiteRemoved = "origin removed from the approved sites on this computer; pair again"

// Site is an origin that may use the agent.
type Site struct {
	Origin string
	// Configured origins come from Config.AllowedOrigins (or AllowOrigin)
	// and cannot be removed with RemoveSite.
	Configured bool
	// PairedAt is when the local user approved a paired origin (UTC,
	// whole seconds); zero for configured origins and for pairings whose
	// time the journal does not hold.
	PairedAt time.Time
}

// Sites lists the origins that may use the agent: configured ones in the
// configuration's order, then paired ones, oldest pairing first. Paired
// origins count only where the agent has an Approver (a headless agent
// honours its configuration only), so only then are they listed.
func (s *Server) Sites() []Site {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Site, 0, len(s.configured)+len(s.paired))
	for _, o := range s.configured {
		out = append(out, Site{Origin: o, Configured: true})
	}
	var paired []Site
	for o, at := range s.paired {
		paired = append(paired, Site{Origin: o, PairedAt: at})
	}
	sort.Slice(paired, func(a, b int) bool {
		if !paired[a].PairedAt.Equal(paired[b].PairedAt) {
			return paired[a].PairedAt.Before(paired[b].PairedAt)
		}
		return paired[a].Origin < paired[b].Origin
	})
	return append(out, paired...)
}

// RemoveSite forgets a paired origin: it is deleted from the journal, its
// connections are closed (1008, with a reason saying so), its running jobs
// — WebSocket and POST /CardJob — are cancelled (their results are
// journaled as usual and wait there for the session, as after any
// disconnect), and a later connection from it has to pair again. A
// configured origin is refused with ErrSiteConfigured, an origin that is
// not paired with ErrSiteNotPaired.
func (s *Server) RemoveSite(origin string) error {
	s.mu.Lock()
	configured := slices.Contains(s.configured, origin)
	_, paired := s.paired[origin]
	s.mu.Unlock()
	if configured {
		return fmt.Errorf("removing site %s: %w", origin, ErrSiteConfigured)
	}
	if !paired {
		return fmt.Errorf("removing site %s: %w", origin, ErrSiteNotPaired)
	}
	if err := s.deps.Journal.RemovePaired(origin); err != nil {
		return fmt.Errorf("removing site %s: %w", origin, err)
	}
	// All under Server.mu, so no connection or session of the origin
	// appears half-way: a connection upgraded meanwhile finds the origin
	// gone (serveWS), and a job accepted meanwhile finds its connection
	// unpaired (onJob) or is cancelled here.
	s.mu.Lock()
	delete(s.paired, origin)
	delete(s.allowed, origin)
	nconns, njobs := 0, 0
	for c := range s.conns {
		if c.origin != origin {
			continue
		}
		c.mu.Lock()
		c.paired = false
		c.mu.Unlock()
		c.closeWith(closePolicy, closeSiteRemoved)
		nconns++
	}
	for _, ss := range s.sessions {
		if ss.origin != origin {
			continue
		}
		ss.mu.Lock()
		for _, jr := range ss.jobs {
			jr.cancel()
			njobs++
		}
		ss.mu.Unlock()
	}
	s.mu.Unlock()
	// POST /CardJob jobs of the origin. One registered after this finds
	// the origin no longer allowed (serveCardJob).
	s.xml.mu.Lock()
	for key, cancel := range s.xml.running {
		if strings.HasPrefix(key, origin+"\x00") {
			cancel()
			njobs++
		}
	}
	s.xml.mu.Unlock()
	s.log.Info("site removed", "origin", origin, "connections", nconns, "jobs_cancelled", njobs)
	s.changed()
	return nil
}
