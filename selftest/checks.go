package selftest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cardwright/cardwright/agent/journal"
	"github.com/cardwright/cardwright/cpf"
	"github.com/cardwright/cardwright/secret"
)

// Readers is the PC/SC service (selftest/pcscprobe).
type Readers interface {
	// Status lists every reader the service knows, skipped ones too,
	// with its card. An error means the service is not reachable.
	Status(ctx context.Context) ([]Reader, error)
}

// Reader is a reader's state.
type Reader struct {
	Name string
	Card bool   // a card is in the reader
	Mute bool   // it did not answer the reset
	ATR  []byte // the card's answer to reset
}

// Modules loads PKCS#11 modules (selftest/p11probe).
type Modules interface {
	// Load loads the module at path through the allow-list.
	Load(path string) (Module, error)
}

// Module is a loaded PKCS#11 module.
type Module interface {
	Describe() string // manufacturer, description, Cryptoki version
	Tokens() ([]Token, error)
}

// Token is a present token of a module.
type Token interface {
	Label() string
	Serial() string
	Initialized() bool
	// Slot is the slot description: middleware that makes each card a
	// token (OpenSC and most card middleware) writes the reader's name
	// there.
	Slot() string
	// ModulePath is the module's resolved file path: with Serial, the
	// key of the per-token lock (Options.TryLock).
	ModulePath() string
	// Keygen generates a key pair as session objects and destroys it,
	// logging in with pin when it is set. Without a PIN a token that
	// wants a login answers ErrNeedsLogin.
	Keygen(ctx context.Context, k Keygen, pin secret.Value) error
}

// checkReaders: the PC/SC service answers; every expected reader is
// there; one line per reader; the cards in them and their dialects.
// It returns the reader names too: the key-generation check maps tokens to
// them.
func checkReaders(ctx context.Context, o Options, rs Readers) ([]Check, []string) {
	if rs == nil {
		return []Check{{Name: "pc/sc", Status: Skip, Detail: "not checked"}}, nil
	}
	start := time.Now()
	list, err := rs.Status(ctx)
	svc := Check{Name: "pc/sc", Duration: time.Since(start)}
	if err != nil {
		svc.Status, svc.Detail = Fail, fmt.Sprintf("service not reachable: %v", err)
		out := []Check{svc}
		for _, e := range o.Expect {
			out = append(out, Check{Name: readerName(e), Status: Fail, Detail: "expected ([readers] expect); not checked: no PC/SC service"})
		}
		return out, nil
	}
	skipped := 0
	for _, r := range list {
		if o.Skip(r.Name) {
			skipped++
		}
	}
	svc.Status, svc.Detail = OK, fmt.Sprintf("%d reader%s, %d skipped", len(list), plural(len(list)), skipped)
	if len(list)-skipped == 0 && len(o.Expect) == 0 {
		svc.Status, svc.Detail = Warn, svc.Detail+"; no reader to encode with"
	}
	out := []Check{svc}
	var cards []Check
	for _, r := range list {
		expected := slices.Contains(o.Expect, r.Name)
		c := Check{Name: readerName(r.Name), Status: OK}
		var what []string
		if expected {
			what = append(what, "expected")
		}
		switch {
		case o.Skip(r.Name):
			c.Status = Skip
			what = append(what, "skipped by [readers] skip")
			if expected {
				c.Status = Warn
				what = append(what, "but also expected")
			}
		case r.Card && r.Mute:
			what = append(what, "card does not answer the reset")
			c.Status = Warn
			if expected {
				c.Status = Fail
			}
		case r.Card:
			what = append(what, fmt.Sprintf("card, ATR %X", r.ATR))
			cards = append(cards, checkCard(o, r, expected))
		default:
			what = append(what, "no card")
		}
		c.Detail = strings.Join(what, "; ")
		out = append(out, c)
	}
	for _, e := range o.Expect {
		if !slices.ContainsFunc(list, func(r Reader) bool { return r.Name == e }) {
			out = append(out, Check{Name: readerName(e), Status: Fail, Detail: "expected ([readers] expect) but not present"})
		}
	}
	names := make([]string, 0, len(list))
	for _, r := range list {
		names = append(names, r.Name)
	}
	return append(out, cards...), names
}

func readerName(n string) string { return fmt.Sprintf("reader %q", n) }

// checkCard maps a card's ATR to a dialect through the [dialects] keys
// that are ATR patterns. An unmapped card fails in an expected reader and
// is a warning elsewhere.
func checkCard(o Options, r Reader, expected bool) Check {
	c := Check{Name: fmt.Sprintf("card in %q", r.Name)}
	pat, dialect, ok := DialectForATR(o.Dialects, r.ATR)
	switch {
	case !ok:
		c.Status, c.Detail = Warn, fmt.Sprintf("no dialect mapped for ATR %X (add it to [dialects])", r.ATR)
		if expected {
			c.Status = Fail
		}
	case !slices.Contains(cpf.Dialects(), strings.ToUpper(dialect)):
		c.Status, c.Detail = Fail, fmt.Sprintf("ATR pattern %s maps to unknown dialect %q (known: %s)", pat, dialect, strings.Join(cpf.Dialects(), ", "))
	default:
		c.Status, c.Detail = OK, fmt.Sprintf("dialect %s (ATR pattern %s)", strings.ToUpper(dialect), pat)
	}
	return c
}

// checkModules loads each configured module, lists its tokens, finds the
// tokens [tokens] names, and times a key generation on each token.
// readers are the reader names PC/SC listed; inUse says whether a reader's
// card is in use by a job ("" free, else why).
func checkModules(ctx context.Context, o Options, ms Modules, readers []string, inUse func(string) string) []Check {
	paths := slices.Clone(o.Modules)
	for _, t := range o.Tokens {
		if !slices.Contains(paths, t.Module) {
			paths = append(paths, t.Module)
		}
	}
	if len(paths) == 0 {
		return []Check{{Name: "pkcs11 modules", Status: Skip, Detail: "none configured ([pkcs11] module)"}}
	}
	if ms == nil {
		return []Check{{Name: "pkcs11 modules", Status: Skip, Detail: "not checked"}}
	}
	var out, keygen []Check
	for _, path := range paths {
		name := fmt.Sprintf("module %s", path)
		if !strings.ContainsAny(path, `/\`) {
			out = append(out, Check{Name: name, Status: Skip, Detail: "allowed by file name: loaded from the path a description names"})
			continue
		}
		if o.Allowed != nil && !o.Allowed(path) {
			out = append(out, Check{Name: name, Status: Fail, Detail: "not in [pkcs11] module (the allow-list)"})
			continue
		}
		start := time.Now()
		m, err := ms.Load(path)
		if err != nil {
			out = append(out, Check{Name: name, Status: Fail, Detail: err.Error(), Duration: time.Since(start)})
			continue
		}
		toks, err := m.Tokens()
		if err != nil {
			out = append(out, Check{Name: name, Status: Fail, Detail: fmt.Sprintf("%s; listing tokens: %v", m.Describe(), err), Duration: time.Since(start)})
			continue
		}
		c := Check{Name: name, Status: OK, Duration: time.Since(start)}
		var names []string
		blank := 0
		for _, t := range toks {
			if !t.Initialized() {
				blank++
				continue
			}
			names = append(names, fmt.Sprintf("%q", t.Label()))
			keygen = append(keygen, checkKeygen(ctx, o, t, tokenReaders(o, path, t, readers), inUse))
		}
		what := fmt.Sprintf("%s; %d token%s", m.Describe(), len(names), plural(len(names)))
		if len(names) > 0 {
			what += ": " + strings.Join(names, ", ")
		}
		if blank > 0 {
			what += fmt.Sprintf("; %d uninitialised", blank)
		}
		var missing []string
		for _, ref := range o.Tokens {
			if ref.Module == path && !slices.ContainsFunc(toks, func(t Token) bool { return t.Initialized() && t.Label() == ref.Label }) {
				missing = append(missing, fmt.Sprintf("%q (for readers %s)", ref.Label, ref.Reader))
			}
		}
		if len(missing) > 0 {
			c.Status = Fail
			what += "; [tokens] names missing token " + strings.Join(missing, ", ")
		} else if len(names) == 0 {
			c.Status = Warn
		}
		c.Detail = what
		out = append(out, c)
	}
	return append(out, keygen...)
}

// checkKeygen times one key generation on a token. A token whose reader's
// card a job uses is not touched (readers are the readers it stands for),
// nor one whose lock a certificate or sign operation holds (o.TryLock).
func checkKeygen(ctx context.Context, o Options, t Token, readers []string, inUse func(string) string) Check {
	c := Check{Name: fmt.Sprintf("keygen %q", t.Label())}
	kind := map[Keygen]string{KeygenEC: "EC P-256", KeygenRSA2048: "RSA-2048"}[o.Keygen]
	switch {
	case o.Keygen == KeygenOff && o.InAgent:
		c.Status, c.Detail = Skip, "not asked for (/v1/health?full=1&keygen=1 generates)"
		return c
	case o.Keygen == KeygenOff:
		c.Status, c.Detail = Skip, "off (--keygen off)"
		return c
	case o.Token != "" && t.Label() != o.Token:
		c.Status, c.Detail = Skip, fmt.Sprintf("not the token asked for (%q)", o.Token)
		return c
	}
	if o.TryLock != nil {
		unlock, ok := o.TryLock(t.ModulePath(), t.Serial())
		if !ok {
			c.Status, c.Detail = Skip, "busy with a certificate or sign operation"
			return c
		}
		defer unlock()
	}
	// After the lock: a job that began while it was taken is seen.
	for _, r := range readers {
		if why := inUse(r); why != "" {
			c.Status, c.Detail = Skip, fmt.Sprintf("%s (reader %q)", why, r)
			return c
		}
	}
	start := time.Now()
	err := t.Keygen(ctx, o.Keygen, o.PIN)
	c.Duration = time.Since(start)
	switch {
	case errors.Is(err, ErrNeedsLogin):
		c.Status, c.Detail = Skip, "needs a login: give a PIN with --pin-file or --pin-env to time it"
	case err != nil:
		c.Status, c.Detail = Fail, fmt.Sprintf("%s key pair: %v", kind, err)
	default:
		c.Status, c.Detail = OK, fmt.Sprintf("%s key pair (session objects, destroyed) in %s", kind, FormatDuration(c.Duration))
	}
	return c
}

// tokenReaders lists the readers whose card t stands for: those a [tokens]
// entry for t (its module path and label) matches, and the one its slot
// description names. CK_SLOT_INFO's slotDescription holds 64 bytes (PKCS#11
// v2.40 §3.2), so a longer reader name is compared cut to 64. Only listed
// readers count: without PC/SC no job holds a card.
func tokenReaders(o Options, path string, t Token, readers []string) []string {
	var out []string
	for _, ref := range o.Tokens {
		if ref.Module != path || ref.Label != t.Label() {
			continue
		}
		for _, r := range readers {
			if ref.matches(r) && !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	desc := strings.TrimSpace(t.Slot())
	if desc == "" {
		return out
	}
	for _, r := range readers {
		cut := r
		if len(cut) > 64 {
			cut = cut[:64]
		}
		if strings.TrimSpace(cut) == desc && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// checkJournalFolder creates, syncs and removes a probe file in the
// journal's folder.
func checkJournalFolder(o Options) Check {
	c := Check{Name: "journal folder"}
	if o.JournalDir == "" {
		c.Status, c.Detail = Fail, "no journal folder"
		return c
	}
	if err := probeWrite(o.JournalDir); err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("%s is not writable: %v", o.JournalDir, err)
		return c
	}
	c.Status, c.Detail = OK, fmt.Sprintf("%s writable (create, fsync, remove)", o.JournalDir)
	return c
}

func probeWrite(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".selftest-*")
	if err != nil {
		return err
	}
	name := f.Name()
	_, err = f.WriteString("cardwright self-test\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	return err
}

// checkJournalFile opens the journal database read-only.
func checkJournalFile(o Options, probe func(string) error) Check {
	c := Check{Name: "journal database"}
	switch {
	case o.InAgent:
		c.Status, c.Detail = OK, "open in this agent"
		return c
	case probe == nil:
		c.Status, c.Detail = Skip, "not checked"
		return c
	case o.JournalDir == "":
		c.Status, c.Detail = Skip, "no journal folder"
		return c
	}
	err := probe(o.JournalDir)
	path := filepath.Join(o.JournalDir, "journal.db")
	switch {
	case err == nil:
		c.Status, c.Detail = OK, path+" opens"
	case errors.Is(err, journal.ErrInUse):
		c.Status, c.Detail = OK, path+" is held by a running agent (not opened)"
	case errors.Is(err, journal.ErrNotCreated):
		c.Status, c.Detail = OK, path+" not created yet (the agent creates it when it starts)"
	default:
		c.Status, c.Detail = Fail, err.Error()
	}
	return c
}

// checkPort: the listen address is free, or served by a cardwright agent
// (this one, or a running service).
func checkPort(ctx context.Context, o Options) Check {
	c := Check{Name: "port " + o.Listen}
	if o.InAgent {
		c.Status, c.Detail = OK, "served by this agent"
		return c
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err == nil {
		ln.Close()
		c.Status, c.Detail = OK, "free"
		return c
	}
	if a := agentAt(ctx, o.Listen, o.TLSCert != ""); a.Agent != "" {
		c.Status, c.Detail = OK, "in use by a running agent ("+a.Agent+")"
		return c
	}
	c.Status, c.Detail = Fail, fmt.Sprintf("cannot listen: %v (another program holds it)", err)
	return c
}

// agentHealth is the part of a running agent's /v1/health the self-test
// reads: its name and how many jobs it is running.
type agentHealth struct {
	Agent string
	Jobs  int
}

// agentAt asks /v1/health at addr; the zero agentHealth when no cardwright
// agent answers. Over TLS the certificate is not verified: the answer only
// tells whose port it is, on loopback.
func agentAt(ctx context.Context, addr string, useTLS bool) agentHealth {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	scheme := "http"
	tr := &http.Transport{}
	if useTLS {
		scheme = "https"
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+"/v1/health", nil)
	if err != nil {
		return agentHealth{}
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return agentHealth{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var h agentHealth
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &h) != nil || !strings.HasPrefix(h.Agent, "cardwright/") {
		return agentHealth{}
	}
	return h
}

// checkTLS: the configured certificate loads, matches its key, is valid
// now, names 127.0.0.1 and localhost; under 30 days left is a warning.
func checkTLS(o Options) Check {
	c := Check{Name: "tls certificate"}
	if o.TLSCert == "" {
		c.Status, c.Detail = Skip, "none configured (ws:// only)"
		return c
	}
	pair, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
	if err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("loading %s with %s: %v", o.TLSCert, o.TLSKey, err)
		return c
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("parsing %s: %v", o.TLSCert, err)
		return c
	}
	now := o.Now()
	var bad []string
	for _, h := range []string{"127.0.0.1", "localhost"} {
		if leaf.VerifyHostname(h) != nil {
			bad = append(bad, "does not name "+h)
		}
	}
	left := leaf.NotAfter.Sub(now)
	switch {
	case now.Before(leaf.NotBefore):
		bad = append(bad, "not valid before "+leaf.NotBefore.UTC().Format(time.DateOnly))
	case left <= 0:
		bad = append(bad, "expired "+leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	days := int(left.Hours() / 24)
	switch {
	case len(bad) > 0:
		c.Status, c.Detail = Fail, fmt.Sprintf("%s: %s", o.TLSCert, strings.Join(bad, "; "))
	case left < 30*24*time.Hour:
		c.Status, c.Detail = Warn, fmt.Sprintf("%s expires in %d days (%s): renew it ('cardwright tls init --force')", o.TLSCert, days, leaf.NotAfter.UTC().Format(time.DateOnly))
	default:
		c.Status, c.Detail = OK, fmt.Sprintf("%s valid until %s (%d days), names 127.0.0.1 and localhost, key matches", o.TLSCert, leaf.NotAfter.UTC().Format(time.DateOnly), days)
	}
	return c
}
