package selftest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/journal"
	"github.com/cardwright/cardwright/secret"
)

// Fakes of the ports.

type fakeReaders struct {
	list []Reader
	err  error
}

func (f fakeReaders) Status(context.Context) ([]Reader, error) { return f.list, f.err }

type fakeToken struct {
	label   string
	slot    string // slot description
	blank   bool
	login   bool  // wants a PIN
	err     error // Keygen's failure
	gotPIN  *string
	keygens *int
}

func (t fakeToken) Label() string      { return t.label }
func (t fakeToken) Serial() string     { return "0001" }
func (t fakeToken) Initialized() bool  { return !t.blank }
func (t fakeToken) Slot() string       { return t.slot }
func (t fakeToken) ModulePath() string { return "/real/hsm.so" }
func (t fakeToken) Keygen(_ context.Context, _ Keygen, pin secret.Value) error {
	if t.keygens != nil {
		*t.keygens++
	}
	if t.gotPIN != nil {
		*t.gotPIN = pin.Reveal()
	}
	if t.login && pin.IsZero() {
		return fmt.Errorf("generating: %w", ErrNeedsLogin)
	}
	return t.err
}

type fakeModule struct {
	toks []Token
	err  error
}

func (m fakeModule) Describe() string         { return "Fake HSM 1.0" }
func (m fakeModule) Tokens() ([]Token, error) { return m.toks, m.err }

type fakeModules map[string]fakeModule

func (f fakeModules) Load(path string) (Module, error) {
	m, ok := f[path]
	if !ok {
		return nil, fmt.Errorf("loading PKCS#11 module %s: module file not found", path)
	}
	return m, nil
}

const (
	ownATR  = "3B8581018073B60180C1"
	viccATR = "3B951381018073FF01000B"
)

func atr(s string) []byte {
	var b []byte
	fmt.Sscanf(s, "%X", &b)
	return b
}

// find returns the check called name, or fails.
func find(t *testing.T, r *Report, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	var names []string
	for _, c := range r.Checks {
		names = append(names, c.Name)
	}
	t.Fatalf("no check %q in %q", name, names)
	return Check{}
}

func want(t *testing.T, r *Report, name string, st Status, detail string) {
	t.Helper()
	c := find(t, r, name)
	if c.Status != st || !strings.Contains(c.Detail, detail) {
		t.Errorf("%s: %s %q, want %s with %q", name, c.Status, c.Detail, st, detail)
	}
}

// station is a healthy station: two expected readers with mapped cards, a
// skipped one, one module with its token, a writable journal.
func station(t *testing.T) (Options, Ports) {
	o := Options{
		Expect:     []string{"R1", "R2"},
		Skip:       func(n string) bool { return n == "Hello" },
		Dialects:   map[string]string{ownATR: "ISO7816-EXT", "3B95*": "iso7816", "SIEMENS50": "ISO7816"},
		Modules:    []string{"/lib/hsm.so"},
		Tokens:     []TokenRef{{Reader: "R1", Module: "/lib/hsm.so", Label: "t1"}},
		Allowed:    func(p string) bool { return p == "/lib/hsm.so" || p == "/lib/gone.so" },
		JournalDir: t.TempDir(),
		Listen:     "127.0.0.1:0",
	}
	p := Ports{
		Readers: fakeReaders{list: []Reader{
			{Name: "R1", Card: true, ATR: atr(ownATR)},
			{Name: "R2", Card: true, ATR: atr(viccATR)},
			{Name: "Hello", Card: true, ATR: atr("3BFF00")},
		}},
		Modules: fakeModules{"/lib/hsm.so": {toks: []Token{fakeToken{label: "t1"}, fakeToken{blank: true}}}},
		Journal: func(string) error { return fmt.Errorf("probing: %w", journal.ErrNotCreated) },
	}
	return o, p
}

func TestAllGreen(t *testing.T) {
	o, p := station(t)
	r := Run(context.Background(), o, p)
	if !r.OK() {
		var b bytes.Buffer
		r.WriteText(&b)
		t.Fatalf("not ok:\n%s", b.String())
	}
	want(t, r, "pc/sc", OK, "3 readers, 1 skipped")
	want(t, r, `reader "R1"`, OK, "expected; card, ATR "+ownATR)
	want(t, r, `reader "Hello"`, Skip, "skipped by [readers] skip")
	want(t, r, `card in "R1"`, OK, "dialect ISO7816-EXT")
	want(t, r, `card in "R2"`, OK, "dialect ISO7816 (ATR pattern 3B95*)")
	want(t, r, "module /lib/hsm.so", OK, `Fake HSM 1.0; 1 token: "t1"; 1 uninitialised`)
	want(t, r, `keygen "t1"`, OK, "EC P-256 key pair")
	want(t, r, "journal folder", OK, "writable")
	want(t, r, "journal database", OK, "not created yet")
	want(t, r, "port 127.0.0.1:0", OK, "free")
	want(t, r, "tls certificate", Skip, "none configured")
	for _, c := range r.Checks {
		if c.Name == `card in "Hello"` {
			t.Errorf("a skipped reader's card was checked: %+v", c)
		}
	}
}

func TestReaders(t *testing.T) {
	t.Run("service down", func(t *testing.T) {
		o, p := station(t)
		p.Readers = fakeReaders{err: errors.New("establishing the pc/sc context: pc/sc service not available")}
		r := Run(context.Background(), o, p)
		want(t, r, "pc/sc", Fail, "service not reachable: establishing")
		want(t, r, `reader "R1"`, Fail, "no PC/SC service")
		if r.OK() {
			t.Error("OK with the service down")
		}
	})
	t.Run("expected missing", func(t *testing.T) {
		o, p := station(t)
		o.Expect = append(o.Expect, "R3")
		r := Run(context.Background(), o, p)
		want(t, r, `reader "R3"`, Fail, "expected ([readers] expect) but not present")
		if got := r.Failed(); len(got) != 1 || got[0] != `reader "R3"` {
			t.Errorf("failed %q", got)
		}
	})
	t.Run("mute card", func(t *testing.T) {
		o, p := station(t)
		p.Readers = fakeReaders{list: []Reader{{Name: "R1", Card: true, Mute: true}, {Name: "R2"}, {Name: "X", Card: true, Mute: true}}}
		r := Run(context.Background(), o, p)
		want(t, r, `reader "R1"`, Fail, "card does not answer the reset")
		want(t, r, `reader "R2"`, OK, "no card")
		want(t, r, `reader "X"`, Warn, "card does not answer the reset")
	})
	t.Run("no readers", func(t *testing.T) {
		o, p := station(t)
		o.Expect = nil
		p.Readers = fakeReaders{}
		r := Run(context.Background(), o, p)
		want(t, r, "pc/sc", Warn, "no reader to encode with")
		if !r.OK() {
			t.Error("a warning failed the report")
		}
	})
}

func TestCards(t *testing.T) {
	o, p := station(t)
	o.Dialects = map[string]string{viccATR: "NOSUCH"}
	p.Readers = fakeReaders{list: []Reader{
		{Name: "R1", Card: true, ATR: atr(ownATR)},
		{Name: "R2", Card: true, ATR: atr(viccATR)},
		{Name: "Other", Card: true, ATR: atr(ownATR)},
	}}
	r := Run(context.Background(), o, p)
	want(t, r, `card in "R1"`, Fail, "no dialect mapped for ATR "+ownATR)
	want(t, r, `card in "R2"`, Fail, `maps to unknown dialect "NOSUCH"`)
	want(t, r, `card in "Other"`, Warn, "no dialect mapped")
}

func TestModules(t *testing.T) {
	t.Run("missing module and token", func(t *testing.T) {
		o, p := station(t)
		o.Modules = append(o.Modules, "/lib/gone.so", "/lib/evil.so", "opensc-pkcs11.so")
		o.Tokens = append(o.Tokens, TokenRef{Reader: "R2", Module: "/lib/hsm.so", Label: "t2"})
		r := Run(context.Background(), o, p)
		want(t, r, "module /lib/gone.so", Fail, "module file not found")
		want(t, r, "module /lib/evil.so", Fail, "not in [pkcs11] module")
		want(t, r, "module opensc-pkcs11.so", Skip, "allowed by file name")
		want(t, r, "module /lib/hsm.so", Fail, `missing token "t2" (for readers R2)`)
	})
	t.Run("listing fails", func(t *testing.T) {
		o, p := station(t)
		p.Modules = fakeModules{"/lib/hsm.so": {err: errors.New("CKR_DEVICE_ERROR")}}
		r := Run(context.Background(), o, p)
		want(t, r, "module /lib/hsm.so", Fail, "listing tokens: CKR_DEVICE_ERROR")
	})
	t.Run("no token", func(t *testing.T) {
		o, p := station(t)
		o.Tokens = nil
		p.Modules = fakeModules{"/lib/hsm.so": {toks: []Token{fakeToken{blank: true}}}}
		r := Run(context.Background(), o, p)
		want(t, r, "module /lib/hsm.so", Warn, "0 tokens; 1 uninitialised")
	})
	t.Run("none configured", func(t *testing.T) {
		o, p := station(t)
		o.Modules, o.Tokens = nil, nil
		r := Run(context.Background(), o, p)
		want(t, r, "pkcs11 modules", Skip, "none configured")
	})
}

func TestKeygen(t *testing.T) {
	var pin string
	n := 0
	mods := func(tok ...Token) fakeModules { return fakeModules{"/lib/hsm.so": {toks: tok}} }
	t.Run("needs a login", func(t *testing.T) {
		o, p := station(t)
		p.Modules = mods(fakeToken{label: "t1", login: true})
		r := Run(context.Background(), o, p)
		want(t, r, `keygen "t1"`, Skip, "needs a login: give a PIN with --pin-file")
	})
	t.Run("with a PIN", func(t *testing.T) {
		o, p := station(t)
		o.PIN, o.Keygen = secret.New("123456"), KeygenRSA2048
		p.Modules = mods(fakeToken{label: "t1", login: true, gotPIN: &pin})
		r := Run(context.Background(), o, p)
		want(t, r, `keygen "t1"`, OK, "RSA-2048 key pair")
		if pin != "123456" {
			t.Errorf("token got PIN %q", pin)
		}
		b, _ := json.Marshal(r)
		var tb bytes.Buffer
		r.WriteText(&tb)
		if bytes.Contains(b, []byte("123456")) || strings.Contains(tb.String(), "123456") {
			t.Error("the PIN is in the report")
		}
	})
	t.Run("fails", func(t *testing.T) {
		o, p := station(t)
		p.Modules = mods(fakeToken{label: "t1", err: errors.New("CKR_MECHANISM_INVALID")})
		r := Run(context.Background(), o, p)
		want(t, r, `keygen "t1"`, Fail, "EC P-256 key pair: CKR_MECHANISM_INVALID")
	})
	t.Run("off and other tokens", func(t *testing.T) {
		o, p := station(t)
		o.Token = "t2"
		p.Modules = mods(fakeToken{label: "t1", keygens: &n}, fakeToken{label: "t2", keygens: &n})
		r := Run(context.Background(), o, p)
		want(t, r, `keygen "t1"`, Skip, `not the token asked for ("t2")`)
		want(t, r, `keygen "t2"`, OK, "EC P-256")
		o.Keygen = KeygenOff
		r = Run(context.Background(), o, p)
		want(t, r, `keygen "t2"`, Skip, "off")
		if n != 1 {
			t.Errorf("%d key generations, want 1", n)
		}
	})
}

func TestJournal(t *testing.T) {
	t.Run("folder not writable", func(t *testing.T) {
		// Tests run as root, who ignores permission bits: a folder
		// under a regular file cannot be made by anyone.
		o, p := station(t)
		file := filepath.Join(t.TempDir(), "file")
		os.WriteFile(file, nil, 0o600)
		o.JournalDir = filepath.Join(file, "journal")
		r := Run(context.Background(), o, p)
		want(t, r, "journal folder", Fail, "is not writable: mkdir")
	})
	t.Run("probe answers", func(t *testing.T) {
		for _, tc := range []struct {
			err    error
			st     Status
			detail string
		}{
			{nil, OK, "journal.db opens"},
			{fmt.Errorf("probing: %w", journal.ErrInUse), OK, "held by a running agent"},
			{errors.New("probing journal x: invalid database"), Fail, "invalid database"},
		} {
			o, p := station(t)
			p.Journal = func(string) error { return tc.err }
			want(t, Run(context.Background(), o, p), "journal database", tc.st, tc.detail)
		}
	})
	t.Run("in the agent", func(t *testing.T) {
		o, p := station(t)
		o.InAgent = true
		p.Journal = func(string) error { t.Error("journal probed inside the agent"); return nil }
		want(t, Run(context.Background(), o, p), "journal database", OK, "open in this agent")
	})
	t.Run("real journal", func(t *testing.T) {
		o, p := station(t)
		j, _, err := journal.Open(o.JournalDir)
		if err != nil {
			t.Fatal(err)
		}
		p.Journal = journal.Probe
		want(t, Run(context.Background(), o, p), "journal database", OK, "held by a running agent")
		j.Close()
		want(t, Run(context.Background(), o, p), "journal database", OK, "journal.db opens")
	})
}

func TestPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	o, p := station(t)
	o.Listen = ln.Addr().String()
	want(t, Run(context.Background(), o, p), "port "+o.Listen, Fail, "cannot listen")
	o.InAgent = true
	want(t, Run(context.Background(), o, p), "port "+o.Listen, OK, "served by this agent")

	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"status":"ok","agent":"cardwright/1.2.3"}`))
	}))
	defer agent.Close()
	o.InAgent, o.Listen = false, strings.TrimPrefix(agent.URL, "http://")
	want(t, Run(context.Background(), o, p), "port "+o.Listen, OK, "in use by a running agent (cardwright/1.2.3)")
}

// writeCert writes a self-signed certificate for names valid from nb to
// na, and its key (or another key when otherKey).
func writeCert(t *testing.T, names []string, ips []net.IP, nb, na time.Time, otherKey bool) (string, string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: nb, NotAfter: na, DNSNames: names, IPAddresses: ips}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	if otherKey {
		k, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	kd, _ := x509.MarshalECPrivateKey(k)
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	return cf, kf
}

func TestTLS(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	lo := []net.IP{net.IPv4(127, 0, 0, 1)}
	day := 24 * time.Hour
	for _, tc := range []struct {
		name     string
		names    []string
		ips      []net.IP
		nb, na   time.Time
		otherKey bool
		st       Status
		detail   string
	}{
		{"valid", []string{"localhost"}, lo, now.Add(-day), now.Add(400 * day), false, OK, "valid until 2028-01-10 (400 days)"},
		{"near expiry", []string{"localhost"}, lo, now.Add(-day), now.Add(10 * day), false, Warn, "expires in 10 days"},
		{"expired", []string{"localhost"}, lo, now.Add(-9 * day), now.Add(-day), false, Fail, "expired 2026-12-05"},
		{"not yet", []string{"localhost"}, lo, now.Add(day), now.Add(9 * day), false, Fail, "not valid before"},
		{"names", []string{"agent.example"}, nil, now.Add(-day), now.Add(400 * day), false, Fail, "does not name 127.0.0.1; does not name localhost"},
		{"key", []string{"localhost"}, lo, now.Add(-day), now.Add(400 * day), true, Fail, "private key does not match public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, p := station(t)
			o.TLSCert, o.TLSKey = writeCert(t, tc.names, tc.ips, tc.nb, tc.na, tc.otherKey)
			o.Now = func() time.Time { return now }
			want(t, Run(context.Background(), o, p), "tls certificate", tc.st, tc.detail)
		})
	}
}

func TestReportOutput(t *testing.T) {
	r := &Report{Checks: []Check{
		{Name: "a", Status: OK, Detail: "fine", Duration: 1500 * time.Microsecond},
		{Name: "longer name", Status: Warn, Detail: "look\nat it"},
		{Name: "b", Status: Fail, Detail: "broken", Duration: 12 * time.Second},
		{Name: "c", Status: Skip, Detail: "off"},
	}}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[2], "FAIL  b ") || !strings.HasSuffix(lines[2], "12.0 s") ||
		!strings.Contains(lines[1], "look at it") || lines[4] != "self-test FAILED: 1 of 4 checks failed (b), 1 warning, 1 skipped" {
		t.Errorf("text report:\n%s", b.String())
	}
	// Columns line up: every detail starts at the same offset.
	off := strings.Index(lines[0], "fine")
	for i, d := range []string{"look", "broken", "off"} {
		if strings.Index(lines[i+1], d) != off {
			t.Errorf("line %d: %q not at column %d", i+1, lines[i+1], off)
		}
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Status string
		Checks []struct {
			Name, Status, Detail string
			DurationMS           float64 `json:"duration_ms"`
		}
	}
	if err := json.Unmarshal(js, &got); err != nil || got.Status != "fail" || len(got.Checks) != 4 || got.Checks[0].DurationMS != 1.5 || got.Checks[2].Status != "fail" {
		t.Errorf("json %s (%v)", js, err)
	}
	r.Checks[2].Status = Warn
	if !r.OK() || !strings.HasPrefix(r.Summary(), "self-test passed: 4 checks, 2 warnings, 1 skipped") {
		t.Errorf("summary %q ok %v", r.Summary(), r.OK())
	}
}

func TestCancelled(t *testing.T) {
	o, p := station(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := Run(ctx, o, p)
	want(t, r, "self-test", Fail, "stopped before every check ran")
}

func TestParseKeygen(t *testing.T) {
	for in, k := range map[string]Keygen{"ec": KeygenEC, "RSA2048": KeygenRSA2048, "off": KeygenOff} {
		if got, err := ParseKeygen(in); err != nil || got != k {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	if _, err := ParseKeygen("rsa4096"); err == nil {
		t.Error("rsa4096 accepted")
	}
}
