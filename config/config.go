// Package config reads cardwright's configuration file.
//
// The format is INI, like the incumbent middleware's .cfg files that operators
// already edit: [section] headers, key = value lines, whole-line comments
// starting with # or ;. It needs no third-party parser and gives line numbers
// for every error. Keys are case-insensitive. A key may repeat only where it is
// a list (origin, module, skip). Unknown sections or keys, and bad values, are
// errors reported as file:line: message.
//
// Lookup order (Locate): the --config flag, then $CARDWRIGHT_CONFIG, then the
// system file overlaid by the per-user file (a key set in the per-user file
// replaces the system value; lists are replaced as a whole).
package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cardwright/cardwright/internal/errlist"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/p11/allowlist"
	"github.com/cardwright/cardwright/secret"
)

// FileName is the configuration file's base name in the standard locations.
const FileName = "cardwright.cfg"

// EnvVar names the environment variable that points at a configuration file.
const EnvVar = "CARDWRIGHT_CONFIG"

// TokenMap maps a reader to a PKCS#11 token: the token stands in for the card
// in that reader (used when the module does not see the card itself, e.g. a
// SoftHSM2 token paired with a virtual reader).
type TokenMap struct {
	Reader *regexp.Regexp // matched against the reader name
	Module string         // PKCS#11 module path (must be allowed)
	Label  string         // token label
}

// DecryptKey is a key that decrypts encrypted-PIN blobs.
type DecryptKey struct {
	P12File     string       // PKCS#12 file, or
	P12Password secret.Value //
	Module      string       // PKCS#11 module,
	Slot        int          // slot id (-1: any),
	Label       string       // key label,
	PIN         secret.Value // user PIN for the token.
}

// Config is the parsed configuration.
type Config struct {
	Listen         string // host:port of the WebSocket server
	AllowedOrigins []string
	TLSCert        string
	TLSKey         string
	Headless       bool

	// Agent limits (docs/protocol.md, "Limits"); 0 takes the agent's default.
	MaxMessageBytes int // [server] max_message_bytes
	MaxJobs         int // [server] max_jobs, per session
	RatePerSecond   int // [server] max_rate_per_second, per connection

	// IssuerCADir is the local CA ([issuer] ca_dir) that issues the
	// certificates of POST /CardJob jobs; IssuerCAAt is where it was set
	// ("file:line"), for errors found when it is opened.
	IssuerCADir string
	IssuerCAAt  string

	Modules allowlist.Modules // allowed PKCS#11 modules (absolute paths or base names)

	ReaderSkip []*regexp.Regexp
	Tokens     []TokenMap

	Dialects map[string]string // card model -> dialect

	PINEncryptionCert string
	DecryptKeys       []DecryptKey

	Journal  string
	LogFile  string
	LogLevel string

	// The station's audit log (spec/station.md "Audit"): [log] audit is
	// its folder ("" beside the journal: <journal folder>/audit; "off"
	// keeps none), audit_rotate_mb the size at which a file is closed and
	// the chain goes on in the next one.
	Audit          string
	AuditRotateMiB int

	// ReaderExpect names the readers a station must have ([readers]
	// expect, exact names): the self-test fails when one is missing.
	ReaderExpect []string

	// Learned timeouts (spec/station.md "Slow cards"): a step never times
	// out sooner than its floor ([timeouts] floor, keygen_floor, seconds);
	// learn = false keeps the floors as fixed timeouts.
	TimeoutFloor       time.Duration
	KeygenTimeoutFloor time.Duration
	LearnTimeouts      bool

	// The desktop app ([desktop], docs/gui.md); ignored by serve.
	Language      string        // language: en, de or sv; "" takes the OS locale
	Notifications bool          // notifications: finished and failed jobs, default true
	PINTimeout    time.Duration // pin_timeout (seconds): a PIN window waits this long, default 120
	PairTimeout   time.Duration // pair_timeout (seconds): a pairing window waits this long, default 60

	Sources []string // files read, in order
}

// Default returns the configuration used when no file exists.
func Default() *Config {
	return &Config{
		Listen:             "127.0.0.1:27140",
		Dialects:           map[string]string{},
		LogLevel:           "info",
		Notifications:      true,
		AuditRotateMiB:     16,
		TimeoutFloor:       60 * time.Second,
		KeygenTimeoutFloor: 180 * time.Second, // research/anchors_turn2.md: RSA-2048 tails reach 146 s
		LearnTimeouts:      true,
	}
}

// ModuleAllowed reports whether a PKCS#11 module path may be loaded: the
// one allow-list rule (p11/allowlist), shared with the agent and p11.
func (c *Config) ModuleAllowed(path string) bool { return c.Modules.Allows(path) }

// SkipReader reports whether a reader is on the skip list.
func (c *Config) SkipReader(name string) bool {
	for _, re := range c.ReaderSkip {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// TokenFor returns the token mapped to a reader, if any.
func (c *Config) TokenFor(reader string) (TokenMap, bool) {
	for _, t := range c.Tokens {
		if t.Reader.MatchString(reader) {
			return t, true
		}
	}
	return TokenMap{}, false
}

// Locations returns the system and per-user file paths for this OS.
func Locations() (system, user string) {
	if runtime.GOOS == "windows" {
		pd := os.Getenv("ProgramData")
		if pd == "" {
			pd = `C:\ProgramData`
		}
		system = filepath.Join(pd, "cardwright", FileName)
	} else {
		system = filepath.Join("/etc/cardwright", FileName)
	}
	if d, err := os.UserConfigDir(); err == nil {
		user = filepath.Join(d, "cardwright", FileName)
	}
	return system, user
}

// Load finds and reads the configuration: flagPath if set, else $CARDWRIGHT_CONFIG,
// else the system file overlaid by the per-user file. Missing standard files
// are fine; a missing explicit file is an error.
func Load(flagPath string) (*Config, error) {
	if flagPath != "" {
		return LoadFiles(flagPath)
	}
	if p := os.Getenv(EnvVar); p != "" {
		return LoadFiles(p)
	}
	sys, usr := Locations()
	var files []string
	for _, p := range []string{sys, usr} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	return LoadFiles(files...)
}

// LoadFiles reads the files in order, each overriding keys of the ones before.
func LoadFiles(paths ...string) (*Config, error) {
	p := newParser()
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading configuration: %w", err)
		}
		p.parse(path, b)
	}
	return p.finish(paths)
}

// Parse reads one configuration file's contents; name is used in errors.
func Parse(name string, data []byte) (*Config, error) {
	p := newParser()
	p.parse(name, data)
	return p.finish([]string{name})
}

// ErrorList is a list of positioned errors, sorted.
type ErrorList []error

func (l ErrorList) Error() string {
	return errlist.Join(l, error.Error)
}

// PosError is one error at file:line.
type PosError struct {
	File string
	Line int
	Msg  string
}

func (e *PosError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

type pos struct {
	file string
	line int
}

type entry struct {
	vals []string
	at   []pos
}

type parser struct {
	// values by "section.key"; a later file replaces a whole key.
	vals map[string]*entry
	// dialects and tokens are open-ended key sets.
	errs ErrorList
}

func newParser() *parser { return &parser{vals: map[string]*entry{}} }

type keyKind int

const (
	single keyKind = iota
	list
	open // any key name (dialects, tokens)
)

var schema = map[string]map[string]keyKind{
	"server": {"listen": single, "port": single, "origin": list, "tls_cert": single, "tls_key": single, "headless": single,
		"max_message_bytes": single, "max_rate_per_second": single, "max_jobs": single},
	"issuer":   {"ca_dir": single},
	"pkcs11":   {"module": list},
	"readers":  {"skip": list, "expect": list},
	"timeouts": {"floor": single, "keygen_floor": single, "learn": single},
	"tokens":   nil, // reader regexp = module, label
	"dialects": nil, // card model = dialect
	"pins": {"encryption_cert": single, "decrypt_p12": list, "decrypt_p12_password": list,
		"decrypt_module": list, "decrypt_slot": list, "decrypt_label": list, "decrypt_pin": list},
	"log":     {"journal": single, "file": single, "level": single, "audit": single, "audit_rotate_mb": single},
	"desktop": {"language": single, "notifications": single, "pin_timeout": single, "pair_timeout": single},
}

func (p *parser) errf(at pos, format string, args ...any) {
	p.errs = append(p.errs, &PosError{at.file, at.line, fmt.Sprintf(format, args...)})
}

func (p *parser) parse(name string, data []byte) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	seen := map[string]bool{} // keys set in this file
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	section := ""
	line := 0
	for sc.Scan() {
		line++
		at := pos{name, line}
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' || s[0] == ';' {
			continue
		}
		if s[0] == '[' {
			if !strings.HasSuffix(s, "]") {
				p.errf(at, "section header %q: missing ]", s)
				section = "?"
				continue
			}
			section = strings.ToLower(strings.TrimSpace(s[1 : len(s)-1]))
			if _, ok := schema[section]; !ok {
				p.errf(at, "unknown section [%s]", s[1:len(s)-1])
				section = "?"
			}
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			p.errf(at, "expected key = value, got %q", s)
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if section == "?" {
			continue
		}
		if section == "" {
			p.errf(at, "key %q outside a section", k)
			continue
		}
		keys := schema[section]
		lk := strings.ToLower(k)
		kind := open
		if keys != nil {
			var ok bool
			kind, ok = keys[lk]
			if !ok {
				p.errf(at, "unknown key %q in [%s]", k, section)
				continue
			}
		} else {
			lk = k // open keys keep their spelling (reader patterns, models)
		}
		id := section + "." + lk
		if keys == nil {
			id = section + "." + strings.ToLower(k)
		}
		e := p.vals[id]
		if !seen[id] {
			// first occurrence in this file replaces earlier files' values
			e = &entry{}
			p.vals[id] = e
			seen[id] = true
		} else if kind != list {
			p.errf(at, "duplicate key %q in [%s] (first at line %d)", k, section, e.at[0].line)
			continue
		}
		if keys == nil {
			v = k + "\x00" + v
		}
		e.vals = append(e.vals, v)
		e.at = append(e.at, at)
	}
	if err := sc.Err(); err != nil {
		p.errf(pos{name, line}, "reading: %v", err)
	}
}

func (p *parser) get(id string) (string, pos, bool) {
	e := p.vals[id]
	if e == nil {
		return "", pos{}, false
	}
	return e.vals[0], e.at[0], true
}

func (p *parser) finish(files []string) (*Config, error) {
	c := Default()
	c.Sources = files
	if v, at, ok := p.get("server.listen"); ok {
		host := v
		if h, port, err := net.SplitHostPort(v); err == nil {
			host = h
			if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
				p.errf(at, "listen: bad port %q", port)
			}
			c.Listen = v
		} else {
			_, port, _ := net.SplitHostPort(c.Listen)
			c.Listen = net.JoinHostPort(v, port)
		}
		if host != "localhost" && net.ParseIP(host) == nil {
			p.errf(at, "listen: %q is not an IP address or localhost", host)
		}
	}
	if v, at, ok := p.get("server.port"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			p.errf(at, "port: %q is not a port number (0-65535)", v)
		} else {
			h, _, _ := net.SplitHostPort(c.Listen)
			c.Listen = net.JoinHostPort(h, strconv.Itoa(n))
		}
	}
	if e := p.vals["server.origin"]; e != nil {
		for i, v := range e.vals {
			if err := CheckOrigin(v); err != nil {
				p.errf(e.at[i], "%v", err)
				continue
			}
			c.AllowedOrigins = append(c.AllowedOrigins, v)
		}
	}
	for _, l := range limits {
		v, at, ok := p.get("server." + l.key)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < l.min || n > l.max {
			p.errf(at, "%s: %q is not a number from %d to %d", l.key, v, l.min, l.max)
			continue
		}
		*l.field(c) = n
	}
	p.desktop(c)
	if v, at, ok := p.get("issuer.ca_dir"); ok {
		if v == "" {
			p.errf(at, "ca_dir: empty")
		} else if err := issuer.CheckLocalCA(v); err != nil {
			p.errf(at, "ca_dir: %v", err)
		} else {
			c.IssuerCADir, c.IssuerCAAt = v, fmt.Sprintf("%s:%d", at.file, at.line)
		}
	}
	c.TLSCert, _, _ = p.get("server.tls_cert")
	c.TLSKey, _, _ = p.get("server.tls_key")
	if (c.TLSCert == "") != (c.TLSKey == "") {
		_, at, ok := p.get("server.tls_cert")
		if !ok {
			_, at, _ = p.get("server.tls_key")
		}
		p.errf(at, "tls_cert and tls_key must be given together")
	}
	if v, at, ok := p.get("server.headless"); ok {
		b, err := parseBool(v)
		if err != nil {
			p.errf(at, "headless: %v", err)
		}
		c.Headless = b
	}
	if e := p.vals["pkcs11.module"]; e != nil {
		for i, v := range e.vals {
			if v == "" {
				p.errf(e.at[i], "module: empty")
				continue
			}
			c.Modules = append(c.Modules, v)
		}
	}
	if e := p.vals["readers.skip"]; e != nil {
		for i, v := range e.vals {
			re, err := regexp.Compile("^(?:" + v + ")$")
			if err != nil {
				p.errf(e.at[i], "skip: bad regular expression: %v", err)
				continue
			}
			c.ReaderSkip = append(c.ReaderSkip, re)
		}
	}
	for _, id := range p.openKeys("dialects.") {
		e := p.vals[id]
		k, v, _ := strings.Cut(e.vals[0], "\x00")
		if v == "" {
			p.errf(e.at[0], "dialect for %q: empty", k)
			continue
		}
		c.Dialects[k] = v
	}
	for _, id := range p.openKeys("tokens.") {
		e := p.vals[id]
		k, v, _ := strings.Cut(e.vals[0], "\x00")
		re, err := regexp.Compile("^(?:" + k + ")$")
		if err != nil {
			p.errf(e.at[0], "token reader pattern: %v", err)
			continue
		}
		mod, label, ok := strings.Cut(v, ",")
		mod, label = strings.TrimSpace(mod), strings.TrimSpace(label)
		if !ok || mod == "" || label == "" {
			p.errf(e.at[0], "token for %q: want module, label", k)
			continue
		}
		if !c.ModuleAllowed(mod) {
			p.errf(e.at[0], "token for %q: module %q is not in [pkcs11] module", k, mod)
			continue
		}
		c.Tokens = append(c.Tokens, TokenMap{Reader: re, Module: mod, Label: label})
	}
	c.PINEncryptionCert, _, _ = p.get("pins.encryption_cert")
	p.decryptKeys(c)
	if v, _, ok := p.get("log.journal"); ok {
		c.Journal = v
	}
	if v, _, ok := p.get("log.file"); ok {
		c.LogFile = v
	}
	if v, at, ok := p.get("log.level"); ok {
		switch strings.ToLower(v) {
		case "debug", "info", "warn", "error":
			c.LogLevel = strings.ToLower(v)
		default:
			p.errf(at, "level %q: want debug, info, warn or error", v)
		}
	}
	p.station(c)
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool {
			a, b := p.errs[i].(*PosError), p.errs[j].(*PosError)
			if a.File != b.File {
				return fileIndex(files, a.File) < fileIndex(files, b.File)
			}
			return a.Line < b.Line
		})
		return nil, p.errs
	}
	return c, nil
}

func fileIndex(files []string, f string) int {
	for i, x := range files {
		if x == f {
			return i
		}
	}
	return len(files)
}

func (p *parser) openKeys(prefix string) []string {
	var ids []string
	for id := range p.vals {
		if strings.HasPrefix(id, prefix) {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := p.vals[ids[i]].at[0], p.vals[ids[j]].at[0]
		if a.file != b.file {
			return a.file < b.file
		}
		return a.line < b.line
	})
	return ids
}

// decryptKeys pairs the i-th decrypt_p12 with the i-th decrypt_p12_password,
// and the i-th decrypt_module with the i-th slot/label/pin.
func (p *parser) decryptKeys(c *Config) {
	nth := func(id string, i int) (string, bool) {
		e := p.vals[id]
		if e == nil || i >= len(e.vals) {
			return "", false
		}
		return e.vals[i], true
	}
	if e := p.vals["pins.decrypt_p12"]; e != nil {
		for i, f := range e.vals {
			pw, ok := nth("pins.decrypt_p12_password", i)
			if !ok {
				p.errf(e.at[i], "decrypt_p12 %q: no matching decrypt_p12_password", f)
				continue
			}
			c.DecryptKeys = append(c.DecryptKeys, DecryptKey{P12File: f, P12Password: secret.New(pw), Slot: -1})
		}
	}
	if e := p.vals["pins.decrypt_module"]; e != nil {
		for i, m := range e.vals {
			if !c.ModuleAllowed(m) {
				p.errf(e.at[i], "decrypt_module %q is not in [pkcs11] module", m)
				continue
			}
			k := DecryptKey{Module: m, Slot: -1}
			if s, ok := nth("pins.decrypt_slot", i); ok && s != "" && s != "*" {
				n, err := strconv.Atoi(s)
				if err != nil || n < 0 {
					p.errf(p.vals["pins.decrypt_slot"].at[i], "decrypt_slot %q: want a slot number or *", s)
					continue
				}
				k.Slot = n
			}
			l, ok := nth("pins.decrypt_label", i)
			if !ok || l == "" {
				p.errf(e.at[i], "decrypt_module %q: no matching decrypt_label", m)
				continue
			}
			k.Label = l
			pin, _ := nth("pins.decrypt_pin", i)
			k.PIN = secret.New(pin)
			c.DecryptKeys = append(c.DecryptKeys, k)
		}
	}
}

// Languages are the desktop app's languages ([desktop] language).
var Languages = []string{"en", "de", "sv"}

// desktop reads the [desktop] section.
func (p *parser) desktop(c *Config) {
	if v, at, ok := p.get("desktop.language"); ok {
		if !slices.Contains(Languages, v) {
			p.errf(at, "language: %q is not one of %s", v, strings.Join(Languages, ", "))
		} else {
			c.Language = v
		}
	}
	if v, at, ok := p.get("desktop.notifications"); ok {
		b, err := parseBool(v)
		if err != nil {
			p.errf(at, "notifications: %v", err)
		}
		c.Notifications = b
	}
	for _, k := range []struct {
		key string
		d   *time.Duration
	}{{"pin_timeout", &c.PINTimeout}, {"pair_timeout", &c.PairTimeout}} {
		v, at, ok := p.get("desktop." + k.key)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 || n > 600 {
			p.errf(at, "%s: %q is not a number of seconds from 10 to 600", k.key, v)
			continue
		}
		*k.d = time.Duration(n) * time.Second
	}
}

// station reads what production stations set (spec/station.md): the audit
// log, the readers a station must have, the timeout floors.
func (p *parser) station(c *Config) {
	if v, at, ok := p.get("log.audit"); ok {
		if v == "" {
			p.errf(at, "audit: empty (write off to keep no audit log)")
		}
		c.Audit = v
	}
	if v, at, ok := p.get("log.audit_rotate_mb"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 4096 {
			p.errf(at, "audit_rotate_mb: %q is not a number from 1 to 4096", v)
		} else {
			c.AuditRotateMiB = n
		}
	}
	if e := p.vals["readers.expect"]; e != nil {
		for i, v := range e.vals {
			if v == "" {
				p.errf(e.at[i], "expect: empty reader name")
				continue
			}
			c.ReaderExpect = append(c.ReaderExpect, v)
		}
	}
	for _, k := range []struct {
		key string
		d   *time.Duration
	}{{"floor", &c.TimeoutFloor}, {"keygen_floor", &c.KeygenTimeoutFloor}} {
		v, at, ok := p.get("timeouts." + k.key)
		if !ok {
			continue
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n < 0.1 || n > 86400 {
			p.errf(at, "%s: %q is not a number of seconds from 0.1 to 86400", k.key, v)
			continue
		}
		*k.d = time.Duration(n * float64(time.Second))
	}
	if v, at, ok := p.get("timeouts.learn"); ok {
		b, err := parseBool(v)
		if err != nil {
			p.errf(at, "learn: %v", err)
		}
		c.LearnTimeouts = b
	}
}

// limits are the [server] keys that bound the agent's work (docs/protocol.md,
// "Limits"), with the values they may take.
var limits = []struct {
	key      string
	min, max int
	field    func(*Config) *int
}{
	{"max_message_bytes", 64 << 10, 64 << 20, func(c *Config) *int { return &c.MaxMessageBytes }},
	{"max_rate_per_second", 1, 10000, func(c *Config) *int { return &c.RatePerSecond }},
	{"max_jobs", 1, 64, func(c *Config) *int { return &c.MaxJobs }},
}

// SplitOrigins splits a value holding several origins separated by commas
// or white space, which no origin contains (CheckOrigin): the MSI passes its
// BROWSER_POLICY_ORIGINS property as one value. It does not check them.
func SplitOrigins(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// CheckOrigin checks an allowed web origin: https://host[:port], in lower
// case as browsers send it, with nothing after it and no wildcard; http://
// only for localhost, 127.0.0.1 and [::1] (a portal under development).
// Any other http:// page can be read and changed by the network it came
// over, so it may not drive card jobs.
func CheckOrigin(o string) error {
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok || (scheme != "https" && scheme != "http") || rest == "" {
		return fmt.Errorf("origin %q: want https://host[:port]", o)
	}
	if strings.ContainsAny(rest, "/?#@*") || strings.TrimSpace(rest) != rest {
		return fmt.Errorf("origin %q: no path, query, user or wildcard allowed", o)
	}
	// A browser never sends a blank, a comma or a control character in an
	// origin's host; lists of origins (the MSI's BROWSER_POLICY_ORIGINS)
	// are split on blanks and commas.
	if strings.ContainsFunc(rest, func(r rune) bool { return r <= ' ' || r == ',' || r == 0x7f }) {
		return fmt.Errorf("origin %q: blanks, commas and control characters are not allowed", o)
	}
	if strings.ToLower(o) != o {
		return fmt.Errorf("origin %q: write it in lower case, as browsers send it", o)
	}
	host := rest
	if h, port, err := net.SplitHostPort(rest); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("origin %q: bad port %q", o, port)
		}
		host = h
	} else if strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]") {
		host = rest[1 : len(rest)-1]
	} else if strings.Contains(rest, ":") {
		return fmt.Errorf("origin %q: want host[:port] (IPv6 addresses in brackets)", o)
	}
	if host == "" {
		return fmt.Errorf("origin %q: no host", o)
	}
	if scheme == "http" && host != "localhost" && host != "127.0.0.1" && host != "::1" {
		return fmt.Errorf("origin %q: http:// only for localhost, 127.0.0.1 and [::1]; use https://", o)
	}
	return nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, errors.New("want true or false, got " + strconv.Quote(v))
}
