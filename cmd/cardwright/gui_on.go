//go:build !nogui

package main

// gui_on.go: the desktop app's process, in builds with the GUI (the
// default; -tags nogui leaves Fyne out, gui_off.go).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cardwright/cardwright/gui"
	_ "github.com/cardwright/cardwright/gui/langenv" // before Fyne reads the locale
	"github.com/cardwright/cardwright/gui/link"
)

const hasGUI = true

var guiProcessCmd = &command{
	name:    guiProcessName,
	summary: "the desktop app's process (started by 'cardwright desktop', talks to it on stdin/stdout)",
	hidden:  true,
}

func init() {
	guiProcessCmd.run = runGUIProcess
	register(guiProcessCmd)
}

func runGUIProcess(_ context.Context, env *cmdEnv, args []string) int {
	fs := guiProcessCmd.flags(env)
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	if why := noDisplay(env.getenv); why != "" {
		fmt.Fprintf(env.stderr, "desktop app cannot start: %s\n", why)
		return exitFailure
	}
	// Standard output is the link; anything else that prints goes to
	// standard error, which the agent logs.
	out := os.Stdout
	os.Stdout = os.Stderr
	c, err := link.NewClient(os.Stdin, out)
	if err != nil {
		fmt.Fprintf(env.stderr, "desktop app: %v\n", err)
		return exitFailure
	}
	if err := gui.Run(c); err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintf(env.stderr, "desktop app: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// showInitWindow runs the card-initialization window until it is closed.
func showInitWindow(w initWindow) error {
	return gui.RunInit(gui.InitOptions{Open: w.open, Engine: w.engine, Check: w.check,
		Recent: w.recent, PINTimeout: w.pinTimeout})
}
