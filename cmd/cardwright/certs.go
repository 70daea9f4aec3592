package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cardwright/cardwright/certfilter"
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/p11"
)

var certsCmd = &command{
	name:    "certs",
	args:    "[--filter FILE.json] [--json] [--cert FILE]... [--module PATH]... [--config FILE]",
	summary: "list the certificates a certificate filter selects",
	detail: `Lists the certificates (with their key and token facts) that the filter selects: from the
given files with --cert, else from every token of the configured PKCS#11 modules.
Exit status: 0 something matches, 1 nothing matches or listing failed, 2 malformed filter or usage.`,
}

func init() {
	certsCmd.run = runCerts
	register(certsCmd)
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// certSource is one candidate with where it came from.
type certSource struct {
	Source string `json:"source"`
	c      *certfilter.Candidate
}

func (s certSource) MarshalJSON() ([]byte, error) {
	facts, err := s.c.MarshalJSON()
	if err != nil {
		return nil, err
	}
	src, _ := json.Marshal(s.Source)
	return []byte(`{"source":` + string(src) + `,"facts":` + string(facts) + `}`), nil
}

func runCerts(_ context.Context, env *cmdEnv, args []string) int {
	fs := certsCmd.flags(env)
	filterFile := fs.String("filter", "", "certificate filter `FILE` (JSON); without it every certificate matches")
	asJSON := fs.Bool("json", false, "print the matches as a JSON list")
	var certFiles, modules listFlag
	fs.Var(&certFiles, "cert", "evaluate the certificates in `FILE` (PEM or DER) instead of the tokens; repeatable")
	fs.Var(&modules, "module", "PKCS#11 module `PATH` to list tokens from, besides the configured ones; repeatable")
	cfgPath := fs.String("config", "", "configuration `FILE` (default: $CARDWRIGHT_CONFIG, then the standard locations)")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.stderr, "cardwright certs: unexpected argument %q (certificate files go with --cert)\n", fs.Arg(0))
		return exitUsage
	}

	var filter *certfilter.Filter
	if *filterFile != "" {
		data, err := os.ReadFile(*filterFile)
		if err != nil {
			fmt.Fprintf(env.stderr, "cardwright certs: reading the filter: %v\n", err)
			return exitUsage
		}
		filter, err = certfilter.Parse(data)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				fmt.Fprintf(env.stderr, "%s:%s\n", *filterFile, line)
			}
			return exitUsage
		}
	}

	var cands []certSource
	var err error
	if len(certFiles) > 0 {
		cands, err = fileCandidates(certFiles)
	} else {
		cands, err = tokenCandidates(env, *cfgPath, modules)
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright certs: %v\n", err)
		return exitFailure
	}

	var matches []certSource
	for _, c := range cands {
		if filter.Match(c.c) {
			matches = append(matches, c)
		}
	}
	if *asJSON {
		if matches == nil {
			matches = []certSource{}
		}
		out, err := json.MarshalIndent(matches, "", "  ")
		if err != nil {
			fmt.Fprintf(env.stderr, "cardwright certs: %v\n", err)
			return exitFailure
		}
		fmt.Fprintf(env.stdout, "%s\n", out)
	} else {
		for i, m := range matches {
			if i > 0 {
				fmt.Fprintln(env.stdout)
			}
			printFacts(env.stdout, m)
		}
	}
	fmt.Fprintf(env.stderr, "%d of %d certificates match\n", len(matches), len(cands))
	if len(matches) == 0 {
		return exitFailure
	}
	return exitOK
}

// printFacts writes a candidate's source and its facts, one per line in
// param order; the public key is shortened (--json gives it whole).
func printFacts(w io.Writer, s certSource) {
	fmt.Fprintln(w, s.Source)
	for _, p := range certfilter.Params() {
		vals, _ := s.c.Values(p)
		if len(vals) == 0 {
			continue
		}
		v := strings.Join(vals, "; ")
		if p == "key.publickey" && len(v) > 44 {
			v = v[:40] + "…"
		}
		fmt.Fprintf(w, "  %-18s %s\n", p, v)
	}
}

// fileCandidates reads certificates from PEM or DER files: key facts come
// from each certificate's public key, token facts are empty.
func fileCandidates(files []string) ([]certSource, error) {
	var out []certSource
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading certificates: %w", err)
		}
		certs, err := parseCertificates(data)
		if err != nil {
			return nil, fmt.Errorf("reading certificates from %s: %w", f, err)
		}
		for i, c := range certs {
			src := f
			if len(certs) > 1 {
				src = fmt.Sprintf("%s #%d", f, i+1)
			}
			out = append(out, certSource{Source: src, c: certfilter.NewCandidate(c, certfilter.KeyRef{}, certfilter.Token{})})
		}
	}
	return out, nil
}

// parseCertificates accepts PEM (every CERTIFICATE block; other blocks
// are skipped) or DER (one or more certificates back to back).
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest, sawPEM := data, false
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		sawPEM = true
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing PEM certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if sawPEM {
		if len(certs) == 0 {
			return nil, errors.New("no CERTIFICATE block in the PEM file")
		}
		return certs, nil
	}
	// DER is binary: a signature may end in a byte that looks like white
	// space, so nothing is trimmed.
	certs, err := x509.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("parsing DER: %w", err)
	}
	if len(certs) == 0 {
		return nil, errors.New("empty file")
	}
	return certs, nil
}

// tokenCandidates lists the certificates on every present token of the
// configured modules and of the modules named with --module (an operator
// naming a module on the command line allows it). No login happens, so
// the keys are matched by the certificate's CKA_ID (PKCS#11 v2.40 §4.6.3)
// and private keys a token hides until login are not checked for.
func tokenCandidates(env *cmdEnv, cfgPath string, extra []string) ([]certSource, error) {
	var paths []string
	allowed := map[string]bool{}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		if len(extra) == 0 {
			return nil, err
		}
		fmt.Fprintf(env.stderr, "cardwright certs: %v (continuing with --module)\n", err)
	} else {
		for _, m := range cfg.Modules {
			paths = append(paths, m)
			allowed[m] = true
		}
	}
	for _, m := range extra {
		if !allowed[m] {
			paths = append(paths, m)
			allowed[m] = true
		}
	}
	if len(paths) == 0 {
		return nil, errors.New("no PKCS#11 module configured: add one under [pkcs11] module in the configuration, name one with --module, or test the filter on certificate files with --cert")
	}
	var out []certSource
	var failed []error
	for _, path := range paths {
		got, err := moduleCandidates(env, path, func(p string) bool { return allowed[p] })
		if err != nil {
			fmt.Fprintf(env.stderr, "cardwright certs: %v\n", err)
			failed = append(failed, err)
			continue
		}
		out = append(out, got...)
	}
	if len(failed) == len(paths) {
		return nil, fmt.Errorf("no module could be listed (%d tried)", len(paths))
	}
	return out, nil
}

// moduleCandidates lists one module's tokens. An uninitialised token (a
// free SoftHSM slot) has nothing to list; a token that cannot be read is
// reported on stderr and skipped.
func moduleCandidates(env *cmdEnv, path string, allow func(string) bool) ([]certSource, error) {
	m, err := p11.Load(path, allow)
	if err != nil {
		return nil, fmt.Errorf("loading module %s: %w", path, err)
	}
	toks, err := m.Tokens()
	if err != nil {
		return nil, fmt.Errorf("listing tokens of %s: %w", path, err)
	}
	var out []certSource
	for _, t := range toks {
		info := t.Info()
		if !info.Initialized() {
			continue
		}
		s, err := t.Open()
		if err != nil {
			fmt.Fprintf(env.stderr, "cardwright certs: skipping token %q: %v\n", info.Label, err)
			continue
		}
		entries, err := s.Certificates()
		s.Close()
		if err != nil {
			fmt.Fprintf(env.stderr, "cardwright certs: skipping token %q: listing certificates: %v\n", info.Label, err)
			continue
		}
		tok := certfilter.Token{ID: info.Serial, Type: certfilter.TokenSmartCard}
		if strings.Contains(strings.ToLower(info.Model), "softhsm") || strings.Contains(strings.ToLower(info.Manufacturer), "softhsm") {
			tok.Type = certfilter.TokenSoftware
		}
		for _, e := range entries {
			if e.Cert == nil {
				continue // not X.509, or unparsable: no facts to test
			}
			label := e.Label
			if e.HasKey {
				label = e.KeyLabel
			}
			src := fmt.Sprintf("token %q (serial %s) certificate %q", info.Label, info.Serial, e.Label)
			out = append(out, certSource{Source: src, c: certfilter.NewCandidate(e.Cert, certfilter.KeyRef{ID: e.ID, Label: label}, tok)})
		}
	}
	return out, nil
}
