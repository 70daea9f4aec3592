package cpf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that the lexer and parser never panic and that every
// position they report lies inside the source.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.cpf")
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, s := range []string{
		"", "\\", "0x{", "0x{ 1 }", "'", "MasterFile\nCreateDf A\n", "File Static X\ndata=", "a(b(c))",
		"A = ...", "CreateDf\nEndDF\nEndfile", "x = 0x99999999999999999999", "f(,)", "\xff\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		lines := bytes.Split(src, []byte("\n"))
		inRange := func(p Pos) bool {
			if p.Line < 1 || p.Line > len(lines) {
				return false
			}
			return p.Col >= 1 && p.Col <= len(lines[p.Line-1])+1
		}
		file, err := Parse("f.cpf", src)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %v is not a non-empty ErrorList", err)
			}
			for _, e := range list {
				if !inRange(e.Pos) {
					t.Fatalf("error position %v out of range: %v", e.Pos, e)
				}
			}
		}
		for _, s := range file.Stmts {
			if !inRange(s.Pos()) {
				t.Fatalf("statement position %v out of range", s.Pos())
			}
		}
		// The checker must not panic either.
		_ = Check("f.cpf", src, nil)
	})
}
