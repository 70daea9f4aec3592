package p11store

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// SoftHSM2 reads SOFTHSM2_CONF once, at C_Initialize, and p11 initialises a
// module once per process: the test binary gets one token directory of its
// own, and each test makes its tokens in it.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "p11store-softhsm-")
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
