package cpf

import (
	"os"
	"strings"
	"testing"
)

func TestParseSeed(t *testing.T) {
	src, err := os.ReadFile("testdata/seed.cpf")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse("seed.cpf", src)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	var mf *MasterFileBlock
	var blocks []*FileBlock
	for _, s := range f.Stmts {
		switch s := s.(type) {
		case *MasterFileBlock:
			mf = s
		case *FileBlock:
			blocks = append(blocks, s)
		}
	}
	if mf == nil || len(mf.Files) != 1 || !mf.Files[0].DF || len(mf.Files[0].Children) != 3 {
		t.Fatalf("MasterFile = %+v", mf)
	}
	df := mf.Files[0]
	if df.Name != "DFPKCS15" || len(df.Attrs) != 5 || df.Attrs[4].Name != "aid" {
		t.Fatalf("DF = %+v", df)
	}
	aid := df.Attrs[4].Value.(*BytesLit).Value
	if string(aid) != "\xA0\x00\x00\x00\x63PKCS-15" {
		t.Errorf("aid = % X", aid)
	}
	if len(blocks) != 3 || !blocks[2].Dynamic || blocks[0].Dynamic {
		t.Fatalf("File blocks = %+v", blocks)
	}
	odf := blocks[0].Lines[0].Value.(*BytesLit).Value
	if want := []byte{0xA4, 0x0A, 0x30, 0x08, 0x04, 0x06, 0x3F, 0x00, 0x50, 0x15, 0x44, 0x41}; string(odf) != string(want) {
		t.Errorf("EFODF data = % X, want % X", odf, want)
	}
	if n := len(blocks[1].Lines[0].Value.(*BytesLit).Value); n != 0x31 {
		t.Errorf("EFCDF1 data is %d bytes, want 49", n)
	}
	if last := f.Stmts[len(f.Stmts)-1].(*CallStmt); last.Call.Name != "CreateFiles" || last.Call.At.Line != strings.Count(string(src[:strings.LastIndex(string(src), "CreateFiles")]), "\n")+1 {
		t.Errorf("last statement = %+v", last.Call)
	}
}

func TestLexer(t *testing.T) {
	tests := []struct {
		src  string
		want []string // token kinds and texts
	}{
		{"A = 'it''s' ; c\n", []string{"name A", "'='", "string", "end of line"}},
		{"X = 0x{ 0a ; c\n B0 }\n", []string{"name X", "'='", "byte string", "end of line"}},
		{"f(1, 0x10) \\ ; more\n  y\n", []string{"name f", "'('", "number 1", "','", "number 0x10", "')'", "name y", "end of line"}},
	}
	for _, tc := range tests {
		errs := &errorSink{file: "t"}
		l := newLexer([]byte(tc.src), errs)
		var got []string
		for tok := l.next(); tok.kind != tEOF; tok = l.next() {
			got = append(got, tok.describe())
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(errs.list) > 0 {
			t.Errorf("%q: tokens %q, errors %v; want %q", tc.src, got, errs.list, tc.want)
		}
	}
}

func TestLexValues(t *testing.T) {
	errs := &errorSink{file: "t"}
	l := newLexer([]byte("'a''b' 0x{A0 0001\n;x\nFf} 0x7FFF 22000"), errs)
	s, b, h, d := l.next(), l.next(), l.next(), l.next()
	if s.text != "a'b" || string(b.bytes) != "\xA0\x00\x01\xFF" || h.num != 0x7FFF || d.num != 22000 || len(errs.list) > 0 {
		t.Errorf("got %q % X %d %d, errors %v", s.text, b.bytes, h.num, d.num, errs.list)
	}
	if b.pos != (Pos{1, 8}) || d.pos != (Pos{3, 12}) {
		t.Errorf("positions %v %v", b.pos, d.pos)
	}
}
