package dsc

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sameFile compares two parsed files ignoring positions.
func sameFile(a, b *File) bool {
	sameComments := func(x, y []Comment) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i].Text != y[i].Text {
				return false
			}
		}
		return true
	}
	if !sameComments(a.Comments, b.Comments) || !sameComments(a.Trailing, b.Trailing) || len(a.Sections) != len(b.Sections) {
		return false
	}
	for i, s := range a.Sections {
		t := b.Sections[i]
		if s.Name != t.Name || len(s.Entries) != len(t.Entries) || !sameComments(s.Trailing, t.Trailing) {
			return false
		}
		for j, e := range s.Entries {
			f := t.Entries[j]
			if e.Key != f.Key || e.Value != f.Value || !sameComments(e.Comments, f.Comments) {
				return false
			}
		}
	}
	return true
}

// roundTrip checks Parse(Format(f)) == f and that Format is idempotent.
func roundTrip(t *testing.T, name string, f *File) {
	t.Helper()
	out := Format(f)
	g, err := Parse(name, out)
	if err != nil {
		t.Fatalf("formatted output does not parse: %v\n%s", err, out)
	}
	if !sameFile(f, g) {
		t.Fatalf("round trip changed the file:\n%s", out)
	}
	if again := Format(g); !bytes.Equal(again, out) {
		t.Fatalf("Format is not idempotent:\n%s\n---\n%s", out, again)
	}
}

func TestFormatRoundTripTestdata(t *testing.T) {
	files, _ := filepath.Glob("testdata/*/*.dsc")
	if len(files) < 20 {
		t.Fatalf("only %d files", len(files))
	}
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(path, src)
		if err != nil {
			continue // the syntax error cases
		}
		t.Run(path, func(t *testing.T) { roundTrip(t, path, f) })
	}
}

func TestFormatCanonical(t *testing.T) {
	src := "\ufeff; header comment\r\n\r\n[Encoding]  \r\n  Type = 1024,Chip\r\n\r\n\r\n; about fields\r\n[Fields]\r\nPIN =\r\n[Description]\r\n# the PIN\r\n  PIN=  PIN  \r\nInitialLabel=#a # b = c\r\n; trailing\r\n"
	f, err := Parse("crlf.dsc", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := "; header comment\n\n[Encoding]\nType=1024,Chip\n\n; about fields\n[Fields]\nPIN=\n\n[Description]\n# the PIN\nPIN=PIN\nInitialLabel=#a # b = c\n; trailing\n"
	if got := string(Format(f)); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if e := f.Sections[2].Entries[1]; e.Value != "#a # b = c" || e.ValuePos.Col != 14 {
		t.Errorf("literal with '#' and '=': %+v", e)
	}
	if e := f.Sections[2].Entries[0]; e.Pos.Line != 12 || e.Pos.Col != 3 || e.ValuePos.Col != 9 {
		t.Errorf("positions: %+v", e)
	}
	roundTrip(t, "crlf.dsc", f)
	if strings.Contains(string(Format(f)), "\r") {
		t.Error("CR in output")
	}
}
