package link

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"sync"
	"time"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/secret"
)

// Agent is what the Supervisor needs of the agent (agent.Server has it).
type Agent interface {
	State(ctx context.Context) agent.State
	StateChanges() (changes <-chan struct{}, stop func())
	RemoveSite(origin string) error
}

// Supervisor runs the GUI process and is the agent's Prompter, PadShower
// and Approver. While no GUI runs (not started yet, no display, crashed,
// killed) every request fails at once with prompt.ErrUnavailable; the GUI
// is started again after a pause that grows while it keeps failing.
type Supervisor struct {
	// Command makes the GUI process's command (a fresh one per start); its
	// Stdin and Stdout are the link's, its Stderr the Supervisor sets to
	// the log when nil.
	Command func() *exec.Cmd
	Agent   Agent
	Info    Info
	Log     *slog.Logger
	// Quit is called when the user quits from the GUI.
	Quit func()
	// PINTimeout is how long a PIN window waits (default 2 minutes); the
	// GUI shows the countdown and answers refused at its end.
	PINTimeout time.Duration
	// Restart is the first pause before starting a GUI that ended again
	// (default 1 s, doubling to at most MaxRestart, default 30 s).
	Restart, MaxRestart time.Duration

	mu      sync.Mutex
	cur     *conn                    // nil while no GUI is up
	gen     int                      // which start cur belongs to
	nextID  uint64                   // request ids
	pending map[uint64]chan *Message // open requests of cur
	upCh    chan struct{}            // closed when a GUI said hello; replaced when it ends
}

// errGone is what pending requests get when the GUI ends.
var errGone = fmt.Errorf("the desktop app ended: %w", prompt.ErrUnavailable)

// Up reports whether a GUI is running and has said hello.
func (s *Supervisor) Up() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur != nil
}

// WaitUp waits until a GUI is up or ctx ends.
func (s *Supervisor) WaitUp(ctx context.Context) error {
	s.mu.Lock()
	s.init()
	ch := s.upCh
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Supervisor) init() {
	if s.upCh == nil {
		s.upCh = make(chan struct{})
		s.pending = map[uint64]chan *Message{}
	}
}

// Run starts the GUI and starts it again whenever it ends, until ctx ends
// (then the GUI is stopped: its standard input closes and it quits).
func (s *Supervisor) Run(ctx context.Context) {
	pause := s.Restart
	if pause <= 0 {
		pause = time.Second
	}
	maxPause := s.MaxRestart
	if maxPause <= 0 {
		maxPause = 30 * time.Second
	}
	for ctx.Err() == nil {
		started := time.Now()
		err := s.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			pause = s.Restart // it ran well: the next failure is new
			if pause <= 0 {
				pause = time.Second
			}
		}
		s.Log.Warn("desktop app ended; PIN and pairing dialogs are unavailable until it is back", "err", err, "restart_in", pause.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, maxPause)
	}
}

// runOnce runs one GUI process to its end.
func (s *Supervisor) runOnce(ctx context.Context) error {
	cmd := s.Command()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr *logWriter
	if cmd.Stderr == nil {
		stderr = &logWriter{log: s.Log}
		cmd.Stderr = stderr
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the desktop app: %w", err)
	}
	c := newConn(stdout, stdin)
	stopped := make(chan struct{})
	go func() { // ctx ends: close the GUI's input; it quits on EOF
		select {
		case <-ctx.Done():
			stdin.Close()
			select {
			case <-stopped:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
			}
		case <-stopped:
		}
	}()
	rerr := s.serve(ctx, c)
	stdin.Close()
	werr := cmd.Wait()
	close(stopped)
	if stderr != nil {
		stderr.flush()
	}
	if rerr == nil || errors.Is(rerr, io.EOF) {
		rerr = werr
	}
	return rerr
}

// serve reads the GUI's messages until it ends.
func (s *Supervisor) serve(ctx context.Context, c *conn) error {
	m, err := c.read()
	if err != nil {
		return err
	}
	if m.T != THello {
		return fmt.Errorf("link: first message %q, want hello", m.T)
	}
	s.mu.Lock()
	s.init()
	s.cur, s.gen = c, s.gen+1
	gen := s.gen
	close(s.upCh)
	s.mu.Unlock()
	s.Log.Info("desktop app ready")
	defer s.down(gen)

	info := s.Info
	if err := c.write(&Message{T: TInfo, Info: &info}); err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go s.pushState(sctx, c)

	for {
		m, err := c.read()
		if err != nil {
			return err
		}
		switch m.T {
		case TAnswer, TPairAnswer, TPadCancel:
			// Delivered under the lock (the send does not block): once a
			// request is forgotten no answer can reach its channel, so
			// the one that did can be wiped (drain).
			s.mu.Lock()
			select {
			case s.pending[m.ID] <- m: // a nil channel (withdrawn, unknown) is never ready
			default:
				m.wipe() // a late answer to a withdrawn request
			}
			s.mu.Unlock()
		case TRemoveSite:
			done := &Message{T: TDone, ID: m.ID}
			if err := s.Agent.RemoveSite(m.Origin); err != nil {
				done.Err = err.Error()
			}
			if err := c.write(done); err != nil {
				return err
			}
		case TQuit:
			s.Log.Info("quit from the desktop app")
			if s.Quit != nil {
				s.Quit()
			}
		default:
			s.Log.Warn("link: unknown message from the desktop app", "type", m.T)
		}
	}
}

// down forgets GUI generation gen: its pending requests fail with
// prompt.ErrUnavailable.
func (s *Supervisor) down(gen int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen || s.cur == nil {
		return
	}
	s.cur = nil
	s.upCh = make(chan struct{})
	for id, ch := range s.pending {
		close(ch)
		delete(s.pending, id)
	}
}

// pushState sends the agent's state now and after every change.
func (s *Supervisor) pushState(ctx context.Context, c *conn) {
	changes, stop := s.Agent.StateChanges()
	defer stop()
	for {
		st := s.Agent.State(ctx)
		if err := c.write(&Message{T: TState, State: &st}); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changes:
		}
	}
}

// request sends m to the current GUI and returns the channel its answer
// arrives on (closed if the GUI ends) and a function that forgets it.
func (s *Supervisor) request(m *Message) (<-chan *Message, func(withdraw bool), error) {
	s.mu.Lock()
	s.init()
	c := s.cur
	if c == nil {
		s.mu.Unlock()
		return nil, nil, fmt.Errorf("the desktop app is not running: %w", prompt.ErrUnavailable)
	}
	s.nextID++
	id := s.nextID
	ch := make(chan *Message, 1)
	s.pending[id] = ch
	s.mu.Unlock()
	m.ID = id
	forget := func(withdraw bool) {
		s.mu.Lock()
		_, open := s.pending[id]
		delete(s.pending, id)
		cur := s.cur
		s.mu.Unlock()
		if withdraw && open && cur == c {
			c.write(&Message{T: TWithdraw, ID: id})
		}
	}
	if err := c.write(m); err != nil {
		forget(false)
		return nil, nil, fmt.Errorf("the desktop app is not reachable: %w: %w", prompt.ErrUnavailable, err)
	}
	return ch, forget, nil
}

// Ask implements prompt.Prompter: the PIN window of the desktop app.
func (s *Supervisor) Ask(ctx context.Context, r prompt.Request) (prompt.Answer, error) {
	timeout := s.PINTimeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ch, forget, err := s.request(&Message{T: TAsk, Req: &r, Timeout: timeout})
	if err != nil {
		return prompt.Answer{}, err
	}
	// The GUI answers refused at its countdown's end; the agent's own
	// deadline is a little later, for a GUI that hangs.
	t := time.NewTimer(timeout + 5*time.Second)
	defer t.Stop()
	select {
	case m, ok := <-ch:
		forget(false)
		if !ok {
			return prompt.Answer{}, errGone
		}
		defer m.wipe()
		if m.Refused || m.T != TAnswer {
			return prompt.Answer{}, prompt.ErrRefused
		}
		return prompt.Answer{PIN: secret.FromBytes(m.PIN), Current: secret.FromBytes(m.Current)}, nil
	case <-ctx.Done():
		forget(true)
		drain(ch)
		return prompt.Answer{}, ctx.Err()
	case <-t.C:
		forget(true)
		drain(ch)
		return prompt.Answer{}, fmt.Errorf("%w: the PIN window did not answer in time", prompt.ErrRefused)
	}
}

// drain wipes an answer that arrived on ch of a forgotten request while
// the request ended otherwise.
func drain(ch <-chan *Message) {
	select {
	case m, ok := <-ch:
		if ok {
			m.wipe()
		}
	default:
	}
}

// ShowPad implements prompt.PadShower: the PIN-pad window, whose Cancel
// calls cancel. Without a GUI nothing is shown (the pad works all the
// same).
func (s *Supervisor) ShowPad(r prompt.Request, cancel func()) (done func()) {
	timeout := s.PINTimeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ch, forget, err := s.request(&Message{T: TPad, Req: &r, Timeout: timeout})
	if err != nil {
		return func() {}
	}
	stop := make(chan struct{})
	go func() {
		select {
		case m, ok := <-ch:
			if ok && m.T == TPadCancel {
				cancel()
			}
		case <-stop:
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			forget(true)
		})
	}
}

// Raise implements agent.Raiser: the desktop app shows its status window
// in front ('cardwright open', the cardwright: URI). Without a GUI it
// fails with prompt.ErrUnavailable.
func (s *Supervisor) Raise() error {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c == nil {
		return fmt.Errorf("the desktop app is not running: %w", prompt.ErrUnavailable)
	}
	if err := c.write(&Message{T: TRaise}); err != nil {
		return fmt.Errorf("the desktop app is not reachable: %w: %w", prompt.ErrUnavailable, err)
	}
	return nil
}

// Approve implements agent.Approver: the pairing window. The window's
// countdown is what remains of ctx's deadline.
func (s *Supervisor) Approve(ctx context.Context, origin, code string) (bool, error) {
	timeout := time.Minute
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	ch, forget, err := s.request(&Message{T: TPair, Origin: origin, Code: code, Timeout: timeout})
	if err != nil {
		return false, err
	}
	select {
	case m, ok := <-ch:
		forget(false)
		if !ok {
			return false, errGone
		}
		return m.T == TPairAnswer && m.Allow, nil
	case <-ctx.Done():
		forget(true)
		return false, ctx.Err()
	}
}

// logWriter sends the GUI process's standard error to the agent's log, a
// line a record. A line may come in several writes (a Go panic's trace
// does): what follows the last newline waits for the rest of its line, or
// for flush.
type logWriter struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

// maxLogLine is where a line without an end is logged all the same.
const maxLogLine = 4096

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.log.Info("desktop app", "stderr", string(w.buf[:i]))
		w.buf = w.buf[:copy(w.buf, w.buf[i+1:])]
	}
	if len(w.buf) >= maxLogLine {
		w.log.Info("desktop app", "stderr", string(w.buf))
		w.buf = w.buf[:0]
	}
	return len(b), nil
}

// flush logs a last line that had no newline.
func (w *logWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.log.Info("desktop app", "stderr", string(w.buf))
		w.buf = w.buf[:0]
	}
}
