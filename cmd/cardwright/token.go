package main

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/secret"
	"golang.org/x/term"
)

// Environment variables that carry secrets to `cardwright token`. PINs
// never come from argv: they would show in ps and shell history.
const (
	envModule      = "CARDWRIGHT_PKCS11_MODULE"
	envPIN         = "CARDWRIGHT_PIN"
	envSOPIN       = "CARDWRIGHT_SO_PIN" // SO PIN, which is the PUK on cards
	envNewPIN      = "CARDWRIGHT_NEW_PIN"
	envNewSOPIN    = "CARDWRIGHT_NEW_SO_PIN"
	envP12Password = "CARDWRIGHT_P12_PASSWORD"
)

type tokenSub struct {
	name, args, summary string
	run                 func(*tokenCmd, *flag.FlagSet, []string) int
	flags               func(*tokenCmd, *flag.FlagSet)
}

var tokenSubs = []tokenSub{
	{"list", "", "list slots and their tokens", (*tokenCmd).list, nil},
	{"info", "", "show the module and the token", (*tokenCmd).info, nil},
	{"init", "--label NEW", "initialise a token (erases it): SO PIN, label, user PIN", (*tokenCmd).init, func(c *tokenCmd, fs *flag.FlagSet) {
		fs.StringVar(&c.label, "label", "", "the token's new label")
		fs.BoolVar(&c.noUserPIN, "no-user-pin", false, "do not set the user PIN")
	}},
	{"set-pin", "[--unblock | --so]", "change the user PIN; unblock it with the PUK; or change the PUK", (*tokenCmd).setPIN, func(c *tokenCmd, fs *flag.FlagSet) {
		fs.BoolVar(&c.unblock, "unblock", false, "set a new user PIN with the PUK (SO PIN)")
		fs.BoolVar(&c.so, "so", false, "change the PUK (SO PIN)")
	}},
	{"keygen", "--type RSA-2048|RSA-3072|RSA-4096|EC-P256|EC-P384 --label L [--id HEX]", "generate a key pair", (*tokenCmd).keygen, func(c *tokenCmd, fs *flag.FlagSet) {
		fs.StringVar(&c.keyType, "type", "RSA-2048", "key type")
		fs.StringVar(&c.label, "label", "", "CKA_LABEL of the key pair")
		fs.StringVar(&c.idHex, "id", "", "CKA_ID in hex (default: SHA-1 of the public key)")
	}},
	{"csr", "(--id HEX | --label L) --subject DN [--out FILE]", "make a PKCS#10 request signed by a token key (PEM)", (*tokenCmd).csr, func(c *tokenCmd, fs *flag.FlagSet) {
		fs.StringVar(&c.label, "label", "", "CKA_LABEL of the key")
		fs.StringVar(&c.idHex, "id", "", "CKA_ID of the key in hex")
		fs.StringVar(&c.subject, "subject", "", `subject, e.g. "CN=Jane Doe,O=Example,C=DE"`)
		fs.StringVar(&c.out, "out", "", "write the request here instead of stdout")
	}},
	{"write-cert", "--cert FILE [--label L] [--id HEX]", "store a certificate with its key's CKA_ID", (*tokenCmd).writeCert, func(c *tokenCmd, fs *flag.FlagSet) {
		fs.StringVar(&c.file, "cert", "", "certificate file, PEM or DER")
		fs.StringVar(&c.label, "label", "", "CKA_LABEL (default: the subject's common name)")
		fs.StringVar(&c.idHex, "id", "", "CKA_ID in hex (default: the matching key's)")
	}},
	{"import-p12", "--file FILE --label L", "import a PKCS#12 key, certificate and chain", (*tokenCmd).importP12, func(c *tokenCmd, fs *flag.FlagSet) {
		fs.StringVar(&c.file, "file", "", "PKCS#12 (.p12, .pfx) file")
		fs.StringVar(&c.label, "label", "", "CKA_LABEL of the key and certificate")
		fs.StringVar(&c.idHex, "id", "", "CKA_ID in hex (default: SHA-1 of the public key)")
	}},
	{"find", "[--login] [--destroy] [CLASS,ATTRIBUTE,TYPE,VALUE ...]", "find objects by criteria (e.g. CKO_CERTIFICATE,CKA_LABEL,STRING,Auth)", (*tokenCmd).find, func(c *tokenCmd, fs *flag.FlagSet) {
		fs.BoolVar(&c.login, "login", false, "log in to see private objects")
		fs.BoolVar(&c.destroy, "destroy", false, "destroy the objects found")
	}},
	{"erase", "--yes", "destroy every object on the token", (*tokenCmd).erase, func(c *tokenCmd, fs *flag.FlagSet) {
		fs.BoolVar(&c.yes, "yes", false, "really erase")
	}},
}

var tokenCommand = &command{
	name:    "token",
	summary: "PKCS#11 token diagnostics and operations (list, init, set-pin, keygen, …)",
	detail: `The module is --module, else $` + envModule + `, else the configuration's [pkcs11] module
when it names exactly one (--config FILE, else $` + config.EnvVar + `, else the standard files).
Secrets come from the environment or a terminal prompt, never from flags:
  ` + envPIN + `, ` + envSOPIN + ` (SO PIN = PUK), ` + envNewPIN + `, ` + envNewSOPIN + `, ` + envP12Password,
}

func init() {
	for i := range tokenSubs {
		sub := &tokenSubs[i]
		c := &command{name: sub.name, args: "[--module PATH] [--token LABEL|SERIAL] [--config FILE] " + sub.args, summary: sub.summary}
		c.run = func(_ context.Context, env *cmdEnv, args []string) int { return runTokenSub(env, c, sub, args) }
		tokenCommand.subs = append(tokenCommand.subs, c)
	}
	register(tokenCommand)
}

// tokenCmd holds one `cardwright token` run.
type tokenCmd struct {
	env         *cmdEnv
	module, ref string
	config      string
	flags       *flagSet

	label, keyType, idHex, subject, out, file string
	noUserPIN, unblock, so, login, destroy    bool
	yes                                       bool

	m *p11.Module
}

// runTokenSub runs `cardwright token SUB args…`.
func runTokenSub(env *cmdEnv, cmd *command, sub *tokenSub, args []string) int {
	fs := cmd.flags(env)
	c := &tokenCmd{env: env, flags: fs}
	fs.StringVar(&c.module, "module", "", "PKCS#11 module `PATH` (default: $"+envModule+", then the configuration's [pkcs11] module)")
	fs.StringVar(&c.ref, "token", "", "token label or serial (default: the only initialised token)")
	fs.StringVar(&c.config, "config", "", "configuration `FILE` for [pkcs11] module (default: $"+config.EnvVar+", then the standard locations)")
	if sub.flags != nil {
		sub.flags(c, fs.FlagSet)
	}
	if code, ok := fs.parse(args); !ok {
		return code
	}
	module, code, err := c.chooseModule()
	if err != nil {
		fmt.Fprintln(env.stderr, "cardwright token:", err)
		return code
	}
	// A module the operator names or configures is trusted; the allow-list
	// guards what remote jobs name.
	m, err := p11.Load(module, p11.Trusted)
	if err != nil {
		fmt.Fprintln(env.stderr, "cardwright token:", err)
		return exitFailure
	}
	c.m = m
	return sub.run(c, fs.FlagSet, fs.Args())
}

// chooseModule picks the module: --module, else $CARDWRIGHT_PKCS11_MODULE,
// else the one module of the configuration's [pkcs11] module. The exit
// code goes with the error: 2 when the operator must choose, 1 when the
// configuration cannot be read.
func (c *tokenCmd) chooseModule() (string, int, error) {
	if c.module != "" {
		return c.module, exitOK, nil
	}
	if m := c.env.getenv(envModule); m != "" {
		return m, exitOK, nil
	}
	path := c.config
	if path == "" {
		path = c.env.getenv(config.EnvVar)
	}
	cfg, err := config.Load(path)
	if err != nil {
		return "", exitFailure, fmt.Errorf("loading the configuration for [pkcs11] module: %w", err)
	}
	switch len(cfg.Modules) {
	case 0:
		return "", exitUsage, fmt.Errorf("no PKCS#11 module: give --module PATH, set $%s, or add one under [pkcs11] module in the configuration", envModule)
	case 1:
		return cfg.Modules[0], exitOK, nil
	}
	return "", exitUsage, fmt.Errorf("the configuration names %d PKCS#11 modules (%s): choose one with --module", len(cfg.Modules), strings.Join(cfg.Modules, ", "))
}

func (c *tokenCmd) fail(err error) int {
	fmt.Fprintf(c.env.stderr, "cardwright token: %v\n", err)
	return exitFailure
}

func (c *tokenCmd) usage(_ *flag.FlagSet, msg string) int {
	return c.flags.usageError("%s", msg)
}

// token finds the token --token names, or the only initialised one.
func (c *tokenCmd) token() (*p11.Token, error) {
	if c.ref != "" {
		return c.m.FindToken(c.ref)
	}
	toks, err := c.m.Tokens()
	if err != nil {
		return nil, err
	}
	var init []*p11.Token
	for _, t := range toks {
		if t.Info().Initialized() {
			init = append(init, t)
		}
	}
	if len(init) != 1 {
		return nil, fmt.Errorf("%d initialised tokens: name one with --token LABEL|SERIAL (see 'cardwright token list')", len(init))
	}
	return init[0], nil
}

// readSecret takes a secret from an environment variable, else asks on the
// terminal (twice when confirm is set).
func (c *tokenCmd) readSecret(envVar, what string, confirm bool) (secret.Value, error) {
	if v := c.env.getenv(envVar); v != "" {
		return secret.New(v), nil
	}
	f, ok := c.env.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return secret.Value{}, fmt.Errorf("reading the %s: set %s or run on a terminal", what, envVar)
	}
	ask := func(prompt string) (secret.Value, error) {
		fmt.Fprintf(c.env.stderr, "%s: ", prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.env.stderr)
		if err != nil {
			return secret.Value{}, fmt.Errorf("reading the %s: %w", what, err)
		}
		v := secret.FromBytes(b)
		clear(b)
		return v, nil
	}
	v, err := ask("Enter the " + what)
	if err != nil || !confirm {
		return v, err
	}
	again, err := ask("Enter the " + what + " again")
	if err != nil {
		return secret.Value{}, err
	}
	if !v.Equal(again) {
		return secret.Value{}, fmt.Errorf("reading the %s: the two entries differ", what)
	}
	return v, nil
}

func (c *tokenCmd) list(fs *flag.FlagSet, args []string) int {
	if len(args) > 0 {
		return c.usage(fs, "no arguments expected")
	}
	slots, err := c.m.Slots()
	if err != nil {
		return c.fail(err)
	}
	tw := tabwriter.NewWriter(c.env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tLABEL\tSERIAL\tMODEL\tSTATE\tDESCRIPTION")
	for _, s := range slots {
		if !s.TokenPresent {
			fmt.Fprintf(tw, "%d\t-\t-\t-\tno token\t%s\n", s.ID, s.Description)
			continue
		}
		state := "initialised"
		switch {
		case !s.Token.Initialized():
			state = "empty"
		case !s.Token.UserPINInitialized():
			state = "no user PIN"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Token.Label, s.Token.Serial, s.Token.Model, state, s.Description)
	}
	tw.Flush()
	return exitOK
}

func (c *tokenCmd) info(fs *flag.FlagSet, args []string) int {
	if len(args) > 0 {
		return c.usage(fs, "no arguments expected")
	}
	mi, err := c.m.Info()
	if err != nil {
		return c.fail(err)
	}
	t, err := c.token()
	if err != nil {
		return c.fail(err)
	}
	ti := t.Info()
	w := c.env.stdout
	fmt.Fprintf(w, "module:       %s\n", c.m.Path())
	fmt.Fprintf(w, "library:      %s %s (%s), Cryptoki %s\n", mi.Description, mi.LibraryVersion, mi.Manufacturer, mi.Cryptoki)
	fmt.Fprintf(w, "slot:         %d\n", t.SlotID())
	fmt.Fprintf(w, "label:        %s\n", ti.Label)
	fmt.Fprintf(w, "serial:       %s\n", ti.Serial)
	fmt.Fprintf(w, "ICCSN:        %X\n", t.ICCSN())
	fmt.Fprintf(w, "manufacturer: %s\n", ti.Manufacturer)
	fmt.Fprintf(w, "model:        %s\n", ti.Model)
	fmt.Fprintf(w, "PIN length:   %d..%d\n", ti.MinPIN, ti.MaxPIN)
	fmt.Fprintf(w, "flags:        %s\n", strings.Join(ti.FlagNames(), " "))
	return exitOK
}

func (c *tokenCmd) init(fs *flag.FlagSet, args []string) int {
	if len(args) > 0 || c.label == "" {
		return c.usage(fs, "--label is required and no arguments are expected")
	}
	var t *p11.Token // nil: the first empty slot
	if c.ref != "" {
		var err error
		if t, err = c.m.FindToken(c.ref); err != nil {
			return c.fail(err)
		}
	}
	so, err := c.readSecret(envSOPIN, "SO PIN", true)
	if err != nil {
		return c.fail(err)
	}
	var nt *p11.Token
	if c.noUserPIN {
		nt, err = c.m.InitToken(t, so, c.label)
	} else {
		pin, perr := c.readSecret(envPIN, "new user PIN", true)
		if perr != nil {
			return c.fail(perr)
		}
		nt, err = c.m.InitTokenAndPIN(t, so, pin, c.label)
	}
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.env.stdout, "initialised token %q, serial %s, slot %d\n", nt.Label(), nt.Serial(), nt.SlotID())
	return exitOK
}

func (c *tokenCmd) setPIN(fs *flag.FlagSet, args []string) int {
	if len(args) > 0 || (c.unblock && c.so) {
		return c.usage(fs, "choose at most one of --unblock and --so; no arguments expected")
	}
	t, err := c.token()
	if err != nil {
		return c.fail(err)
	}
	switch {
	case c.so:
		old, err := c.readSecret(envSOPIN, "PUK (SO PIN)", false)
		if err != nil {
			return c.fail(err)
		}
		nw, err := c.readSecret(envNewSOPIN, "new PUK (SO PIN)", true)
		if err != nil {
			return c.fail(err)
		}
		if err := t.ChangePUK(old, nw); err != nil {
			return c.fail(err)
		}
		fmt.Fprintf(c.env.stdout, "changed the PUK (SO PIN) of token %q\n", t.Label())
	case c.unblock:
		puk, err := c.readSecret(envSOPIN, "PUK (SO PIN)", false)
		if err != nil {
			return c.fail(err)
		}
		nw, err := c.readSecret(envNewPIN, "new user PIN", true)
		if err != nil {
			return c.fail(err)
		}
		if err := t.UnblockPIN(puk, nw); err != nil {
			return c.fail(err)
		}
		fmt.Fprintf(c.env.stdout, "set a new user PIN on token %q with the PUK\n", t.Label())
	default:
		old, err := c.readSecret(envPIN, "user PIN", false)
		if err != nil {
			return c.fail(err)
		}
		nw, err := c.readSecret(envNewPIN, "new user PIN", true)
		if err != nil {
			return c.fail(err)
		}
		if err := t.ChangePIN(old, nw); err != nil {
			return c.fail(err)
		}
		fmt.Fprintf(c.env.stdout, "changed the user PIN of token %q\n", t.Label())
	}
	return exitOK
}

// userSession opens a session with the token and logs the user in.
func (c *tokenCmd) userSession() (*p11.Session, error) {
	t, err := c.token()
	if err != nil {
		return nil, err
	}
	pin, err := c.readSecret(envPIN, "user PIN", false)
	if err != nil {
		return nil, err
	}
	s, err := t.Open()
	if err != nil {
		return nil, err
	}
	if err := s.Login(pin); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (c *tokenCmd) id() ([]byte, error) {
	if c.idHex == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(c.idHex)
	if err != nil {
		return nil, fmt.Errorf("reading --id: %w", err)
	}
	return b, nil
}

func (c *tokenCmd) keygen(fs *flag.FlagSet, args []string) int {
	spec, err := p11.ParseKeySpec(c.keyType)
	if err != nil || len(args) > 0 || c.label == "" {
		return c.usage(fs, "--label and a valid --type are required")
	}
	id, err := c.id()
	if err != nil {
		return c.usage(fs, err.Error())
	}
	s, err := c.userSession()
	if err != nil {
		return c.fail(err)
	}
	defer s.Close()
	k, err := s.GenerateKeyPair(spec, c.label, id)
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.env.stdout, "generated %v key pair %q, id %X\n", spec, k.Label, k.ID)
	return exitOK
}

func (c *tokenCmd) csr(fs *flag.FlagSet, args []string) int {
	if len(args) > 0 || (c.idHex == "" && c.label == "") || c.subject == "" {
		return c.usage(fs, "--subject and one of --id, --label are required")
	}
	subject, err := parseDN(c.subject)
	if err != nil {
		return c.usage(fs, err.Error())
	}
	id, err := c.id()
	if err != nil {
		return c.usage(fs, err.Error())
	}
	s, err := c.userSession()
	if err != nil {
		return c.fail(err)
	}
	defer s.Close()
	k, err := s.FindKey(id, c.label)
	if err != nil {
		return c.fail(err)
	}
	der, err := k.CertificateRequest(&x509.CertificateRequest{Subject: subject})
	if err != nil {
		return c.fail(err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	if c.out == "" {
		c.env.stdout.Write(out)
		return exitOK
	}
	if err := os.WriteFile(c.out, out, 0o644); err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.env.stdout, "wrote the request for key %q (id %X) to %s\n", k.Label, k.ID, c.out)
	return exitOK
}

// parseDN reads "CN=…,O=…,OU=…,C=…,L=…,ST=…,SERIALNUMBER=…" (no escaped
// commas: this is a diagnostic tool).
func parseDN(s string) (pkix.Name, error) {
	var n pkix.Name
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || v == "" {
			return n, fmt.Errorf("reading --subject: %q is not KEY=VALUE", part)
		}
		switch strings.ToUpper(strings.TrimSpace(k)) {
		case "CN":
			n.CommonName = v
		case "O":
			n.Organization = append(n.Organization, v)
		case "OU":
			n.OrganizationalUnit = append(n.OrganizationalUnit, v)
		case "C":
			n.Country = append(n.Country, v)
		case "L":
			n.Locality = append(n.Locality, v)
		case "ST":
			n.Province = append(n.Province, v)
		case "SERIALNUMBER":
			n.SerialNumber = v
		default:
			return n, fmt.Errorf("reading --subject: unknown attribute %q", k)
		}
	}
	return n, nil
}

func (c *tokenCmd) writeCert(fs *flag.FlagSet, args []string) int {
	if len(args) > 0 || c.file == "" {
		return c.usage(fs, "--cert is required")
	}
	id, err := c.id()
	if err != nil {
		return c.usage(fs, err.Error())
	}
	b, err := os.ReadFile(c.file)
	if err != nil {
		return c.fail(err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	cert, err := x509.ParseCertificate(b)
	if err != nil {
		return c.fail(fmt.Errorf("reading %s: %w", c.file, err))
	}
	label := c.label
	if label == "" {
		label = cert.Subject.CommonName
	}
	s, err := c.userSession()
	if err != nil {
		return c.fail(err)
	}
	defer s.Close()
	o, err := s.WriteCertificate(cert, label, id)
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.env.stdout, "wrote certificate %q, id %X\n", o.Label, o.ID)
	return exitOK
}

func (c *tokenCmd) importP12(fs *flag.FlagSet, args []string) int {
	if len(args) > 0 || c.file == "" || c.label == "" {
		return c.usage(fs, "--file and --label are required")
	}
	id, err := c.id()
	if err != nil {
		return c.usage(fs, err.Error())
	}
	data, err := os.ReadFile(c.file)
	if err != nil {
		return c.fail(err)
	}
	pw, err := c.readSecret(envP12Password, "PKCS#12 password", false)
	if err != nil {
		return c.fail(err)
	}
	s, err := c.userSession()
	if err != nil {
		return c.fail(err)
	}
	defer s.Close()
	imp, err := s.ImportPKCS12(data, pw, c.label, id)
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.env.stdout, "imported key and certificate %q, id %X, and %d CA certificates\n", c.label, imp.Key.ID, len(imp.Chain))
	return exitOK
}

// parseCriteria reads CLASS,ATTRIBUTE,TYPE,VALUE (class may be empty; an
// argument of just a class is allowed too).
func parseCriteria(args []string) (p11.Criteria, error) {
	var c p11.Criteria
	seenClass := false
	for _, a := range args {
		parts := strings.SplitN(a, ",", 4)
		if parts[0] != "" && !seenClass {
			cl, err := p11.ParseClass(parts[0])
			if err != nil {
				return nil, err
			}
			c = append(c, cl)
			seenClass = true
		}
		if len(parts) == 1 {
			continue
		}
		if len(parts) != 4 {
			return nil, fmt.Errorf("criterion %q: want CLASS,ATTRIBUTE,TYPE,VALUE", a)
		}
		at, err := p11.ParseAttribute(parts[1], parts[2], parts[3])
		if err != nil {
			return nil, err
		}
		c = append(c, at)
	}
	return c, nil
}

func (c *tokenCmd) find(fs *flag.FlagSet, args []string) int {
	crit, err := parseCriteria(args)
	if err != nil {
		return c.usage(fs, err.Error())
	}
	var s *p11.Session
	if c.login || c.destroy {
		s, err = c.userSession()
	} else {
		var t *p11.Token
		if t, err = c.token(); err == nil {
			s, err = t.Open()
		}
	}
	if err != nil {
		return c.fail(err)
	}
	defer s.Close()
	objs, err := s.Find(crit)
	if err != nil {
		return c.fail(err)
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Handle < objs[j].Handle })
	tw := tabwriter.NewWriter(c.env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HANDLE\tCLASS\tLABEL\tID")
	for _, o := range objs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%X\n", o.Handle, o.ClassName(), o.Label, o.ID)
	}
	tw.Flush()
	if c.destroy {
		if err := s.Destroy(objs...); err != nil {
			return c.fail(err)
		}
		fmt.Fprintf(c.env.stdout, "destroyed %d objects\n", len(objs))
	}
	return exitOK
}

func (c *tokenCmd) erase(fs *flag.FlagSet, args []string) int {
	if len(args) > 0 || !c.yes {
		return c.usage(fs, "erasing destroys every key and certificate: add --yes")
	}
	s, err := c.userSession()
	if err != nil {
		return c.fail(err)
	}
	defer s.Close()
	n, err := s.EraseObjects()
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.env.stdout, "erased %d objects from token %q\n", n, s.Token().Label())
	return exitOK
}
