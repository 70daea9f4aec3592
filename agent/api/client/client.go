// Package client is a Go client of the agent's WebSocket protocol
// (docs/protocol.md), used by the tests, the benchmarks and the tray GUI.
// It lives apart from package api so that api stays stdlib-only; the
// WebSocket itself is gorilla/websocket.
package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cardwright/cardwright/agent/api"
)

// Options configure Dial.
type Options struct {
	Origin    string      // sent as the Origin header; empty for a local program
	Session   string      // resume this session (from an earlier Welcome)
	Versions  []int       // default {api.ProtocolVersion}
	TLS       *tls.Config // for wss://
	Header    http.Header // extra handshake headers
	ClientTag string      // hello's client field
	// Trace, when set, sees every text frame: sent true for frames the
	// client writes (tests validate them against agent/api/schema).
	Trace func(sent bool, frame []byte)
}

// Client is one connection to the agent. Its methods are safe for
// concurrent use.
type Client struct {
	ws      *websocket.Conn
	Welcome api.Welcome

	wmu     sync.Mutex
	mu      sync.Mutex
	replies map[string]chan reply
	jobs    map[string]*Job
	subs    map[string]chan any
	err     error
	done    chan struct{}
	orphans chan *api.Result

	prefix string
	seq    atomic.Uint64
	trace  func(sent bool, frame []byte)
}

type reply struct {
	typ string
	raw []byte
}

// Error is an error reply from the agent.
type Error struct {
	Code    api.Code
	Message string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Dial connects to url (ws://127.0.0.1:27140/v1/ws) and says hello. The
// agent's welcome is in c.Welcome; results of earlier jobs of the session
// that were not acknowledged arrive on Redelivered.
func Dial(ctx context.Context, url string, o Options) (*Client, error) {
	d := websocket.Dialer{TLSClientConfig: o.TLS}
	h := http.Header{}
	for k, v := range o.Header {
		h[k] = v
	}
	if o.Origin != "" {
		h.Set("Origin", o.Origin)
	}
	ws, resp, err := d.DialContext(ctx, url, h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("connecting to %s: %w (HTTP %d)", url, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("connecting to %s: %w", url, err)
	}
	pb := make([]byte, 6)
	rand.Read(pb)
	c := &Client{ws: ws, trace: o.Trace, replies: map[string]chan reply{}, jobs: map[string]*Job{}, subs: map[string]chan any{},
		done: make(chan struct{}), orphans: make(chan *api.Result, 1024), prefix: base64.RawURLEncoding.EncodeToString(pb)}
	go c.readLoop()
	versions := o.Versions
	if versions == nil {
		versions = []int{api.ProtocolVersion}
	}
	var w api.Welcome
	if err := c.call(ctx, &api.Hello{Type: api.TypeHello, ID: c.NewID(), Versions: versions, Session: o.Session, Client: o.ClientTag}, &w); err != nil {
		ws.Close()
		return nil, fmt.Errorf("saying hello: %w", err)
	}
	c.Welcome = w
	return c, nil
}

// NewID returns a request id unique to this client.
func (c *Client) NewID() string {
	return c.prefix + "-" + strconv.FormatUint(c.seq.Add(1), 10)
}

// Close closes the connection.
func (c *Client) Close() error {
	c.wmu.Lock()
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	return c.ws.Close()
}

// Done is closed when the connection ends; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is the reason the connection ended (a *websocket.CloseError when the
// agent closed it with a code and reason).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Redelivered carries results that belong to no job handle of this client:
// results of an earlier connection of the session, delivered again until
// acknowledged.
func (c *Client) Redelivered() <-chan *api.Result { return c.orphans }

// Send writes one raw message (for tests of malformed input).
func (c *Client) Send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding message: %w", err)
	}
	return c.SendRaw(b)
}

// SendRaw writes one text frame as is.
func (c *Client) SendRaw(b []byte) error {
	if c.trace != nil {
		c.trace(true, b)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

func (c *Client) readLoop() {
	defer close(c.done)
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			c.mu.Lock()
			c.err = err
			for _, j := range c.jobs {
				j.fail(err)
			}
			c.mu.Unlock()
			return
		}
		if c.trace != nil {
			c.trace(false, b)
		}
		var env api.Envelope
		if json.Unmarshal(b, &env) != nil {
			continue
		}
		c.route(env, b)
	}
}

func (c *Client) route(env api.Envelope, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch env.Type {
	case api.TypeProgress, api.TypePrompt, api.TypeRequest, api.TypeResult:
		if j := c.jobs[env.ID]; j != nil {
			ev, err := decodeEvent(env.Type, b)
			if err == nil {
				j.push(ev)
			}
			if env.Type == api.TypeResult {
				delete(c.jobs, env.ID)
			}
			return
		}
		if env.Type == api.TypeResult {
			var r api.Result
			if json.Unmarshal(b, &r) == nil {
				select {
				case c.orphans <- &r:
				default:
				}
			}
		}
		return
	case api.TypeReaderEvent, api.TypeCardEvent:
		if ch := c.subs[env.ID]; ch != nil {
			ev, err := decodeEvent(env.Type, b)
			if err == nil {
				select {
				case ch <- ev:
				default:
				}
			}
		}
		return
	case api.TypePaired:
		if ch := c.replies[env.ID]; ch != nil {
			delete(c.replies, env.ID)
			ch <- reply{env.Type, b}
		}
		return
	}
	if ch := c.replies[env.ID]; ch != nil {
		if env.Type != api.TypePairing { // pair: the final answer is paired or error
			delete(c.replies, env.ID)
		}
		ch <- reply{env.Type, b}
		return
	}
	if env.Type == api.TypeError {
		// An error for a job handle (refused job) or without id.
		if j := c.jobs[env.ID]; j != nil {
			var e api.Error
			json.Unmarshal(b, &e)
			j.fail(&Error{Code: e.Code, Message: e.Message})
			delete(c.jobs, env.ID)
		}
	}
}

func decodeEvent(typ string, b []byte) (any, error) {
	var v any
	switch typ {
	case api.TypeProgress:
		v = &api.Progress{}
	case api.TypePrompt:
		v = &api.Prompt{}
	case api.TypeRequest:
		v = &api.Request{}
	case api.TypeResult:
		v = &api.Result{}
	case api.TypeReaderEvent:
		v = &api.ReaderEvent{}
	case api.TypeCardEvent:
		v = &api.CardEvent{}
	default:
		return nil, errors.New("not an event")
	}
	return v, json.Unmarshal(b, v)
}

// call sends msg (whose ID is its request id) and decodes the reply into
// out; an error reply becomes *Error.
func (c *Client) call(ctx context.Context, msg any, out any) error {
	id := idOf(msg)
	ch := make(chan reply, 2)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.replies[id] = ch
	c.mu.Unlock()
	if err := c.Send(msg); err != nil {
		return err
	}
	for {
		var r reply
		select {
		case r = <-ch:
		case <-ctx.Done():
			c.mu.Lock()
			delete(c.replies, id)
			c.mu.Unlock()
			return ctx.Err()
		case <-c.done:
			// The agent may answer and close at once (an error, then the
			// close frame): a reply read before the close still counts.
			select {
			case r = <-ch:
			default:
				return fmt.Errorf("connection closed: %w", c.Err())
			}
		}
		if r.typ == api.TypeError {
			var e api.Error
			json.Unmarshal(r.raw, &e)
			return &Error{Code: e.Code, Message: e.Message}
		}
		if r.typ == api.TypePairing {
			if p, ok := out.(*PairState); ok {
				json.Unmarshal(r.raw, &p.Pairing)
				if p.OnCode != nil {
					p.OnCode(p.Pairing.Code)
				}
			}
			continue
		}
		if out != nil {
			return json.Unmarshal(r.raw, out)
		}
		return nil
	}
}

func idOf(msg any) string {
	b, _ := json.Marshal(msg)
	var env api.Envelope
	json.Unmarshal(b, &env)
	return env.ID
}

// Readers lists the readers.
func (c *Client) Readers(ctx context.Context) ([]api.Reader, error) {
	var l api.ReaderList
	if err := c.call(ctx, &api.Readers{Type: api.TypeReaders, ID: c.NewID()}, &l); err != nil {
		return nil, err
	}
	return l.Readers, nil
}

// Subscribe lists the readers and delivers reader and card events on the
// returned channel until the connection ends.
func (c *Client) Subscribe(ctx context.Context) ([]api.Reader, <-chan any, error) {
	id := c.NewID()
	ch := make(chan any, 64)
	c.mu.Lock()
	c.subs[id] = ch
	c.mu.Unlock()
	t := true
	var l api.ReaderList
	if err := c.call(ctx, &api.Readers{Type: api.TypeReaders, ID: id, Subscribe: &t}, &l); err != nil {
		return nil, nil, err
	}
	return l.Readers, ch, nil
}

// PairState receives the pairing code while Pair waits for approval.
type PairState struct {
	Pairing api.Pairing
	OnCode  func(code string)
}

// Pair asks the local user to approve this origin and waits for the
// answer. onCode (may be nil) gets the code to show.
func (c *Client) Pair(ctx context.Context, onCode func(string)) error {
	st := &PairState{OnCode: onCode}
	return c.call(ctx, &api.Pair{Type: api.TypePair, ID: c.NewID()}, st)
}

// Ack acknowledges a job's result.
func (c *Client) Ack(ctx context.Context, jobID string) error {
	return c.call(ctx, &api.Ack{Type: api.TypeAck, ID: c.NewID(), Job: jobID}, nil)
}

// Cancel asks the agent to cancel a running job.
func (c *Client) Cancel(ctx context.Context, jobID string) error {
	return c.call(ctx, &api.Cancel{Type: api.TypeCancel, ID: c.NewID(), Job: jobID}, nil)
}

// Answer answers a certificate request.
func (c *Client) Answer(ctx context.Context, a *api.Answer) error {
	a.Type = api.TypeAnswer
	if a.ID == "" {
		a.ID = c.NewID()
	}
	return c.call(ctx, a, nil)
}

// Job is a submitted job; its events arrive on Events, the last one being
// the *api.Result.
type Job struct {
	ID     string
	events chan any
	mu     sync.Mutex
	err    error
	closed bool
}

func (j *Job) push(ev any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return
	}
	j.events <- ev // buffered generously; a job has few events
	if _, ok := ev.(*api.Result); ok {
		j.closed = true
		close(j.events)
	}
}

func (j *Job) fail(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return
	}
	j.err = err
	j.closed = true
	close(j.events)
}

// Events delivers *api.Progress, *api.Prompt, *api.Request and finally
// *api.Result; it is closed after the result or when the connection ends
// (Err says why).
func (j *Job) Events() <-chan any { return j.events }

// Err is why Events closed without a result.
func (j *Job) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// Submit sends a job and waits until the agent accepted it.
func (c *Client) Submit(ctx context.Context, job *api.Job) (*Job, error) {
	job.Type = api.TypeJob
	if job.ID == "" {
		job.ID = c.NewID()
	}
	j := &Job{ID: job.ID, events: make(chan any, 4096)}
	c.mu.Lock()
	if c.jobs[job.ID] != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("submitting job: id %q is already in use", job.ID)
	}
	c.jobs[job.ID] = j
	c.mu.Unlock()
	if err := c.call(ctx, job, nil); err != nil {
		c.mu.Lock()
		delete(c.jobs, job.ID)
		c.mu.Unlock()
		return nil, err
	}
	return j, nil
}

// Issuer answers a certificate request (the portal's CA in a real portal).
type Issuer func(ctx context.Context, req *api.Request) *api.Answer

// Run submits a job, answers its certificate requests with issue (nil:
// answer with an error), calls onEvent (may be nil) for every event, and
// returns the result. It does not acknowledge it.
func (c *Client) Run(ctx context.Context, job *api.Job, issue Issuer, onEvent func(any)) (*api.Result, error) {
	j, err := c.Submit(ctx, job)
	if err != nil {
		return nil, err
	}
	for {
		select {
		case ev, ok := <-j.Events():
			if !ok {
				return nil, fmt.Errorf("job %s: %w", j.ID, j.Err())
			}
			if onEvent != nil {
				onEvent(ev)
			}
			switch e := ev.(type) {
			case *api.Result:
				return e, nil
			case *api.Request:
				a := &api.Answer{Error: "no issuer"}
				if issue != nil {
					a = issue(ctx, e)
				}
				a.Job, a.Request = j.ID, e.Request
				go c.Answer(ctx, a)
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Certificates lists the certificates the filter (a certificate filter as
// JSON; nil admits every one) selects.
func (c *Client) Certificates(ctx context.Context, filter json.RawMessage) ([]api.Certificate, error) {
	var l api.CertificateList
	if err := c.call(ctx, &api.Certificates{Type: api.TypeCertificates, ID: c.NewID(), Filter: filter}, &l); err != nil {
		return nil, err
	}
	return l.Certificates, nil
}

// Sign asks for a signature; req's Type and ID are filled in.
func (c *Client) Sign(ctx context.Context, req api.Sign) (*api.Signature, error) {
	req.Type, req.ID = api.TypeSign, c.NewID()
	var s api.Signature
	if err := c.call(ctx, &req, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Authenticate asks for an authentication token over the challenge; req's
// Type and ID are filled in.
func (c *Client) Authenticate(ctx context.Context, req api.Authenticate) (*api.Authentication, error) {
	req.Type, req.ID = api.TypeAuthenticate, c.NewID()
	var a api.Authentication
	if err := c.call(ctx, &req, &a); err != nil {
		return nil, err
	}
	return &a, nil
}
