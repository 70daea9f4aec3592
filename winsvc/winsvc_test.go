package winsvc

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// run is one Execute under test: the requests the test sends, the
// statuses Execute reports, and its result.
type run struct {
	t        *testing.T
	requests chan Request
	status   chan Status
	result   chan [2]uint32 // specific (0/1), code
	log      *syncBuffer
}

// syncBuffer is a log buffer Execute writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// never is a Tick long enough that no checkpoint is reported in a test.
const never = time.Hour

func start(t *testing.T, s *Service) *run {
	t.Helper()
	r := &run{t: t, requests: make(chan Request), status: make(chan Status), result: make(chan [2]uint32, 1), log: new(syncBuffer)}
	s.Log = slog.New(slog.NewTextHandler(r.log, nil))
	if s.Tick == 0 {
		s.Tick = never
	}
	go func() {
		specific, code := s.Execute(r.requests, r.status)
		n := uint32(0)
		if specific {
			n = 1
		}
		r.result <- [2]uint32{n, code}
	}()
	return r
}

// next is the next status Execute reports.
func (r *run) next() Status {
	r.t.Helper()
	select {
	case st := <-r.status:
		return st
	case res := <-r.result:
		r.t.Fatalf("Execute returned %v while a status was expected; log:\n%s", res, r.log)
	case <-time.After(10 * time.Second):
		r.t.Fatalf("no status reported in 10 s; log:\n%s", r.log)
	}
	return Status{}
}

// expect reads the next status and checks its state and accepted requests.
func (r *run) expect(state State, accepts Accepted) Status {
	r.t.Helper()
	st := r.next()
	if st.State != state || st.Accepts != accepts {
		r.t.Fatalf("status %v accepting %b, want %v accepting %b", st.State, st.Accepts, state, accepts)
	}
	return st
}

func (r *run) send(c Cmd) {
	r.t.Helper()
	select {
	case r.requests <- Request{Cmd: c}:
	case <-time.After(10 * time.Second):
		r.t.Fatalf("Execute did not take request %v in 10 s", c)
	}
}

// end waits for Execute's result; no status may come before it.
func (r *run) end(specific bool, code uint32) {
	r.t.Helper()
	want := [2]uint32{0, code}
	if specific {
		want[0] = 1
	}
	select {
	case got := <-r.result:
		if got != want {
			r.t.Fatalf("Execute returned (specific %d, code %d), want (%d, %d); log:\n%s", got[0], got[1], want[0], want[1], r.log)
		}
	case st := <-r.status:
		r.t.Fatalf("status %v reported, want Execute to return; log:\n%s", st.State, r.log)
	case <-time.After(10 * time.Second):
		r.t.Fatalf("Execute did not return in 10 s; log:\n%s", r.log)
	}
}

func (r *run) logged(parts ...string) {
	r.t.Helper()
	for _, line := range strings.Split(r.log.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return
		}
	}
	r.t.Errorf("no log line has all of %q; log:\n%s", parts, r.log)
}

// agent is a Serve that becomes ready at once and runs until its context
// ends, like serve; ended receives the context's error.
func agent(ended chan<- error) func(context.Context, func()) error {
	return func(ctx context.Context, ready func()) error {
		ready()
		<-ctx.Done()
		ended <- ctx.Err()
		return nil
	}
}

// TestServiceStopAndShutdown: StartPending accepting nothing, Running
// accepting Stop and Shutdown, then on either request StopPending, the
// agent's context cancelled (as SIGINT ends serve) and exit code 0.
func TestServiceStopAndShutdown(t *testing.T) {
	for _, cmd := range []Cmd{Stop, Shutdown} {
		t.Run(cmd.String(), func(t *testing.T) {
			ended := make(chan error, 1)
			r := start(t, &Service{Serve: agent(ended), StartWait: 7 * time.Second, StopWait: 9 * time.Second})
			if st := r.expect(StartPending, 0); st.WaitHint != 7*time.Second {
				t.Errorf("StartPending's wait hint %v, want StartWait", st.WaitHint)
			}
			r.expect(Running, AcceptStop|AcceptShutdown)
			select {
			case err := <-ended:
				t.Fatalf("the agent ended before a request: %v", err)
			default:
			}
			r.send(cmd)
			if st := r.expect(StopPending, 0); st.WaitHint != 9*time.Second {
				t.Errorf("StopPending's wait hint %v, want StopWait", st.WaitHint)
			}
			r.end(false, 0)
			if err := <-ended; !errors.Is(err, context.Canceled) {
				t.Errorf("the agent's context ended with %v, want context.Canceled", err)
			}
			r.logged("service stopping", "request="+cmd.String())
			r.logged("service stopped", "request="+cmd.String())
		})
	}
}

// TestServiceInterrogate: Interrogate is answered with the current status
// and changes nothing; an unknown request is logged and ignored; a second
// Stop while stopping is not a second StopPending.
func TestServiceInterrogate(t *testing.T) {
	release := make(chan struct{})
	r := start(t, &Service{Serve: func(ctx context.Context, ready func()) error {
		ready()
		<-ctx.Done()
		<-release // shutting down takes a while
		return nil
	}})
	r.expect(StartPending, 0)
	r.expect(Running, AcceptStop|AcceptShutdown)
	r.send(Interrogate)
	r.expect(Running, AcceptStop|AcceptShutdown)
	r.send(Cmd(2)) // SERVICE_CONTROL_PAUSE: not accepted
	r.send(Interrogate)
	r.expect(Running, AcceptStop|AcceptShutdown)
	r.logged("level=WARN", "service control request ignored", `request="control 2"`)
	r.send(Stop)
	r.expect(StopPending, 0)
	r.send(Shutdown)
	r.send(Interrogate)
	r.expect(StopPending, 0)
	close(release)
	r.end(false, 0)
	r.logged("service already stopping", "request=shutdown")
}

// TestServiceStartFails: an agent that ends before it is ready (a bad
// configuration, the port in use) is StartPending, StopPending, then
// ExitStartFailed with its error logged; it is never Running.
func TestServiceStartFails(t *testing.T) {
	r := start(t, &Service{Serve: func(context.Context, func()) error {
		return errors.New("loading configuration: cardwright.cfg:3:1: unknown key")
	}})
	r.expect(StartPending, 0)
	r.expect(StopPending, 0)
	r.end(true, ExitStartFailed)
	r.logged("level=ERROR", "service failed to start", "unknown key")
}

// TestServiceServeFails: an agent that ends on its own while running is a
// failure (ExitServeFailed) the SCM's recovery actions answer, with or
// without an error; one that fails while stopping is too.
func TestServiceServeFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		log  string
	}{
		{"error", errors.New("accepting: too many open files"), "too many open files"},
		{"nil", nil, "without a stop request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			end := make(chan struct{})
			r := start(t, &Service{Serve: func(ctx context.Context, ready func()) error {
				ready()
				<-end
				return tc.err
			}})
			r.expect(StartPending, 0)
			r.expect(Running, AcceptStop|AcceptShutdown)
			close(end)
			r.expect(StopPending, 0)
			r.end(true, ExitServeFailed)
			r.logged("level=ERROR", "service failed", tc.log)
		})
	}
	t.Run("while stopping", func(t *testing.T) {
		r := start(t, &Service{Serve: func(ctx context.Context, ready func()) error {
			ready()
			<-ctx.Done()
			return errors.New("shutting down: journal: disk full")
		}})
		r.expect(StartPending, 0)
		r.expect(Running, AcceptStop|AcceptShutdown)
		r.send(Stop)
		r.expect(StopPending, 0)
		r.end(true, ExitServeFailed)
		r.logged("level=ERROR", "service stopped with an error", "disk full")
	})
}

// TestServiceStopLimit: an agent that does not end after a stop request
// is given up after StopLimit (ExitStopTimeout) so the process can end.
func TestServiceStopLimit(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	r := start(t, &Service{StopLimit: 10 * time.Millisecond, Serve: func(ctx context.Context, ready func()) error {
		ready()
		<-hang
		return nil
	}})
	r.expect(StartPending, 0)
	r.expect(Running, AcceptStop|AcceptShutdown)
	r.send(Stop)
	r.expect(StopPending, 0)
	r.end(true, ExitStopTimeout)
	r.logged("level=ERROR", "did not end in time")
}

// TestServiceCheckPoints: while the agent starts, and while it stops, the
// pending status is reported again with a growing CheckPoint, so the SCM
// sees progress past the wait hint.
func TestServiceCheckPoints(t *testing.T) {
	readyNow := make(chan struct{})
	stopNow := make(chan struct{})
	r := start(t, &Service{Tick: time.Millisecond, Serve: func(ctx context.Context, ready func()) error {
		<-readyNow
		ready()
		<-ctx.Done()
		<-stopNow
		return nil
	}})
	r.expect(StartPending, 0)
	for want := uint32(1); want <= 3; want++ {
		if st := r.expect(StartPending, 0); st.CheckPoint != want {
			t.Fatalf("checkpoint %d, want %d", st.CheckPoint, want)
		}
	}
	close(readyNow)
	for st := r.next(); st.State != Running; st = r.next() {
		if st.State != StartPending {
			t.Fatalf("status %v while starting", st.State)
		}
	}
	r.send(Stop)
	// Running reports no checkpoints: the next status is StopPending.
	if st := r.next(); st.State != StopPending || st.CheckPoint != 0 {
		t.Fatalf("status %v checkpoint %d, want StopPending 0", st.State, st.CheckPoint)
	}
	for want := uint32(1); want <= 2; want++ {
		if st := r.expect(StopPending, 0); st.CheckPoint != want {
			t.Fatalf("stop checkpoint %d, want %d", st.CheckPoint, want)
		}
	}
	close(stopNow)
	for {
		select {
		case st := <-r.status:
			if st.State != StopPending {
				t.Fatalf("status %v after StopPending", st.State)
			}
			continue
		case res := <-r.result:
			if res != [2]uint32{0, 0} {
				t.Fatalf("result %v, want a clean stop", res)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Execute did not return")
		}
		break
	}
}

// TestServiceStopWhileStarting: a stop request before the agent is ready
// (a console run's Ctrl+C; the SCM sends none then) stops it, and a ready
// that comes late does not report Running.
func TestServiceStopWhileStarting(t *testing.T) {
	readyNow := make(chan struct{})
	r := start(t, &Service{Serve: func(ctx context.Context, ready func()) error {
		<-readyNow
		ready()
		<-ctx.Done()
		return nil
	}})
	r.expect(StartPending, 0)
	r.send(Stop)
	r.expect(StopPending, 0)
	close(readyNow)
	r.end(false, 0)
}

// TestServiceRequestsClosed: a closed request channel stops the service.
func TestServiceRequestsClosed(t *testing.T) {
	ended := make(chan error, 1)
	r := start(t, &Service{Serve: agent(ended)})
	r.expect(StartPending, 0)
	r.expect(Running, AcceptStop|AcceptShutdown)
	close(r.requests)
	r.expect(StopPending, 0)
	r.end(false, 0)
	r.logged("level=WARN", "service stopping", "channel closed")
}
