package main

// `cardwright selftest` (spec/station.md "Self-test"): wires the real
// adapters (PC/SC, PKCS#11, the journal) to package selftest and prints
// its report. serve wires the same for /v1/health?full=1.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/journal"
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/secret"
	"github.com/cardwright/cardwright/selftest"
	"github.com/cardwright/cardwright/selftest/p11probe"
	"github.com/cardwright/cardwright/selftest/pcscprobe"
)

var selftestCmd = &command{
	name:    "selftest",
	args:    "[--config FILE] [--json] [--keygen ec|rsa2048|off] [--token LABEL] [--pin-file FILE | --pin-env VAR]",
	summary: "check the station: readers, cards and their dialects, PKCS#11 modules and tokens, a key generation per token, journal, port, TLS certificate",
	detail: `Readers named in [readers] expect must be present; each card's ATR must map to a
dialect ([dialects] keys that are ATR patterns); every [pkcs11] module must load and
show the tokens [tokens] names; on each token an EC P-256 (or RSA-2048) key pair is
generated as session objects and destroyed, and timed. A token that wants a login is
skipped unless a user PIN is given with --pin-file or --pin-env (it is never prompted
for, printed or logged; with several tokens name one with --token, since a wrong PIN
counts against each token's retry counter). The journal folder must be writable, the
listen port free or served by a running agent, the TLS certificate valid for 30 days
more. Exit status 0 when nothing failed (warnings allowed), 1 otherwise, 2 usage.
When the agent at the listen address has jobs running, tokens that stand for a
reader's card ([tokens], or the reader named in the slot description) are skipped:
this process cannot see which readers the jobs hold. The running agent answers the
same report at /v1/health?full=1 (with a key generation on idle tokens only when
&keygen=1 is added).`,
}

func init() {
	selftestCmd.run = runSelftest
	register(selftestCmd)
}

func runSelftest(ctx context.Context, env *cmdEnv, args []string) int {
	fs := selftestCmd.flags(env)
	cfgPath := fs.String("config", "", "configuration `file` (default: $CARDWRIGHT_CONFIG, then the system and per-user files)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	keygen := fs.String("keygen", "ec", "key pair timed on each token: `ec` (P-256), rsa2048 or off")
	token := fs.String("token", "", "time the key generation on the token with this `label` only")
	pinFile := fs.String("pin-file", "", "read the tokens' user PIN from `FILE` (first line)")
	pinEnv := fs.String("pin-env", "", "read the tokens' user PIN from environment variable `VAR`")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	kg, err := selftest.ParseKeygen(*keygen)
	if err != nil {
		return fs.usageError("--keygen: %v", err)
	}
	if *pinFile != "" && *pinEnv != "" {
		return fs.usageError("--pin-file and --pin-env exclude each other")
	}
	fail := func(err error) int {
		fmt.Fprintf(env.stderr, "cardwright selftest: %v\n", err)
		return exitFailure
	}
	pin, err := selftestPIN(env, *pinFile, *pinEnv)
	if err != nil {
		return fail(err)
	}
	defer pin.Wipe()
	path := *cfgPath
	if path == "" {
		path = env.getenv(config.EnvVar)
	}
	cfg, err := config.Load(path)
	if err != nil {
		return fail(fmt.Errorf("loading configuration: %w", err))
	}
	o := selftestOptions(env, cfg)
	o.Keygen, o.PIN, o.Token = kg, pin, *token
	rep := selftest.Run(ctx, o, selftestPorts(cfg))
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fail(err)
		}
	} else {
		where := strings.Join(cfg.Sources, ", ")
		if where == "" {
			where = "built-in defaults"
		}
		fmt.Fprintf(env.stdout, "cardwright %s self-test (configuration: %s)\n", version, where)
		if err := rep.WriteText(env.stdout); err != nil {
			return fail(err)
		}
	}
	if !rep.OK() {
		return exitFailure
	}
	return exitOK
}

// selftestPIN reads the PIN a technician gives for the key generation.
func selftestPIN(env *cmdEnv, file, envVar string) (secret.Value, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return secret.Value{}, fmt.Errorf("reading the PIN file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		clear(b)
		pin := secret.New(strings.TrimRight(line, "\r"))
		if pin.IsZero() {
			return pin, fmt.Errorf("reading the PIN file %s: empty", file)
		}
		return pin, nil
	case envVar != "":
		v := env.getenv(envVar)
		if v == "" {
			return secret.Value{}, fmt.Errorf("--pin-env %s: the variable is not set or empty", envVar)
		}
		return secret.New(v), nil
	}
	return secret.Value{}, nil
}

// selftestOptions is what the configuration says a station must have.
func selftestOptions(env *cmdEnv, cfg *config.Config) selftest.Options {
	o := selftest.Options{
		Expect:     cfg.ReaderExpect,
		Skip:       cfg.SkipReader,
		Dialects:   cfg.Dialects,
		Modules:    cfg.Modules,
		Allowed:    cfg.ModuleAllowed,
		JournalDir: journalDir(env, cfg.Journal),
		Listen:     cfg.Listen,
		TLSCert:    cfg.TLSCert,
		TLSKey:     cfg.TLSKey,
	}
	for _, t := range cfg.Tokens {
		o.Tokens = append(o.Tokens, selftest.TokenRef{Reader: t.Reader.String(), Match: t.Reader.MatchString, Module: t.Module, Label: t.Label})
	}
	return o
}

// selftestPorts are the real adapters.
func selftestPorts(cfg *config.Config) selftest.Ports {
	return selftest.Ports{
		Readers: pcscprobe.Readers{},
		Modules: p11probe.Modules{Allow: cfg.ModuleAllowed},
		Journal: journal.Probe,
	}
}

// agentSelfTest is the self-test /v1/health?full=1 runs inside serve: the
// journal is open in this agent and the port is its own. Only with
// &keygen=1 is an EC key pair timed, on tokens that need no login (no PIN
// reaches the agent for it), that stand for no reader a job holds (busy,
// the Engine's reader locks; nil: the fake runner touches nothing), and
// whose p11store lock is free (tokenLock; nil: no certificate service).
func agentSelfTest(env *cmdEnv, cfg *config.Config, journalDir string, busy func(string) bool, tokenLock func(module, serial string) (func(), bool)) agent.SelfTest {
	o := selftestOptions(env, cfg)
	o.JournalDir, o.InAgent = journalDir, true
	o.Busy, o.TryLock = busy, tokenLock
	ports := selftestPorts(cfg)
	return func(ctx context.Context, req agent.SelfTestRequest) (any, bool) {
		o := o
		o.Keygen = selftest.KeygenOff
		if req.Keygen {
			o.Keygen = selftest.KeygenEC
		}
		rep := selftest.Run(ctx, o, ports)
		return rep, rep.OK()
	}
}
