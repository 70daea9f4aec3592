package link

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/prompt"
)

// Handler is the GUI's side of the messages. Its methods are called one at
// a time on the Client's reading goroutine; a Fyne GUI moves the work to
// its own goroutine with fyne.Do.
type Handler interface {
	Info(Info)
	State(agent.State)
	Ask(id uint64, r prompt.Request, timeout time.Duration)
	Pad(id uint64, r prompt.Request, timeout time.Duration)
	Pair(id uint64, origin, code string, timeout time.Duration)
	Withdraw(id uint64) // close the window of request id without answering
	Raise()             // show the app's status window in front
}

// Client is the GUI process's end of the link (its standard input and
// output).
type Client struct {
	c *conn

	mu     sync.Mutex
	nextID uint64
	done   map[uint64]chan string // remove_site waiting for its outcome
}

// NewClient is a Client reading r (the GUI's standard input) and writing w
// (its standard output). It says nothing yet: Run says hello, so the GUI
// calls Run once it can show windows, and a GUI that dies while starting
// (Fyne ends the process when it cannot open the display) is never
// counted as up. The error is always nil.
func NewClient(r io.Reader, w io.Writer) (*Client, error) {
	return &Client{c: newConn(r, w), done: map[uint64]chan string{}}, nil
}

// Run says hello — the agent counts the GUI as up from then on — and
// delivers the agent's messages to h until the agent closes the link
// (io.EOF: the GUI should quit) or it breaks.
func (c *Client) Run(h Handler) error {
	if err := c.c.write(&Message{T: THello}); err != nil {
		return err
	}
	for {
		m, err := c.c.read()
		if err != nil {
			return err
		}
		switch m.T {
		case TInfo:
			if m.Info != nil {
				h.Info(*m.Info)
			}
		case TState:
			if m.State != nil {
				h.State(*m.State)
			}
		case TAsk, TPad:
			if m.Req == nil {
				return fmt.Errorf("link: %s without a request", m.T)
			}
			if m.T == TAsk {
				h.Ask(m.ID, *m.Req, m.Timeout)
			} else {
				h.Pad(m.ID, *m.Req, m.Timeout)
			}
		case TPair:
			h.Pair(m.ID, m.Origin, m.Code, m.Timeout)
		case TWithdraw:
			h.Withdraw(m.ID)
		case TRaise:
			h.Raise()
		case TDone:
			c.mu.Lock()
			ch := c.done[m.ID]
			delete(c.done, m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- m.Err
			}
		}
	}
}

// Answer sends the PIN window's answer to request id and wipes a.
func (c *Client) Answer(id uint64, a prompt.Answer) error {
	defer a.Wipe()
	m := &Message{T: TAnswer, ID: id, PIN: a.PIN.Bytes(), Current: a.Current.Bytes()}
	return c.c.write(m)
}

// Refuse answers request id as cancelled by the user.
func (c *Client) Refuse(id uint64) error {
	return c.c.write(&Message{T: TAnswer, ID: id, Refused: true})
}

// PadCancel tells the agent the user cancelled the PIN-pad window id.
func (c *Client) PadCancel(id uint64) error {
	return c.c.write(&Message{T: TPadCancel, ID: id})
}

// PairAnswer answers pairing request id.
func (c *Client) PairAnswer(id uint64, allow bool) error {
	return c.c.write(&Message{T: TPairAnswer, ID: id, Allow: allow})
}

// RemoveSite asks the agent to remove a paired origin and waits for the
// outcome (the agent's error text, as an error).
func (c *Client) RemoveSite(origin string) error {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan string, 1)
	c.done[id] = ch
	c.mu.Unlock()
	if err := c.c.write(&Message{T: TRemoveSite, ID: id, Origin: origin}); err != nil {
		return err
	}
	select {
	case e := <-ch:
		if e != "" {
			return fmt.Errorf("%s", e)
		}
		return nil
	case <-time.After(10 * time.Second):
		c.mu.Lock()
		delete(c.done, id)
		c.mu.Unlock()
		return fmt.Errorf("the agent did not answer")
	}
}

// Quit asks the agent to end the desktop mode.
func (c *Client) Quit() error { return c.c.write(&Message{T: TQuit}) }
