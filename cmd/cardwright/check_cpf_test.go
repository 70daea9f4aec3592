package main

import (
	"encoding/json"
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
	// The lexical error on line 4 does not hide the checker's on line 3.
	code, out, _ := cpfRun(t, env, "check", bad)
	want := bad + ":3:1: error: A assigned twice (first at 2:1); a variable is assigned once\n" +
		bad + ":4:5: error: '...' is a placeholder: write a value, e.g. SECRANDOM(8)\n"
	if code != exitFailure || out != want {
		t.Errorf("bad profile: exit %d\n%s\nwant\n%s", code, out, want)
	}
	code, out, _ = cpfRun(t, env, "check", "--json", good)
	if code != exitOK || !strings.Contains(out, `"diagnostics": []`) || !strings.HasPrefix(out, "{\n  \"files\": [\n") {
		t.Errorf("--json: exit %d, %s", code, out)
	}
	param := filepath.Join(dir, "param.cpf")
	os.WriteFile(param, []byte("CardModel 'ISO7816'\nCreatePin PIN1 value=SEC_PIN1 minlen=6\nMasterFile\nCreateEf A id=1 maxsize=auto\nEndfile\nFile Dynamic A\ndata = HOLDER\nEndfile\nCreateFiles()\n"), 0o600)
	code, out, _ = cpfRun(t, env, "check", "--json", param)
	var reps struct{ Files []json.RawMessage }
	if err := json.Unmarshal([]byte(out), &reps); err != nil || len(reps.Files) != 1 {
		t.Fatalf("--json of param.cpf: %v\n%s", err, out)
	}
	var rep struct {
		Model, Dialect string
		Inputs         []struct {
			Name, Pos string
			Secret    bool
		}
		Credentials []struct {
			Name   string
			Ref    int
			MinLen int `json:"min_len"`
		}
	}
	if err := json.Unmarshal(reps.Files[0], &rep); err != nil || code != exitOK {
		t.Fatalf("--json of param.cpf: exit %d, %v\n%s", code, err, out)
	}
	if rep.Dialect != "ISO7816" || len(rep.Inputs) != 2 || rep.Inputs[0].Name != "SEC_PIN1" || !rep.Inputs[0].Secret ||
		rep.Inputs[1].Name != "HOLDER" || rep.Inputs[1].Pos != param+":7:8" || len(rep.Credentials) != 1 || rep.Credentials[0].Ref != 0x81 || rep.Credentials[0].MinLen != 6 {
		t.Errorf("--json of param.cpf: %+v\n%s", rep, out)
	}
}
