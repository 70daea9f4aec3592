package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/cardwright/cardwright/certfilter"
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/secret"
	"github.com/cardwright/cardwright/signing"
	"github.com/cardwright/cardwright/signing/p11store"
)

var signCmd = &command{
	name: "sign",
	args: `[--filter FILE.json] [--cert-id HEX] (--data FILE | --digest HEX --alg ALG | --origin ORIGIN --nonce NONCE)
                      [--alg ALG] [--module PATH]... [--config FILE]`,
	summary: "sign data, a digest or an authentication challenge with a token key (diagnostic)",
	detail: `Signs with the key of the one certificate that --filter and --cert-id select on the tokens of the
configured modules and prints the signature in base64 (ECDSA as ASN.1); with --origin and --nonce
prints the authentication token JSON instead (docs/signing.md). The PIN comes from $` + pinEnv + `,
else from the terminal (or one line of standard input when it is not a terminal).
Exit status: 0 signed, 1 signing failed, 2 usage.`,
}

func init() {
	signCmd.run = runSign
	register(signCmd)
}

// pinEnv is the environment variable the sign command takes the PIN from
// before asking on the terminal.
const pinEnv = "CARDWRIGHT_PIN"

func runSign(ctx context.Context, env *cmdEnv, args []string) int {
	fs := signCmd.flags(env)
	filterFile := fs.String("filter", "", "certificate filter `FILE` (JSON) choosing the certificate")
	certID := fs.String("cert-id", "", "the key's CKA_ID in `HEX` (key.id of 'cardwright certs')")
	dataFile := fs.String("data", "", "sign the contents of `FILE`")
	digestHex := fs.String("digest", "", "sign this precomputed digest (`HEX`); needs --alg")
	algName := fs.String("alg", "", "`ALG`orithm: RS256|RS384|RS512|PS256|PS384|PS512|ES256|ES384|ES512 (default: from the key)")
	origin := fs.String("origin", "", "answer an authentication challenge for `ORIGIN` (with --nonce) and print the token")
	nonce := fs.String("nonce", "", "the challenge `NONCE` (base64, at least 32 bytes) for --origin")
	var modules listFlag
	fs.Var(&modules, "module", "PKCS#11 module `PATH`, besides the configured ones; repeatable")
	cfgPath := fs.String("config", "", "configuration `FILE` (default: $CARDWRIGHT_CONFIG, then the standard locations)")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(env.stderr, "cardwright sign: "+format+"\n", a...)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	auth := *origin != "" || *nonce != ""
	modes := 0
	for _, set := range []bool{*dataFile != "", *digestHex != "", auth} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		return usageErr("give exactly one of --data, --digest, or --origin with --nonce")
	}

	var sel signing.Selector
	if *filterFile != "" {
		src, err := os.ReadFile(*filterFile)
		if err != nil {
			return usageErr("reading the filter: %v", err)
		}
		if sel.Filter, err = certfilter.Parse(src); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				fmt.Fprintf(env.stderr, "%s:%s\n", *filterFile, line)
			}
			return exitUsage
		}
	}
	if *certID != "" {
		id, err := hex.DecodeString(strings.ReplaceAll(*certID, ":", ""))
		if err != nil || len(id) == 0 {
			return usageErr("--cert-id %q is not hex", *certID)
		}
		sel.KeyID = id
	}
	var alg signing.Algorithm
	if *algName != "" {
		var err error
		if alg, err = signing.ParseAlgorithm(*algName); err != nil {
			return usageErr("%v", err)
		}
	}
	var req signing.Request
	switch {
	case *dataFile != "":
		data, err := os.ReadFile(*dataFile)
		if err != nil {
			return usageErr("reading the data: %v", err)
		}
		req = signing.Request{Select: sel, Algorithm: alg, Data: data}
	case *digestHex != "":
		d, err := hex.DecodeString(*digestHex)
		if err != nil {
			return usageErr("--digest is not hex: %v", err)
		}
		req = signing.Request{Select: sel, Algorithm: alg, Digest: d}
	}
	if !auth {
		if err := req.Check(); err != nil {
			return usageErr("%v", err)
		}
	} else {
		if _, err := signing.CanonicalOrigin(*origin); err != nil {
			return usageErr("%v", err)
		}
		if err := signing.CheckNonce(*nonce); err != nil {
			return usageErr("%v", err)
		}
	}

	mods, err := signModules(env, *cfgPath, modules)
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright sign: %v\n", err)
		return exitFailure
	}
	store := p11store.New(mods...)
	p := &cliPIN{env: env}
	if auth {
		tok, err := signing.Authenticate(ctx, store, p, signing.AuthRequest{Select: sel, Algorithm: alg, Origin: *origin, Nonce: *nonce})
		if err != nil {
			return signFailed(ctx, env, store, sel, err)
		}
		fmt.Fprintf(env.stdout, "%s\n", tok.Marshal())
		if cert, err := x509.ParseCertificate(tok.Certificate); err == nil {
			fmt.Fprintf(env.stderr, "authentication token for %s by %q (%s)\n", *origin, cert.Subject.CommonName, tok.Algorithm)
		}
		return exitOK
	}
	res, err := signing.Sign(ctx, store, p, req)
	if err != nil {
		return signFailed(ctx, env, store, sel, err)
	}
	fmt.Fprintln(env.stdout, base64.StdEncoding.EncodeToString(res.Signature))
	fmt.Fprintf(env.stderr, "signed with %s (%s)\n", res.Candidate, res.Algorithm)
	return exitOK
}

// signFailed reports a signing error with its wire code; when several
// certificates match it lists them so the operator can narrow the choice.
func signFailed(ctx context.Context, env *cmdEnv, store signing.Store, sel signing.Selector, err error) int {
	fmt.Fprintf(env.stderr, "cardwright sign: %s: %v\n", signing.Code(err), err)
	if errors.Is(err, signing.ErrAmbiguous) {
		if cands, lerr := signing.List(ctx, store, sel); lerr == nil {
			for _, c := range cands {
				fmt.Fprintf(env.stderr, "  %s\n", c)
			}
		}
		fmt.Fprintln(env.stderr, "narrow the choice with --filter or --cert-id")
	}
	return exitFailure
}

// signModules loads the configured modules and those named with --module
// (naming one on the command line allows it).
func signModules(env *cmdEnv, cfgPath string, extra []string) ([]*p11.Module, error) {
	var paths []string
	allowed := map[string]bool{}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		if len(extra) == 0 {
			return nil, err
		}
		fmt.Fprintf(env.stderr, "cardwright sign: %v (continuing with --module)\n", err)
	} else {
		for _, m := range cfg.Modules {
			paths, allowed[m] = append(paths, m), true
		}
	}
	for _, m := range extra {
		if !allowed[m] {
			paths, allowed[m] = append(paths, m), true
		}
	}
	if len(paths) == 0 {
		return nil, errors.New("no PKCS#11 module configured: add one under [pkcs11] module in the configuration or name one with --module")
	}
	var mods []*p11.Module
	for _, path := range paths {
		m, err := p11.Load(path, func(p string) bool { return allowed[p] })
		if err != nil {
			fmt.Fprintf(env.stderr, "cardwright sign: loading module %s: %v\n", path, err)
			continue
		}
		mods = append(mods, m)
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("no module could be loaded (%d tried)", len(paths))
	}
	return mods, nil
}

// cliPIN is the sign command's Prompter: $CARDWRIGHT_PIN, else the
// terminal without echo, else one line of a non-terminal standard input.
type cliPIN struct {
	env *cmdEnv
}

// Ask implements prompt.Prompter.
func (p *cliPIN) Ask(ctx context.Context, req prompt.Request) (prompt.Answer, error) {
	v, err := p.pin(req)
	return prompt.Answer{PIN: v}, err
}

func (p *cliPIN) pin(req prompt.Request) (secret.Value, error) {
	if v := p.env.getenv(pinEnv); v != "" {
		return secret.New(v), nil
	}
	if f, ok := p.env.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(p.env.stderr, "%s: ", req.Label)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(p.env.stderr)
		if err != nil {
			return secret.Value{}, fmt.Errorf("reading the PIN: %w", err)
		}
		v := secret.FromBytes(b)
		clear(b)
		if v.IsZero() {
			return v, prompt.ErrRefused
		}
		return v, nil
	}
	if p.env.stdin == nil {
		return secret.Value{}, prompt.ErrUnavailable
	}
	fmt.Fprintf(p.env.stderr, "%s: reading it from standard input\n", req.Label)
	line, err := bufio.NewReader(p.env.stdin).ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		if err != nil {
			return secret.Value{}, fmt.Errorf("%w: no PIN on standard input", prompt.ErrRefused)
		}
		return secret.Value{}, prompt.ErrRefused
	}
	return secret.New(line), nil
}
