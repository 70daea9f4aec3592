package cpf

import (
	"context"
	"os"
	"testing"

	"github.com/cardwright/cardwright/iso7816/memcard"
)

// BenchmarkCompileSeed is the compile time of the seed profile: parse,
// check, dialect (target < 100 µs).
func BenchmarkCompileSeed(b *testing.B) {
	src, err := os.ReadFile("testdata/seed.cpf")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile("seed.cpf", src, siemens); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrepareSeed is Prepare of the seed profile with the fake
// sealer (SECRANDOM for eight secrets, APDU construction).
func BenchmarkPrepareSeed(b *testing.B) {
	old := sealPINs
	sealPINs = fakeSeal
	defer func() { sealPINs = old }()
	prog := compileFile(b, "testdata/seed.cpf", siemens)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := prog.Prepare(Params{PINCert: testCert}); err != nil {
			b.Fatal(err)
		}
	}
}

// minimumAPDUs is the fewest APDUs that lay out the profile on a virgin
// card with data fields of at most maxNc bytes: SELECT and CREATE of the
// MF, one CREATE FILE per DF and EF, ceil(len/maxNc) writes per
// transparent content, one APPEND RECORD per record, one APDU per
// credential and one for the fuse.
func minimumAPDUs(p *Program, persInfo int, maxNc int) int {
	n := 0
	for _, o := range p.ops {
		switch o.kind {
		case opCreatePin, opBurnFuse:
			n++
		case opCreateFiles:
			n += 2
		}
	}
	for _, f := range p.nodes {
		n++
		if f.content == nil {
			continue
		}
		if f.linear {
			n += len(f.content.Lines)
			continue
		}
		size := persInfo
		if f.static != nil {
			size = len(f.static[0])
		}
		n += (size + maxNc - 1) / maxNc
	}
	return n
}

// BenchmarkSeedAPDUs reports the APDUs the seed profile sends to a short-
// APDU and to an extended-APDU in-memory card, against the minimum for
// that size (target: equal).
func BenchmarkSeedAPDUs(b *testing.B) {
	cert, _ := newKey(b)
	for _, tc := range []struct {
		name  string
		model string
		ext   bool
	}{{"short", "ISO7816", false}, {"extended", "ISO7816-EXT", true}} {
		b.Run(tc.name, func(b *testing.B) {
			prog := compileFile(b, "testdata/seed.cpf", Config{Models: map[string]string{"SIEMENS50": tc.model}})
			var sent, minimum int
			for b.Loop() {
				plan, err := prog.Prepare(Params{PINCert: cert})
				if err != nil {
					b.Fatal(err)
				}
				res, err := plan.Execute(context.Background(), memcard.New(memcard.Config{Extended: tc.ext}))
				if err != nil {
					b.Fatal(err)
				}
				sent, minimum = res.APDUs, minimumAPDUs(prog, len(plan.PersInfo), prog.Dialect.MaxNc)
			}
			b.ReportMetric(float64(sent), "apdus")
			b.ReportMetric(float64(minimum), "min-apdus")
		})
	}
}

func TestSeedAPDUsMinimal(t *testing.T) {
	cert, _ := newKey(t)
	prog := compileFile(t, "testdata/seed.cpf", siemens)
	plan, err := prog.Prepare(Params{PINCert: cert})
	if err != nil {
		t.Fatal(err)
	}
	res, err := plan.Execute(context.Background(), memcard.New(memcard.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	if want := minimumAPDUs(prog, len(plan.PersInfo), 255); res.APDUs != want {
		t.Errorf("%d APDUs, the minimum is %d", res.APDUs, want)
	}
}
