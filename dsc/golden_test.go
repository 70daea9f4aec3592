package dsc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// readJob reads a NAME.job file: "platform GOOS/GOARCH", "secret F1 F2 …",
// "field NAME=value" lines.
func readJob(t *testing.T, path string) Job {
	t.Helper()
	job := Job{Fields: map[string]string{}, Secret: map[string]bool{}, Platform: Platform{OS: "linux", Arch: "amd64"}}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return job
		}
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		verb, rest, _ := strings.Cut(sc.Text(), " ")
		switch verb {
		case "platform":
			p, err := ParsePlatform(rest)
			if err != nil {
				t.Fatal(err)
			}
			job.Platform = p
		case "secret":
			for _, f := range strings.Fields(rest) {
				job.Secret[f] = true
			}
		case "field":
			k, v, _ := strings.Cut(rest, "=")
			job.Fields[k] = v
		case "":
		default:
			t.Fatalf("%s: unknown line %q", path, sc.Text())
		}
	}
	return job
}

// golden compares got with testdata file path, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./dsc -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestGoldenPlans checks every seed fragment and spec template clean (no
// errors), plans it with the job of NAME.job and compares diagnostics and
// plan with NAME.golden. The seed descriptions and their profiles are the
// shared fixtures in ../testdata/seed; their jobs and goldens are here.
func TestGoldenPlans(t *testing.T) {
	for _, c := range []struct{ src, dir string }{
		{"../testdata/seed", "testdata/seed"},
		{"testdata/template", "testdata/template"},
	} {
		files, err := filepath.Glob(filepath.Join(c.src, "*.dsc"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no descriptions in %s: %v", c.src, err)
		}
		for _, path := range files {
			name := filepath.Join(c.dir, strings.TrimSuffix(filepath.Base(path), ".dsc"))
			t.Run(filepath.Base(name), func(t *testing.T) {
				src, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				job := readJob(t, name+".job")
				job.Files = os.DirFS(c.src)
				d, diags := Load(filepath.Base(path), src, CheckOptions{Platform: job.Platform, Files: job.Files})
				if diags.HasErrors() {
					t.Fatalf("want a clean check, got:\n%v", diags)
				}
				var out bytes.Buffer
				out.WriteString("-- diagnostics --\n")
				for _, d := range diags {
					out.WriteString(d.String() + "\n")
				}
				out.WriteString("-- plan --\n")
				plan, err := NewPlan(d, job)
				if err != nil {
					t.Fatalf("plan: %v", err)
				}
				j, err := json.MarshalIndent(plan, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				out.Write(j)
				out.WriteByte('\n')
				for _, v := range job.Fields {
					if len(v) >= 4 && strings.Contains(out.String(), v) && job.secretValue(v) {
						t.Errorf("secret value %q printed in the plan", v)
					}
				}
				golden(t, name+".golden", out.Bytes())
			})
		}
	}
}

// secretValue reports whether v is the value of a field the job marks
// secret.
func (j Job) secretValue(v string) bool {
	for k, s := range j.Secret {
		if s && j.Fields[k] == v {
			return true
		}
	}
	return false
}
