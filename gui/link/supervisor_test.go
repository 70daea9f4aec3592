package link

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/secret"
)

// The test binary is also the fake GUI: with LINK_TEST_GUI set, TestMain
// runs a Client on its standard input and output with a scripted Handler
// instead of the tests. What it does with a request is chosen by the
// request (a PIN request's Label, a pairing request's origin host); it
// reports every message it gets on standard error, which the Supervisor
// logs — so the tests read what the GUI saw from the Supervisor's log.
//
//	LINK_TEST_GUI=gui        the Client
//	LINK_TEST_GUI=nodisplay  exit 1 at once, as gui-process does without a display
//	LINK_TEST_GUI=crashstart make the Client, then panic before Run, in pieces,
//	                         as Fyne does when it cannot open the display
//	LINK_TEST_PIN, LINK_TEST_CURRENT  what the PIN window "types"
//	LINK_TEST_ACTIONS        after info, the user's actions: remove:ORIGIN;quit
func TestMain(m *testing.M) {
	switch os.Getenv("LINK_TEST_GUI") {
	case "":
		os.Exit(m.Run())
	case "nodisplay":
		fmt.Fprintln(os.Stderr, "desktop app cannot start: no display: DISPLAY and WAYLAND_DISPLAY are not set")
		os.Exit(1)
	case "gui":
		os.Exit(fakeGUI())
	case "crashstart":
		os.Exit(crashStart())
	}
	os.Exit(3)
}

func fakeGUI() int {
	c, err := NewClient(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake gui:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "fake gui pid=%d\n", os.Getpid())
	err = c.Run(&scripted{c: c})
	fmt.Fprintf(os.Stderr, "fake gui ends: %v\n", err)
	return 0
}

// crashStart is a GUI that dies while it starts: its Client is made, its
// toolkit fails before Run. The panic's trace comes in many small writes,
// the last line without a newline.
func crashStart() int {
	if _, err := NewClient(os.Stdin, os.Stdout); err != nil {
		return 1
	}
	for _, piece := range []string{"panic: ", "NotInitialized: The GLFW library is not initialized\n", "\n", "goroutine ", "1", " [", "running", ", locked to thread]:\n", "last words"} {
		os.Stderr.WriteString(piece)
		time.Sleep(5 * time.Millisecond)
	}
	return 2
}

// scripted is the fake GUI's Handler.
type scripted struct {
	c    *Client
	once sync.Once
}

func (g *scripted) Info(i Info) {
	fmt.Fprintf(os.Stderr, "gui info version=%s lang=%s\n", i.Version, i.Language)
	g.once.Do(func() { go g.act(os.Getenv("LINK_TEST_ACTIONS")) })
}

// act plays the user's actions in the tray and the Sites window.
func (g *scripted) act(actions string) {
	for _, a := range strings.Split(actions, ";") {
		switch {
		case strings.HasPrefix(a, "remove:"):
			origin := strings.TrimPrefix(a, "remove:")
			err := g.c.RemoveSite(origin)
			fmt.Fprintf(os.Stderr, "gui removed %s err=%q\n", origin, errText(err))
		case a == "quit":
			fmt.Fprintf(os.Stderr, "gui quit err=%q\n", errText(g.c.Quit()))
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (g *scripted) State(st agent.State) {
	fmt.Fprintf(os.Stderr, "gui state running=%d sites=%d\n", st.Running, len(st.Sites))
}

func (g *scripted) Ask(id uint64, r prompt.Request, timeout time.Duration) {
	fmt.Fprintf(os.Stderr, "gui ask id=%d kind=%s label=%s origin=%s reader=%q timeout=%s\n", id, r.Kind, r.Label, r.Origin, r.Reader, timeout)
	switch r.Label {
	case "answer":
		a := prompt.Answer{PIN: secret.New(os.Getenv("LINK_TEST_PIN"))}
		if r.Kind == prompt.ThreeFields {
			a.Current = secret.New(os.Getenv("LINK_TEST_CURRENT"))
		}
		g.c.Answer(id, a)
	case "refuse":
		g.c.Refuse(id)
	case "die":
		os.Exit(7) // the GUI crashes with the window open
	case "hang": // the window stays open
	}
}

func (g *scripted) Pad(id uint64, r prompt.Request, timeout time.Duration) {
	fmt.Fprintf(os.Stderr, "gui pad id=%d label=%s timeout=%s\n", id, r.Label, timeout)
	if r.Label == "cancel" {
		g.c.PadCancel(id)
	}
}

func (g *scripted) Pair(id uint64, origin, code string, timeout time.Duration) {
	fmt.Fprintf(os.Stderr, "gui pair id=%d origin=%s code=%s timeout_ms=%d\n", id, origin, code, timeout.Milliseconds())
	u, _ := url.Parse(origin)
	switch u.Hostname() {
	case "allow.example":
		g.c.PairAnswer(id, true)
	case "deny.example":
		g.c.PairAnswer(id, false)
	case "die.example":
		os.Exit(7)
	}
}

func (g *scripted) Withdraw(id uint64) {
	fmt.Fprintf(os.Stderr, "gui withdraw id=%d\n", id)
}

func (g *scripted) Raise() {
	fmt.Fprintln(os.Stderr, "gui raise")
}

// fakeAgent is the Supervisor's Agent.
type fakeAgent struct {
	mu      sync.Mutex
	running int
	removed []string
	subs    []chan struct{}
}

func (a *fakeAgent) State(context.Context) agent.State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return agent.State{Version: "test", Running: a.running, Sites: []agent.Site{{Origin: "https://configured.example", Configured: true}}}
}

func (a *fakeAgent) StateChanges() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	a.mu.Lock()
	a.subs = append(a.subs, ch)
	a.mu.Unlock()
	return ch, func() {}
}

func (a *fakeAgent) setRunning(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.running = n
	for _, ch := range a.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (a *fakeAgent) RemoveSite(origin string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.removed = append(a.removed, origin)
	if origin == "https://configured.example" {
		return fmt.Errorf("removing site %s: %w", origin, agent.ErrSiteConfigured)
	}
	return nil
}

// logBuf is the Supervisor's log.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits until the log holds s at least n times.
func (l *logBuf) waitFor(t *testing.T, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(l.String(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the log holds %q %d times, want %d:\n%s", s, strings.Count(l.String(), s), n, l.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sup is a running Supervisor of the fake GUI.
type sup struct {
	*Supervisor
	log   *logBuf
	agent *fakeAgent
	quits chan struct{}

	mu   sync.Mutex
	cmds []*exec.Cmd // every GUI process started, in order
}

// startSup runs a Supervisor of the fake GUI in mode until the test ends;
// env adds to the GUI's environment. It does not wait for the GUI.
func startSup(t *testing.T, mode string, env ...string) *sup {
	t.Helper()
	s := &sup{log: &logBuf{}, agent: &fakeAgent{}, quits: make(chan struct{}, 10)}
	s.Supervisor = &Supervisor{
		Command: func() *exec.Cmd {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), append([]string{"LINK_TEST_GUI=" + mode,
				"LINK_TEST_PIN=" + linkPIN, "LINK_TEST_CURRENT=" + linkCurrent}, env...)...)
			s.mu.Lock()
			s.cmds = append(s.cmds, cmd)
			s.mu.Unlock()
			return cmd
		},
		Agent:      s.agent,
		Info:       Info{Version: "1.2.3", Language: "de"},
		Log:        slog.New(slog.NewJSONHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Quit:       func() { s.quits <- struct{}{} },
		PINTimeout: 90 * time.Second,
		Restart:    20 * time.Millisecond,
		MaxRestart: 100 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after its context ended")
		}
		if f := secretsIn([]byte(s.log.String())); f != nil {
			t.Errorf("the Supervisor's log holds %q", f)
		}
	})
	return s
}

// up waits for the n-th GUI to say hello.
func (s *sup) up(t *testing.T, n int) {
	t.Helper()
	s.log.waitFor(t, `"msg":"desktop app ready"`, n)
	s.log.waitFor(t, "gui info version=1.2.3", n)
}

// last is the GUI process started last.
func (s *sup) last() *exec.Cmd {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmds[len(s.cmds)-1]
}

func askCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestSupervisorAsk: the PIN the GUI's window answers arrives as bytes —
// for dialog 3 the current PIN too —, the window gets the request and the
// PIN timeout, and neither PIN reaches the Supervisor's log.
func TestSupervisorAsk(t *testing.T) {
	s := startSup(t, "gui")
	s.up(t, 1)
	for _, tc := range []struct {
		kind        prompt.Kind
		wantCurrent string
	}{
		{prompt.OneField, ""},
		{prompt.TwoFields, ""},
		{prompt.ThreeFields, linkCurrent},
		{prompt.SignIn, ""},
	} {
		a, err := s.Ask(askCtx(t), prompt.Request{Kind: tc.kind, Label: "answer", Origin: "https://portal.example", Reader: "Reader 0"})
		if err != nil {
			t.Fatalf("%s: %v", tc.kind, err)
		}
		if a.PIN.Reveal() != linkPIN || a.Current.Reveal() != tc.wantCurrent {
			t.Fatalf("%s: answer %q / %q, want %q / %q", tc.kind, a.PIN.Reveal(), a.Current.Reveal(), linkPIN, tc.wantCurrent)
		}
		a.Wipe()
		s.log.waitFor(t, "gui ask id=", 1)
		s.log.waitFor(t, fmt.Sprintf(`kind=%s label=answer origin=https://portal.example reader=\"Reader 0\" timeout=1m30s`, tc.kind), 1)
	}
}

// TestSupervisorRefused: Cancel in the PIN window is prompt.ErrRefused;
// the GUI is still up afterwards.
func TestSupervisorRefused(t *testing.T) {
	s := startSup(t, "gui")
	s.up(t, 1)
	_, err := s.Ask(askCtx(t), prompt.Request{Kind: prompt.OneField, Label: "refuse"})
	if !errors.Is(err, prompt.ErrRefused) || errors.Is(err, prompt.ErrUnavailable) {
		t.Fatalf("refused: %v, want prompt.ErrRefused", err)
	}
	if !s.Up() {
		t.Fatal("the GUI is down after a refusal")
	}
}

// TestSupervisorNoGUI: with no GUI — a Supervisor not running, or one
// whose GUI cannot start (no display) and is started again and again —
// Ask, Approve and ShowPad answer at once: prompt.ErrUnavailable, and a
// pad window that is not there.
func TestSupervisorNoGUI(t *testing.T) {
	check := func(t *testing.T, s *Supervisor) {
		start := time.Now()
		if _, err := s.Ask(askCtx(t), prompt.Request{Kind: prompt.OneField, Label: "answer"}); !errors.Is(err, prompt.ErrUnavailable) {
			t.Errorf("Ask: %v, want prompt.ErrUnavailable", err)
		}
		if ok, err := s.Approve(askCtx(t), "https://allow.example", "123456"); ok || !errors.Is(err, prompt.ErrUnavailable) {
			t.Errorf("Approve: %v %v, want false, prompt.ErrUnavailable", ok, err)
		}
		s.ShowPad(prompt.Request{Kind: prompt.Pad}, func() { t.Error("pad cancelled without a GUI") })()
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("without a GUI the requests took %s", d)
		}
	}
	t.Run("not running", func(t *testing.T) {
		check(t, &Supervisor{Log: slog.New(slog.DiscardHandler)})
	})
	t.Run("cannot start", func(t *testing.T) {
		s := startSup(t, "nodisplay")
		s.log.waitFor(t, `"msg":"desktop app ended`, 3) // started again and again
		check(t, s.Supervisor)
		if !strings.Contains(s.log.String(), "no display") {
			t.Errorf("the GUI's reason is not in the log:\n%s", s.log)
		}
	})
}

// TestSupervisorGUICrashesStarting: a GUI whose toolkit dies before it
// runs its Client is never up — no "desktop app ready", requests fail at
// once — and its standard error reaches the log a line a record, however
// it was cut into writes.
func TestSupervisorGUICrashesStarting(t *testing.T) {
	s := startSup(t, "crashstart")
	s.log.waitFor(t, `"msg":"desktop app ended`, 2)
	out := s.log.String()
	if strings.Contains(out, "desktop app ready") || s.Up() {
		t.Errorf("a GUI that died starting was counted as up:\n%s", out)
	}
	if _, err := s.Ask(askCtx(t), prompt.Request{Label: "answer"}); !errors.Is(err, prompt.ErrUnavailable) {
		t.Errorf("Ask: %v, want prompt.ErrUnavailable", err)
	}
	for _, rec := range []string{
		`"stderr":"panic: NotInitialized: The GLFW library is not initialized"}`,
		`"stderr":""}`,
		`"stderr":"goroutine 1 [running, locked to thread]:"}`,
		`"stderr":"last words"}`,
	} {
		if !strings.Contains(out, rec) {
			t.Errorf("no record ending %s in the log:\n%s", rec, out)
		}
	}
}

// TestSupervisorGUIKilled: a GUI that dies with a PIN window open — by
// crashing or by kill -9 — fails the open request with
// prompt.ErrUnavailable; the Supervisor starts it again and the next
// request works.
func TestSupervisorGUIKilled(t *testing.T) {
	s := startSup(t, "gui")
	s.up(t, 1)

	// The GUI crashes on opening the window.
	_, err := s.Ask(askCtx(t), prompt.Request{Kind: prompt.OneField, Label: "die"})
	if !errors.Is(err, prompt.ErrUnavailable) {
		t.Fatalf("GUI crashed during Ask: %v, want prompt.ErrUnavailable", err)
	}
	s.up(t, 2)
	a, err := s.Ask(askCtx(t), prompt.Request{Kind: prompt.OneField, Label: "answer"})
	if err != nil || a.PIN.Reveal() != linkPIN {
		t.Fatalf("Ask after the restart: %v", err)
	}

	// kill -9 while the window is open.
	errc := make(chan error, 1)
	go func() {
		_, err := s.Ask(askCtx(t), prompt.Request{Kind: prompt.OneField, Label: "hang"})
		errc <- err
	}()
	s.log.waitFor(t, "label=hang", 1)
	if err := s.last().Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, prompt.ErrUnavailable) {
			t.Fatalf("GUI killed during Ask: %v, want prompt.ErrUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Ask did not return after the GUI was killed")
	}
	// While it is down, requests fail at once; then it is back.
	s.up(t, 3)
	if a, err := s.Ask(askCtx(t), prompt.Request{Kind: prompt.OneField, Label: "answer"}); err != nil || a.PIN.Reveal() != linkPIN {
		t.Fatalf("Ask after the second restart: %v", err)
	}
	if ok, err := s.Approve(askCtx(t), "https://allow.example", "123456"); !ok || err != nil {
		t.Fatalf("Approve after the restart: %v %v", ok, err)
	}
	if n := strings.Count(s.log.String(), `"msg":"desktop app ended`); n != 2 {
		t.Errorf("%d GUI ends logged, want 2", n)
	}
}

// TestSupervisorAskCancelled: when the job's context ends the PIN window
// is withdrawn — the GUI gets withdraw with the request's id — and Ask
// returns the context's error.
func TestSupervisorAskCancelled(t *testing.T) {
	s := startSup(t, "gui")
	s.up(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.Ask(ctx, prompt.Request{Kind: prompt.TwoFields, Label: "hang"})
		errc <- err
	}()
	s.log.waitFor(t, "label=hang", 1)
	id := between(s.log.String(), "gui ask id=", " kind=FROM_USER_DIALOG_2_FIELD label=hang")
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Ask after cancel: %v", err)
	}
	s.log.waitFor(t, "gui withdraw id="+id+`"`, 1)

	// A deadline likewise.
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.Ask(ctx, prompt.Request{Kind: prompt.OneField, Label: "hang"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ask past its deadline: %v", err)
	}
	s.log.waitFor(t, "gui withdraw id=", 2)
}

// between is the text of s between the first before… and the after that
// follows it.
func between(s, before, after string) string {
	i := strings.Index(s, before)
	if i < 0 {
		return ""
	}
	s = s[i+len(before):]
	j := strings.Index(s, after)
	if j < 0 {
		return ""
	}
	return s[:j]
}

// TestSupervisorApprove: the pairing window's Allow and Deny reach the
// agent; the window's countdown is what is left of the context's deadline;
// when the deadline passes the window is withdrawn; a GUI that dies with
// the window open denies with prompt.ErrUnavailable.
func TestSupervisorApprove(t *testing.T) {
	s := startSup(t, "gui")
	s.up(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if ok, err := s.Approve(ctx, "https://allow.example", "402917"); !ok || err != nil {
		t.Fatalf("allowed: %v %v", ok, err)
	}
	if ok, err := s.Approve(ctx, "https://deny.example", "402918"); ok || err != nil {
		t.Fatalf("denied: %v %v", ok, err)
	}
	out := s.log.String()
	ms, _ := strconv.Atoi(between(out, "gui pair id=1 origin=https://allow.example code=402917 timeout_ms=", `"`))
	if ms <= 28000 || ms > 30000 {
		t.Errorf("the pairing window's timeout was %d ms, want what is left of 30 s:\n%s", ms, out)
	}

	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if ok, err := s.Approve(short, "https://hang.example", "402919"); ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered: %v %v", ok, err)
	}
	s.log.waitFor(t, "gui withdraw id=3", 1)

	if ok, err := s.Approve(ctx, "https://die.example", "402920"); ok || !errors.Is(err, prompt.ErrUnavailable) {
		t.Fatalf("GUI died: %v %v", ok, err)
	}
}

// TestSupervisorPad: the PIN-pad window's Cancel calls the job's cancel;
// done withdraws the window.
func TestSupervisorPad(t *testing.T) {
	s := startSup(t, "gui")
	s.up(t, 1)
	cancelled := make(chan struct{})
	done := s.ShowPad(prompt.Request{Kind: prompt.Pad, Label: "cancel"}, func() { close(cancelled) })
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("Cancel in the pad window did not cancel")
	}
	done()
	done = s.ShowPad(prompt.Request{Kind: prompt.Pad, Label: "wait"}, func() { t.Error("cancelled") })
	s.log.waitFor(t, "gui pad id=2 label=wait timeout=1m30s", 1)
	done()
	done() // twice is once
	s.log.waitFor(t, "gui withdraw id=2", 1)
	time.Sleep(100 * time.Millisecond)
	if n := strings.Count(s.log.String(), "gui withdraw id=2"); n != 1 {
		t.Errorf("%d withdraws of the pad window", n)
	}
}

// TestSupervisorRemoveSiteAndQuit: the Sites window's Remove reaches the
// agent and the agent's refusal comes back as the error the window shows;
// Quit in the tray calls Supervisor.Quit; state changes reach the GUI.
func TestSupervisorRemoveSiteAndQuit(t *testing.T) {
	s := startSup(t, "gui", "LINK_TEST_ACTIONS=remove:https://paired.example;remove:https://configured.example;quit")
	s.up(t, 1)
	select {
	case <-s.quits:
	case <-time.After(10 * time.Second):
		t.Fatalf("Quit was not called:\n%s", s.log)
	}
	s.log.waitFor(t, `gui removed https://paired.example err=\"\"`, 1)
	s.log.waitFor(t, `gui removed https://configured.example err=\"removing site https://configured.example: origin is in the configuration\"`, 1)
	s.agent.mu.Lock()
	removed := strings.Join(s.agent.removed, " ")
	s.agent.mu.Unlock()
	if removed != "https://paired.example https://configured.example" {
		t.Errorf("the agent removed %q", removed)
	}

	s.log.waitFor(t, "gui state running=0 sites=1", 1)
	s.agent.setRunning(2)
	s.log.waitFor(t, "gui state running=2 sites=1", 1)
}

// TestSupervisorStopsGUI: when Run's context ends, the GUI's input closes,
// it quits, and Run returns; requests then fail with prompt.ErrUnavailable.
func TestSupervisorStopsGUI(t *testing.T) {
	s := &Supervisor{
		Command: func() *exec.Cmd {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "LINK_TEST_GUI=gui")
			return cmd
		},
		Agent: &fakeAgent{},
		Log:   slog.New(slog.DiscardHandler),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	if err := s.WaitUp(askCtx(t)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("stopping took %s (the GUI was killed, not stopped)", d)
	}
	if _, err := s.Ask(askCtx(t), prompt.Request{Label: "answer"}); !errors.Is(err, prompt.ErrUnavailable) {
		t.Errorf("Ask after Run: %v", err)
	}
}

// TestSupervisorRaise: Raise reaches the GUI's Handler once per call while
// a GUI is up; while none is (not started yet, or it cannot start), it
// fails at once with prompt.ErrUnavailable.
func TestSupervisorRaise(t *testing.T) {
	s := startSup(t, "gui")
	s.up(t, 1)
	for i := 1; i <= 2; i++ {
		if err := s.Raise(); err != nil {
			t.Fatalf("Raise %d: %v", i, err)
		}
		s.log.waitFor(t, "gui raise", i)
	}
	down := startSup(t, "nodisplay")
	down.log.waitFor(t, "desktop app ended", 1)
	if err := down.Raise(); !errors.Is(err, prompt.ErrUnavailable) {
		t.Errorf("Raise without a GUI: %v, want prompt.ErrUnavailable", err)
	}
	idle := &Supervisor{}
	if err := idle.Raise(); !errors.Is(err, prompt.ErrUnavailable) {
		t.Errorf("Raise before any GUI: %v, want prompt.ErrUnavailable", err)
	}
}
