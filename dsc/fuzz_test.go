package dsc

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func addTestdataSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.dsc")
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte("\ufeff[Description]\r\nPIN=!FROM_USER_DIALOG_2_FIELD\r\n"))
	f.Add([]byte("[A]\n^x\n=\n[\n[]\nk\n"))
}

// FuzzLoad: Parse, Check and a placeholder plan never panic; every
// diagnostic lies inside the input; a file that parses formats and parses
// back to the same file.
func FuzzLoad(f *testing.F) {
	addTestdataSeeds(f)
	files := fstest.MapFS{"p.cpf": {Data: []byte("x")}, "s.apdu": {Data: []byte("00A40000 | ${F}\n")}}
	f.Fuzz(func(t *testing.T, src []byte) {
		lines := strings.Split(string(bytes.TrimPrefix(src, bom)), "\n")
		d, diags := Load("f.dsc", src, CheckOptions{Platform: Platform{"linux", "amd64"}, Files: files})
		for _, dg := range diags {
			if dg.Pos.Line < 1 || dg.Pos.Line > len(lines) {
				t.Fatalf("line outside the input: %v", dg)
			}
			if l := strings.TrimRight(lines[dg.Pos.Line-1], "\r"); dg.Pos.Col < 1 || dg.Pos.Col > len(l)+1 {
				t.Fatalf("column outside line %q: %v", l, dg)
			}
		}
		if !diags.HasErrors() {
			if _, err := NewPlan(d, PlaceholderJob(Platform{"linux", "amd64"}, files)); err != nil {
				for _, pe := range err.(PlanErrors) {
					if pe.Kind == nil || pe.Msg == "" {
						t.Fatalf("plan error without kind: %v", pe)
					}
				}
			}
		}
		pf, err := Parse("f.dsc", src)
		if err != nil {
			return
		}
		out := Format(pf)
		g, err := Parse("f.dsc", out)
		if err != nil {
			t.Fatalf("formatted output does not parse: %v\n%q", err, out)
		}
		if !sameFile(pf, g) {
			t.Fatalf("round trip changed the file:\n%q\n%q", src, out)
		}
		if !bytes.Equal(Format(g), out) {
			t.Fatalf("Format not idempotent: %q", out)
		}
	})
}

// FuzzObjectCriteria: no panic; a parsed criteria prints and parses back
// to the same values.
func FuzzObjectCriteria(f *testing.F) {
	for _, s := range []string{`CKO_PUBLIC_KEY,CKA_LABEL,string,"Digital Signature"`, `CKO_PRIVATE_KEY,CKA_ID,hex,0x01 02`,
		`cko_certificate , cka_token , bool , TRUE`, `2,0x121,int,2048`, `CKO_DATA,CKA_LABEL,string,"a \"q\" \\ b"`, `CKO_DATA,CKA_LABEL,string, x,y `} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseObjectCriteria(s)
		if err != nil {
			return
		}
		c2, err := ParseObjectCriteria(c.String())
		if err != nil {
			t.Fatalf("%q → %q: %v", s, c.String(), err)
		}
		if c.ClassID != c2.ClassID || c.AttrID != c2.AttrID || c.Type != c2.Type || !bytes.Equal(c.Bytes, c2.Bytes) || c.Int != c2.Int || c.Bool != c2.Bool {
			t.Fatalf("%q → %q: %+v != %+v", s, c.String(), c, c2)
		}
	})
}

// FuzzOpenDSZ: arbitrary containers never panic and never yield a path
// outside the tree.
func FuzzOpenDSZ(f *testing.F) {
	var buf bytes.Buffer
	buf.Write(makeZipF(f, "d/a.dsc", bundleDSC, "d/profile.cpf", "x"))
	f.Add(buf.Bytes())
	f.Add([]byte("UEsDBAo="))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := OpenDSZ(data)
		if err != nil {
			return
		}
		for name := range b.Files {
			if strings.Contains(name, "..") && checkEntryName(name) != nil {
				t.Fatalf("unsafe name %q", name)
			}
		}
		b.Load(CheckOptions{})
	})
}

// FuzzParseScript: scripts never panic, in parsing or resolving.
func FuzzParseScript(f *testing.F) {
	for _, s := range []string{"00 A4 04 00 | ${<hex>AID} | 00 => 9000,61XX\n", "; c\n00200081|${<string>PIN}\n", "0084000008\n", "${x}|"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := ParseScript("s.apdu", src)
		if err != nil {
			return
		}
		cmds, err := s.Resolve(func(string) (string, bool, bool) { return "0102", false, true })
		if err != nil {
			return
		}
		for _, c := range cmds {
			if len(c.APDU) < 4 {
				t.Fatalf("short APDU %x", c.APDU)
			}
			c.Accepts(0x9000)
		}
	})
}

func makeZipF(f *testing.F, nameData ...string) []byte {
	var es []zentry
	for i := 0; i < len(nameData); i += 2 {
		es = append(es, zentry{nameData[i], []byte(nameData[i+1])})
	}
	return makeZip(f, es...)
}
