// Package winsvc is the Windows service's life cycle without the Service
// Control Manager: the states it reports (StartPending, Running,
// StopPending; Stopped once Execute returns), the control requests it
// accepts (Stop, Shutdown, Interrogate), how a request becomes the
// cancellation of the agent's context, the exit codes and what is logged.
// It builds and is tested on every OS with fake request channels; the
// windows-only adapter in cmd/cardwright (service_windows.go) translates
// golang.org/x/sys/windows/svc's ChangeRequest and Status to and from
// these types, and logs to the event log through EventHandler.
//
// The numbers of State, Cmd and Accepted are Windows' own (SERVICE_*,
// winsvc.h), so the adapter converts with a type conversion.
package winsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// State is a service state (SERVICE_STOPPED … SERVICE_RUNNING).
type State uint32

const (
	Stopped      State = 1 // SERVICE_STOPPED: set by the SCM adapter once Execute returns
	StartPending State = 2 // SERVICE_START_PENDING
	StopPending  State = 3 // SERVICE_STOP_PENDING
	Running      State = 4 // SERVICE_RUNNING
)

func (s State) String() string {
	switch s {
	case Stopped:
		return "stopped"
	case StartPending:
		return "start pending"
	case StopPending:
		return "stop pending"
	case Running:
		return "running"
	}
	return fmt.Sprintf("state %d", uint32(s))
}

// Cmd is a control request (SERVICE_CONTROL_*).
type Cmd uint32

const (
	Stop        Cmd = 1 // SERVICE_CONTROL_STOP
	Interrogate Cmd = 4 // SERVICE_CONTROL_INTERROGATE
	Shutdown    Cmd = 5 // SERVICE_CONTROL_SHUTDOWN: the system is shutting down
)

func (c Cmd) String() string {
	switch c {
	case Stop:
		return "stop"
	case Interrogate:
		return "interrogate"
	case Shutdown:
		return "shutdown"
	}
	return fmt.Sprintf("control %d", uint32(c))
}

// Accepted is the set of requests a state accepts (SERVICE_ACCEPT_*).
type Accepted uint32

const (
	AcceptStop     Accepted = 1 // SERVICE_ACCEPT_STOP
	AcceptShutdown Accepted = 4 // SERVICE_ACCEPT_SHUTDOWN
)

// Status is what the service reports to the SCM.
type Status struct {
	State      State
	Accepts    Accepted
	CheckPoint uint32        // grows while a pending state makes progress
	WaitHint   time.Duration // how long the SCM should wait for the next report
}

// Request is a control request from the SCM.
type Request struct {
	Cmd Cmd
}

// Service-specific exit codes (Execute's code with specific true). 0 is a
// stop that was asked for and went well. Any other code is a failure, which
// the SCM's recovery actions answer (service install sets them, and
// failure actions on non-crash failures).
const (
	ExitStartFailed uint32 = 1 // the agent ended before it was ready (configuration, port in use)
	ExitServeFailed uint32 = 2 // the agent ended while running, or stopped with an error
	ExitStopTimeout uint32 = 3 // the agent did not end within StopLimit after a stop request
)

// Defaults of Service's durations.
const (
	DefaultTick      = 2 * time.Second
	DefaultStartWait = 30 * time.Second
	// DefaultStopWait covers serve's shutdown: running jobs get 10 s to
	// finish, then they are cancelled and journaled as cancelled.
	DefaultStopWait  = 20 * time.Second
	DefaultStopLimit = 60 * time.Second
)

// Service runs the agent under the SCM's protocol.
type Service struct {
	// Serve runs the agent until ctx ends (serve's work on SIGINT) and
	// calls ready once it accepts connections.
	Serve func(ctx context.Context, ready func()) error
	Log   *slog.Logger // nil: discard

	// Tick is how often a pending state reports progress (CheckPoint).
	Tick time.Duration
	// StartWait and StopWait are the WaitHints of StartPending and
	// StopPending.
	StartWait, StopWait time.Duration
	// StopLimit is how long Execute waits for Serve to return after a
	// stop request before it gives up (ExitStopTimeout) and lets the
	// process end.
	StopLimit time.Duration
}

func (s *Service) defaults() {
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.Tick <= 0 {
		s.Tick = DefaultTick
	}
	if s.StartWait <= 0 {
		s.StartWait = DefaultStartWait
	}
	if s.StopWait <= 0 {
		s.StopWait = DefaultStopWait
	}
	if s.StopLimit <= 0 {
		s.StopLimit = DefaultStopLimit
	}
}

// errControlClosed ends a service whose request channel closed (the SCM
// never closes it; a test or a console run may).
var errControlClosed = errors.New("the control request channel closed")

// Execute is svc.Handler's Execute without Windows: it reports
// StartPending, runs Serve, reports Running when Serve is ready, and on
// Stop or Shutdown reports StopPending and cancels Serve's context, as
// SIGINT ends serve. It returns when Serve has returned (or StopLimit
// after a stop request), with the exit code for the SCM: specific is true
// for the codes above. The adapter reports Stopped with that code.
//
// Interrogate is answered with the current status; other requests are
// logged and ignored. A request that arrives while Serve starts (the SCM
// sends none: StartPending accepts nothing) stops it all the same.
func (s *Service) Execute(requests <-chan Request, status chan<- Status) (specific bool, code uint32) {
	s.defaults()
	log := s.Log
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	ready := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- s.Serve(ctx, func() { once.Do(func() { close(ready) }) })
	}()

	cur := Status{State: StartPending, WaitHint: s.StartWait}
	report := func(st Status) {
		cur = st
		status <- st
	}
	report(cur)
	log.Info("service starting")

	tick := time.NewTicker(s.Tick)
	defer tick.Stop()
	var (
		readyC   = (<-chan struct{})(ready)
		stopBy   string           // the request that stopped the service, "" while none did
		deadline <-chan time.Time // StopLimit after the stop request
	)
	stop := func(by string) {
		stopBy = by
		report(Status{State: StopPending, WaitHint: s.StopWait})
		cancel()
		deadline = time.After(s.StopLimit)
	}
	for {
		select {
		case <-readyC:
			readyC = nil
			if stopBy == "" {
				report(Status{State: Running, Accepts: AcceptStop | AcceptShutdown})
				log.Info("service running")
			}
		case <-tick.C:
			if cur.State == StartPending || cur.State == StopPending {
				cur.CheckPoint++
				report(cur)
			}
		case r, ok := <-requests:
			if !ok {
				requests = nil
				if stopBy == "" {
					log.Warn("service stopping", "reason", errControlClosed.Error())
					stop("closed")
				}
				continue
			}
			switch r.Cmd {
			case Interrogate:
				status <- cur
			case Stop, Shutdown:
				if stopBy != "" {
					log.Info("service already stopping", "request", r.Cmd.String())
					continue
				}
				log.Info("service stopping", "request", r.Cmd.String())
				stop(r.Cmd.String())
			default:
				log.Warn("service control request ignored", "request", r.Cmd.String())
			}
		case err := <-done:
			wasReady := false
			select {
			case <-ready:
				wasReady = true
			default:
			}
			return s.ended(err, stopBy, wasReady, report)
		case <-deadline:
			log.Error("service stopped: the agent did not end in time", "limit", s.StopLimit.String())
			return true, ExitStopTimeout
		}
	}
}

// ended is Execute's end once Serve returned err: stopBy is the request
// that stopped it ("" none), wasReady whether it had become ready.
func (s *Service) ended(err error, stopBy string, wasReady bool, report func(Status)) (bool, uint32) {
	log := s.Log
	if stopBy == "" {
		report(Status{State: StopPending, WaitHint: s.StopWait})
	}
	switch {
	case stopBy != "" && err == nil:
		log.Info("service stopped", "request", stopBy)
		return false, 0
	case stopBy != "":
		log.Error("service stopped with an error", "request", stopBy, "err", err)
		return true, ExitServeFailed
	case !wasReady:
		if err == nil {
			err = errors.New("the agent ended before it was ready")
		}
		log.Error("service failed to start", "err", err)
		return true, ExitStartFailed
	}
	if err == nil {
		err = errors.New("the agent ended without a stop request")
	}
	log.Error("service failed", "err", err)
	return true, ExitServeFailed
}
