package main

import (
	"archive/zip"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"
)

// -update rewrites the want sections of testdata/check/*.txtar. The flag
// is defined here unless another test file of the package defines it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// TestCheckGolden runs `cardwright check` on each testdata/check/*.txtar:
// the archive's files are written to a temporary directory (files named
// "zip:NAME.dsz/PATH" are packed into the zip NAME.dsz at PATH), the
// "args" section is the command line (DIR is the directory), and "want"
// holds "exit N" and the expected stdout; no word of a "secrets" section
// may appear in stdout or stderr. A cardwright.cfg in the archive
// is the configuration; without one an empty configuration is used.
func TestCheckGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/check/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(path)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			zips := map[string]map[string][]byte{}
			var args string
			var secrets []string
			wantAt := -1
			for i, f := range ar.Files {
				switch {
				case f.Name == "args":
					args = strings.TrimSpace(string(f.Data))
				case f.Name == "secrets":
					secrets = strings.Fields(string(f.Data))
				case f.Name == "want":
					wantAt = i
				case strings.HasPrefix(f.Name, "zip:"):
					zname, inner, _ := strings.Cut(strings.TrimPrefix(f.Name, "zip:"), "/")
					if zips[zname] == nil {
						zips[zname] = map[string][]byte{}
					}
					zips[zname][inner] = f.Data
				default:
					p := filepath.Join(dir, filepath.FromSlash(f.Name))
					os.MkdirAll(filepath.Dir(p), 0o755)
					if err := os.WriteFile(p, f.Data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			for zname, entries := range zips {
				var buf bytes.Buffer
				zw := zip.NewWriter(&buf)
				for name, data := range entries {
					w, _ := zw.Create(name)
					w.Write(data)
				}
				zw.Close()
				if err := os.WriteFile(filepath.Join(dir, zname), buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg := filepath.Join(dir, "cardwright.cfg")
			if _, err := os.Stat(cfg); err != nil {
				os.WriteFile(cfg, nil, 0o644)
			}
			t.Setenv("CARDWRIGHT_CONFIG", cfg)
			if wantAt < 0 || args == "" {
				t.Fatal("archive needs args and want sections")
			}
			code, out, errs := runCheckCmd(t, strings.Fields(strings.ReplaceAll(args, "DIR", dir))...)
			got := fmt.Sprintf("exit %d\n%s", code, strings.ReplaceAll(out, dir, "DIR"))
			for _, sec := range secrets {
				if strings.Contains(out+errs, sec) {
					t.Errorf("output shows the secret %q", sec)
				}
			}
			if updateGolden() {
				ar.Files[wantAt].Data = []byte(got)
				if err := os.WriteFile(path, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := string(ar.Files[wantAt].Data); got != want {
				t.Errorf("got:\n%s\nwant:\n%s\nstderr:\n%s", got, want, errs)
			}
		})
	}
}
