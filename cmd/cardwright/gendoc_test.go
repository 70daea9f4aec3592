package main

import (
	"bytes"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/config"
)

// genDocs runs "cardwright gendoc" in-process and returns the man page and
// the bash completion it writes.
func genDocs(t *testing.T) (man, bash string) {
	t.Helper()
	dir := t.TempDir()
	manPath, bashPath := filepath.Join(dir, "cardwright.1"), filepath.Join(dir, "cardwright.bash")
	code, out, errs := runArgs("gendoc", "--man", manPath, "--bash", bashPath, "--date", "2026-12-05", "--version", "1.2.3")
	if code != exitOK || out != "" || errs != "" {
		t.Fatalf("gendoc: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	m, err := os.ReadFile(manPath)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bashPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(m), string(b)
}

// TestGenDocEveryCommand: every listed command and subcommand has a
// section in the man page with its synopsis, summary and every flag its -h
// lists, and is completed by the bash script with those flags; hidden
// commands are in neither.
func TestGenDocEveryCommand(t *testing.T) {
	man, bash := genDocs(t)
	if !strings.HasPrefix(man, `.\"`) || !strings.Contains(man, `.TH CARDWRIGHT 1 "2026-12-05" "cardwright 1.2.3"`) {
		t.Errorf("man page header:\n%.300s", man)
	}
	flagRE := regexp.MustCompile(`(?m)^  -([A-Za-z0-9][-A-Za-z0-9]*)`)
	n := 0
	for _, path := range allCommands() {
		c := lookup(path)
		name := strings.Join(path, " ")
		hidden := false
		for p := c; p != nil; p = p.parent {
			hidden = hidden || p.hidden
		}
		if hidden {
			if strings.Contains(man, `.SS "cardwright `+roff(name)) || strings.Contains(bash, " "+name+" ") {
				t.Errorf("hidden command %q is in the man page or the completion", name)
			}
			continue
		}
		n++
		_, usage, _ := runArgs(append(path, "-h")...)
		if !strings.Contains(man, `.SS "cardwright `+roff(name)) {
			t.Errorf("man page: no section for %q", name)
		}
		if !strings.Contains(man, roff(upperFirst(c.summary))) {
			t.Errorf("man page: no summary of %q: %q", name, c.summary)
		}
		// The completion lists the command among the top-level words or
		// its group's subcommands, and has its flags.
		words := regexp.MustCompile(`compgen -W '([^']*)'`).FindAllStringSubmatch(bash, -1)
		listed := false
		for _, w := range words {
			listed = listed || strings.Contains(" "+w[1]+" ", " "+c.name+" ")
		}
		if !listed {
			t.Errorf("completion does not offer %q", name)
		}
		var flagLine string
		if m := regexp.MustCompile(`(?m)^    "` + regexp.QuoteMeta(name) + `"\) flags='([^']*)'`).FindStringSubmatch(bash); m != nil {
			flagLine = " " + m[1] + " "
		}
		for _, f := range flagRE.FindAllStringSubmatch(usage, -1) {
			if c.subs != nil {
				break // a group's usage lists subcommands, not flags
			}
			if !strings.Contains(man, `\-\-`+roff(f[1])+"\n") && !strings.Contains(man, `\-\-`+roff(f[1])+` "`) {
				t.Errorf("man page: %s has no flag --%s", name, f[1])
			}
			if !strings.Contains(flagLine, " --"+f[1]+" ") {
				t.Errorf("completion: %s has no flag --%s (flags %q)", name, f[1], flagLine)
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d commands documented", n)
	}
}

// TestGenDocCompletionRuns: bash sources the completion and completes a
// command, a subcommand and a flag.
func TestGenDocCompletionRuns(t *testing.T) {
	bashPath, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash not found: %v", err)
	}
	_, script := genDocs(t)
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"cardwright", "rea"}, "readers"},
		{[]string{"cardwright", "token", "set"}, "set-pin"},
		{[]string{"cardwright", "token", "erase", "--y"}, "--yes"},
		{[]string{"cardwright", "serve", "--lis"}, "--listen"},
	} {
		var words strings.Builder
		for _, w := range tc.words {
			words.WriteString(" '" + w + "'")
		}
		prog := script + "\nCOMP_WORDS=(" + words.String() + ")\nCOMP_CWORD=" +
			strconv.Itoa(len(tc.words)-1) + "\n_cardwright\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		cmd := exec.Command(bashPath, "--norc", "--noprofile", "-c", prog)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil || errb.Len() > 0 {
			t.Fatalf("%v: %v, stderr %q", tc.words, err, errb.String())
		}
		if got := strings.TrimSpace(out.String()); got != tc.want {
			t.Errorf("completing %v: %q, want %q", tc.words, got, tc.want)
		}
	}
}

// TestGenDocRoff: text that would be a roff request or escape is escaped.
func TestGenDocRoff(t *testing.T) {
	for in, want := range map[string]string{
		`.hidden`:       `\&.hidden`,
		`'quoted'`:      `\&'quoted'`,
		`a\b`:           `a\eb`,
		`--dry-run`:     `\-\-dry\-run`,
		"list, init, …": `list, init, \[u2026]`,
	} {
		if got := roff(in); got != want {
			t.Errorf("roff(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestGenDocUsageErrors: gendoc needs something to write and a good date.
func TestGenDocUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"gendoc"}, {"gendoc", "--man", "x", "--date", "5.12.2026"}, {"gendoc", "extra"}} {
		if code, out, errs := runArgs(args...); code != exitUsage || out != "" || !strings.HasPrefix(errs, "cardwright gendoc: ") {
			t.Errorf("%v: exit %d, %q %q", args, code, out, errs)
		}
	}
	if _, out, _ := runArgs("help"); strings.Contains(out, "gendoc") {
		t.Errorf("gendoc is listed in help:\n%s", out)
	}
}

// TestGenDocPackagedConfig: the Debian package's conffile
// (installer/linux/cardwright.cfg) loads and, all commented out, changes
// nothing; every "#key = value" line it shows is valid when uncommented.
func TestGenDocPackagedConfig(t *testing.T) {
	path := filepath.Join("..", "..", "installer", "linux", "cardwright.cfg")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("cardwright.cfg", data)
	if err != nil {
		t.Fatalf("packaged configuration: %v", err)
	}
	c.Sources = nil
	if want := config.Default(); !reflect.DeepEqual(c, want) {
		t.Errorf("packaged configuration sets something:\n%+v\nwant the defaults\n%+v", c, want)
	}
	keyLine := regexp.MustCompile(`(?m)^#([a-z_]+ = .*)$`)
	uncommented := keyLine.ReplaceAll(data, []byte("$1"))
	if n := len(keyLine.FindAll(data, -1)); n < 15 {
		t.Errorf("only %d commented keys", n)
	}
	if _, err := config.Parse("uncommented.cfg", uncommented); err != nil {
		t.Errorf("packaged configuration with every key uncommented: %v\n%s", err, uncommented)
	}
}

// TestGenDocIcon: --icon writes the tray's idle icon as a PNG in builds
// with the desktop app, and is a usage error without it.
func TestGenDocIcon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cardwright.png")
	code, out, errs := runArgs("gendoc", "--icon", path)
	if !hasGUI {
		if code != exitUsage || !strings.Contains(errs, "no desktop app") {
			t.Errorf("nogui build: exit %d, %q %q; want a usage error", code, out, errs)
		}
		return
	}
	if code != exitOK || out != "" || errs != "" {
		t.Fatalf("gendoc --icon: exit %d, %q %q", code, out, errs)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("icon: %v", err)
	}
	if r := img.Bounds(); r.Dx() != 64 || r.Dy() != 64 {
		t.Errorf("icon is %v, want 64×64", r)
	}
}
