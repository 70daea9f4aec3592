package agent

// conn.go: one WebSocket connection — the upgrade and its security checks
// (docs/protocol.md, "Security checks"), the read and write loops, limits,
// and the dispatch of frames to their handlers.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/cardwright/cardwright/agent/api"
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
	if c.paired && origin != "" && !s.allowed[origin] {
		c.paired = false // the site was removed since classifyOrigin
	}
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
		s.leavePairing(c)
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
		api.TypeSoftToken:    {fn: (*conn).onSoftToken, needSession: true, needPaired: true},
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

// newRateLimiter allows perSecond messages a second with a burst of twice that.
func newRateLimiter(perSecond int) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(perSecond), 2*perSecond)
}
