package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckCPF(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.cpf")
	bad := filepath.Join(dir, "bad.cpf")
	os.WriteFile(good, []byte("CardModel 'ISO7816'\nMasterFile\nCreateEf A id=1 maxsize=2\nEndfile\nFile Static A\ndata = 'ab'\nEndfile\nCreateFiles()\n"), 0o600)
	os.WriteFile(bad, []byte("CardModel 'ISO7816'\nA = 'x'\nA = 'y'\nB = ...\n"), 0o600)
	env := map[string]string{}
	t.Setenv("CARDWRIGHT_CONFIG", "") // standard locations only
	if code, out, errs := cpfRun(t, env, "check", good); code != exitOK || out != "" {
		t.Errorf("good profile: exit %d, %q %q", code, out, errs)
	}
	code, out, _ := cpfRun(t, env, "check", bad)
	want := bad + ":4:5: error: '...' is a placeholder"
	if code != exitFailure || !strings.HasPrefix(out, want) {
		t.Errorf("bad profile: exit %d\n%s\nwant first line %q", code, out, want)
	}
	code, out, _ = cpfRun(t, env, "check", "--json", good)
	if code != exitOK || !strings.Contains(out, `"diagnostics": []`) {
		t.Errorf("--json: exit %d, %s", code, out)
	}
}
