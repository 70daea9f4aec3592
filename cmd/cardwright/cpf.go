package main

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/cpf"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/pcsc"
	"github.com/cardwright/cardwright/secret"
)

var (
	cpfRunCmd = &command{
		name: "run",
		args: `--reader NAME [--param NAME=BASE64]... [--secret-env SEC_X=VAR]...
                      [--pin-cert FILE] [--model MODEL=DIALECT]... [--dry-run] [--transcript] FILE.cpf`,
		summary: "compile, prepare and execute a card profile on the card in a reader",
		detail: `Compiles the profile, prepares every APDU (all errors without a card come first),
then executes it. Generated secrets are never printed.`,
	}
	cpfEraseCmd = &command{
		name:    "erase",
		args:    "--reader NAME [--pin-env VAR] [--puk-env VAR]",
		summary: "erase the profile of the card in a reader (DeleteProfile)",
	}
	cpfCmd = &command{
		name:    "cpf",
		summary: "run a card profile (.cpf) on a card, or erase a card's profile",
		subs:    []*command{cpfRunCmd, cpfEraseCmd},
	}
)

func init() {
	cpfRunCmd.run, cpfEraseCmd.run = runCPFRun, runCPFErase
	register(cpfCmd)
}

// cpfList is a repeatable flag.
type cpfList []string

func (l *cpfList) String() string     { return strings.Join(*l, ",") }
func (l *cpfList) Set(v string) error { *l = append(*l, v); return nil }

func runCPFRun(ctx context.Context, env *cmdEnv, args []string) int {
	fs := cpfRunCmd.flags(env)
	reader := fs.String("reader", "", "PC/SC reader `NAME` of the card")
	var params, secrets, models cpfList
	fs.Var(&params, "param", "profile parameter `NAME=BASE64` (as ProfileParameters passes it); repeatable")
	fs.Var(&secrets, "secret-env", "take SEC_X from environment variable VAR: `SEC_X=VAR`; repeatable")
	fs.Var(&models, "model", "map a card model to a dialect: `MODEL=DIALECT`; repeatable, added to the configuration's [dialects]")
	pinCert := fs.String("pin-cert", "", "PIN-encryption certificate `FILE` (PEM or DER) for PERSINFO_ENCRYPT_SEC(); default: the configuration's")
	dryRun := fs.Bool("dry-run", false, "execute on the in-memory card instead of a reader")
	transcript := fs.Bool("transcript", false, "print every APDU and response (secrets masked)")
	cfgPath := fs.String("config", "", "configuration `FILE` (default: $CARDWRIGHT_CONFIG, then the standard locations)")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(env.stderr, "cardwright cpf run: give exactly one profile file")
		return exitUsage
	}
	if *reader == "" && !*dryRun {
		fmt.Fprintln(env.stderr, "cardwright cpf run: --reader NAME is required (or --dry-run)")
		return exitUsage
	}
	file := fs.Arg(0)
	fail := func(format string, a ...any) int {
		fmt.Fprintf(env.stderr, "cardwright cpf run: "+format+"\n", a...)
		return exitFailure
	}

	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return fail("%v", err)
	}
	ccfg := cpf.Config{Models: map[string]string{}}
	for k, v := range cfg.Dialects {
		ccfg.Models[k] = v
	}
	for _, m := range models {
		k, v, ok := strings.Cut(m, "=")
		if !ok {
			fmt.Fprintf(env.stderr, "cardwright cpf run: --model %q: want MODEL=DIALECT\n", m)
			return exitUsage
		}
		ccfg.Models[k] = v
	}
	if err := ccfg.Validate(); err != nil {
		return fail("%v", err)
	}
	p := cpf.Params{Values: map[string][]byte{}, Secrets: map[string]secret.Value{}}
	for _, kv := range params {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			fmt.Fprintf(env.stderr, "cardwright cpf run: --param %q: want NAME=BASE64\n", kv)
			return exitUsage
		}
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return fail("--param %s: decoding base64: %v", k, err)
		}
		p.Values[k] = b
	}
	for _, kv := range secrets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			fmt.Fprintf(env.stderr, "cardwright cpf run: --secret-env %q: want SEC_X=VAR\n", kv)
			return exitUsage
		}
		val := env.getenv(v)
		if val == "" {
			return fail("--secret-env %s: environment variable %s is empty", k, v)
		}
		p.Secrets[k] = secret.New(val)
	}
	certFile := *pinCert
	if certFile == "" {
		certFile = cfg.PINEncryptionCert
	}
	if certFile != "" {
		if p.PINCert, err = readCertFile(certFile); err != nil {
			return fail("%v", err)
		}
	}

	src, err := os.ReadFile(file)
	if err != nil {
		return fail("%v", err)
	}
	prog, err := cpf.Compile(filepath.Base(file), src, ccfg)
	if err != nil {
		printErrors(env.stderr, err)
		return exitFailure
	}
	plan, err := prog.Prepare(p)
	if err != nil {
		printErrors(env.stderr, err)
		return exitFailure
	}

	var card iso7816.Card
	where := "the in-memory card (dry run)"
	if *dryRun {
		card = memcard.New(memcard.Config{Extended: plan.Dialect.Extended})
	} else {
		pc, err := pcsc.Open()
		if err != nil {
			return fail("%v", err)
		}
		defer pc.Close()
		k, err := pc.Connect(*reader, pcsc.Shared)
		if err != nil {
			return fail("%v", err)
		}
		defer k.Close()
		if err := k.Begin(); err != nil {
			return fail("%v", err)
		}
		defer k.End(true)
		card, where = k, *reader
	}
	res, err := plan.Execute(ctx, card)
	if *transcript && res != nil {
		fmt.Fprint(env.stdout, cpf.Transcript(res.Transcript))
	}
	if err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(env.stdout, "%s: profile executed on %s: %d APDUs, %d secrets generated or used (not shown)\n",
		prog.File, where, res.APDUs, len(plan.Secrets))
	for _, d := range res.Done {
		fmt.Fprintf(env.stdout, "  %s\n", d)
	}
	return exitOK
}

func runCPFErase(ctx context.Context, env *cmdEnv, args []string) int {
	fs := cpfEraseCmd.flags(env)
	reader := fs.String("reader", "", "PC/SC reader `NAME` of the card")
	pinEnv := fs.String("pin-env", "", "log in with PIN1 (reference 81) from environment variable `VAR`")
	pukEnv := fs.String("puk-env", "", "log in with the PUK (reference 84) from environment variable `VAR`; wins over --pin-env")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if *reader == "" {
		return fs.usageError("--reader NAME is required")
	}
	if fs.NArg() != 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	var pin, puk secret.Value
	if *pinEnv != "" {
		pin = secret.New(env.getenv(*pinEnv))
	}
	if *pukEnv != "" {
		puk = secret.New(env.getenv(*pukEnv))
	}
	pc, err := pcsc.Open()
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright cpf erase: %v\n", err)
		return exitFailure
	}
	defer pc.Close()
	k, err := pc.Connect(*reader, pcsc.Shared)
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright cpf erase: %v\n", err)
		return exitFailure
	}
	defer k.Close()
	if err := k.Begin(); err != nil {
		fmt.Fprintf(env.stderr, "cardwright cpf erase: %v\n", err)
		return exitFailure
	}
	defer k.End(true) // reset on the way out: no credential stays verified
	if err := cpf.DeleteProfile(ctx, k, cpf.LoginFor(pin, puk)); err != nil {
		fmt.Fprintf(env.stderr, "cardwright cpf erase: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(env.stdout, "%s: card erased\n", *reader)
	return exitOK
}

// readCertFile reads one certificate, PEM or DER.
func readCertFile(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the PIN-encryption certificate: %w", err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("parsing the PIN-encryption certificate %s: %w", path, err)
	}
	return c, nil
}

// printErrors prints a positioned error list (its Error prints at most
// errlist.Max of them).
func printErrors(w io.Writer, err error) {
	fmt.Fprintln(w, err)
}
