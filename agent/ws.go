package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"reflect"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/secret"
)

// WebSocket close codes used (RFC 6455 §7.4.1).
const (
	closeNormal       = websocket.CloseNormalClosure
	closeGoingAway    = websocket.CloseGoingAway
	closeUnsupported  = websocket.CloseUnsupportedData
	closeInvalid      = websocket.CloseInvalidFramePayloadData
	closePolicy       = websocket.ClosePolicyViolation
	closeTooBig       = websocket.CloseMessageTooBig
	closeTryAgain     = websocket.CloseTryAgainLater
	writeTimeout      = 10 * time.Second
	outQueue          = 512
	sessionTokenBytes = 16
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

// jobRun is a running job.
type jobRun struct {
	seq    uint64
	reqID  string
	cancel context.CancelFunc

	mu       sync.Mutex
	nextReq  int
	requests map[string]*pendingRequest
}

type pendingRequest struct {
	msg api.Request
	ch  chan *api.Answer
}

// conn is one WebSocket connection.
type conn struct {
	s      *Server
	ws     *websocket.Conn
	origin string
	remote string
	out    chan any
	done   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc

	// closing is closed by closeWith; the writer then flushes what is
	// queued, sends the close frame and shuts the socket.
	closing     chan struct{}
	closeOnce   sync.Once
	closeCode   int
	closeReason string
	readDone    chan struct{}

	mu      sync.Mutex
	sess    *session
	paired  bool
	pairing bool
	subs    map[string]context.CancelFunc

	limiter *rate.Limiter // used by readLoop only
	strikes int           // consecutive rate-limited messages
}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	// The Origin was already checked against the allow-list (or admitted
	// for pairing) by ServeHTTP; this re-checks the same decision so the
	// upgrader can never be reached with an origin we did not classify.
	CheckOrigin: nil, // set in init to avoid an initialization cycle
}

func init() {
	upgrader.CheckOrigin = func(r *http.Request) bool {
		st, _ := r.Context().Value(originKey{}).(originState)
		return st == originAllowed || st == originNone || st == originPairing
	}
}

type originKey struct{}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.closing.Load() {
		http.Error(w, "agent shutting down", http.StatusServiceUnavailable)
		return
	}
	origin, st := s.classifyOrigin(r)
	if st == originDenied { // ServeHTTP already refused; keep the check local too
		http.Error(w, "forbidden: origin not allowed", http.StatusForbidden)
		return
	}
	if n := s.nconns.Add(1); n > int64(s.cfg.MaxConnections) {
		s.nconns.Add(-1)
		s.log.Warn("connection refused: limit reached", "origin", origin, "limit", s.cfg.MaxConnections)
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), originKey{}, st))
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.nconns.Add(-1)
		return // the upgrader wrote the HTTP error
	}
	ctx, cancel := context.WithCancel(s.baseCtx)
	c := &conn{s: s, ws: ws, origin: origin, remote: r.RemoteAddr, out: make(chan any, outQueue),
		done: make(chan struct{}), closing: make(chan struct{}), readDone: make(chan struct{}),
		ctx: ctx, cancel: cancel, paired: st != originPairing,
		subs: map[string]context.CancelFunc{}, limiter: newRateLimiter(s.cfg.RatePerSecond)}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.log.Info("connection opened", "origin", origin, "remote", c.remote, "paired", c.paired)
	go c.writeLoop()
	c.readLoop()
}

// send queues v for the writer. It never blocks: a client that does not
// read its events fills the queue and is disconnected (its results stay in
// the journal and are delivered again when it comes back).
func (c *conn) send(v any) {
	select {
	case <-c.closing:
		return
	default:
	}
	select {
	case c.out <- v:
	default:
		c.closeWith(closePolicy, "client does not read its messages")
	}
}

// writeLoop is the only writer of data frames. After closeWith it flushes
// the queue (an error reply, a result) within a second, sends the close
// frame with the reason, waits briefly for the reader to see the peer's
// close, and shuts the socket.
func (c *conn) writeLoop() {
	defer func() {
		c.ws.Close()
		c.cancel()
		close(c.done)
	}()
	for {
		select {
		case v := <-c.out:
			c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := c.ws.WriteJSON(v); err != nil {
				c.closeWith(closeGoingAway, "write failed")
				return
			}
		case <-c.closing:
			deadline := time.Now().Add(time.Second)
			c.ws.SetWriteDeadline(deadline)
		flush:
			for {
				select {
				case v := <-c.out:
					if c.ws.WriteJSON(v) != nil {
						return
					}
				default:
					break flush
				}
			}
			c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.closeCode, c.closeReason), deadline)
			t := time.NewTimer(2 * time.Second)
			defer t.Stop()
			select {
			case <-c.readDone:
			case <-t.C:
			}
			return
		}
	}
}

// closeWith starts closing the connection with a code and reason (RFC 6455
// §7.4). It does not block; only this connection is affected.
func (c *conn) closeWith(code int, reason string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeReason = code, reason
		close(c.closing)
	})
}

// drain reads and discards frames after the agent started closing, so the
// peer's data does not turn our close frame into a TCP reset, until the
// peer's close frame, an error, or a deadline.
func (c *conn) drain(r io.Reader) {
	c.ws.SetReadDeadline(time.Now().Add(2 * time.Second))
	if r != nil {
		io.Copy(io.Discard, r)
	}
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			return
		}
		io.Copy(io.Discard, r)
	}
}

func (c *conn) readLoop() {
	s := c.s
	var pending io.Reader // unread rest of a refused frame
	defer func() {
		select {
		case <-c.closing:
			c.drain(pending)
		default:
			c.closeWith(closeNormal, "")
		}
		close(c.readDone)
		c.detach()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.nconns.Add(-1)
		s.log.Info("connection closed", "origin", c.origin, "remote", c.remote)
	}()
	max := int64(s.cfg.MaxMessageBytes)
	var buf bytes.Buffer
	for {
		mt, r, err := c.ws.NextReader()
		if err != nil {
			return
		}
		if mt != websocket.TextMessage {
			pending = r
			c.closeWith(closeUnsupported, "only JSON text frames are accepted")
			return
		}
		buf.Reset()
		n, err := buf.ReadFrom(io.LimitReader(r, max+1))
		if err != nil {
			return
		}
		if n > max {
			s.log.Warn("connection closed: message too large", "origin", c.origin, "limit", max)
			pending = r
			c.closeWith(closeTooBig, "message exceeds "+strconv.FormatInt(max, 10)+" bytes")
			return
		}
		var env api.Envelope
		if err := json.Unmarshal(buf.Bytes(), &env); err != nil || env.Type == "" {
			msg := "malformed message: not a JSON object with a type"
			if err != nil {
				msg = "malformed message: " + describeJSONError(err, &env)
			}
			s.log.Warn("connection closed: malformed frame", "origin", c.origin)
			c.closeWith(closeInvalid, truncate(msg, 120))
			return
		}
		if !c.limiter.Allow() {
			// A client that keeps sending for a whole second's worth of
			// messages after being told is closed; the others are refused
			// one by one and may slow down.
			c.strikes++
			if c.strikes > s.cfg.RatePerSecond {
				s.log.Warn("connection closed: rate limit", "origin", c.origin, "rate", s.cfg.RatePerSecond)
				c.closeWith(closePolicy, "rate limit exceeded")
				return
			}
			c.send(&api.Error{Type: api.TypeError, ID: truncate(env.ID, 128), Code: api.CodeRateLimited, Message: "too many messages; slow down"})
			continue
		}
		c.strikes = 0
		c.dispatch(&env, buf.Bytes())
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func (c *conn) fail(id string, code api.Code, msg string) {
	c.send(&api.Error{Type: api.TypeError, ID: id, Code: code, Message: msg})
}

// handler table for messages; paired says whether an unpaired origin may
// send it.
type msgHandler struct {
	fn          func(c *conn, id string, raw []byte)
	needSession bool
	needPaired  bool
}

var msgHandlers map[string]msgHandler

func init() {
	msgHandlers = map[string]msgHandler{
		api.TypeHello:        {fn: (*conn).onHello},
		api.TypePair:         {fn: (*conn).onPair, needSession: true},
		api.TypeReaders:      {fn: (*conn).onReaders, needSession: true, needPaired: true},
		api.TypeJob:          {fn: (*conn).onJob, needSession: true, needPaired: true},
		api.TypeCancel:       {fn: (*conn).onCancel, needSession: true, needPaired: true},
		api.TypeAck:          {fn: (*conn).onAck, needSession: true, needPaired: true},
		api.TypeAnswer:       {fn: (*conn).onAnswer, needSession: true, needPaired: true},
		api.TypeCertificates: {fn: (*conn).onCertService, needSession: true, needPaired: true},
		api.TypeSign:         {fn: (*conn).onCertService, needSession: true, needPaired: true},
		api.TypeAuthenticate: {fn: (*conn).onCertService, needSession: true, needPaired: true},
	}
}

func (c *conn) dispatch(env *api.Envelope, raw []byte) {
	h, ok := msgHandlers[env.Type]
	if !ok {
		c.fail(env.ID, api.CodeBadRequest, "unknown message type "+strconv.Quote(truncate(env.Type, 40)))
		return
	}
	if env.ID == "" || len(env.ID) > 128 {
		c.fail("", api.CodeBadRequest, "every request needs an id of 1..128 characters")
		return
	}
	c.mu.Lock()
	sess, paired := c.sess, c.paired
	c.mu.Unlock()
	if h.needSession && sess == nil {
		c.fail(env.ID, api.CodeBadRequest, "send hello first")
		return
	}
	if h.needPaired && !paired {
		c.fail(env.ID, api.CodeNotPaired, "origin "+c.origin+" is not approved on this computer; send pair")
		return
	}
	h.fn(c, env.ID, raw)
}

func decode(c *conn, id string, raw []byte, v any) bool {
	if err := json.Unmarshal(raw, v); err != nil {
		c.fail(id, api.CodeBadRequest, truncate("malformed message: "+describeJSONError(err, v), 200))
		return false
	}
	return true
}

// describeJSONError words a decoding error for the portal's developer: the
// field as it is spelled on the wire and the JSON type it takes
// (docs/protocol.md, "Errors"), never Go's struct and type names.
func describeJSONError(err error, v any) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		got := te.Value
		switch got {
		case "number", "string", "array", "object", "bool":
		default: // "number 1e999", "number -1" and the like
			if strings.HasPrefix(got, "number") {
				got = "number"
			}
		}
		if got == "bool" {
			got = "boolean"
		}
		if te.Field == "" {
			return "a message is a JSON object, not " + article(got)
		}
		if ft := wireField(v, te.Field); ft != nil && ft.Kind() == reflect.Map && te.Type != ft {
			// encoding/json names the map, not the key of the bad value.
			return fmt.Sprintf("field %q must be %s; one of its values is %s", te.Field, jsonKind(ft), article(got))
		}
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, jsonKind(te.Type), article(got))
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "not valid JSON: the message ends early"
	}
	return "not valid JSON"
}

// wireField is the type of the top-level field of the struct *v that is
// called name on the wire, or nil.
func wireField(v any, name string) reflect.Type {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name {
			return f.Type
		}
	}
	return nil
}

// jsonKind names the JSON value a Go type decodes from.
func jsonKind(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.String {
			return "an array of strings"
		}
		if k := t.Elem().Kind(); k >= reflect.Int && k <= reflect.Uint64 {
			return "an array of integers"
		}
		return "an array"
	case reflect.Map:
		if t.Elem().Kind() == reflect.String {
			return "an object of strings"
		}
		return "an object"
	case reflect.Struct:
		return "an object"
	}
	return "another type"
}

func article(kind string) string {
	switch kind {
	case "array", "object":
		return "an " + kind
	case "null":
		return kind
	}
	return "a " + kind
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

func (c *conn) onPair(id string, raw []byte) {
	c.mu.Lock()
	paired, pairing := c.paired, c.pairing
	c.mu.Unlock()
	if paired {
		c.send(&api.Paired{Type: api.TypePaired, ID: id, Origin: c.origin})
		return
	}
	ap := c.s.deps.Approver
	if ap == nil {
		c.fail(id, api.CodeNotPaired, "this agent runs headless: origins are added in its configuration only")
		return
	}
	if pairing {
		c.fail(id, api.CodeBadRequest, "a pairing request is already waiting")
		return
	}
	c.mu.Lock()
	c.pairing = true
	c.mu.Unlock()
	code := pairingCode()
	c.send(&api.Pairing{Type: api.TypePairing, ID: id, Code: code, Origin: c.origin})
	c.s.log.Info("pairing requested", "origin", c.origin, "code", code)
	go func() {
		ok, err := ap.Approve(c.ctx, c.origin, code)
		c.mu.Lock()
		c.pairing = false
		c.mu.Unlock()
		if err != nil || !ok {
			c.s.log.Warn("pairing refused", "origin", c.origin, "err", err)
			c.fail(id, api.CodeNotPaired, "the local user did not approve "+c.origin)
			return
		}
		if err := c.s.AllowOrigin(c.origin); err != nil {
			c.fail(id, api.CodeNotPaired, err.Error())
			return
		}
		if err := c.s.deps.Journal.AddPaired(c.origin); err != nil {
			c.s.log.Error("storing paired origin", "err", err)
		}
		c.mu.Lock()
		c.paired = true
		c.mu.Unlock()
		c.s.log.Info("origin paired", "origin", c.origin)
		c.send(&api.Paired{Type: api.TypePaired, ID: id, Origin: c.origin})
	}()
}

// pairingCode is six decimal digits, easy to compare by eye.
// pairingCode is six uniformly random decimal digits from crypto/rand.
func pairingCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1000000))
	if err != nil {
		panic("reading crypto/rand: " + err.Error()) // crypto/rand does not fail on supported platforms
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// newRateLimiter allows perSecond messages a second with a burst of twice that.
func newRateLimiter(perSecond int) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(perSecond), 2*perSecond)
}

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

type requestOriginKey struct{}

// RequestOrigin is the Origin of the connection a CertService call came
// from (the checked Origin header, never a value the page chose); "" for a
// context that did not come from a connection.
func RequestOrigin(ctx context.Context) string {
	o, _ := ctx.Value(requestOriginKey{}).(string)
	return o
}

func (c *conn) onCertService(id string, raw []byte) {
	cs := c.s.deps.Certs
	if cs == nil {
		c.fail(id, api.CodeNotSupported, "this agent has no certificate service")
		return
	}
	// The goroutine decodes raw after the read loop has moved on, and the
	// loop reuses its buffer for the next frame: without the copy, a sign
	// request could sign the data of the one after it.
	raw = bytes.Clone(raw)
	var env api.Envelope
	json.Unmarshal(raw, &env)
	ctx := context.WithValue(c.ctx, requestOriginKey{}, c.origin)
	go func() {
		var (
			reply any
			err   error
		)
		switch env.Type {
		case api.TypeCertificates:
			var m api.Certificates
			if !decode(c, id, raw, &m) {
				return
			}
			var r *api.CertificateList
			r, err = cs.Certificates(ctx, &m)
			if r != nil {
				r.Type, r.ID = api.TypeCertificateList, id
			}
			reply = r
		case api.TypeSign:
			var m api.Sign
			if !decode(c, id, raw, &m) {
				return
			}
			var r *api.Signature
			r, err = cs.Sign(ctx, &m)
			if r != nil {
				r.Type, r.ID = api.TypeSignature, id
			}
			reply = r
		case api.TypeAuthenticate:
			var m api.Authenticate
			if !decode(c, id, raw, &m) {
				return
			}
			var r *api.Authentication
			r, err = cs.Authenticate(ctx, &m)
			if r != nil {
				r.Type, r.ID = api.TypeAuthentication, id
			}
			reply = r
		}
		if err != nil {
			var je *api.JobError
			if errors.As(err, &je) {
				c.fail(id, je.Code, je.Message)
			} else {
				c.fail(id, api.CodeInternal, err.Error())
			}
			return
		}
		c.send(reply)
	}()
}

func (c *conn) onJob(id string, raw []byte) {
	s := c.s
	var m api.Job
	if !decode(c, id, raw, &m) {
		return
	}
	if s.closing.Load() {
		c.fail(id, api.CodeShuttingDown, "the agent is shutting down")
		return
	}
	job, jerr := s.buildJob(&m)
	if jerr != nil {
		s.log.Warn("job refused", "origin", c.origin, "id", id, "code", jerr.Code, "reason", jerr.Message)
		c.fail(id, jerr.Code, jerr.Message)
		return
	}
	c.mu.Lock()
	ss := c.sess
	c.mu.Unlock()
	if ss == nil {
		c.fail(id, api.CodeBadRequest, "send hello first")
		return
	}
	ss.mu.Lock()
	if len(ss.jobs) >= s.cfg.MaxJobs {
		ss.mu.Unlock()
		c.fail(id, api.CodeTooManyJobs, fmt.Sprintf("at most %d jobs may run at once per session", s.cfg.MaxJobs))
		return
	}
	if _, dup := ss.jobs[id]; dup {
		ss.mu.Unlock()
		c.fail(id, api.CodeBadRequest, "a job with this id is running")
		return
	}
	jr := &jobRun{reqID: id, requests: map[string]*pendingRequest{}}
	ss.jobs[id] = jr // reserve before the journal write
	ss.mu.Unlock()
	if !s.beginJob() {
		ss.mu.Lock()
		delete(ss.jobs, id)
		ss.mu.Unlock()
		c.fail(id, api.CodeShuttingDown, "the agent is shutting down")
		return
	}
	seq, err := s.deps.Journal.Begin(ss.origin, ss.id, id, job.Reader)
	if err != nil {
		s.jobsWG.Done()
		ss.mu.Lock()
		delete(ss.jobs, id)
		ss.mu.Unlock()
		if errors.Is(err, ErrDuplicateJob) {
			c.fail(id, api.CodeBadRequest, "job id already used and not yet acknowledged")
		} else {
			s.log.Error("journaling job", "err", err)
			c.fail(id, api.CodeInternal, "journal unavailable")
		}
		return
	}
	jr.seq = seq
	ctx, cancel := context.WithCancel(s.baseCtx)
	jr.cancel = cancel
	c.send(&api.Accepted{Type: api.TypeAccepted, ID: id})
	s.log.Info("job accepted", "origin", ss.origin, "session", ss.id[:6], "id", id, "job", seq, "reader", job.Reader)
	go s.runJob(ctx, ss, jr, job)
}

// buildJob decodes a job message into the runner's job and runs the checks
// that need no card: one description, base64, the module allow-list.
func (s *Server) buildJob(m *api.Job) (*runner.Job, *api.JobError) {
	job := &runner.Job{Reader: m.Reader, SecretOutputs: m.Secret,
		Fields: make(map[string]secret.Value, len(m.Fields))}
	switch {
	case m.Description != "" && m.DSZ != "":
		return nil, &api.JobError{Code: api.CodeBadRequest, Message: "give description or dsz, not both"}
	case m.Description != "":
		job.Name, job.Description = "job.dsc", []byte(m.Description)
	case m.DSZ != "":
		b, err := base64.StdEncoding.DecodeString(m.DSZ)
		if err != nil {
			return nil, &api.JobError{Code: api.CodeInvalidDescription, Message: "dsz is not base64: " + err.Error()}
		}
		job.DSZ = b
	default:
		return nil, &api.JobError{Code: api.CodeBadRequest, Message: "a job needs a description or a dsz"}
	}
	if len(m.Files) > 0 {
		files := runner.Files{}
		for name, v := range m.Files {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return nil, &api.JobError{Code: api.CodeInvalidField, Message: "file " + strconv.Quote(name) + " is not base64", File: name}
			}
			files[name] = b
		}
		job.Files = files
	}
	for k, v := range m.Fields {
		job.Fields[k] = secret.New(v)
	}
	if jerr := s.checkModules(job); jerr != nil {
		return nil, jerr
	}
	return job, nil
}

func (s *Server) runJob(ctx context.Context, ss *session, jr *jobRun, job *runner.Job) {
	defer s.jobsWG.Done()
	defer jr.cancel()
	started := time.Now().UTC()
	job.Issuer = portalIssuer{s: s, ss: ss, jr: jr}
	job.PromptNotify = func(kind, state, reader string) {
		ss.send(&api.Prompt{Type: api.TypePrompt, ID: jr.reqID, Kind: kind, State: state, Reader: reader})
	}
	res := s.safeRun(ctx, jr.seq, job, func(p runner.Progress) {
		ss.send(&api.Progress{Type: api.TypeProgress, ID: jr.reqID, Step: p.Step, N: p.N, Total: p.Total})
	})
	wire := toWire(jr.reqID, job, &res)
	wire.Started = started.Format(time.RFC3339Nano)
	wire.Finished = time.Now().UTC().Format(time.RFC3339Nano)
	code := "ok"
	if wire.Error != nil {
		code = string(wire.Error.Code)
	}
	if err := s.deps.Journal.Finish(jr.seq, wire); err != nil {
		// Not durable: do not send what a crash could lose track of.
		s.log.Error("journaling result", "job", jr.seq, "err", err)
		wire = &api.Result{Type: api.TypeResult, ID: jr.reqID, Error: &api.JobError{Code: api.CodeInternal, Message: "the result could not be journaled"}}
	}
	wipe(job, &res)
	// Remove the job and send its result under the session lock: see
	// onHello for why.
	ss.mu.Lock()
	delete(ss.jobs, jr.reqID)
	idle := ss.conn == nil && len(ss.jobs) == 0
	if ss.conn != nil {
		ss.conn.send(wire)
	}
	ss.mu.Unlock()
	s.log.Info("job finished", "origin", ss.origin, "id", jr.reqID, "job", jr.seq, "result", code, "ms", time.Since(started).Milliseconds())
	if idle {
		s.dropSession(ss)
	}
}

// safeRun runs the job; a panicking runner ends the job with internal, not
// the agent.
func (s *Server) safeRun(ctx context.Context, seq uint64, job *runner.Job, progress func(runner.Progress)) (res runner.Result) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("runner panicked", "job", seq, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res = runner.Result{Err: &api.JobError{Code: api.CodeInternal, Message: "the runner failed unexpectedly"}}
		}
	}()
	return s.deps.Runner.Run(ctx, job, progress)
}

// toWire turns a runner result into the wire result, enforcing that secrets
// go only to outputs the job declared secret.
func toWire(reqID string, job *runner.Job, res *runner.Result) *api.Result {
	w := &api.Result{Type: api.TypeResult, ID: reqID}
	if res.Err != nil {
		e := *res.Err
		w.Error = &e
		return w
	}
	for name := range res.Secrets {
		if !isSecretOutput(job, name) {
			w.Error = &api.JobError{Code: api.CodeSecretOutput, Message: "the job produced a secret for output " + strconv.Quote(name) + ", which the job did not declare secret; the result is withheld"}
			return w
		}
	}
	w.OK = true
	w.Fields = res.Fields
	if len(res.Secrets) > 0 {
		w.Secrets = make(map[string]string, len(res.Secrets))
		for k, v := range res.Secrets {
			w.Secrets[k] = v.Reveal() // declared secret output: leaves on purpose
		}
	}
	return w
}

func wipe(job *runner.Job, res *runner.Result) {
	for k, v := range job.Fields {
		v.Wipe()
		delete(job.Fields, k)
	}
	for k, v := range res.Secrets {
		v.Wipe()
		delete(res.Secrets, k)
	}
}

// portalIssuer is issuer.Issuer over the session that sent the job: each
// request goes to the portal as a request event and waits for its answer.
type portalIssuer struct {
	s  *Server
	ss *session
	jr *jobRun
}

// Issue implements issuer.Issuer.
func (p portalIssuer) Issue(ctx context.Context, req issuer.Request) ([]byte, [][]byte, error) {
	return p.s.issue(ctx, p.ss, p.jr, req)
}

// issue sends a request event to the session and waits for the answer.
func (s *Server) issue(ctx context.Context, ss *session, jr *jobRun, req issuer.Request) ([]byte, [][]byte, error) {
	jr.mu.Lock()
	jr.nextReq++
	rid := strconv.Itoa(jr.nextReq)
	p := &pendingRequest{ch: make(chan *api.Answer, 1), msg: api.Request{Type: api.TypeRequest, ID: jr.reqID, Request: rid,
		Application: req.Application, Template: req.Template, CSR: base64.StdEncoding.EncodeToString(req.CSR)}}
	jr.requests[rid] = p
	jr.mu.Unlock()
	defer func() {
		jr.mu.Lock()
		delete(jr.requests, rid)
		jr.mu.Unlock()
	}()
	ss.send(&p.msg)
	t := time.NewTimer(s.cfg.IssueTimeout)
	defer t.Stop()
	var a *api.Answer
	select {
	case a = <-p.ch:
	case <-ctx.Done():
		return nil, nil, &api.JobError{Code: api.CodeCancelled, Message: "job cancelled while waiting for the certificate", Step: "request"}
	case <-t.C:
		return nil, nil, &api.JobError{Code: api.CodeIssuerError, Message: "the portal did not answer the certificate request in time", Step: "request"}
	}
	return decodeAnswer(a, req.Application)
}

// decodeAnswer returns the certificate and chain of an answer (DER). A
// PKCS#12 answer (a server-generated key) is refused: the runner generates
// every key on the card.
func decodeAnswer(a *api.Answer, app string) ([]byte, [][]byte, error) {
	ierr := func(msg string) error {
		return &api.JobError{Code: api.CodeIssuerError, Message: msg, Step: "request"}
	}
	if a.Error != "" {
		return nil, nil, ierr("the portal could not issue the certificate: " + truncate(a.Error, 300))
	}
	if a.PKCS12 != "" {
		return nil, nil, ierr("the portal answered the request of Application_" + app + " with a PKCS#12; this job generates its key on the card and needs a certificate")
	}
	if a.Certificate == "" {
		return nil, nil, ierr("the answer has neither certificate nor pkcs12")
	}
	parse := func(s string) ([]byte, error) {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, ierr("certificate is not base64")
		}
		if _, err := x509.ParseCertificate(der); err != nil {
			return nil, ierr("parsing the issued certificate: " + err.Error())
		}
		return der, nil
	}
	cert, err := parse(a.Certificate)
	if err != nil {
		return nil, nil, err
	}
	var chain [][]byte
	for _, c := range a.Chain {
		der, err := parse(c)
		if err != nil {
			return nil, nil, err
		}
		chain = append(chain, der)
	}
	return cert, chain, nil
}

func (c *conn) onCancel(id string, raw []byte) {
	var m api.Cancel
	if !decode(c, id, raw, &m) {
		return
	}
	jr := c.job(m.Job)
	if jr == nil {
		c.fail(id, api.CodeUnknownJob, "no running job "+strconv.Quote(m.Job))
		return
	}
	jr.cancel()
	c.send(&api.OK{Type: api.TypeOK, ID: id})
}

func (c *conn) job(reqID string) *jobRun {
	c.mu.Lock()
	ss := c.sess
	c.mu.Unlock()
	if ss == nil {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.jobs[reqID]
}

func (c *conn) onAck(id string, raw []byte) {
	var m api.Ack
	if !decode(c, id, raw, &m) {
		return
	}
	c.mu.Lock()
	ss := c.sess
	c.mu.Unlock()
	if ss == nil {
		c.fail(id, api.CodeBadRequest, "send hello first")
		return
	}
	if err := c.s.deps.Journal.Ack(ss.origin, ss.id, m.Job); err != nil {
		if errors.Is(err, ErrUnknownJob) {
			c.fail(id, api.CodeUnknownJob, "no finished, unacknowledged job "+strconv.Quote(m.Job))
			return
		}
		c.s.log.Error("journaling ack", "err", err)
		c.fail(id, api.CodeInternal, "journal unavailable")
		return
	}
	c.send(&api.OK{Type: api.TypeOK, ID: id})
}

func (c *conn) onAnswer(id string, raw []byte) {
	var m api.Answer
	if !decode(c, id, raw, &m) {
		return
	}
	jr := c.job(m.Job)
	if jr == nil {
		c.fail(id, api.CodeUnknownJob, "no running job "+strconv.Quote(m.Job))
		return
	}
	jr.mu.Lock()
	p := jr.requests[m.Request]
	if p != nil {
		delete(jr.requests, m.Request)
	}
	jr.mu.Unlock()
	if p == nil {
		c.fail(id, api.CodeUnknownJob, "job "+strconv.Quote(m.Job)+" has no open request "+strconv.Quote(m.Request))
		return
	}
	p.ch <- &m
	c.send(&api.OK{Type: api.TypeOK, ID: id})
}

var _ = slog.LevelInfo
