package main

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"testing"
)

// runArgs runs cardwright in-process with an empty environment.
func runArgs(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	env := &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code = runMain(context.Background(), env, args)
	return code, out.String(), errb.String()
}

// allCommands is every command and subcommand of the command table, as
// the argument lists that name them, sorted.
func allCommands() [][]string {
	var out [][]string
	var walk func(prefix []string, c *command)
	walk = func(prefix []string, c *command) {
		path := append(append([]string(nil), prefix...), c.name)
		out = append(out, path)
		for _, s := range c.subs {
			walk(path, s)
		}
	}
	for _, c := range commands {
		walk(nil, c)
	}
	sort.Slice(out, func(i, j int) bool { return strings.Join(out[i], " ") < strings.Join(out[j], " ") })
	return out
}

func lookup(path []string) *command {
	c := commands[path[0]]
	for _, name := range path[1:] {
		c = c.sub(name)
	}
	return c
}

// TestHelpEveryCommand: for every command and subcommand the program
// registers, -h and --help print its usage (synopsis, what it does) to
// stdout and exit 0, and an unknown flag prints the error and the usage to
// stderr and exits 2. A group also takes "help", and exits 2 without a
// subcommand or with an unknown one.
func TestHelpEveryCommand(t *testing.T) {
	paths := allCommands()
	if len(paths) < 20 {
		t.Fatalf("only %d commands found: %v", len(paths), paths)
	}
	for _, path := range paths {
		c := lookup(path)
		name := strings.Join(path, " ")
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			synopsis := "usage: cardwright " + name
			if c.summary == "" {
				t.Errorf("no summary")
			}
			helps := [][]string{{"-h"}, {"--help"}}
			if c.subs != nil {
				helps = append(helps, []string{"help"})
			}
			for _, h := range helps {
				code, out, errs := runArgs(append(path, h...)...)
				if code != exitOK || errs != "" {
					t.Errorf("%s %s: exit %d, stderr %q; want 0 and nothing on stderr", name, h[0], code, errs)
				}
				// The synopsis (maybe of several lines), a blank line, the summary.
				_, rest, _ := strings.Cut(out, "\n\n")
				if !strings.HasPrefix(out, synopsis) || !strings.HasPrefix(rest, upperFirst(c.summary)+".\n") {
					t.Errorf("%s %s: usage %q; want the synopsis %q, a blank line and the summary", name, h[0], out, synopsis)
				}
				for _, s := range c.subs {
					if !strings.Contains(out, "\n  "+s.name+" ") {
						t.Errorf("%s %s: subcommand %s not listed:\n%s", name, h[0], s.name, out)
					}
				}
			}
			bad := [][]string{{"--no-such-flag"}}
			if c.subs != nil {
				bad = [][]string{{}, {"no-such-subcommand"}, {"--no-such-flag"}}
			}
			for _, b := range bad {
				code, out, errs := runArgs(append(path, b...)...)
				if code != exitUsage || out != "" || !strings.HasPrefix(errs, "cardwright "+name+": ") || !strings.Contains(errs, "\n"+synopsis) {
					t.Errorf("%s %q: exit %d, stdout %q, stderr %q; want 2, the error, then the usage on stderr", name, b, code, out, errs)
				}
			}
		})
	}
	// The program itself.
	for _, h := range []string{"-h", "--help", "help"} {
		if code, out, errs := runArgs(h); code != exitOK || errs != "" || !strings.HasPrefix(out, "usage: cardwright <command>") {
			t.Errorf("cardwright %s: exit %d, %q %q", h, code, out, errs)
		}
	}
	// No command: desktop mode (not run here: it would serve until
	// stopped and start this test binary as its GUI); without the GUI,
	// the usage.
	if hasGUI {
		if noCommand() != desktopCmd {
			t.Errorf("cardwright with no command runs %v, want desktop mode", noCommand())
		}
	} else if code, out, errs := runArgs(); code != exitUsage || out != "" || !strings.HasPrefix(errs, "usage: cardwright <command>") {
		t.Errorf("cardwright: exit %d, %q %q", code, out, errs)
	}
}

// TestUsageOwnFlags: a subcommand's usage lists its own flags, not its
// siblings'.
func TestUsageOwnFlags(t *testing.T) {
	for _, tc := range []struct {
		path     []string
		has, not []string
	}{
		{[]string{"tls", "init"}, []string{"-dir", "-force"}, []string{"-dry-run"}},
		{[]string{"tls", "install"}, []string{"-dir", "-dry-run"}, []string{"-force"}},
		{[]string{"cpf", "run"}, []string{"-reader", "-dry-run", "-param"}, []string{"-pin-env", "-puk-env"}},
		{[]string{"cpf", "erase"}, []string{"-reader", "-pin-env", "-puk-env"}, []string{"-param", "-dry-run"}},
		{[]string{"token", "list"}, []string{"-module", "-token", "-config"}, []string{"-label", "-yes"}},
		{[]string{"token", "erase"}, []string{"-module", "-yes"}, []string{"-label", "-subject"}},
	} {
		_, out, _ := runArgs(append(tc.path, "-h")...)
		for _, f := range tc.has {
			if !strings.Contains(out, "\n  "+f+" ") && !strings.Contains(out, "\n  "+f+"\n") {
				t.Errorf("%v -h does not list %s:\n%s", tc.path, f, out)
			}
		}
		for _, f := range tc.not {
			if strings.Contains(out, "  "+f) {
				t.Errorf("%v -h lists %s, a flag of another subcommand:\n%s", tc.path, f, out)
			}
		}
	}
}
