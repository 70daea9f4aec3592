package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCheckCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code := runMain(context.Background(), env, append([]string{"check"}, args...))
	return code, out.String(), errb.String()
}

const seedDir = "../../testdata/seed/"

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.dsc")
	os.WriteFile(bad, []byte("[Fields]\nP=\n[Description]\nPIN=Q\nFoo=1\n^ENCRYPTED\nChipProfile=x.cpf\n"), 0o644)
	bare := filepath.Join(dir, "bare.dsc")
	os.WriteFile(bare, []byte("[Description]\nInitToken=true\nChipProfile=absent.cpf\n"), 0o644)

	tests := []struct {
		name string
		args []string
		code int
		out  string // exact stdout, with DIR for the temp dir
	}{
		{"seed for its platform", []string{"--platform", "windows/386", seedDir + "cms_card_serial.dsc"}, 0, ""},
		{"seed elsewhere warns", []string{"--platform", "linux/arm64", seedDir + "configure_dll.dsc"}, 0,
			seedDir + "configure_dll.dsc:2:1: warning: no PKCS#11 library key for linux/arm64 (found PKCS11LibraryWindows32); a job on linux/arm64 will fail\n"},
		{"errors sorted", []string{bad}, 1,
			"DIR/bad.dsc:4:5: error: PIN: Q is not declared in [Fields] (want a #literal, a field or a !FROM_… source)\n" +
				"DIR/bad.dsc:5:1: warning: unknown key Foo in [Description]; ignored\n" +
				"DIR/bad.dsc:6:1: error: vendor-encrypted line ('^'): cardwright cannot read encrypted descriptions\n" +
				"DIR/bad.dsc:7:1: error: ChipProfile without InitToken: the profile runs only when the card is initialized (add InitToken=true)\n" +
				"DIR/bad.dsc:7:13: warning: ChipProfile: file x.cpf not found\n"},
		{"bare dsc missing file warns", []string{bare}, 0, "DIR/bare.dsc:3:13: warning: ChipProfile: file absent.cpf not found\n"},
		{"unreadable", []string{filepath.Join(dir, "nope.dsc")}, 1, "DIR/nope.dsc: error: reading file: no such file or directory\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCheckCmd(t, tc.args...)
			out = strings.ReplaceAll(out, dir, "DIR")
			if code != tc.code || out != tc.out {
				t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d, stdout:\n%s", code, out, errs, tc.code, tc.out)
			}
		})
	}
}

func TestCheckUsage(t *testing.T) {
	// An explicit configuration that cannot be read is a failure.
	if code, _, errs := runCheckCmd(t, "--config", filepath.Join(t.TempDir(), "none.cfg"), "x.cpf"); code != exitFailure || !strings.Contains(errs, "none.cfg") {
		t.Errorf("--config missing: exit %d, stderr %q", code, errs)
	}
	for _, args := range [][]string{nil, {"--platform", "windows", "x.dsc"}, {"--bogus", "x.dsc"}, {"x.txt"},
		{"--model", "SIEMENS50", "x.cpf"}, {"--model", "SIEMENS50=CARDOS", "x.cpf"}} {
		if code, _, errs := runCheckCmd(t, args...); code != exitUsage || errs == "" {
			t.Errorf("%q: exit %d, stderr %q", args, code, errs)
		}
	}
}

func writeDSZ(t *testing.T, path string, b64 bool, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		w, _ := zw.Create(name)
		w.Write([]byte(data))
	}
	zw.Close()
	data := buf.Bytes()
	if b64 {
		data = []byte(base64.StdEncoding.EncodeToString(data))
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckDSZ(t *testing.T) {
	dir := t.TempDir()
	desc := "[Fields]\nv=\nPIN=\n[Description]\nPKCS11Library=/usr/lib/x.so\nInitToken=true\nChipProfile=p.cpf\nProfileParameters=v\nPIN=PIN\n"
	profile := "CardModel 'ISO7816'\nCreatePin PIN1 value=SEC_PIN1\nMasterFile\nCreateEf A id=0x5001 maxsize=auto\nEndfile\nFile Dynamic A\ndata = v\nEndfile\nCreateFiles()\n"
	good := filepath.Join(dir, "good.dsz")
	writeDSZ(t, good, true, map[string]string{"job/e.dsc": desc, "job/p.cpf": profile})
	missing := filepath.Join(dir, "missing.dsz")
	writeDSZ(t, missing, false, map[string]string{"e.dsc": desc})
	evil := filepath.Join(dir, "evil.dsz")
	writeDSZ(t, evil, false, map[string]string{"e.dsc": desc, "../p.cpf": "x"})

	if code, out, _ := runCheckCmd(t, good); code != 0 || out != "" {
		t.Errorf("good: exit %d %q", code, out)
	}
	code, out, _ := runCheckCmd(t, missing)
	if want := missing + "/e.dsc:7:13: error: ChipProfile: file p.cpf not found\n"; code != 1 || out != want {
		t.Errorf("missing: exit %d %q want %q", code, out, want)
	}
	code, out, _ = runCheckCmd(t, evil)
	if code != 1 || !strings.Contains(out, "path leaves the container") {
		t.Errorf("evil: exit %d %q", code, out)
	}

	code, out, _ = runCheckCmd(t, "--json", good)
	if code != 0 {
		t.Fatalf("json: exit %d", code)
	}
	var reps struct{ Files []json.RawMessage }
	if err := json.Unmarshal([]byte(out), &reps); err != nil || len(reps.Files) != 1 {
		t.Fatalf("%v\n%s", err, out)
	}
	var rep struct {
		File        string
		Diagnostics []any
		Description struct{ Fields []struct{ Name string } }
		Plan        struct {
			Steps []struct {
				Kind string
				Init struct{ Profile string }
			}
		}
	}
	if err := json.Unmarshal(reps.Files[0], &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rep.Description.Fields) != 2 || len(rep.Plan.Steps) != 2 || rep.Plan.Steps[1].Kind != "init_profile" || rep.Plan.Steps[1].Init.Profile != "p.cpf" {
		t.Errorf("json report: %s", out)
	}
}

// TestCheckJSONShape: --json prints one shape whatever the files: an
// object whose files array has a report per file, in the order given —
// an unreadable file included.
func TestCheckJSONShape(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "p.cpf")
	os.WriteFile(prof, []byte("CardModel 'ISO7816'\nA = #\n"), 0o644)
	desc := seedDir + "cms_card_serial.dsc"
	nope := filepath.Join(dir, "nope.dsc")
	for _, files := range [][]string{{desc}, {prof}, {nope}, {desc, prof}, {prof, nope, desc}} {
		_, out, errs := runCheckCmd(t, append([]string{"--json", "--platform", "windows/386"}, files...)...)
		var got map[string][]struct {
			File        string
			Diagnostics []struct{ Message string }
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
			t.Errorf("%v: %v (stderr %s)\n%s", files, err, errs, out)
			continue
		}
		reports := got["files"]
		if len(reports) != len(files) {
			t.Errorf("%v: %d reports\n%s", files, len(reports), out)
			continue
		}
		for i, r := range reports {
			if r.File != files[i] || r.Diagnostics == nil {
				t.Errorf("%v: report %d is for %q, diagnostics %v", files, i, r.File, r.Diagnostics)
			}
			if files[i] == nope && (len(r.Diagnostics) != 1 || !strings.Contains(r.Diagnostics[0].Message, "no such file")) {
				t.Errorf("%v: unreadable file reported as %+v", files, r)
			}
		}
	}
}
