package cpf

import (
	"fmt"
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

// TestLexErrorHidesNothing: a profile whose first lines have lexical
// errors still gets the parser's and the checker's errors of later lines,
// in one sorted list printed file:line:col, at most ten of them.
func TestLexErrorHidesNothing(t *testing.T) {
	var src strings.Builder
	src.WriteString("CardModel 'ISO7816'\n")
	for i := range 6 {
		fmt.Fprintf(&src, "V%d = 'unterminated\n", i)        // lexer
		fmt.Fprintf(&src, "W%d = SECRANDOM(%d)\n", i, 100+i) // checker
	}
	src.WriteString("Frobnicate x\n") // parser
	err := Check("x.cpf", []byte(src.String()), nil)
	if len(err) != 13 {
		t.Fatalf("%d errors, want 13:\n%v", len(err), err)
	}
	for i, e := range err {
		if !e.Pos.IsValid() || e.File != "x.cpf" {
			t.Errorf("error %d not positioned: %v", i, e)
		}
		if i > 0 && !err.Less(i-1, i) {
			t.Errorf("errors %d and %d out of order: %v, %v", i-1, i, err[i-1], e)
		}
	}
	if e := err[0]; e.Pos != (Pos{2, 6}) || e.Msg != "string not terminated" {
		t.Errorf("first error %v, want the lexer's at 2:6", e)
	}
	if e := err[1]; e.Pos != (Pos{3, 16}) || !strings.Contains(e.Msg, "SECRANDOM length 100 out of range") {
		t.Errorf("second error %v, want the checker's at 3:16", e)
	}
	if e := err[12]; e.Pos.Line != 14 || !strings.HasPrefix(e.Msg, "unknown statement Frobnicate") {
		t.Errorf("last error %v, want the parser's on line 14", e)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 11 || lines[0] != "x.cpf:2:6: string not terminated" || lines[10] != "(and 3 more)" {
		t.Errorf("printed:\n%s", err.Error())
	}
}
