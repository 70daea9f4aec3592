// Package link is the pipe between the agent and its GUI process
// (docs/gui.md, "Process model"): the agent starts the GUI as a child
// process and talks to it over the child's standard input and output, one
// JSON message a line. The agent side is a Supervisor: it is the agent's
// Prompter, PadShower and Approver, restarts a GUI that died, and answers
// prompt_unavailable while none runs, so the agent outlives the GUI
// (spec/gui.md property 1). The GUI side is a Client.
//
// PINs cross this pipe — not a listening socket (property 2) — as bytes,
// and both ends wipe the buffers that held them. Nothing here imports Fyne:
// a nogui build links the Supervisor and runs without a GUI.
package link

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/prompt"
)

// Message types. Agent to GUI: info, state, ask, pad, pair, withdraw,
// done, raise. GUI to agent: hello, answer, pad_cancel, pair_answer,
// remove_site, quit.
const (
	TInfo       = "info"     // Info, once after hello
	TState      = "state"    // State, after hello and on every change
	TAsk        = "ask"      // open a PIN window: ID, Req, Timeout
	TPad        = "pad"      // open a PIN-pad window: ID, Req, Timeout
	TPair       = "pair"     // open a pairing window: ID, Origin, Code, Timeout
	TWithdraw   = "withdraw" // close window ID without an answer
	TDone       = "done"     // the outcome of a GUI request ID (Err)
	TRaise      = "raise"    // show the app's window in front ('cardwright open')
	THello      = "hello"
	TAnswer     = "answer"      // ID, PIN, Current, or Refused
	TPadCancel  = "pad_cancel"  // ID
	TPairAnswer = "pair_answer" // ID, Allow
	TRemoveSite = "remove_site" // ID, Origin
	TQuit       = "quit"
)

// Info is what the GUI shows of its agent beyond State (Settings, About).
type Info struct {
	Version    string
	ConfigPath string   // the configuration file the agent read ("" none)
	ConfigErrs []string // its problems, one line each
	LogPath    string   // where the agent logs ("" standard error)
	Language   string   // the GUI's language (en, de, sv)
	Notify     bool     // desktop notifications for finished jobs
}

// Message is one line on the link. Fields are set by type (see the T
// constants); PIN and Current travel base64-encoded.
type Message struct {
	T       string          `json:"t"`
	ID      uint64          `json:"id,omitempty"`
	Req     *prompt.Request `json:"req,omitempty"`
	Timeout time.Duration   `json:"timeout,omitempty"`
	Origin  string          `json:"origin,omitempty"`
	Code    string          `json:"code,omitempty"`
	State   *agent.State    `json:"state,omitempty"`
	Info    *Info           `json:"info,omitempty"`
	PIN     []byte          `json:"pin,omitempty"`
	Current []byte          `json:"current,omitempty"`
	Refused bool            `json:"refused,omitempty"`
	Allow   bool            `json:"allow,omitempty"`
	Err     string          `json:"err,omitempty"`
}

// wipe clears the secret fields.
func (m *Message) wipe() {
	clear(m.PIN)
	clear(m.Current)
	m.PIN, m.Current = nil, nil
}

// maxLine bounds a message (a state with many readers and sites fits
// easily); a longer line ends the link.
const maxLine = 1 << 20

// conn reads and writes messages on a pair of pipes.
//
// It reads lines into a buffer of its own rather than with bufio.Scanner,
// whose buffer keeps stale copies of a line it moved to the front (and of
// a whole buffer it outgrew), out of reach of a wipe. Here every byte of
// buf outside buf[start:end] — the bytes read and not yet returned — is
// zero.
type conn struct {
	r          io.Reader
	buf        []byte
	start, end int
	rerr       error // the reader's error, returned once buf holds no line

	wmu sync.Mutex
	w   io.Writer
}

func newConn(r io.Reader, w io.Writer) *conn {
	return &conn{r: r, w: w, buf: make([]byte, 64<<10)}
}

// errLineTooLong ends a link whose peer sent a line over maxLine.
var errLineTooLong = fmt.Errorf("link: a message longer than %d bytes", maxLine)

// readLine returns the next line without its newline. The caller wipes
// it; it stays valid until the next call.
func (c *conn) readLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(c.buf[c.start:c.end], '\n'); i >= 0 {
			line := c.buf[c.start : c.start+i+1]
			c.start += i + 1
			line[i] = 0
			return line[:i], nil
		}
		if c.rerr != nil {
			err := c.rerr
			if err == io.EOF && c.end > c.start {
				err = io.ErrUnexpectedEOF // a cut line is no message
			}
			clear(c.buf[c.start:c.end])
			c.start, c.end = 0, 0
			return nil, err
		}
		if c.start > 0 { // move the partial line to the front, wiping where it was
			n := copy(c.buf, c.buf[c.start:c.end])
			clear(c.buf[n:c.end])
			c.start, c.end = 0, n
		}
		if c.end == len(c.buf) {
			if len(c.buf) >= maxLine {
				clear(c.buf)
				c.end = 0
				c.rerr = errLineTooLong
				return nil, c.rerr
			}
			nb := make([]byte, min(2*len(c.buf), maxLine))
			copy(nb, c.buf[:c.end])
			clear(c.buf)
			c.buf = nb
		}
		n, err := c.r.Read(c.buf[c.end:])
		c.end += n
		if err != nil {
			c.rerr = err
		}
	}
}

// read returns the next message. The line it was decoded from is wiped:
// it may have held a PIN.
func (c *conn) read() (*Message, error) {
	line, err := c.readLine()
	if err != nil {
		return nil, err
	}
	defer clear(line)
	m := new(Message)
	if err := json.Unmarshal(line, m); err != nil {
		m.wipe()
		return nil, fmt.Errorf("link: bad message: %w", err)
	}
	if m.T == "" {
		m.wipe()
		return nil, errors.New("link: message without type")
	}
	return m, nil
}

// write sends m; the encoded line is wiped after the write. The secret
// fields are encoded here, not by encoding/json, which would leave their
// base64 in its pooled buffers.
func (c *conn) write(m *Message) error {
	pub := *m
	pub.PIN, pub.Current = nil, nil
	b, err := json.Marshal(&pub)
	if err != nil {
		return err
	}
	if len(m.PIN) > 0 || len(m.Current) > 0 {
		b = appendSecrets(b, m.PIN, m.Current)
	}
	b = append(b, '\n')
	defer clear(b)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err = c.w.Write(b)
	return err
}

// appendSecrets puts "pin" and "current" (base64, as encoding/json would)
// before the closing brace of the JSON object obj, in a new slice sized so
// that no partial copy is left behind by a growing append.
func appendSecrets(obj, pin, current []byte) []byte {
	size := len(obj) + 1 // and the newline write adds
	for _, f := range [][]byte{pin, current} {
		if len(f) > 0 {
			size += len(`,"current":""`) + base64.StdEncoding.EncodedLen(len(f))
		}
	}
	out := make([]byte, 0, size)
	out = append(out, obj[:len(obj)-1]...)
	for _, f := range []struct {
		key string
		v   []byte
	}{{"pin", pin}, {"current", current}} {
		if len(f.v) == 0 {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, f.key...)
		out = append(out, `":"`...)
		out = base64.StdEncoding.AppendEncode(out, f.v)
		out = append(out, '"')
	}
	return append(out, '}')
}
