package certfilter

import (
	"crypto/x509/pkix"
	"errors"
	"testing"
)

// FuzzParse: no input may panic; a malformed filter gives an ErrorList
// whose positions lie inside the input; a valid one evaluates, and its
// canonical form parses to a filter that prints the same and matches the
// same candidates.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		seedSimple, seedComplex,
		`{"op":"and","value":[]}`, `{"op":"not","value":[{"op":"eq","param":"key.type","value":"RSA"}]}`,
		`{"value":[{"op":"lte","param":"key.size","value":4096},{"op":"co","param":"cert.keyusage","value":"digitalSignature"}]}`,
		`{"op":"eq","param":"cert.serial","value":"0a:1b"}`, `{"op":"gt","param":"token.id","value":-1e400}`,
		`{"op":"or","param":null,"value":[{"op":"sw","param":"cert.subject.s","value":"St"}]}`,
		`{"op":"xor"}`, `{"op":"co","param":"cert.subject.cn","value":5}`, `{"op":`, `{} {}`, "{\"op\":\"\xff\"}", ``,
	} {
		f.Add([]byte(s))
	}
	cands := []*Candidate{alice(f), matrixCandidate(f)}
	ca := newTestCA(f, pkix.Name{CommonName: "Example CA", Organization: []string{"Example company"}})
	cands = append(cands, NewCandidate(ca.issue(f, certSpec{subject: pkix.Name{CommonName: "Samuel"}, key: "p384", serial: 9}),
		KeyRef{Label: "signing"}, Token{}), &Candidate{})
	f.Fuzz(func(t *testing.T, data []byte) {
		flt, err := Parse(data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %v is not a non-empty ErrorList", err, err)
			}
			for _, e := range list {
				if e.Offset < 0 || e.Offset > len(data) || e.Line < 1 || e.Col < 1 {
					t.Fatalf("error out of range: %+v (input %d bytes)", e, len(data))
				}
			}
			_ = err.Error()
			return
		}
		canon := flt.String()
		g, err := Parse([]byte(canon))
		if err != nil {
			t.Fatalf("canonical form %s does not parse: %v", canon, err)
		}
		if g.String() != canon {
			t.Fatalf("canonical form not stable:\n%s\n%s", canon, g)
		}
		for i, c := range cands {
			if flt.Match(c) != g.Match(c) {
				t.Fatalf("candidate %d: %s and its canonical form %s disagree", i, data, canon)
			}
		}
	})
}

// BenchmarkComplexFilter evaluates the seed's complex filter over a mix of
// candidates (RSA and EC, matching and not) and reports candidates per
// second.
func BenchmarkComplexFilter(b *testing.B) {
	f, err := Parse([]byte(seedComplex))
	if err != nil {
		b.Fatal(err)
	}
	ca := newTestCA(b, testCASubject)
	var cs []*Candidate
	for i, s := range []struct{ cn, key, label string }{
		{"Samuel", "rsa2048", "signing"}, {"Samuel", "rsa1024", "signing"}, {"Samuel", "p256", "signing"},
		{"Samuel", "p384", "auth"}, {"Bob", "p256", "signing"}, {"Samuel Example", "rsa2048", "signing"},
		{"Samuel", "p384", "signing"}, {"samuel", "p256", "signing"},
	} {
		cert := ca.issue(b, certSpec{subject: pkix.Name{CommonName: s.cn, Organization: []string{"Example company"}}, key: s.key, serial: int64(10 + i)})
		cs = append(cs, NewCandidate(cert, KeyRef{Label: s.label}, Token{ID: "1234", Type: TokenSoftware}))
	}
	matched := 0
	for b.Loop() {
		for _, c := range cs {
			if f.Match(c) {
				matched++
			}
		}
	}
	if matched == 0 {
		b.Fatal("nothing matched")
	}
	b.ReportMetric(float64(b.N*len(cs))/b.Elapsed().Seconds(), "candidates/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(cs)), "ns/candidate")
}

// BenchmarkParseComplex parses the seed's complex filter.
func BenchmarkParseComplex(b *testing.B) {
	for b.Loop() {
		if _, err := Parse([]byte(seedComplex)); err != nil {
			b.Fatal(err)
		}
	}
}
