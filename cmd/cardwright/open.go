package main

// open.go: 'cardwright open URI', the handler of the cardwright: URI
// scheme (spec/installer.md, "URI scheme"; the .desktop entry and the
// Windows registry run it with the URI). It brings the running desktop app
// forward (the agent's POST /v1/raise) or starts 'cardwright desktop'.
//
// The URI is untrusted input — any web page can link to it. Nothing in it
// is used: it must be a well-formed cardwright: URI of bounded length, and
// everything after the scheme is ignored. It never becomes a job, a file
// name, an option, or an argument of another process.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/config"
)

var openCmd = &command{
	name:    "open",
	args:    "URI",
	summary: "handle a cardwright: URI: bring the desktop app forward, or start it",
	detail: `The handler of the cardwright: URI scheme. When the desktop app runs (an agent answers
/v1/health on the configured [server] listen address, or its fallback ports), it shows its
status window in front; otherwise 'cardwright desktop' is started in the background. The URI
is untrusted: only its scheme is checked (cardwright:, at most 2048 bytes, no control
characters); the rest is ignored.`,
}

func init() {
	openCmd.run = runOpen
	register(openCmd)
}

// maxOpenURI bounds the URI: browsers cap theirs near 2 MB, ours need
// nothing beyond the scheme.
const maxOpenURI = 2048

// errOpenURI is every refusal of a URI.
var errOpenURI = errors.New("not a cardwright: URI")

// checkOpenURI accepts s when it is a cardwright: URI, and returns how
// many bytes after the scheme are ignored. A refusal describes s without
// echoing it beyond a short, escaped prefix.
func checkOpenURI(s string) (ignored int, err error) {
	switch {
	case len(s) > maxOpenURI:
		return 0, fmt.Errorf("%w: %d bytes, at most %d are taken (starts %s)", errOpenURI, len(s), maxOpenURI, preview(s))
	case !utf8.ValidString(s):
		return 0, fmt.Errorf("%w: not UTF-8 (starts %s)", errOpenURI, preview(s))
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return 0, fmt.Errorf("%w: it holds control characters (starts %s)", errOpenURI, preview(s))
	}
	u, err := url.Parse(s)
	if err != nil {
		return 0, fmt.Errorf("%w: it does not parse (starts %s)", errOpenURI, preview(s))
	}
	if u.Scheme != "cardwright" { // url.Parse lowers the scheme
		return 0, fmt.Errorf("%w: scheme %s (starts %s)", errOpenURI, preview(u.Scheme), preview(s))
	}
	return len(s) - len("cardwright:"), nil
}

// preview is the first bytes of s, quoted with Go escapes, for messages.
func preview(s string) string {
	const n = 40
	if len(s) <= n {
		return strconv.QuoteToASCII(s)
	}
	return strconv.QuoteToASCII(s[:n]) + "…"
}

func runOpen(ctx context.Context, env *cmdEnv, args []string) int {
	fs := openCmd.flags(env)
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return fs.usageError("want one URI, got %d arguments", fs.NArg())
	}
	cfg, err := config.Load(env.getenv(config.EnvVar))
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright open: loading configuration: %v\n", err)
		return exitFailure
	}
	o := &opener{env: env, addrs: agentAddrs(cfg.Listen), start: startDesktopDetached}
	return o.open(ctx, fs.Arg(0))
}

// agentAddrs are where a desktop agent may listen: the configured address,
// and on the default port the fallback ports it moves to when that one is
// taken.
func agentAddrs(listen string) []string {
	addrs := []string{listen}
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port != strconv.Itoa(agent.DefaultPort) {
		return addrs
	}
	for _, p := range agent.FallbackPorts {
		addrs = append(addrs, net.JoinHostPort(host, strconv.Itoa(p)))
	}
	return addrs
}

// opener is 'cardwright open' after the URI's checks' inputs are known.
type opener struct {
	env   *cmdEnv
	addrs []string     // agent addresses to probe, in order
	start func() error // starts 'cardwright desktop' in the background
}

func (o *opener) open(ctx context.Context, uri string) int {
	ignored, err := checkOpenURI(uri)
	if err != nil {
		fmt.Fprintf(o.env.stderr, "cardwright open: refused: %v\n", err)
		return exitFailure
	}
	if ignored > 0 {
		fmt.Fprintf(o.env.stderr, "cardwright open: ignoring the %d bytes after \"cardwright:\"\n", ignored)
	}
	client := &http.Client{Timeout: 3 * time.Second}
	for _, addr := range o.addrs {
		if !isAgent(ctx, client, addr) {
			continue
		}
		return o.raise(ctx, client, addr)
	}
	if !hasGUI {
		fmt.Fprintln(o.env.stderr, "cardwright open: no agent runs and this build has no desktop app (built with -tags nogui)")
		return exitFailure
	}
	if err := o.start(); err != nil {
		fmt.Fprintf(o.env.stderr, "cardwright open: starting the desktop app: %v\n", err)
		return exitFailure
	}
	fmt.Fprintln(o.env.stderr, "cardwright open: started the desktop app")
	return exitOK
}

// isAgent reports whether a cardwright agent answers /v1/health on addr.
func isAgent(ctx context.Context, client *http.Client, addr string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/health", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var h struct{ Agent string }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&h) != nil {
		return false
	}
	return strings.HasPrefix(h.Agent, "cardwright/")
}

// raise asks the agent on addr to bring its desktop app forward. The
// request carries no Origin: the agent refuses any that does.
func (o *opener) raise(ctx context.Context, client *http.Client, addr string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/raise", nil)
	if err != nil {
		fmt.Fprintf(o.env.stderr, "cardwright open: %v\n", err)
		return exitFailure
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(o.env.stderr, "cardwright open: asking the agent on %s to show its window: %v\n", addr, err)
		return exitFailure
	}
	defer resp.Body.Close()
	var body struct{ Status, Error, Message string }
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	switch {
	case resp.StatusCode == http.StatusOK:
		fmt.Fprintf(o.env.stderr, "cardwright open: the desktop app of the agent on %s is in front\n", addr)
		return exitOK
	case body.Error == agent.RaiseNoDesktop:
		fmt.Fprintf(o.env.stderr, "cardwright open: the agent on %s runs headless (cardwright serve or the service): it has no desktop app to show\n", addr)
	case body.Message != "":
		fmt.Fprintf(o.env.stderr, "cardwright open: the agent on %s: %s\n", addr, body.Message)
	default:
		fmt.Fprintf(o.env.stderr, "cardwright open: the agent on %s answered %s\n", addr, resp.Status)
	}
	return exitFailure
}

// desktopCommand is the desktop app started in the background: exe's
// 'desktop' command and nothing else (no part of the URI), its standard
// input, output and error the null device (os/exec's nil), in a session
// or process group of its own (detachedAttr) so it outlives whoever ran
// 'open' and their terminal.
func desktopCommand(exe string) *exec.Cmd {
	cmd := exec.Command(exe, "desktop")
	cmd.SysProcAttr = detachedAttr()
	return cmd
}

// startDesktopDetached starts 'cardwright desktop' and does not wait for
// it to be up.
func startDesktopDetached() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this executable: %w", err)
	}
	cmd := desktopCommand(exe)
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait() // reaped if it ends before we do
	return nil
}
