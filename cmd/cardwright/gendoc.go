package main

// gendoc.go: the hidden command that writes the man page and the bash
// completion of the Debian package (installer/build.sh) from the command
// table, so they say what -h says. Commands declare their flags inside their
// run functions, so each command is run in-process with -h and its usage
// text is what the page and the completion are made from.
//
// The roff and the completion script are written by hand: the chosen
// dependencies have no roff writer (cobra's doc generator and go-md2man
// would bring a CLI framework or a Markdown stack for about a hundred lines
// of output), and the usage text has only four shapes to render: synopsis,
// paragraphs, indented lines and the flag list of flag.PrintDefaults.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

var gendocCmd = &command{
	name:    "gendoc",
	args:    "[--man FILE] [--bash FILE] [--icon FILE] [flags]",
	summary: "write the man page and the bash completion from the command table (packaging)",
	detail: `Runs every command and subcommand with -h in-process and writes their usage as one
man page, cardwright(1), and as a bash completion script (commands, subcommands, flags);
--icon writes the tray's icon as a PNG (builds with the desktop app only).
installer/build.sh calls it for the Debian package.`,
	hidden: true,
}

// gendocIcon returns the application icon (PNG); nil in builds without
// the desktop app (gendoc_gui.go sets it).
var gendocIcon func() []byte

func init() {
	gendocCmd.run = runGendoc
	register(gendocCmd)
}

func runGendoc(ctx context.Context, env *cmdEnv, args []string) int {
	fs := gendocCmd.flags(env)
	man := fs.String("man", "", "write the man page (roff) to `FILE`")
	bash := fs.String("bash", "", "write the bash completion script to `FILE`")
	icon := fs.String("icon", "", "write the application icon (PNG, 64×64) to `FILE`")
	ver := fs.String("version", version, "version named in the man page's footer")
	date := fs.String("date", "", "date (YYYY-MM-DD) in the man page's footer (default: $SOURCE_DATE_EPOCH, else today)")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	if *man == "" && *bash == "" && *icon == "" {
		return fs.usageError("nothing to write: give --man, --bash or --icon")
	}
	if *icon != "" && gendocIcon == nil {
		return fs.usageError("--icon: %v", errNoGUIIcon)
	}
	if *date == "" {
		t := time.Now().UTC()
		if s := env.getenv("SOURCE_DATE_EPOCH"); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fs.usageError("SOURCE_DATE_EPOCH %q is not a number of seconds", s)
			}
			t = time.Unix(n, 0).UTC()
		}
		*date = t.Format(time.DateOnly)
	} else if _, err := time.Parse(time.DateOnly, *date); err != nil {
		return fs.usageError("--date %q: want YYYY-MM-DD", *date)
	}
	docs, err := collectDocs(ctx)
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright gendoc: %v\n", err)
		return exitFailure
	}
	for _, out := range []struct {
		path  string
		write func(io.Writer, []cmdDoc)
	}{
		{*man, func(w io.Writer, d []cmdDoc) { writeMan(w, d, *ver, *date) }},
		{*bash, writeBashCompletion},
		{*icon, func(w io.Writer, _ []cmdDoc) { w.Write(gendocIcon()) }},
	} {
		if out.path == "" {
			continue
		}
		var b bytes.Buffer
		out.write(&b, docs)
		if err := os.WriteFile(out.path, b.Bytes(), 0o644); err != nil {
			fmt.Fprintf(env.stderr, "cardwright gendoc: writing %v\n", err)
			return exitFailure
		}
	}
	return exitOK
}

var errNoGUIIcon = errors.New("this build has no desktop app, so no icon")

// cmdDoc is one command's usage text taken apart.
type cmdDoc struct {
	path     string    // "token list"
	synopsis string    // "cardwright token list [flags]"
	body     []string  // the summary and the details, as lines
	subs     []string  // a group's subcommands
	flags    []flagDoc // in the order -h lists them
}

// flagDoc is one entry of flag.PrintDefaults: "  -name arg" and its text.
type flagDoc struct {
	name string // without the dash
	arg  string // the value's name ("FILE", "string"), "" for a boolean flag
	text string
}

// collectDocs runs every listed command and subcommand with -h and parses
// what it prints; commands in name order, a group's subcommands in the
// group's order, each right after its group.
func collectDocs(ctx context.Context) ([]cmdDoc, error) {
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var docs []cmdDoc
	var walk func(path []string, c *command) error
	walk = func(path []string, c *command) error {
		var out, errb bytes.Buffer
		env := &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		if code := runMain(ctx, env, append(path, "-h")); code != exitOK {
			return fmt.Errorf("cardwright %s -h: exit %d: %s", strings.Join(path, " "), code, errb.String())
		}
		d, err := parseUsage(strings.Join(path, " "), out.String())
		if err != nil {
			return err
		}
		docs = append(docs, d)
		for _, s := range c.subs {
			if s.hidden {
				continue
			}
			if err := walk(append(path[:len(path):len(path)], s.name), s); err != nil {
				return err
			}
		}
		return nil
	}
	for _, n := range names {
		if err := walk([]string{n}, commands[n]); err != nil {
			return nil, err
		}
	}
	return docs, nil
}

// parseUsage takes apart what command.usage prints: "usage: " and the
// synopsis, a blank line, the summary and details, then optionally
// "subcommands:" and "flags:" lists.
func parseUsage(path, text string) (cmdDoc, error) {
	d := cmdDoc{path: path}
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "usage: ") {
		return d, fmt.Errorf("cardwright %s -h: no usage line in %q", path, text)
	}
	i := 0
	var syn []string
	for ; i < len(lines) && lines[i] != ""; i++ {
		syn = append(syn, strings.TrimSpace(strings.TrimPrefix(lines[i], "usage: ")))
	}
	d.synopsis = strings.Join(syn, " ")
	section := "body"
	for i++; i < len(lines); i++ {
		l := lines[i]
		switch {
		case l == "subcommands:":
			section = "subs"
			continue
		case l == "flags:":
			section = "flags"
			continue
		case section != "body" && l == "":
			section = "after"
			continue
		}
		switch section {
		case "body":
			d.body = append(d.body, l)
		case "subs":
			if f := strings.Fields(l); len(f) > 0 {
				d.subs = append(d.subs, f[0])
			}
		case "flags":
			if strings.HasPrefix(l, "  -") {
				name, rest, _ := strings.Cut(strings.TrimPrefix(l, "  -"), "\t")
				f := flagDoc{text: strings.TrimSpace(rest)}
				f.name, f.arg, _ = strings.Cut(strings.TrimSpace(name), " ")
				d.flags = append(d.flags, f)
			} else if n := len(d.flags); n > 0 {
				t := strings.TrimSpace(l)
				if d.flags[n-1].text != "" {
					t = d.flags[n-1].text + "\n" + t
				}
				d.flags[n-1].text = t
			}
		}
	}
	for len(d.body) > 0 && d.body[len(d.body)-1] == "" {
		d.body = d.body[:len(d.body)-1]
	}
	return d, nil
}

// roff escapes text for a roff line: backslashes, dashes as minus signs
// (so options copy as typed), non-ASCII as \[uXXXX], and a leading dot
// or quote that would make a request.
func roff(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-':
			b.WriteString(`\-`)
		case r >= utf8.RuneSelf:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	out := b.String()
	if strings.HasPrefix(out, ".") || strings.HasPrefix(out, "'") {
		out = `\&` + out
	}
	return out
}

// writeMan writes cardwright(1): one page, a section per command.
func writeMan(w io.Writer, docs []cmdDoc, ver, date string) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p(`.\" cardwright(1), generated by "cardwright gendoc" from the command table; do not edit.`)
	p(`.TH CARDWRIGHT 1 "%s" "cardwright %s" "User Commands"`, date, roff(ver))
	p(".nh") // no hyphenation: names and flags stay whole
	p(".ad l")
	p(".SH NAME")
	p(`cardwright \- smart\-card encoding agent for web portals, with desktop app and diagnostics`)
	p(".SH SYNOPSIS")
	p(".B cardwright")
	p(`.RI [ command ] " " [ flags ] " " [ args ]`)
	p(".SH DESCRIPTION")
	p("%s", roff("cardwright owns the smart-card readers of a desktop or a production station. "+
		"A card-management portal in the browser sends card jobs to it over a WebSocket on 127.0.0.1; "+
		"cardwright runs the job's encoding description and card profiles on the card through PC/SC "+
		"and PKCS#11, reports progress and keeps results until the portal has them."))
	p(".PP")
	p("%s", roff("With no command it runs desktop mode (the agent with its tray app). "+
		"Every command prints its usage and flags with -h; a flag may be written --name or -name. "+
		"PINs come from a terminal prompt or the environment, never from the command line."))
	p(".SH COMMANDS")
	for _, d := range docs {
		p(`.SS "%s"`, strings.ReplaceAll(roff(d.synopsis), `"`, `\(dq`))
		writeManBody(w, d.body)
		if len(d.subs) > 0 {
			p(".PP")
			p("Subcommands: %s.", roff(strings.Join(d.subs, ", ")))
		}
		for _, f := range d.flags {
			p(".TP")
			if f.arg != "" {
				p(`.BI \-\-%s " %s"`, roff(f.name), roff(f.arg))
			} else {
				p(`.B \-\-%s`, roff(f.name))
			}
			for _, l := range strings.Split(f.text, "\n") {
				p("%s", roff(l))
			}
		}
	}
	p(".SH FILES")
	p(".TP")
	p(".I /etc/cardwright/cardwright.cfg")
	p("%s", roff("System configuration (INI), overlaid by the per-user file; every key is in /usr/share/doc/cardwright/config.md."))
	p(".TP")
	p(".I ~/.config/cardwright/cardwright.cfg")
	p("Per\\-user configuration.")
	p(".TP")
	p(".I /var/lib/cardwright")
	p("%s", roff("Results journal of the system service (cardwright.service); a user's is ~/.local/state/cardwright."))
	p(".SH ENVIRONMENT")
	p(".TP")
	p(".B CARDWRIGHT_CONFIG")
	p("%s", roff("Configuration file used instead of the standard files when --config is not given."))
	p(".SH EXIT STATUS")
	p("%s", roff("0 on success, 1 when the command failed, 2 on a usage error (bad flag or argument)."))
	p(".SH SEE ALSO")
	p(".BR systemctl (1),")
	p(".BR pcscd (8),")
	p("%s", roff("/usr/share/doc/cardwright/protocol.md (the WebSocket protocol, running as a service)."))
}

// writeManBody writes usage paragraphs: blank lines separate paragraphs,
// indented lines (examples, lists of names) are kept as they are.
func writeManBody(w io.Writer, body []string) {
	inNF := false
	for _, l := range body {
		switch {
		case l == "":
			if inNF {
				fmt.Fprintln(w, ".fi")
				inNF = false
			}
			fmt.Fprintln(w, ".PP")
		case strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t"):
			if !inNF {
				fmt.Fprintln(w, ".nf")
				inNF = true
			}
			fmt.Fprintln(w, roff(l))
		default:
			if inNF {
				fmt.Fprintln(w, ".fi")
				inNF = false
			}
			fmt.Fprintln(w, roff(l))
		}
	}
	if inNF {
		fmt.Fprintln(w, ".fi")
	}
}

// writeBashCompletion writes a completion function for bash: commands,
// a group's subcommands, each command's flags as --name, and file names
// for anything else (flag values included: most are files).
func writeBashCompletion(w io.Writer, docs []cmdDoc) {
	var top []string
	for _, d := range docs {
		if !strings.Contains(d.path, " ") {
			top = append(top, d.path)
		}
	}
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p(`# bash completion for cardwright(1), generated by "cardwright gendoc" from the`)
	p(`# command table; do not edit.`)
	p(``)
	p(`_cardwright() {`)
	p(`    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}`)
	p(`    local cmd=${COMP_WORDS[1]} path flags=`)
	p(`    COMPREPLY=()`)
	p(`    if [[ $COMP_CWORD -eq 1 ]]; then`)
	p(`        COMPREPLY=($(compgen -W '%s' -- "$cur"))`, strings.Join(top, " "))
	p(`        return`)
	p(`    fi`)
	p(`    path=$cmd`)
	p(`    case $cmd in`)
	for _, d := range docs {
		if len(d.subs) > 0 {
			p(`    %s)`, d.path)
			p(`        if [[ $COMP_CWORD -eq 2 ]]; then`)
			p(`            COMPREPLY=($(compgen -W '%s help' -- "$cur"))`, strings.Join(d.subs, " "))
			p(`            return`)
			p(`        fi`)
			p(`        path="$cmd ${COMP_WORDS[2]}" ;;`)
		}
	}
	p(`    esac`)
	p(`    case $path in`)
	for _, d := range docs {
		if len(d.flags) == 0 {
			continue
		}
		var all []string
		for _, f := range d.flags {
			all = append(all, "--"+f.name)
		}
		p(`    %q) flags='%s --help' ;;`, d.path, strings.Join(all, " "))
	}
	p(`    esac`)
	p(`    if [[ $cur == -* ]]; then`)
	p(`        COMPREPLY=($(compgen -W "$flags" -- "$cur"))`)
	p(`    else`)
	p(`        compopt -o filenames 2>/dev/null`)
	p(`        COMPREPLY=($(compgen -f -- "$cur"))`)
	p(`    fi`)
	p(`}`)
	p(`complete -F _cardwright cardwright`)
}
