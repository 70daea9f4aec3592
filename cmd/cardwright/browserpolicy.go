package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cardwright/cardwright/browserpolicy"
	"github.com/cardwright/cardwright/config"
)

var (
	browserPolicyInstallCmd = &command{
		name:    "install",
		args:    "[--origin ORIGIN]... [--config FILE]",
		summary: "let the portal origins reach the agent without a local-network prompt (managed browser policy; root or administrator)",
		detail: `Writes, for each installed browser, the managed policy that exempts exactly
these origins from Local Network Access checks towards 127.0.0.1:
Chromium and Google Chrome on Linux: our own file ` + browserpolicy.FileName + `
in /etc/chromium/policies/managed and /etc/opt/chrome/policies/managed
(LoopbackNetworkAllowedForUrls); Firefox: its host names merged into
LocalNetworkAccess.SkipDomains of /etc/firefox/policies/policies.json (other
policies kept); Windows: the HKLM policy lists of Chrome, Edge and Firefox.
Origins default to [server] origin of the configuration. Running it again
with the same origins changes nothing.`,
	}
	browserPolicyUninstallCmd = &command{
		name:    "uninstall",
		args:    "[--config FILE]",
		summary: "take out the policies 'browser-policy install' wrote, and nothing else",
	}
	browserPolicyShowCmd = &command{
		name:    "show",
		args:    "[--origin ORIGIN]... [--config FILE]",
		summary: "say what each browser will do when a portal origin opens the agent's socket",
	}
	browserPolicyCmd = &command{
		name:    "browser-policy",
		summary: "install, uninstall or show the browser policies that let public portals reach the agent (Local Network Access)",
		subs:    []*command{browserPolicyInstallCmd, browserPolicyUninstallCmd, browserPolicyShowCmd},
	}
)

func init() {
	browserPolicyInstallCmd.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		return runBrowserPolicy(env, browserPolicyInstallCmd, args)
	}
	browserPolicyUninstallCmd.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		return runBrowserPolicy(env, browserPolicyUninstallCmd, args)
	}
	browserPolicyShowCmd.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		return runBrowserPolicy(env, browserPolicyShowCmd, args)
	}
	register(browserPolicyCmd)
}

// originList is --origin: repeatable, and one value may hold several origins
// separated by commas or white space, which no origin contains (the MSI passes
// its BROWSER_POLICY_ORIGINS property as one value; installer/windows/README.md).
type originList []string

func (l *originList) String() string { return strings.Join(*l, ",") }

func (l *originList) Set(v string) error {
	f := config.SplitOrigins(v)
	if len(f) == 0 {
		return errors.New("no origin in the value")
	}
	*l = append(*l, f...)
	return nil
}

func runBrowserPolicy(env *cmdEnv, c *command, args []string) int {
	fs := c.flags(env)
	var origins originList
	if c != browserPolicyUninstallCmd {
		fs.Var(&origins, "origin", "portal `origin` https://host[:port] (repeatable, or several separated by commas or spaces; default: [server] origin of the configuration)")
	}
	cfgPath := fs.String("config", "", "configuration `file` (default: $CARDWRIGHT_CONFIG, then the system and per-user files)")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	fail := func(err error) int {
		fmt.Fprintf(env.stderr, "cardwright browser-policy %s: %v\n", c.name, err)
		return exitFailure
	}
	if c != browserPolicyUninstallCmd && len(origins) == 0 {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return fail(err)
		}
		origins = cfg.AllowedOrigins
	}
	for _, o := range origins {
		if err := config.CheckOrigin(o); err != nil {
			return fs.usageError("--origin: %v", err)
		}
	}
	code := exitOK
	for _, t := range browserpolicy.Targets() {
		switch c {
		case browserPolicyInstallCmd, browserPolicyUninstallCmd:
			// Only browsers that are here: no policy folders for absent ones.
			if !t.Installed() {
				continue
			}
			var changed bool
			var err error
			if c == browserPolicyInstallCmd {
				changed, err = browserpolicy.Install(t, origins)
			} else {
				changed, err = browserpolicy.Uninstall(t)
			}
			if err != nil {
				fmt.Fprintf(env.stderr, "cardwright browser-policy %s: %s: %v\n", c.name, t.Browser, err)
				code = exitFailure
				continue
			}
			state := "unchanged"
			if changed {
				state = c.name + "ed"
			}
			fmt.Fprintf(env.stdout, "%s: %s (%s)\n", t.Browser, state, t.Path)
		default:
			st, err := browserpolicy.Inspect(t)
			installed := "installed"
			if !st.Installed {
				installed = "not installed"
			}
			fmt.Fprintf(env.stdout, "%s (%s), %s\n", t.Browser, installed, t.Path)
			if err != nil {
				fmt.Fprintf(env.stdout, "  cannot read the policy: %v\n", err)
				code = exitFailure
				continue
			}
			for _, o := range st.Others {
				fmt.Fprintf(env.stdout, "  also set by an administrator: %s\n", o)
			}
			if len(origins) == 0 {
				fmt.Fprintln(env.stdout, "  no portal origin configured ([server] origin, --origin)")
			}
			for _, o := range origins {
				fmt.Fprintf(env.stdout, "  %s: %s\n", o, st.Verdict(o))
			}
		}
	}
	return code
}
