// Command cardwright is the smart-card encoding agent: it serves card jobs
// from a web portal over a local WebSocket, and offers the same engine and
// diagnostics on the command line. This file holds the subcommand table;
// each subcommand lives in a file of its own and registers itself there.
// main is the only place where real hardware adapters (pcsc, p11) are chosen.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Exit codes shared by every subcommand.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// command is one subcommand, or a group of them (tls, token, cpf). run
// returns the process exit code. Every command prints its usage the same
// way: -h, --help (and "help" for a group) print it to stdout and exit 0; a
// bad flag or argument prints the error and the usage to stderr and exits 2.
type command struct {
	name    string
	args    string // the synopsis after the command's name, e.g. "[flags] FILE..."
	summary string // one line: what it does
	detail  string // more paragraphs for -h, optional
	hidden  bool   // diagnostics and test helpers not listed in help
	run     func(ctx context.Context, env *cmdEnv, args []string) int
	subs    []*command // a group's subcommands; run is then not used
	parent  *command
}

// path is the command's name as typed: "tls init".
func (c *command) path() string {
	if c.parent != nil {
		return c.parent.path() + " " + c.name
	}
	return c.name
}

// sub returns the subcommand called name, or nil.
func (c *command) sub(name string) *command {
	for _, s := range c.subs {
		if s.name == name {
			return s
		}
	}
	return nil
}

// usage prints the synopsis, the summary and the details; flags adds the
// flag list (nil for a group or a command without flags).
func (c *command) usage(w io.Writer, flags *flag.FlagSet) {
	synopsis := c.args
	if c.subs != nil && synopsis == "" {
		synopsis = "<subcommand> [flags] [args]"
	}
	fmt.Fprintf(w, "usage: cardwright %s\n\n%s.\n", strings.TrimSpace(c.path()+" "+synopsis), upperFirst(c.summary))
	if c.detail != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(c.detail, "\n"))
	}
	if c.subs != nil {
		fmt.Fprintln(w, "\nsubcommands:")
		for _, s := range c.subs {
			fmt.Fprintf(w, "  %-11s %s\n", s.name, s.summary)
		}
		fmt.Fprintf(w, "\nRun 'cardwright %s <subcommand> -h' for a subcommand's flags.\n", c.path())
	}
	if flags == nil {
		return
	}
	n := 0
	flags.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	out := flags.Output()
	flags.SetOutput(w)
	flags.PrintDefaults()
	flags.SetOutput(out)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// flagSet is a command's flags bound to its usage.
type flagSet struct {
	*flag.FlagSet
	cmd *command
	env *cmdEnv
}

// flags returns a flag set for c. The flag package's own messages are
// silenced: parse prints the usage where it belongs.
func (c *command) flags(env *cmdEnv) *flagSet {
	fs := flag.NewFlagSet(c.path(), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, cmd: c, env: env}
}

// parse parses args. When ok is false the command returns code at once:
// exitOK after -h or --help (usage on stdout), exitUsage after a bad flag
// (the error and the usage on stderr).
func (f *flagSet) parse(args []string) (code int, ok bool) {
	err := f.FlagSet.Parse(args)
	switch {
	case err == nil:
		return exitOK, true
	case errors.Is(err, flag.ErrHelp):
		f.cmd.usage(f.env.stdout, f.FlagSet)
		return exitOK, false
	}
	return f.usageError("%v", err), false
}

// usageError prints "cardwright CMD: message" and the usage to stderr and
// returns exitUsage.
func (f *flagSet) usageError(format string, a ...any) int {
	fmt.Fprintf(f.env.stderr, "cardwright %s: %s\n", f.cmd.path(), fmt.Sprintf(format, a...))
	f.cmd.usage(f.env.stderr, f.FlagSet)
	return exitUsage
}

// cmdEnv is what a subcommand may touch of the process, so tests can run
// subcommands in-process.
type cmdEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("cardwright: command registered twice: " + c.name)
	}
	for _, s := range c.subs {
		s.parent = c
	}
	commands[c.name] = c
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, &cmdEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}

func runMain(ctx context.Context, env *cmdEnv, args []string) int {
	if len(args) == 0 {
		if c := noCommand(); c != nil {
			return c.dispatch(ctx, env, nil)
		}
		usage(env.stderr)
		return exitUsage
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.stdout)
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "cardwright: unknown command %q (see 'cardwright help')\n", args[0])
		return exitUsage
	}
	return c.dispatch(ctx, env, args[1:])
}

// noCommand is what `cardwright` with no command runs: desktop mode
// (spec/gui.md), or nil in a build without it, which prints the usage.
func noCommand() *command {
	if hasGUI {
		return desktopCmd
	}
	return nil
}

// dispatch runs c, or for a group the subcommand args name.
func (c *command) dispatch(ctx context.Context, env *cmdEnv, args []string) int {
	if c.subs == nil {
		return c.run(ctx, env, args)
	}
	if len(args) == 0 {
		fmt.Fprintf(env.stderr, "cardwright %s: no subcommand given\n", c.path())
		c.usage(env.stderr, nil)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "--help", "-help":
		c.usage(env.stdout, nil)
		return exitOK
	}
	s := c.sub(args[0])
	if s == nil {
		fmt.Fprintf(env.stderr, "cardwright %s: unknown subcommand %q\n", c.path(), args[0])
		c.usage(env.stderr, nil)
		return exitUsage
	}
	return s.dispatch(ctx, env, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: cardwright <command> [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'cardwright <command> -h' for a command's flags.")
}
