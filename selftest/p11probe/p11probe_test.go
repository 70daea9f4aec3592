package p11probe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/p11/allowlist"
	"github.com/cardwright/cardwright/secret"
	"github.com/cardwright/cardwright/selftest"
)

// SoftHSM2 reads SOFTHSM2_CONF once per process: this test binary's own
// token directory.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "p11probe-softhsm-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tokens, conf := filepath.Join(dir, "tokens"), filepath.Join(dir, "softhsm2.conf")
	if err = os.Mkdir(tokens, 0o700); err == nil {
		err = os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600)
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

var pin = secret.New("pin-probe-31337")

// softhsmToken loads SoftHSM2 through the adapter and makes a token.
func softhsmToken(t testing.TB, label string) (selftest.Module, *p11.Token) {
	t.Helper()
	s := stacktest.Require(t)
	path := s.Get(t, "SOFTHSM_MODULE")
	allow := allowlist.Modules{path}.Allows
	mod, err := Modules{Allow: allow}.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := p11.Load(path, allow)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := m.InitTokenAndPIN(nil, secret.New("so-probe-4242"), pin, label)
	if err != nil {
		t.Fatal(err)
	}
	return mod, tok
}

func find(t testing.TB, mod selftest.Module, label string) selftest.Token {
	t.Helper()
	toks, err := mod.Tokens()
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks {
		if tk.Initialized() && tk.Label() == label {
			return tk
		}
	}
	t.Fatalf("token %q not listed", label)
	return nil
}

// TestKeygenOnSoftHSM: the key generation runs without a PIN where the
// token allows it (SoftHSM2 does, for a non-private session key), with a
// PIN, fails on a wrong PIN, and leaves no object on the token.
func TestKeygenOnSoftHSM(t *testing.T) {
	mod, tok := softhsmToken(t, "probe")
	tk := find(t, mod, "probe")
	ctx := context.Background()
	if err := tk.Keygen(ctx, selftest.KeygenEC, secret.Value{}); err != nil {
		t.Errorf("EC without a PIN: %v", err)
	}
	if err := tk.Keygen(ctx, selftest.KeygenRSA2048, pin); err != nil {
		t.Errorf("RSA-2048 with the PIN: %v", err)
	}
	var pe *p11.PINError
	if err := tk.Keygen(ctx, selftest.KeygenEC, secret.New("wrong-0000")); !errors.As(err, &pe) {
		t.Errorf("wrong PIN: %v", err)
	}
	s, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Login(pin); err != nil {
		t.Fatal(err)
	}
	if k, err := s.FindKey(nil, "cardwright self-test"); err == nil {
		t.Errorf("a self-test key is left on the token: %+v", k)
	}
	// A private session key without a login is what tokens refuse.
	s2, err := tok.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	s.Close() // the login ends with its last holder
	if err := s2.ProbeKeyPair(p11.ECP256, true); !errors.Is(err, p11.ErrLoginNeeded) {
		t.Errorf("private key without a login: %v, want ErrLoginNeeded", err)
	}
}

// BenchmarkKeygen: the self-test's key generation on SoftHSM2 (session,
// generate, destroy, close).
//
//	go test ./selftest/p11probe/ -run '^$' -bench Keygen -benchtime 50x
func BenchmarkKeygen(b *testing.B) {
	mod, _ := softhsmToken(b, "probe-bench")
	tk := find(b, mod, "probe-bench")
	for _, k := range []selftest.Keygen{selftest.KeygenEC, selftest.KeygenRSA2048} {
		b.Run(string(k), func(b *testing.B) {
			for b.Loop() {
				if err := tk.Keygen(context.Background(), k, secret.Value{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestTokenSlotAndModule: a listed token carries its slot description
// (what maps card middleware's tokens to readers) and the module's
// resolved path, the key p11store's per-token lock uses.
func TestTokenSlotAndModule(t *testing.T) {
	mod, tok := softhsmToken(t, "probe-slot")
	tk := find(t, mod, "probe-slot")
	slots, err := tok.Module().Slots()
	if err != nil {
		t.Fatal(err)
	}
	var desc string
	for _, s := range slots {
		if s.ID == tok.SlotID() {
			desc = s.Description
		}
	}
	if desc == "" || tk.Slot() != desc {
		t.Errorf("slot description %q, want %q", tk.Slot(), desc)
	}
	if tk.ModulePath() != tok.Module().Path() || tk.Serial() != tok.Serial() {
		t.Errorf("lock key %q %q, want %q %q", tk.ModulePath(), tk.Serial(), tok.Module().Path(), tok.Serial())
	}
}
