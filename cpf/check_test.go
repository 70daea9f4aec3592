package cpf

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var siemens = Config{Models: map[string]string{"SIEMENS50": "ISO7816"}}

func TestCompileSeed(t *testing.T) {
	src, err := os.ReadFile("testdata/seed.cpf")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile("seed.cpf", src, siemens)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if p.Dialect.Name != "ISO7816" || !p.eraseable || p.burnsFuse || len(p.nodes) != 4 {
		t.Errorf("program: dialect %q eraseable %v fuse %v nodes %d", p.Dialect.Name, p.eraseable, p.burnsFuse, len(p.nodes))
	}
	if _, err := Compile("seed.cpf", src, Config{}); err == nil || !strings.Contains(err.Error(), `seed.cpf:4:11: unknown card model "SIEMENS50" (known: ISO7816, ISO7816-EXT)`) {
		t.Errorf("without the model mapping: %v", err)
	}
}

// errorMarker is a comment naming the error expected on its line:
// ; ERROR "regexp"
var errorMarker = regexp.MustCompile(`ERROR "((?:[^"\\]|\\.)*)"`)

// TestErrors runs every testdata/errors/*.cpf: each line with an ERROR
// marker must get an error matching it, and no other line any error.
func TestErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/errors/*.cpf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no error tests: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := map[int][]*regexp.Regexp{}
			lines := strings.Split(string(src), "\n")
			for i, l := range lines {
				for _, m := range errorMarker.FindAllStringSubmatch(l, -1) {
					pat := strings.ReplaceAll(m[1], `\"`, `"`)
					want[i+1] = append(want[i+1], regexp.MustCompile(pat))
				}
			}
			got := Check(filepath.Base(path), src, map[string]string{"SIEMENS50": "ISO7816"})
			matched := map[*regexp.Regexp]bool{}
			for _, e := range got {
				if e.File != filepath.Base(path) || e.Pos.Line < 1 || e.Pos.Line > len(lines) || e.Pos.Col < 1 || e.Pos.Col > len(lines[e.Pos.Line-1])+1 {
					t.Errorf("error outside the file: %v", e)
					continue
				}
				ok := false
				for _, re := range want[e.Pos.Line] {
					if re.MatchString(e.Msg) {
						matched[re], ok = true, true
					}
				}
				if !ok {
					t.Errorf("unexpected error %v", e)
				}
			}
			for line, res := range want {
				for _, re := range res {
					if !matched[re] {
						t.Errorf("%s:%d: no error matching %q", filepath.Base(path), line, re)
					}
				}
			}
		})
	}
}
