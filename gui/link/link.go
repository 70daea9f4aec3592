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
	"bufio"
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
// done. GUI to agent: hello, answer, pad_cancel, pair_answer,
// remove_site, quit.
const (
	TInfo       = "info"     // Info, once after hello
	TState      = "state"    // State, after hello and on every change
	TAsk        = "ask"      // open a PIN window: ID, Req, Timeout
	TPad        = "pad"      // open a PIN-pad window: ID, Req, Timeout
	TPair       = "pair"     // open a pairing window: ID, Origin, Code, Timeout
	TWithdraw   = "withdraw" // close window ID without an answer
	TDone       = "done"     // the outcome of a GUI request ID (Err)
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
type conn struct {
	sc  *bufio.Scanner
	buf []byte
	wmu sync.Mutex
	w   io.Writer
}

func newConn(r io.Reader, w io.Writer) *conn {
	c := &conn{w: w, buf: make([]byte, 64<<10)}
	c.sc = bufio.NewScanner(r)
	c.sc.Buffer(c.buf, maxLine)
	return c
}

// read returns the next message. The line it was decoded from is wiped:
// it may have held a PIN.
func (c *conn) read() (*Message, error) {
	if !c.sc.Scan() {
		if err := c.sc.Err(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	line := c.sc.Bytes()
	defer clear(line)
	m := new(Message)
	if err := json.Unmarshal(line, m); err != nil {
		return nil, fmt.Errorf("link: bad message: %w", err)
	}
	if m.T == "" {
		return nil, errors.New("link: message without type")
	}
	return m, nil
}

// write sends m; the encoded line is wiped after the write.
func (c *conn) write(m *Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	defer clear(b)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err = c.w.Write(b)
	return err
}
