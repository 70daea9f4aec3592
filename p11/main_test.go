package p11

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/p11/allowlist"
	"github.com/cardwright/cardwright/secret"
)

// SoftHSM2 reads SOFTHSM2_CONF once, at C_Initialize, and a module is
// initialised once per process: the whole test binary shares one token
// directory, made here, and every test makes tokens of its own in it.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "p11-softhsm-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tokens := filepath.Join(dir, "tokens")
	conf := filepath.Join(dir, "softhsm2.conf")
	if err = os.Mkdir(tokens, 0o700); err == nil {
		err = os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"), 0o600)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("SOFTHSM2_CONF", conf)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// softhsm loads SoftHSM2 as the stack names it.
func softhsm(t testing.TB) *Module {
	t.Helper()
	s := stacktest.Require(t)
	path := s.Get(t, "SOFTHSM_MODULE")
	m, err := Load(path, allowlist.Modules{path}.Allows)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var tokenSeq atomic.Int64

// Test credentials. Distinct values so a leak is easy to grep for.
var (
	testSO  = secret.New("so-735194")
	testPIN = secret.New("pin-604281")
)

// newToken initialises a fresh token with testSO and testPIN.
func newToken(t testing.TB, m *Module) *Token {
	t.Helper()
	name := strings.NewReplacer("/", "-", "Test", "").Replace(t.Name())
	label := fmt.Sprintf("%d-%s", tokenSeq.Add(1), name)
	if len(label) > 32 {
		label = label[:32]
	}
	tok, err := m.InitTokenAndPIN(nil, testSO, testPIN, label)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Label() != label || !tok.Info().Initialized() || !tok.Info().UserPINInitialized() {
		t.Fatalf("new token: got label %q flags %v", tok.Label(), tok.Info().FlagNames())
	}
	return tok
}

// userSession opens a session logged in as user.
func userSession(t testing.TB, tok *Token) *Session {
	t.Helper()
	s, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Login(testPIN); err != nil {
		t.Fatal(err)
	}
	return s
}

// noSecrets fails when text shows one of the test secrets.
func noSecrets(t testing.TB, text string, vals ...secret.Value) {
	t.Helper()
	for _, v := range append(vals, testSO, testPIN) {
		if v.Len() > 0 && strings.Contains(text, v.Reveal()) {
			t.Errorf("a secret shows in %q", text)
		}
	}
}
