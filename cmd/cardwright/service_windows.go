//go:build windows

package main

// service_windows.go: the Service Control Manager's side of 'cardwright
// service' — svc.Run (or debug.Run in a console) around winsvc.Service,
// the event log, and mgr for install, uninstall and set-start.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/debug"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/cardwright/cardwright/winsvc"
)

// serviceName is the service's name in the SCM and the event log's source
// (the MSI's ServiceInstall and EventLog registry key use the same).
const serviceName = "cardwright"

// eventSourceKey is the event log source's registry key (HKLM).
const eventSourceKey = `SYSTEM\CurrentControlSet\Services\EventLog\Application\` + serviceName

func serviceRun(_ context.Context, env *cmdEnv, f *serveFlags) int {
	isService, err := svc.IsWindowsService()
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright service run: asking whether this is a service: %v\n", err)
		return exitFailure
	}
	lg, err := newLogger(env.stderr, f.logFormat, "info")
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright service run: %v\n", err)
		return exitFailure
	}
	run := debug.Run // a console: Ctrl+C is Stop
	if isService {
		run = svc.Run
		el, err := eventlog.Open(serviceName)
		if err != nil {
			lg.Error("opening the event log", "err", err)
			return exitFailure
		}
		defer el.Close()
		f.logTo = winsvc.EventHandler(el, slog.LevelInfo)
		lg = slog.New(slog.NewMultiHandler(lg.Handler(), f.logTo))
		env = serviceEnv(env)
	}
	h := &scmHandler{s: agentService(env, f, lg)}
	if err := run(serviceName, h); err != nil {
		lg.Error("running the service", "err", err)
		return exitFailure
	}
	if h.code != 0 {
		return exitFailure
	}
	return exitOK
}

// serviceEnv is env with the journal's default under %ProgramData% (the
// service's account, LocalSystem, has no home of its own): journalDir
// reads STATE_DIRECTORY after [log] journal.
func serviceEnv(env *cmdEnv) *cmdEnv {
	e := *env
	e.getenv = func(k string) string {
		v := env.getenv(k)
		if k == "STATE_DIRECTORY" && v == "" {
			pd := env.getenv("ProgramData")
			if pd == "" {
				pd = `C:\ProgramData`
			}
			v = filepath.Join(pd, "cardwright", "state")
		}
		return v
	}
	return &e
}

// scmHandler is svc.Handler over winsvc.Service: it converts the requests
// and statuses, whose numbers are Windows' own.
type scmHandler struct {
	s    *winsvc.Service
	code uint32
}

func (h *scmHandler) Execute(_ []string, r <-chan svc.ChangeRequest, s chan<- svc.Status) (bool, uint32) {
	requests := make(chan winsvc.Request)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case c := <-r:
				select {
				case requests <- winsvc.Request{Cmd: winsvc.Cmd(c.Cmd)}:
				case <-stop:
					return
				}
			case <-stop:
				return
			}
		}
	}()
	status := make(chan winsvc.Status)
	forwarded := make(chan struct{})
	go func() {
		defer close(forwarded)
		for st := range status {
			s <- svc.Status{State: svc.State(st.State), Accepts: svc.Accepted(st.Accepts),
				CheckPoint: st.CheckPoint, WaitHint: uint32(st.WaitHint / time.Millisecond)}
		}
	}()
	specific, code := h.s.Execute(requests, status)
	close(status)
	<-forwarded // every status reported before svc reports Stopped
	h.code = code
	return specific, code
}

func serviceInstall(_ *cmdEnv, auto bool, config string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this executable: %w", err)
	}
	args := []string{"service", "run"}
	if config != "" {
		abs, err := filepath.Abs(config)
		if err != nil {
			return fmt.Errorf("resolving --config: %w", err)
		}
		args = append(args, "--config", abs)
	}
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connecting to the service control manager (run as administrator): %w", err)
	}
	defer m.Disconnect()
	if s, err := m.OpenService(serviceName); err == nil {
		s.Close()
		return fmt.Errorf("service %s is already installed", serviceName)
	}
	start := uint32(mgr.StartManual)
	if auto {
		start = mgr.StartAutomatic
	}
	s, err := m.CreateService(serviceName, exe, mgr.Config{
		DisplayName:  "cardwright agent",
		Description:  "Serves smart-card jobs from the allowed web portals on a loopback address (headless).",
		StartType:    start,
		ErrorControl: mgr.ErrorNormal,
	}, args...)
	if err != nil {
		return fmt.Errorf("creating service %s: %w", serviceName, err)
	}
	defer s.Close()
	// Restart after a failure: a crash, or an exit code other than 0
	// (winsvc's ExitStartFailed, ExitServeFailed, ExitStopTimeout).
	actions := []mgr.RecoveryAction{
		{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
		{Type: mgr.NoAction},
	}
	if err := s.SetRecoveryActions(actions, uint32((24 * time.Hour).Seconds())); err != nil {
		return fmt.Errorf("setting the recovery actions: %w", err)
	}
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		return fmt.Errorf("setting the recovery actions: %w", err)
	}
	if k, err := registry.OpenKey(registry.LOCAL_MACHINE, eventSourceKey, registry.QUERY_VALUE); err == nil {
		k.Close() // the MSI, or an earlier install, registered the source
	} else if err := eventlog.InstallAsEventCreate(serviceName, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		return fmt.Errorf("registering the event log source: %w", err)
	}
	return nil
}

func serviceUninstall(env *cmdEnv) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connecting to the service control manager (run as administrator): %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(serviceName)
	if err != nil {
		return fmt.Errorf("opening service %s: %w", serviceName, err)
	}
	st, err := s.Query()
	if err != nil {
		s.Close()
		return fmt.Errorf("querying service %s: %w", serviceName, err)
	}
	if st.State != svc.Stopped {
		if _, err := s.Control(svc.Stop); err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
			s.Close()
			return fmt.Errorf("stopping service %s: %w", serviceName, err)
		}
		err := waitFor(60*time.Second, func() (bool, error) {
			st, err := s.Query()
			return err == nil && st.State == svc.Stopped, err
		})
		if err != nil {
			s.Close()
			return fmt.Errorf("waiting for service %s to stop: %w", serviceName, err)
		}
	}
	if err := s.Delete(); err != nil {
		s.Close()
		return fmt.Errorf("deleting service %s: %w", serviceName, err)
	}
	s.Close() // the SCM deletes the service once every handle is closed
	err = waitFor(30*time.Second, func() (bool, error) {
		s, err := m.OpenService(serviceName)
		if err == nil {
			s.Close()
			return false, nil
		}
		if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		return fmt.Errorf("waiting for service %s to be deleted: %w", serviceName, err)
	}
	if err := eventlog.Remove(serviceName); err != nil && !errors.Is(err, windows.ERROR_FILE_NOT_FOUND) {
		fmt.Fprintf(env.stderr, "cardwright service uninstall: removing the event log source: %v\n", err)
	}
	return nil
}

func serviceSetStart(_ *cmdEnv, auto bool) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connecting to the service control manager (run as administrator): %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(serviceName)
	if err != nil {
		return fmt.Errorf("opening service %s: %w", serviceName, err)
	}
	defer s.Close()
	start := uint32(mgr.StartManual)
	if auto {
		start = mgr.StartAutomatic
	}
	// Only the start type changes (mgr's UpdateConfig rewrites every field).
	err = windows.ChangeServiceConfig(s.Handle, windows.SERVICE_NO_CHANGE, start, windows.SERVICE_NO_CHANGE,
		nil, nil, nil, nil, nil, nil, nil)
	if err != nil {
		return fmt.Errorf("setting the start type of service %s: %w", serviceName, err)
	}
	return nil
}

// waitFor polls done every 300 ms until it says true or fails, or limit
// passes.
func waitFor(limit time.Duration, done func() (bool, error)) error {
	end := time.Now().Add(limit)
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		if time.Now().After(end) {
			return fmt.Errorf("not done after %v", limit)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
