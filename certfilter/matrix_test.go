package certfilter

import (
	"crypto/x509/pkix"
	"strings"
	"testing"
)

// matrixCandidate has one fact of each shape the op matrix needs: a
// single text value (cert.subject.cn "Bob"), a single numeric text value
// (token.id "150"), an absent attribute (cert.subject.l) and a
// multi-valued one mixing a numeric and a text value (cert.subject.ou
// "250", "Sales").
func matrixCandidate(t testing.TB) *Candidate {
	ca := newTestCA(t, testCASubject)
	cert := ca.issue(t, certSpec{
		subject: pkix.Name{CommonName: "Bob", OrganizationalUnit: []string{"250", "Sales"}},
		key:     "p256",
		serial:  7,
	})
	return NewCandidate(cert, KeyRef{Label: "bob"}, Token{ID: "150"})
}

// TestOpMatrix covers every value op with a string and a number operand
// against a present, an absent and a multi-valued attribute. Rows for le
// and ge are also run as lte and gte. "err" rows must fail to parse
// (co, sw and ew take strings only).
func TestOpMatrix(t *testing.T) {
	const (
		present = "cert.subject.cn" // "Bob"
		numeric = "token.id"        // "150"
		absent  = "cert.subject.l"  // none
		multi   = "cert.subject.ou" // "250", "Sales"
	)
	type row struct {
		op, param, value string
		want             string // "true", "false" or "err"
	}
	rows := []row{
		// eq
		{"eq", present, `"Bob"`, "true"}, {"eq", present, `"Bo"`, "false"}, {"eq", present, `"bob"`, "false"},
		{"eq", numeric, `150`, "true"}, {"eq", numeric, `151`, "false"}, {"eq", present, `150`, "false"},
		{"eq", absent, `"x"`, "false"}, {"eq", absent, `""`, "false"}, {"eq", absent, `1`, "false"},
		{"eq", multi, `"Sales"`, "true"}, {"eq", multi, `"250"`, "true"}, {"eq", multi, `"Sale"`, "false"},
		{"eq", multi, `250`, "true"}, {"eq", multi, `250.0`, "true"}, {"eq", multi, `251`, "false"},
		// nq: true when no value is equal, also when there is none
		{"nq", present, `"Bob"`, "false"}, {"nq", present, `"Bo"`, "true"},
		{"nq", numeric, `150`, "false"}, {"nq", numeric, `151`, "true"},
		{"nq", absent, `"x"`, "true"}, {"nq", absent, `1`, "true"},
		{"nq", multi, `"Sales"`, "false"}, {"nq", multi, `"X"`, "true"},
		{"nq", multi, `250`, "false"}, {"nq", multi, `1`, "true"},
		// co
		{"co", present, `"o"`, "true"}, {"co", present, `"x"`, "false"}, {"co", present, `""`, "true"},
		{"co", numeric, `"15"`, "true"}, {"co", numeric, `15`, "err"},
		{"co", absent, `""`, "false"}, {"co", absent, `1`, "err"},
		{"co", multi, `"ale"`, "true"}, {"co", multi, `"25"`, "true"}, {"co", multi, `"x"`, "false"}, {"co", multi, `2`, "err"},
		// sw
		{"sw", present, `"B"`, "true"}, {"sw", present, `"o"`, "false"},
		{"sw", numeric, `"1"`, "true"}, {"sw", numeric, `1`, "err"},
		{"sw", absent, `""`, "false"}, {"sw", absent, `1`, "err"},
		{"sw", multi, `"Sa"`, "true"}, {"sw", multi, `"2"`, "true"}, {"sw", multi, `"a"`, "false"}, {"sw", multi, `2`, "err"},
		// ew
		{"ew", present, `"ob"`, "true"}, {"ew", present, `"B"`, "false"},
		{"ew", numeric, `"50"`, "true"}, {"ew", numeric, `50`, "err"},
		{"ew", absent, `""`, "false"}, {"ew", absent, `1`, "err"},
		{"ew", multi, `"es"`, "true"}, {"ew", multi, `"50"`, "true"}, {"ew", multi, `"x"`, "false"}, {"ew", multi, `0`, "err"},
		// lt: text by bytes, numbers by value; a number skips values that are no number
		{"lt", present, `"C"`, "true"}, {"lt", present, `"Bob"`, "false"}, {"lt", present, `1000`, "false"},
		{"lt", numeric, `151`, "true"}, {"lt", numeric, `150`, "false"}, {"lt", numeric, `"2"`, "true"},
		{"lt", absent, `"zzz"`, "false"}, {"lt", absent, `1e9`, "false"},
		{"lt", multi, `"3"`, "true"}, {"lt", multi, `"2"`, "false"}, {"lt", multi, `251`, "true"}, {"lt", multi, `250`, "false"},
		// gt
		{"gt", present, `"A"`, "true"}, {"gt", present, `"Bob"`, "false"}, {"gt", present, `-1`, "false"},
		{"gt", numeric, `149`, "true"}, {"gt", numeric, `150`, "false"}, {"gt", numeric, `"2"`, "false"},
		{"gt", absent, `""`, "false"}, {"gt", absent, `-1`, "false"},
		{"gt", multi, `"Sa"`, "true"}, {"gt", multi, `"Sales"`, "false"}, {"gt", multi, `249`, "true"}, {"gt", multi, `250`, "false"},
		// le (and lte)
		{"le", present, `"Bob"`, "true"}, {"le", present, `"Bo"`, "false"},
		{"le", numeric, `150`, "true"}, {"le", numeric, `149.5`, "false"},
		{"le", absent, `"zzz"`, "false"}, {"le", absent, `1e9`, "false"},
		{"le", multi, `"250"`, "true"}, {"le", multi, `"1"`, "false"}, {"le", multi, `250`, "true"}, {"le", multi, `249`, "false"},
		// ge (and gte)
		{"ge", present, `"Bob"`, "true"}, {"ge", present, `"Boc"`, "false"},
		{"ge", numeric, `150`, "true"}, {"ge", numeric, `150.5`, "false"},
		{"ge", absent, `""`, "false"}, {"ge", absent, `-1e9`, "false"},
		{"ge", multi, `"Sales"`, "true"}, {"ge", multi, `"Z"`, "false"}, {"ge", multi, `250`, "true"}, {"ge", multi, `251`, "false"},
	}
	c := matrixCandidate(t)
	covered := map[string]bool{}
	for _, r := range rows {
		spellings := []string{r.op}
		switch r.op {
		case "le":
			spellings = append(spellings, "lte")
		case "ge":
			spellings = append(spellings, "gte")
		}
		kind := "string"
		if !strings.HasPrefix(r.value, `"`) {
			kind = "number"
		}
		attr := map[string]string{present: "present", numeric: "present", absent: "absent", multi: "multi"}[r.param]
		for _, op := range spellings {
			covered[op+"/"+kind+"/"+attr] = true
			src := vf(op, r.param, r.value)
			f, err := Parse([]byte(src))
			if r.want == "err" {
				if err == nil || !strings.Contains(err.Error(), "value: \""+op+"\" takes a string value") {
					t.Errorf("%s: err = %v, want a string-only error at value", src, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", src, err)
				continue
			}
			if got := f.Match(c); (got && r.want != "true") || (!got && r.want != "false") {
				t.Errorf("%s: Match = %v, want %s", src, got, r.want)
			}
		}
	}
	for _, op := range []string{"eq", "nq", "co", "sw", "ew", "lt", "gt", "le", "lte", "ge", "gte"} {
		for _, kind := range []string{"string", "number"} {
			for _, attr := range []string{"present", "absent", "multi"} {
				if !covered[op+"/"+kind+"/"+attr] {
					t.Errorf("no row for %s with a %s on a %s attribute", op, kind, attr)
				}
			}
		}
	}
}
