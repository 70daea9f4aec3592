package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/iso7816/memcard"
)

// cliRun runs one cardwright command line in-process.
func cliRun(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb strings.Builder
	env := &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: os.Getenv}
	code = runMain(context.Background(), env, args)
	return code, out.String(), errb.String()
}

func TestReadersUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"readers", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"readers", "--nosuch"}, exitUsage, "flag provided but not defined"},
		{[]string{"readers", "--config", filepath.Join(t.TempDir(), "missing.cfg")}, exitFailure, "loading the configuration"},
	}
	for _, tt := range tests {
		code, out, errOut := cliRun(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.msg) || out != "" {
			t.Errorf("%q: exit %d, stderr %q, stdout %q; want exit %d and %q", tt.args, code, errOut, out, tt.code, tt.msg)
		}
	}
}

var hexATR = regexp.MustCompile(`^(?:[0-9A-F]{2})*$`)

func TestReadersOnStack(t *testing.T) {
	s := stacktest.Require(t)
	code, out, errOut := cliRun(t, "readers", "--json", "--all")
	if code != exitOK {
		t.Fatalf("readers --json: exit %d: %s", code, errOut)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("readers --json printed no JSON array: %v\n%s", err, out)
	}
	byName := map[string]map[string]any{}
	for _, r := range got {
		for _, key := range []string{"name", "present", "atr", "protocol"} {
			if _, ok := r[key]; !ok {
				t.Errorf("reader object %v lacks %q", r, key)
			}
		}
		atr, _ := r["atr"].(string)
		if !hexATR.MatchString(atr) {
			t.Errorf("ATR %q is not upper-case hex without spaces", atr)
		}
		byName[r["name"].(string)] = r
	}
	ownATR := strings.ToUpper(hex.EncodeToString(memcard.DefaultATR(false)))
	for key, atr := range map[string]string{
		"READER_VICC_1": "3B9513810180" + "73FF01000B",
		"READER_VICC_2": "3B951381018073FF01000B",
		"READER_OWN_1":  ownATR,
		"READER_OWN_2":  ownATR,
	} {
		name := s.Get(t, key)
		r, ok := byName[name]
		if !ok {
			t.Errorf("readers --json lacks %s %q: %s", key, name, out)
			continue
		}
		if r["present"] != true || r["atr"] != atr || r["protocol"] != "T=1" {
			t.Errorf("%s: %v, want present with ATR %s and T=1", key, r, atr)
		}
	}

	// The table names every reader.
	code, out, _ = cliRun(t, "readers", "--all")
	if code != exitOK || !strings.Contains(out, s.Get(t, "READER_OWN_1")) || !strings.Contains(out, ownATR) {
		t.Errorf("readers: exit %d\n%s", code, out)
	}

	// The configuration's skip list hides readers unless --all.
	cfg := filepath.Join(t.TempDir(), "cardwright.cfg")
	if err := os.WriteFile(cfg, []byte("[readers]\nskip = Virtual PCD vicc .*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = cliRun(t, "readers", "--json", "--config", cfg)
	if code != exitOK {
		t.Fatalf("readers --config: exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "vicc") || !strings.Contains(out, s.Get(t, "READER_OWN_2")) {
		t.Errorf("skip list not applied:\n%s", out)
	}
}
