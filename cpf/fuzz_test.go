package cpf

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/secret"
)

// addProfiles seeds a fuzz target with every profile of testdata: the
// examples, the error tests and the golden transcripts' profiles.
func addProfiles(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.cpf")
	errs, _ := filepath.Glob("testdata/errors/*.cpf")
	for _, name := range append(files, errs...) {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	goldens, _ := filepath.Glob("testdata/golden/*.txtar")
	for _, name := range goldens {
		ar, err := txtar.ParseFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range ar.Files {
			if file.Name == "profile.cpf" {
				f.Add(file.Data)
			}
		}
	}
}

// FuzzParse checks that the lexer and parser never panic and that every
// position they report lies inside the source.
func FuzzParse(f *testing.F) {
	addProfiles(f)
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

// FuzzRun compiles, prepares and executes profiles on the in-memory card:
// whatever the profile, nothing panics, and every error is positioned.
func FuzzRun(f *testing.F) {
	addProfiles(f)
	f.Add([]byte("CardModel 'ISO7816'\nMasterFile\nCreateEf A id=1 maxsize=auto\nEndfile\nFile Dynamic A\ndata = P\nEndfile\nCreateFiles()\nBurnFuse()\n"))
	old := sealPINs
	sealPINs = fakeSeal
	defer func() { sealPINs = old }()
	f.Fuzz(func(t *testing.T, src []byte) {
		prog, err := Compile("f.cpf", src, siemens)
		if err != nil {
			return
		}
		params := Params{PINCert: testCert, Rand: seededRand(2), Values: map[string][]byte{},
			Secrets: map[string]secret.Value{"SEC_PIN1": secret.New("1234"), "SEC_PUK": secret.New("12345678")}}
		for name := range prog.free {
			if !isReservedSecret(name) {
				params.Values[name] = []byte(name)
			}
		}
		for name := range prog.vars {
			delete(params.Secrets, name)
		}
		for _, in := range prog.Inputs() {
			if !in.Pos.IsValid() {
				t.Fatalf("input %s without a position", in.Name)
			}
		}
		// A trial with stand-in secrets never runs on a card.
		trial := params
		trial.StandIn, trial.Rand = true, seededRand(3)
		if plan, err := prog.Prepare(trial); err == nil {
			if _, err := plan.Execute(context.Background(), memcard.New(memcard.Config{})); !errors.Is(err, ErrStandIn) {
				t.Fatalf("a stand-in plan executed: %v", err)
			}
		}
		plan, err := prog.Prepare(params)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Prepare error %v is not an ErrorList", err)
			}
			return
		}
		_, err = plan.Execute(context.Background(), memcard.New(memcard.Config{Extended: plan.Dialect.Extended}))
		if err != nil {
			var ee *ExecError
			if !errors.As(err, &ee) || !ee.Pos.IsValid() {
				t.Fatalf("Execute error %v is not a positioned *ExecError", err)
			}
		}
	})
}
