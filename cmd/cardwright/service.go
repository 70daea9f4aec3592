package main

// service.go: 'cardwright service', the Windows service (spec/installer.md,
// "Windows service"). The life cycle — states, accepted requests, the
// agent's context, exit codes — is package winsvc's and is tested on every
// OS; service_windows.go connects it to the Service Control Manager and
// the event log, service_other.go says that services are a Windows
// feature.

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cardwright/cardwright/winsvc"
)

var serviceCmd = &command{
	name:    "service",
	summary: "the Windows service: run under the Service Control Manager, install, uninstall",
	detail: `On Windows the MSI installs the agent as the service "cardwright", which runs
'cardwright service run' (the headless agent of 'cardwright serve', logging to the event log
as well). install and uninstall are for admins without the MSI. On Linux the agent runs as
the systemd unit cardwright.service instead (docs: installer/README.md).`,
	subs: []*command{
		{name: "run", args: "[serve flags]", summary: "run the agent as the service (what the SCM starts; in a console, Ctrl+C stops it)",
			detail: `Runs 'cardwright serve' headless under the Service Control Manager's protocol: Stop and
Shutdown end it as SIGINT ends serve (running jobs get 10 seconds, then are cancelled and
journaled as cancelled). The configuration is --config, else the standard locations
(%ProgramData%\cardwright\cardwright.cfg). Logs go to the event log (source "cardwright")
and to [log] file when set.`},
		{name: "install", args: "[--auto] [--config FILE]", summary: "install this executable as the service (administrators; the MSI does this itself)",
			detail: `Creates the service "cardwright" running this executable with 'service run', started on
demand unless --auto, restarted by the SCM when it fails (after 5 s, then 30 s), and
registers the event log source.`},
		{name: "uninstall", summary: "stop and delete the service, and wait until it is gone"},
		{name: "set-start", args: "auto|demand", summary: "start the service with Windows (auto) or on demand"},
	},
}

func init() {
	register(serviceCmd)
	serviceCmd.sub("run").run = runServiceRun
	serviceCmd.sub("install").run = runServiceInstall
	serviceCmd.sub("uninstall").run = runServiceUninstall
	serviceCmd.sub("set-start").run = runServiceSetStart
}

func runServiceRun(ctx context.Context, env *cmdEnv, args []string) int {
	c := serviceCmd.sub("run")
	var f serveFlags
	fs := c.flags(env)
	f.define(fs)
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	return serviceRun(ctx, env, &f)
}

func runServiceInstall(_ context.Context, env *cmdEnv, args []string) int {
	c := serviceCmd.sub("install")
	fs := c.flags(env)
	auto := fs.Bool("auto", false, "start the service with Windows (default: on demand)")
	config := fs.String("config", "", "configuration `file` the service reads (default: the standard locations)")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	return serviceReport(env, c, serviceInstall(env, *auto, *config))
}

func runServiceUninstall(_ context.Context, env *cmdEnv, args []string) int {
	c := serviceCmd.sub("uninstall")
	fs := c.flags(env)
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	return serviceReport(env, c, serviceUninstall(env))
}

func runServiceSetStart(_ context.Context, env *cmdEnv, args []string) int {
	c := serviceCmd.sub("set-start")
	fs := c.flags(env)
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return fs.usageError("want one argument: auto or demand")
	}
	var auto bool
	switch fs.Arg(0) {
	case "auto":
		auto = true
	case "demand":
	default:
		return fs.usageError("start type %q: want auto or demand", fs.Arg(0))
	}
	return serviceReport(env, c, serviceSetStart(env, auto))
}

// agentService is the service's agent: serve's, headless, ready for the
// SCM once it listens, stopped by cancelling its context as SIGINT stops
// serve. log gets the service's own records (starting, stopping, exit).
func agentService(env *cmdEnv, f *serveFlags, log *slog.Logger) *winsvc.Service {
	return &winsvc.Service{Log: log, Serve: func(ctx context.Context, ready func()) error {
		f.ready = ready
		return serve(ctx, env, f)
	}}
}

// serviceReport prints err as the command's failure.
func serviceReport(env *cmdEnv, c *command, err error) int {
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright %s: %v\n", c.path(), err)
		return exitFailure
	}
	return exitOK
}
