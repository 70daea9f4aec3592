package main

// initgui.go: `cardwright init-gui`, the standalone card-initialization
// window (spec/gui.md "Standalone card initialization", docs/gui.md). It is
// its own process — the tray's "Initialize a card…" starts it too — with
// its own runner over the real readers and the configured PKCS#11 modules,
// and the desktop app's PIN windows in-process. It wires; the window is
// package gui, its model package cardinit.

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/cardwright/cardwright/cardinit"
	"github.com/cardwright/cardwright/check"
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/dsc"
	"github.com/cardwright/cardwright/gui/langenv"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/runner/pcscreaders"
)

var initGUICmd = &command{
	name:    "init-gui",
	args:    "[--config FILE] [FILE.dsc | FILE.dsz]",
	summary: "open the card-initialization window: run a description on a card without a portal",
	detail: `Opens the window a registration officer initializes cards with: readers and
their cards, a description (.dsc with its .cpf files, or .dsz) checked with
positions, a form made from its fields, Dry run on an in-memory card (APDU
transcript), Run on the chosen reader with progress and Cancel, certificate
requests answered from files (or by the [issuer] ca_dir of the
configuration), and the result. The tray's "Initialize a card…" opens it.`,
}

func init() {
	initGUICmd.run = runInitGUI
	register(initGUICmd)
}

// initWindow is what the window process needs; gui_on.go runs it.
type initWindow struct {
	open       string
	engine     func(prompt.Prompter) (*cardinit.Engine, error)
	check      check.Options
	recent     *cardinit.Recent
	pinTimeout time.Duration
}

func runInitGUI(_ context.Context, env *cmdEnv, args []string) int {
	fs := initGUICmd.flags(env)
	cfgFile := fs.String("config", "", "configuration `FILE` (default: $"+config.EnvVar+", then the standard locations)")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 1 {
		return fs.usageError("give at most one description file")
	}
	if !hasGUI {
		fmt.Fprintln(env.stderr, "cardwright init-gui: this build has no desktop app (built with -tags nogui); use 'cardwright encode'")
		return exitFailure
	}
	if why := noDisplay(env.getenv); why != "" {
		fmt.Fprintf(env.stderr, "cardwright init-gui: cannot open a window: %s\n", why)
		return exitFailure
	}
	path := *cfgFile
	if path == "" {
		path = env.getenv(config.EnvVar)
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright init-gui: loading configuration: %v\n", err)
		return exitFailure
	}
	// [desktop] language, as desktop mode passes it to its GUI process:
	// set before Fyne reads the locale (gui.LoadTranslations).
	for _, kv := range langenv.Env(env.getenv, cfg.Language) {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	w := initWindow{
		open:       fs.Arg(0),
		check:      check.Options{Platform: dsc.Platform{OS: runtime.GOOS, Arch: runtime.GOARCH}, Models: cfg.Dialects},
		pinTimeout: cfg.PINTimeout,
	}
	if file, err := cardinit.RecentFile(); err == nil {
		w.recent = cardinit.LoadRecent(file)
	} else {
		w.recent = &cardinit.Recent{}
	}
	var iss issuer.Issuer
	if cfg.IssuerCADir != "" {
		ca, err := issuer.OpenLocalCA(cfg.IssuerCADir)
		if err != nil {
			fmt.Fprintf(env.stderr, "cardwright init-gui: %v\n", err)
			return exitFailure
		}
		iss = ca
	}
	// The station's audit log (spec/station.md "Audit"): every Run of the
	// window is recorded, and a log that does not open stops init-gui here.
	auditLog, err := openCLIAudit(env, cfg, "init-gui") // audit.go
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright init-gui: %v\n", err)
		return exitFailure
	}
	var auditor cardinit.Auditor
	if auditLog != nil {
		defer auditLog.Close()
		auditor = auditLog
	}
	book, err := openPace(env, cfg)
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright init-gui: %v\n", err)
		return exitFailure
	}
	if book.Discarded != nil {
		fmt.Fprintf(env.stderr, "cardwright init-gui: warning: %v\n", book.Discarded)
	}
	defer book.Save()
	w.engine = func(p prompt.Prompter) (*cardinit.Engine, error) {
		r, err := newRunner(cfg, pcscreaders.New(nil), p, nil)
		if err != nil {
			return nil, err
		}
		r.Engine.Pace = book
		return &cardinit.Engine{Runner: r, Issuer: iss, Audit: auditor}, nil
	}
	if err := showInitWindow(w); err != nil {
		fmt.Fprintf(env.stderr, "cardwright init-gui: %v\n", err)
		return exitFailure
	}
	return exitOK
}
