package agent

// session.go: sessions — hello and version negotiation, session tokens and
// resume, attaching connections (docs/protocol.md, "Conversation"). Pairing
// is in pairing.go.

import (
	"fmt"
	"sync"

	"github.com/cardwright/cardwright/agent/api"
)

// session is a portal's conversation with the agent, identified by origin
// and a token from welcome. It outlives connections: jobs keep running
// when the socket drops and their results wait in the journal.
type session struct {
	origin, id string

	mu      sync.Mutex
	conn    *conn
	jobs    map[string]*jobRun // running jobs by request id
	dropped bool               // removed from Server.sessions; attach looks again
}

func (ss *session) running() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.jobs)
}

// send delivers v to the session's current connection, if any.
func (ss *session) send(v any) {
	ss.mu.Lock()
	c := ss.conn
	ss.mu.Unlock()
	if c != nil {
		c.send(v)
	}
}

func (c *conn) onHello(id string, raw []byte) {
	var m api.Hello
	if !decode(c, id, raw, &m) {
		return
	}
	c.mu.Lock()
	has := c.sess != nil
	c.mu.Unlock()
	if has {
		c.fail(id, api.CodeBadRequest, "hello was already sent on this connection")
		return
	}
	version := 0
	for _, v := range m.Versions {
		if v >= api.MinProtocolVersion && v <= api.ProtocolVersion && v > version {
			version = v
		}
	}
	if version == 0 {
		c.fail(id, api.CodeUnsupportedVersion, fmt.Sprintf("this agent speaks protocol versions %d..%d", api.MinProtocolVersion, api.ProtocolVersion))
		c.closeWith(closePolicy, "no common protocol version")
		return
	}
	sid := m.Session
	if sid != "" && !validToken(sid) {
		c.fail(id, api.CodeBadRequest, "session token malformed")
		return
	}
	// Only a token this agent issued resumes a session (docs/protocol.md,
	// "Sessions"): an unknown one gets a fresh token, so a client can never
	// choose its session name, e.g. one another page of the same origin
	// will be issued or presents.
	if sid != "" && !c.s.knownSession(c.origin, sid) {
		c.s.log.Info("unknown session token: issuing a new one", "origin", c.origin)
		sid = ""
	}
	if sid == "" {
		sid = randomToken(sessionTokenBytes)
	}
	c.mu.Lock()
	paired := c.paired
	c.mu.Unlock()
	welcome := &api.Welcome{Type: api.TypeWelcome, ID: id, Version: version, Agent: "cardwright/" + c.s.cfg.Version,
		Session: sid, Paired: paired,
		Limits: api.Limits{MaxMessageBytes: c.s.cfg.MaxMessageBytes, MaxJobs: c.s.cfg.MaxJobs, MaxRate: c.s.cfg.RatePerSecond}}
	// Under the session lock, so that a job finishing meanwhile either is
	// still running here (runJob sends its result to this connection) or
	// is in the journal (sent below): never both, never neither. The
	// welcome goes first, before any event of the session's running jobs.
	ss, old := c.s.attach(c, sid)
	pending, err := c.s.deps.Journal.Pending(c.origin, sid)
	if err != nil {
		c.s.log.Error("reading journal", "err", err)
	}
	var results []api.Result
	for _, r := range pending {
		if _, running := ss.jobs[r.ReqID]; running || r.Result == nil {
			continue
		}
		res := *r.Result
		res.Redelivered = true
		results = append(results, res)
	}
	welcome.Pending = len(results)
	c.send(welcome)
	if paired { // results and requests go only to approved origins
		for i := range results {
			c.send(&results[i])
		}
		// Certificate requests of running jobs wait for this session's
		// answer: ask again on the new connection.
		for _, j := range ss.jobs {
			j.mu.Lock()
			for _, p := range j.requests {
				c.send(&p.msg)
			}
			j.mu.Unlock()
		}
	}
	ss.mu.Unlock()
	if old != nil && old != c {
		old.mu.Lock()
		old.sess = nil
		old.mu.Unlock()
		old.closeWith(closePolicy, "session resumed on another connection")
	}
}

// knownSession reports whether sid is a session of origin that this agent
// issued: one with a connection or a running job, or with jobs in the
// journal (which outlives a restart).
func (s *Server) knownSession(origin, sid string) bool {
	s.mu.Lock()
	_, live := s.sessions[origin+"\x00"+sid]
	s.mu.Unlock()
	if live {
		return true
	}
	ok, err := s.deps.Journal.HasSession(origin, sid)
	if err != nil {
		s.log.Error("reading journal", "err", err)
	}
	return ok
}

func validToken(s string) bool {
	if len(s) < 16 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// attach binds c to the session (origin, sid), taking it over from an
// older connection, which it returns. It returns with ss.mu held.
func (s *Server) attach(c *conn, sid string) (ss *session, old *conn) {
	key := c.origin + "\x00" + sid
	for {
		s.mu.Lock()
		ss = s.sessions[key]
		if ss == nil {
			ss = &session{origin: c.origin, id: sid, jobs: map[string]*jobRun{}}
			s.sessions[key] = ss
		}
		s.mu.Unlock()
		ss.mu.Lock()
		if !ss.dropped {
			break
		}
		ss.mu.Unlock() // dropped between the lookup and the lock: look again
	}
	old = ss.conn
	ss.conn = c
	c.mu.Lock()
	c.sess = ss
	c.mu.Unlock()
	return ss, old
}

// detach unbinds c from its session; a session with no connection and no
// running job is forgotten (its results stay in the journal).
func (c *conn) detach() {
	c.mu.Lock()
	ss := c.sess
	c.sess = nil
	for _, cancel := range c.subs {
		cancel()
	}
	c.mu.Unlock()
	if ss == nil {
		return
	}
	ss.mu.Lock()
	if ss.conn == c {
		ss.conn = nil
	}
	idle := ss.conn == nil && len(ss.jobs) == 0
	ss.mu.Unlock()
	if idle {
		c.s.dropSession(ss)
	}
}

func (s *Server) dropSession(ss *session) {
	key := ss.origin + "\x00" + ss.id
	s.mu.Lock()
	defer s.mu.Unlock()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.conn == nil && len(ss.jobs) == 0 && s.sessions[key] == ss {
		delete(s.sessions, key)
		ss.dropped = true
	}
}
