package main

// desktop.go: desktop mode (spec/gui.md "Modes of the one binary"): the
// agent of `serve` plus the desktop app, which runs as a child process of
// the agent (`cardwright gui-process`, gui_on.go) supervised by
// gui/link — docs/gui.md, "Process model", says why.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/gui/langenv"
	"github.com/cardwright/cardwright/gui/link"
)

var desktopCmd = &command{
	name:    "desktop",
	args:    "[flags]",
	summary: "run the agent with its desktop app: tray, PIN and pairing dialogs (the default with no command)",
	detail: `Serves card jobs like 'cardwright serve' and shows the tray icon, the PIN, PIN-pad and
pairing dialogs and the Sites window. The desktop app runs as a child process: when it
cannot start (no display) or ends, the agent keeps serving, jobs that need a dialog end
with prompt_unavailable, and the app is started again. Quit from the tray ends both.
The [desktop] section of the configuration sets language, notifications and timeouts
(docs/config.md, docs/gui.md). Takes serve's flags.`,
}

func init() {
	desktopCmd.run = runDesktop
	register(desktopCmd)
}

func runDesktop(ctx context.Context, env *cmdEnv, args []string) int {
	var f serveFlags
	fs := desktopCmd.flags(env)
	f.define(fs)
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	if !hasGUI {
		fmt.Fprintln(env.stderr, "cardwright desktop: this build has no desktop app (built with -tags nogui); use 'cardwright serve'")
		return exitFailure
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright desktop: %v\n", err)
		return exitFailure
	}
	path := f.config
	if path == "" {
		path = env.getenv(config.EnvVar)
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright desktop: loading configuration: %v\n", err)
		return exitFailure
	}
	ctx, quit := context.WithCancel(ctx)
	defer quit()
	f.desk = &link.Supervisor{
		Command: func() *exec.Cmd { return guiCommand(exe, cfg.Language) },
		Info: link.Info{Version: version, ConfigPath: lastSource(cfg), LogPath: cfg.LogFile,
			Language: cfg.Language, Notify: cfg.Notifications},
		Quit: quit,
	}
	if err := serve(ctx, env, &f); err != nil {
		if lg, lerr := newLogger(env.stderr, f.logFormat, "error"); lerr == nil {
			lg.Error("cardwright desktop stopped", "err", err)
		}
		return exitFailure
	}
	return exitOK
}

// guiCommand is the GUI process: this executable's gui-process command,
// in language lang ("" keeps the OS locale).
func guiCommand(exe, lang string) *exec.Cmd {
	cmd := exec.Command(exe, guiProcessName)
	cmd.Env = append(os.Environ(), langenv.Env(os.Getenv, lang)...)
	return cmd
}

// guiProcessName is the hidden command the GUI process runs.
const guiProcessName = "gui-process"

// noDisplay says why a GUI cannot start on this system, or "": without
// it Fyne panics with a long trace on every retry.
func noDisplay(getenv func(string) string) string {
	if runtime.GOOS != "linux" && runtime.GOOS != "freebsd" {
		return ""
	}
	d, w := getenv("DISPLAY"), getenv("WAYLAND_DISPLAY")
	if d == "" && w == "" {
		return "no display: DISPLAY and WAYLAND_DISPLAY are not set"
	}
	if w == "" && strings.HasPrefix(d, ":") { // a local X server: its socket must answer
		n, _, _ := strings.Cut(d[1:], ".")
		c, err := net.DialTimeout("unix", "/tmp/.X11-unix/X"+n, 2*time.Second)
		if err != nil {
			return fmt.Sprintf("no X server answers on DISPLAY=%s: %v", d, err)
		}
		c.Close()
	}
	return ""
}

func lastSource(cfg *config.Config) string {
	if len(cfg.Sources) == 0 {
		return ""
	}
	return cfg.Sources[len(cfg.Sources)-1]
}
