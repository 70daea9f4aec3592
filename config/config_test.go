package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

const good = `# cardwright configuration
[server]
listen = 127.0.0.1
port = 31000
origin = https://cms.example.com
origin = https://cms2.example.com:8443
headless = yes

[pkcs11]
module = /usr/lib/softhsm/libsofthsm2.so
module = opensc-pkcs11.so

[readers]
skip = Microsoft Virtual Smart Card .*

[tokens]
Virtual PCD 00 0[23] = /usr/lib/softhsm/libsofthsm2.so, demo

[dialects]
CardOS V5.3 = cardos5

[pins]
encryption_cert = /etc/cardwright/pinenc.pem
decrypt_p12 = /etc/cardwright/pindec.p12
decrypt_p12_password = hunter2
decrypt_module = /usr/lib/softhsm/libsofthsm2.so
decrypt_slot = *
decrypt_label = pin-key
decrypt_pin = 9999

[log]
level = DEBUG
journal = /var/lib/cardwright/journal.db
`

func TestParseGood(t *testing.T) {
	c, err := Parse("good.cfg", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:31000" {
		t.Errorf("Listen = %q", c.Listen)
	}
	if len(c.AllowedOrigins) != 2 || c.AllowedOrigins[1] != "https://cms2.example.com:8443" {
		t.Errorf("origins = %q", c.AllowedOrigins)
	}
	if !c.Headless || c.LogLevel != "debug" || c.Journal != "/var/lib/cardwright/journal.db" {
		t.Errorf("headless/level/journal = %v %q %q", c.Headless, c.LogLevel, c.Journal)
	}
	for _, tc := range []struct {
		mod  string
		want bool
	}{
		{"/usr/lib/softhsm/libsofthsm2.so", true},
		{"/usr/lib/softhsm/../softhsm/libsofthsm2.so", true},
		{"opensc-pkcs11.so", true},
		{"/tmp/opensc-pkcs11.so", false},
		{"/tmp/evil.so", false},
	} {
		if got := c.ModuleAllowed(tc.mod); got != tc.want {
			t.Errorf("ModuleAllowed(%q) = %v", tc.mod, got)
		}
	}
	if !c.SkipReader("Microsoft Virtual Smart Card 0") || c.SkipReader("Virtual PCD 00 00") {
		t.Error("skip list wrong")
	}
	if tm, ok := c.TokenFor("Virtual PCD 00 02"); !ok || tm.Label != "demo" {
		t.Errorf("TokenFor = %+v %v", tm, ok)
	}
	if _, ok := c.TokenFor("Virtual PCD 00 00"); ok {
		t.Error("TokenFor matched an unmapped reader")
	}
	if c.Dialects["CardOS V5.3"] != "cardos5" {
		t.Errorf("dialects = %v", c.Dialects)
	}
	if len(c.DecryptKeys) != 2 || c.DecryptKeys[0].P12Password.Reveal() != "hunter2" || c.DecryptKeys[1].Label != "pin-key" || c.DecryptKeys[1].Slot != -1 {
		t.Errorf("decrypt keys = %+v", c.DecryptKeys)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"[server]\nlisten = 1.2.3.4:99999\n", "x.cfg:2: listen: bad port"},
		{"[server]\nport = abc\n", "x.cfg:2: port:"},
		{"[server]\nlistne = 1\n", `x.cfg:2: unknown key "listne"`},
		{"[srever]\n", "x.cfg:1: unknown section"},
		{"[server]\nport = 1\nport = 2\n", "x.cfg:3: duplicate key"},
		{"port = 1\n", "x.cfg:1: key \"port\" outside a section"},
		{"[server]\nheadless = maybe\n", "x.cfg:2: headless"},
		{"[server]\norigin = cms.example.com\n", "x.cfg:2: origin"},
		{"[server]\norigin = https://*.example.com\n", "x.cfg:2: origin"},
		{"[server]\ntls_cert = a.pem\n", "x.cfg:2: tls_cert and tls_key"},
		{"[readers]\nskip = (\n", "x.cfg:2: skip: bad regular expression"},
		{"[tokens]\nR = /x.so, lab\n", "not in [pkcs11] module"},
		{"[tokens]\nR = /x.so\n", "want module, label"},
		{"[log]\nlevel = loud\n", "x.cfg:2: level"},
		{"[pins]\ndecrypt_p12 = a.p12\n", "no matching decrypt_p12_password"},
		{"[server]\nbogus line\n", "x.cfg:2: expected key = value"},
		{"[server\n", "x.cfg:1: section header"},
	} {
		_, err := Parse("x.cfg", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestErrorsSortedAndSecretsHidden(t *testing.T) {
	_, err := Parse("x.cfg", []byte("[log]\nlevel = loud\n[server]\nport = x\n[pins]\ndecrypt_p12_password = s3cr3t\ndecrypt_p12 = a\ndecrypt_module = /no.so\n"))
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "x.cfg:2:") || !strings.HasPrefix(lines[1], "x.cfg:4:") || !strings.HasPrefix(lines[2], "x.cfg:8:") {
		t.Errorf("errors not sorted:\n%s", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Error("password in error")
	}
}

func TestOverlay(t *testing.T) {
	dir := t.TempDir()
	sys := filepath.Join(dir, "sys.cfg")
	usr := filepath.Join(dir, "usr.cfg")
	os.WriteFile(sys, []byte("[server]\nport = 1000\norigin = https://a.example\norigin = https://b.example\n[log]\nlevel = warn\n"), 0o600)
	os.WriteFile(usr, []byte("[server]\norigin = https://c.example\n"), 0o600)
	c, err := LoadFiles(sys, usr)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:1000" || c.LogLevel != "warn" {
		t.Errorf("system values lost: %q %q", c.Listen, c.LogLevel)
	}
	if len(c.AllowedOrigins) != 1 || c.AllowedOrigins[0] != "https://c.example" {
		t.Errorf("user list did not replace system list: %q", c.AllowedOrigins)
	}
	t.Setenv(EnvVar, usr)
	c, err = Load("")
	if err != nil || c.Listen != Default().Listen || len(c.Sources) != 1 {
		t.Errorf("Load via env: %v %+v", err, c)
	}
	if _, err := Load(filepath.Join(dir, "missing.cfg")); err == nil {
		t.Error("missing explicit file accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("[tokens]\n(=x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse("f.cfg", b)
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
	})
}

// TestLimitsAndIssuer: the [server] limits the protocol documents and the
// [issuer] CA directory are configuration keys, checked at start with
// file:line errors.
func TestLimitsAndIssuer(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca")
	c, err := Parse("x.cfg", []byte("[server]\nmax_message_bytes = 1048576\nmax_rate_per_second = 20\nmax_jobs = 2\n\n[issuer]\nca_dir = "+ca+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxMessageBytes != 1<<20 || c.RatePerSecond != 20 || c.MaxJobs != 2 || c.IssuerCADir != ca || c.IssuerCAAt != "x.cfg:7" {
		t.Errorf("config = %+v", c)
	}
	if _, err := os.Stat(ca); err == nil {
		t.Error("parsing created the CA directory")
	}
	if c := Default(); c.MaxMessageBytes != 0 || c.IssuerCADir != "" {
		t.Errorf("default limits or issuer set: %+v", c)
	}
	notDir := filepath.Join(t.TempDir(), "f")
	os.WriteFile(notDir, nil, 0o600)
	for _, tc := range []struct{ in, want string }{
		{"[server]\nmax_message_bytes = 1000\n", `x.cfg:2: max_message_bytes: "1000" is not a number from 65536 to 67108864`},
		{"[server]\nmax_message_bytes = 4M\n", `x.cfg:2: max_message_bytes: "4M" is not a number`},
		{"[server]\nmax_rate_per_second = 0\n", `x.cfg:2: max_rate_per_second: "0" is not a number from 1 to 10000`},
		{"[server]\n\nmax_jobs = 65\n", `x.cfg:3: max_jobs: "65" is not a number from 1 to 64`},
		{"[issuer]\nca_dir =\n", "x.cfg:2: ca_dir: empty"},
		{"[issuer]\nca_dir = " + notDir + "\n", "x.cfg:2: ca_dir: test CA " + notDir + ": not a directory"},
		{"[issuer]\nkey = x\n", `x.cfg:2: unknown key "key" in [issuer]`},
	} {
		_, err := Parse("x.cfg", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

// TestOrigins: https origins anywhere, http only on the loopback names.
func TestOrigins(t *testing.T) {
	for _, o := range []string{"https://cms.example.com", "https://cms.example.com:8443", "http://localhost:3000",
		"http://127.0.0.1:8080", "http://[::1]:8080", "http://localhost", "https://[2001:db8::1]"} {
		if err := CheckOrigin(o); err != nil {
			t.Errorf("CheckOrigin(%q) = %v", o, err)
		}
	}
	for o, want := range map[string]string{
		"http://cms.example.com":       "http:// only for localhost",
		"http://192.168.1.10:8080":     "http:// only for localhost",
		"http://localhost.evil.com":    "http:// only for localhost",
		"https://cms.example.com/path": "no path",
		"https://*.example.com":        "wildcard",
		"https://CMS.example.com":      "lower case",
		"null":                         "want https://host[:port]",
		"cms.example.com":              "want https://host[:port]",
		"ftp://cms.example.com":        "want https://host[:port]",
		"https://cms.example.com:0":    "bad port",
		"https://":                     "want https://host[:port]",
		"http://::1":                   "brackets",
		"https://a b.example":          "blanks, commas",
		"https://a,b.example":          "blanks, commas",
		"https://a\tb.example":         "blanks, commas",
	} {
		if err := CheckOrigin(o); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckOrigin(%q) = %v, want %q", o, err, want)
		}
	}
	_, err := Parse("x.cfg", []byte("[server]\norigin = https://cms.example.com\norigin = http://cms.example.com\n"))
	if err == nil || err.Error() != `x.cfg:3: origin "http://cms.example.com": http:// only for localhost, 127.0.0.1 and [::1]; use https://` {
		t.Errorf("http origin: %v", err)
	}
}

// TestDesktopSection: the desktop app's keys, their defaults and their
// positioned errors.
func TestDesktopSection(t *testing.T) {
	c, err := Parse("a.conf", []byte("[desktop]\nlanguage = de\nnotifications = no\npin_timeout = 30\npair_timeout = 45\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Language != "de" || c.Notifications || c.PINTimeout != 30*time.Second || c.PairTimeout != 45*time.Second {
		t.Errorf("got language %q notifications %v pin %v pair %v", c.Language, c.Notifications, c.PINTimeout, c.PairTimeout)
	}
	if d, _ := Parse("b.conf", []byte("[server]\nheadless = false\n")); d.Language != "" || !d.Notifications || d.PINTimeout != 0 {
		t.Errorf("defaults: %+v", d)
	}
	_, err = Parse("c.conf", []byte("[desktop]\nlanguage = fr\npin_timeout = 5\nnotifications = maybe\n"))
	for _, want := range []string{`c.conf:2: language: "fr" is not one of en, de, sv`, `c.conf:3: pin_timeout: "5" is not a number of seconds from 10 to 600`, `c.conf:4: notifications:`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

func TestStationKeys(t *testing.T) {
	c, err := Parse("a.conf", []byte("[log]\naudit = /var/lib/cw/audit\naudit_rotate_mb = 2\n[readers]\nexpect = Encoder A\nexpect = Encoder B\n[timeouts]\nfloor = 2.5\nkeygen_floor = 20\nlearn = no\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Audit != "/var/lib/cw/audit" || c.AuditRotateMiB != 2 || strings.Join(c.ReaderExpect, "|") != "Encoder A|Encoder B" ||
		c.TimeoutFloor != 2500*time.Millisecond || c.KeygenTimeoutFloor != 20*time.Second || c.LearnTimeouts {
		t.Errorf("got %+v", c)
	}
	d := Default()
	if d.Audit != "" || d.AuditRotateMiB != 16 || d.TimeoutFloor != time.Minute || d.KeygenTimeoutFloor != 3*time.Minute || !d.LearnTimeouts {
		t.Errorf("defaults: %+v", d)
	}
	_, err = Parse("c.conf", []byte("[log]\naudit =\naudit_rotate_mb = 0\n[timeouts]\nfloor = x\nlearn = maybe\n"))
	for _, want := range []string{`c.conf:2: audit: empty`, `c.conf:3: audit_rotate_mb: "0"`, `c.conf:5: floor: "x" is not a number of seconds`, `c.conf:6: learn:`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

// FuzzSplitOrigins: every non-separator character is kept, in order, and no
// origin is empty or holds a separator.
func FuzzSplitOrigins(f *testing.F) {
	for _, s := range []string{"https://a.example https://b.example", " , ", "https://a.example,\u00a0https://b.example:8443\t", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got := SplitOrigins(v)
		sep := func(r rune) bool { return r == ',' || unicode.IsSpace(r) }
		var kept strings.Builder // the bytes of every non-separator rune, as given
		for i, r := range v {
			if !sep(r) {
				_, n := utf8.DecodeRuneInString(v[i:])
				kept.WriteString(v[i : i+n])
			}
		}
		for _, o := range got {
			if o == "" || strings.IndexFunc(o, sep) >= 0 {
				t.Fatalf("SplitOrigins(%q) gave origin %q", v, o)
			}
		}
		if strings.Join(got, "") != kept.String() {
			t.Fatalf("SplitOrigins(%q) = %q, lost or added characters", v, got)
		}
	})
}
