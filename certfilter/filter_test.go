package certfilter

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

var testCASubject = pkix.Name{CommonName: "Cardwright Test CA", Organization: []string{"Cardwright"}, Country: []string{"SE"}}

// alice is the candidate of the evaluation table: multi-valued OU, an absent
// locality, DN and SAN e-mail, a numeric token serial.
func alice(t testing.TB) *Candidate {
	t.Helper()
	ca := newTestCA(t, testCASubject)
	cert := ca.issue(t, certSpec{
		subject: pkix.Name{
			CommonName:         "Alice Example",
			Organization:       []string{"Example AB"},
			OrganizationalUnit: []string{"Sales", "Support"},
			Country:            []string{"SE"},
			Province:           []string{"Stockholm"},
			StreetAddress:      []string{"Main Street 1"},
			ExtraNames: []pkix.AttributeTypeAndValue{
				{Type: oidEmail, Value: "alice@dn.example"},
				{Type: oidUID, Value: "alice"},
			},
		},
		key:     "rsa2048",
		serial:  0x0A1B2C,
		ku:      x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		eku:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		ekuOIDs: []asn1.ObjectIdentifier{{1, 3, 6, 1, 4, 1, 311, 20, 2, 2}, {1, 2, 3, 4}},
		emails:  []string{"alice@example.com"},
	})
	return NewCandidate(cert, KeyRef{ID: []byte{0x01, 0xAB}, Label: "alice key"},
		Token{ID: "12345", Type: TokenSmartCard, UserID: "alice"})
}

func vf(op, param, value string) string {
	return fmt.Sprintf(`{"op":%q,"param":%q,"value":%s}`, op, param, value)
}

func TestMatch(t *testing.T) {
	c := alice(t)
	spki := base64.StdEncoding.EncodeToString(c.Cert.RawSubjectPublicKeyInfo)
	tests := []struct {
		filter string
		want   bool
	}{
		// eq: string present / absent / multi-valued, number
		{vf("eq", "cert.subject.cn", `"Alice Example"`), true},
		{vf("eq", "cert.subject.cn", `"alice example"`), false}, // case-sensitive
		{vf("eq", "cert.subject.cn", `"Alice"`), false},
		{vf("eq", "cert.subject.l", `"Stockholm"`), false}, // absent
		{vf("eq", "cert.subject.ou", `"Support"`), true},   // second value
		{vf("eq", "cert.subject.ou", `"Sales"`), true},
		{vf("eq", "cert.subject.ou", `"Marketing"`), false},
		{vf("eq", "key.size", `2048`), true},
		{vf("eq", "key.size", `2048.0`), true},
		{vf("eq", "key.size", `2.048e3`), true},
		{vf("eq", "key.size", `"2048"`), true}, // a decimal string is read as a number
		{vf("eq", "key.size", `4096`), false},
		{vf("eq", "token.id", `12345`), true}, // numeric text compares numerically
		{vf("eq", "token.id", `12345.0`), true},
		{vf("eq", "token.id", `"12345"`), true},
		{vf("eq", "token.id", `"12345.0"`), false}, // strings compare as text
		{vf("eq", "cert.subject.cn", `5`), false},  // a number against text that is no number
		{vf("eq", "token.profiletype", `"SW"`), false},
		{vf("eq", "token.profiletype", `1`), false},
		// nq is the complement of eq
		{vf("nq", "cert.subject.cn", `"Bob"`), true},
		{vf("nq", "cert.subject.cn", `"Alice Example"`), false},
		{vf("nq", "cert.subject.l", `"x"`), true}, // absent
		{vf("nq", "cert.subject.ou", `"Sales"`), false},
		{vf("nq", "cert.subject.ou", `"Marketing"`), true},
		{vf("nq", "key.size", `2048`), false},
		{vf("nq", "key.size", `1024`), true},
		{vf("nq", "token.id", `12345`), false},
		{vf("nq", "token.id", `54321`), true},
		{vf("nq", "cert.subject.cn", `5`), true},
		{vf("nq", "token.profiletype", `5`), true},
		// co, sw, ew
		{vf("co", "cert.subject.cn", `"ice Ex"`), true},
		{vf("co", "cert.subject.cn", `"ICE"`), false},
		{vf("co", "cert.subject.l", `""`), false}, // absent: even "" does not match
		{vf("co", "cert.subject.ou", `"port"`), true},
		{vf("co", "cert.subject.ou", `"xyz"`), false},
		{vf("co", "token.id", `"234"`), true},
		{vf("co", "cert.keyusage", `"nonRepudiation"`), true},
		{vf("co", "cert.keyusage", `"digitalSignature"`), true},
		{vf("co", "cert.keyusage", `"clientAuth"`), true},
		{vf("co", "cert.keyusage", `"smartcardLogon"`), true},
		{vf("co", "cert.keyusage", `"1.2.3.4"`), true},
		{vf("co", "cert.keyusage", `"keyEncipherment"`), false},
		{vf("eq", "cert.keyusage", `"digitalSignature,nonRepudiation,clientAuth,smartcardLogon,1.2.3.4"`), true},
		{vf("sw", "cert.subject.cn", `"Alice"`), true},
		{vf("sw", "cert.subject.cn", `"Example"`), false},
		{vf("sw", "cert.subject.cn", `""`), true},
		{vf("sw", "cert.subject.ou", `"Sup"`), true},
		{vf("sw", "cert.subject.l", `""`), false},
		{vf("ew", "cert.subject.cn", `"Example"`), true},
		{vf("ew", "cert.subject.cn", `"Alice"`), false},
		{vf("ew", "cert.subject.ou", `"les"`), true},
		{vf("ew", "cert.subject.l", `"x"`), false},
		// lt, gt, le/lte, ge/gte: text by bytes, numbers by value
		{vf("lt", "cert.subject.cn", `"B"`), true},
		{vf("lt", "cert.subject.cn", `"Alice Example"`), false},
		{vf("lt", "cert.subject.ou", `"Sb"`), true}, // Sales < Sb
		{vf("lt", "cert.subject.ou", `"Sa"`), false},
		{vf("lt", "cert.subject.l", `"zzz"`), false},
		{vf("lt", "key.size", `4096`), true},
		{vf("lt", "key.size", `2048`), false},
		{vf("lt", "token.id", `9999`), false}, // numerically, though "12345" < "9999" as text
		{vf("lt", "token.id", `"9999"`), true},
		{vf("lt", "cert.subject.cn", `99`), false},
		{vf("gt", "cert.subject.cn", `"Alice"`), true},
		{vf("gt", "cert.subject.cn", `"Bob"`), false},
		{vf("gt", "cert.subject.ou", `"Sb"`), true}, // Support > Sb
		{vf("gt", "cert.subject.l", `""`), false},
		{vf("gt", "key.size", `2047`), true},
		{vf("gt", "key.size", `2048`), false},
		{vf("gt", "token.id", `9999`), true},
		{vf("gt", "token.id", `-1e400`), true}, // out of range is -Inf, still ordered
		{vf("le", "key.size", `2048`), true},
		{vf("lte", "key.size", `2048`), true},
		{vf("le", "key.size", `2047`), false},
		{vf("lte", "key.size", `2047.5`), false},
		{vf("le", "cert.subject.cn", `"Alice Example"`), true},
		{vf("le", "cert.subject.l", `"zzz"`), false},
		{vf("ge", "key.size", `2048`), true},
		{vf("gte", "key.size", `2049`), false},
		{vf("ge", "key.size", `1024.5`), true},
		{vf("gte", "cert.subject.cn", `"Alice Example"`), true},
		{vf("ge", "cert.subject.ou", `"T"`), false},
		{vf("ge", "token.id", `12345`), true},
		// every param
		{vf("eq", "cert.issuer.cn", `"Cardwright Test CA"`), true},
		{vf("eq", "cert.issuer.o", `"Cardwright"`), true},
		{vf("eq", "cert.issuer.c", `"SE"`), true},
		{vf("eq", "cert.issuer.ou", `"x"`), false},
		{vf("eq", "cert.issuer.l", `"x"`), false},
		{vf("eq", "cert.issuer.st", `"x"`), false},
		{vf("eq", "cert.issuer.s", `"x"`), false},
		{vf("eq", "cert.issuer.street", `"x"`), false},
		{vf("eq", "cert.issuer.email", `"x"`), false},
		{vf("eq", "cert.issuer.uid", `"x"`), false},
		{vf("eq", "cert.subject.c", `"SE"`), true},
		{vf("eq", "cert.subject.o", `"Example AB"`), true},
		{vf("eq", "cert.subject.st", `"Stockholm"`), true},
		{vf("eq", "cert.subject.s", `"Stockholm"`), true},
		{vf("eq", "cert.subject.street", `"Main Street 1"`), true},
		{vf("eq", "cert.subject.email", `"alice@dn.example"`), true},
		{vf("eq", "cert.subject.email", `"alice@example.com"`), true}, // from the SAN
		{vf("eq", "cert.subject.uid", `"alice"`), true},
		{vf("eq", "cert.serial", `"0A1B2C"`), true},
		{vf("eq", "cert.serial", `"0a:1b:2c"`), true},
		{vf("eq", "cert.serial", `"A1B2C"`), true},
		{vf("eq", "cert.serial", `"A1B2D"`), false},
		{vf("sw", "cert.serial", `"A1"`), true},
		{vf("sw", "cert.serial", `"0A1"`), false}, // text ops keep leading zeros
		{vf("gt", "cert.serial", `"FFFF"`), true}, // hex by value, not by text
		{vf("lt", "cert.serial", `"100000"`), true},
		{vf("lt", "cert.serial", `"A1B2C"`), false},
		{vf("eq", "key.id", `"01AB"`), true},
		{vf("eq", "key.id", `"01ab"`), true}, // CKA_ID hex ignores case
		{vf("eq", "key.id", `"alice key"`), false},
		{vf("eq", "key.publickey", fmt.Sprintf("%q", spki)), true},
		{vf("sw", "key.publickey", `"MII"`), true},
		{vf("eq", "key.type", `"RSA"`), true},
		{vf("eq", "key.type", `"rsa"`), true},
		{vf("eq", "key.type", `"ECC"`), false},
		{vf("nq", "key.type", `"ECC"`), true},
		{vf("eq", "token.type", `"SMARTCARD"`), true},
		{vf("eq", "token.userid", `"alice"`), true},
		// logical ops
		{`{"op":"and","value":[]}`, true},
		{`{"op":"or","value":[]}`, false},
		{`{"op":"not","value":[]}`, true},
		{`{"value":[` + vf("eq", "cert.subject.cn", `"Alice Example"`) + `,` + vf("eq", "key.type", `"RSA"`) + `]}`, true},
		{`{"value":[` + vf("eq", "cert.subject.cn", `"Alice Example"`) + `,` + vf("eq", "key.type", `"ECC"`) + `]}`, false},
		{`{"op":"and","param":null,"value":[` + vf("eq", "key.type", `"RSA"`) + `]}`, true},
		{`{"op":"or","value":[` + vf("eq", "key.type", `"ECC"`) + `,` + vf("eq", "key.type", `"RSA"`) + `]}`, true},
		{`{"op":"or","value":[` + vf("eq", "key.type", `"ECC"`) + `,` + vf("eq", "cert.subject.cn", `"Bob"`) + `]}`, false},
		{`{"op":"not","value":[` + vf("eq", "cert.subject.cn", `"Bob"`) + `,` + vf("eq", "cert.subject.cn", `"Carol"`) + `]}`, true},
		{`{"op":"not","value":[` + vf("eq", "cert.subject.cn", `"Bob"`) + `,` + vf("eq", "cert.subject.cn", `"Alice Example"`) + `]}`, false},
		{`{"op":"not","value":[{"op":"not","value":[` + vf("eq", "key.type", `"RSA"`) + `]}]}`, true},
	}
	for _, tt := range tests {
		f, err := Parse([]byte(tt.filter))
		if err != nil {
			t.Errorf("Parse(%s): %v", tt.filter, err)
			continue
		}
		if got := f.Match(c); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.filter, got, tt.want)
		}
		// The canonical form means the same.
		g, err := Parse([]byte(f.String()))
		if err != nil {
			t.Errorf("Parse(%s) (canonical of %s): %v", f, tt.filter, err)
			continue
		}
		if got := g.Match(c); got != tt.want {
			t.Errorf("%s (canonical of %s): Match = %v, want %v", g, tt.filter, got, tt.want)
		}
	}
}

func TestKeyIDLabel(t *testing.T) {
	ca := newTestCA(t, testCASubject)
	cert := ca.issue(t, certSpec{subject: pkix.Name{CommonName: "x"}, key: "p256", serial: 2})
	c := NewCandidate(cert, KeyRef{Label: "signing"}, Token{})
	for _, tt := range []struct {
		filter string
		want   bool
	}{
		{vf("eq", "key.id", `"signing"`), true},
		{vf("eq", "key.id", `"SIGNING"`), false}, // a label keeps its case
		{vf("sw", "key.id", `"sign"`), true},
		{vf("eq", "token.id", `"x"`), false},
		{vf("nq", "token.type", `"SMARTCARD"`), true},
		{vf("eq", "key.type", `"ECC"`), true},
		{vf("eq", "key.size", `256`), true},
		{vf("eq", "cert.keyusage", `""`), false}, // no usages: absent
	} {
		f, err := Parse([]byte(tt.filter))
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match(c); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.filter, got, tt.want)
		}
	}
}

// The two examples of the incumbent's documentation (seeds/002).
const (
	seedSimple  = `{ "op": "eq", "param": "cert.issuer.o", "value": "Example company" }`
	seedComplex = `{
  "op":"and",
  "value":[
    { "param": "key.id", "op":"eq", "value": "signing" },
    { "param": "cert.subject.cn", "op":"eq", "value": "Samuel" },
    {
     "op":"or",
     "value":[
       { "op":"and", "value":[
           { "param": "key.type", "op":"eq", "value": "RSA" },
           { "param": "key.size", "op":"gte", "value":2048 } ] },
       { "op":"and", "value":[
           { "param": "key.type", "op":"eq", "value": "ECC" },
           { "param": "key.size", "op":"gte", "value":192 } ] }
     ]
    }
  ]
}`
)

func TestSeedExamples(t *testing.T) {
	example := newTestCA(t, pkix.Name{CommonName: "Example CA", Organization: []string{"Example company"}})
	other := newTestCA(t, testCASubject)
	type cand struct {
		name  string
		ca    *testCA
		cn    string
		key   string
		label string
	}
	cands := []cand{
		{"samuel-rsa2048-signing", example, "Samuel", "rsa2048", "signing"},
		{"samuel-rsa1024-signing", example, "Samuel", "rsa1024", "signing"},
		{"samuel-p256-signing", other, "Samuel", "p256", "signing"},
		{"samuel-p384-signing", other, "Samuel", "p384", "signing"},
		{"samuel-p256-auth", example, "Samuel", "p256", "auth"},
		{"bob-p256-signing", example, "Bob", "p256", "signing"},
		{"samuel-lower-p256", other, "samuel", "p256", "signing"},
	}
	var cs []*Candidate
	for i, c := range cands {
		cert := c.ca.issue(t, certSpec{subject: pkix.Name{CommonName: c.cn}, key: c.key, serial: int64(100 + i)})
		cs = append(cs, NewCandidate(cert, KeyRef{Label: c.label}, Token{}))
	}
	for _, tt := range []struct {
		name, filter string
		want         []string
	}{
		{"simple", seedSimple, []string{"samuel-rsa2048-signing", "samuel-rsa1024-signing", "samuel-p256-auth", "bob-p256-signing"}},
		{"complex", seedComplex, []string{"samuel-rsa2048-signing", "samuel-p256-signing", "samuel-p384-signing"}},
	} {
		f, err := Parse([]byte(tt.filter))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var got []string
		for i, c := range cs {
			if f.Match(c) {
				got = append(got, cands[i].name)
			}
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("%s: matches %q, want %q", tt.name, got, tt.want)
		}
		if n := len(f.Select(cs)); n != len(tt.want) {
			t.Errorf("%s: Select gives %d, want %d", tt.name, n, len(tt.want))
		}
	}
}

func TestParseErrors(t *testing.T) {
	eq := vf("eq", "cert.subject.cn", `"a"`)
	tests := []struct {
		filter string
		want   []string // "line:col: path: message part", in order
	}{
		{`{"op":"xor","value":[]}`, []string{`1:7: op: unknown op "xor"`}},
		{`{"op":"and","value":[` + eq + `,` + eq + `,{"op":"or","value":[{"op":"nope","value":[]}]}]}`,
			[]string{`value[2].value[0].op: unknown op "nope"`}},
		{`{"op":"and","value":[{"op":"eq","param":"cert.subject.x","value":"a"}]}`,
			[]string{`value[0].param: unknown param "cert.subject.x"`}},
		{`{"op":"or"}`, []string{`1:1: (root): logical op "or" without a list`}},
		{`{}`, []string{`(root): logical op "and" without a list`}},
		{`{"op":"not","value":"x"}`, []string{`value: logical op "not" needs a list of filters in value, not a string`}},
		{`{"op":"and","value":{}}`, []string{`value: logical op "and" needs a list`}},
		{`{"op":"and","param":"cert.subject.cn","value":[]}`, []string{`param: logical op "and" takes no param`}},
		{`{"value":[1]}`, []string{`value[0]: a filter must be an object, not a number`}},
		{`[]`, []string{`(root): a filter must be an object, not a list`}},
		{`{"op":"eq","value":"x"}`, []string{`(root): value op "eq" without param`}},
		{`{"op":"eq","param":"key.size"}`, []string{`(root): value op "eq" without value`}},
		{`{"op":"eq","param":7,"value":"x"}`, []string{`param: param must be a string, not a number`}},
		{`{"op":1}`, []string{`op: op must be a string, not a number`}},
		{`{"op":"co","param":"cert.subject.cn","value":5}`, []string{`value: "co" takes a string value, not a number`}},
		{`{"op":"sw","param":"cert.subject.cn","value":5}`, []string{`value: "sw" takes a string value`}},
		{`{"op":"ew","param":"cert.subject.cn","value":5}`, []string{`value: "ew" takes a string value`}},
		{`{"op":"eq","param":"cert.subject.cn","value":null}`, []string{`value: value op "eq" takes a string or number value, not null`}},
		{`{"op":"eq","param":"cert.subject.cn","value":true}`, []string{`not a boolean`}},
		{`{"op":"eq","param":"cert.subject.cn","value":["a"]}`, []string{`not a list`}},
		{`{"op":"eq","param":"cert.subject.cn","value":{}}`, []string{`not an object`}},
		{`{"op":"eq","parm":"cert.subject.cn","value":"a"}`, []string{`1:1: (root): value op "eq" without param`, `1:12: parm: unknown member "parm"`}},
		{`{"op":"eq","op":"ne"}`, []string{`1:12: op: duplicate member "op"`}},
		{`{"op":"eq","param":"key.size","value":"big"}`, []string{`value: key.size is a number of bits, not "big"`}},
		{`{"op":"co","param":"key.size","value":"20"}`, []string{`value: "co" compares text, but key.size is a number`}},
		{`{"op":"eq","param":"cert.serial","value":12}`, []string{`value: cert.serial is hexadecimal text`}},
		{`{"op":"eq","param":"cert.serial","value":"XYZ"}`, []string{`value: cert.serial is hexadecimal, "XYZ" is not`}},
		{`{"op":"eq","param":"key.type","value":"DSA"}`, []string{`value: key.type is RSA, ECC or EdDSA, not "DSA"`}},
		{`{"op":"eq","param":"key.type","value":1}`, []string{`value: key.type is text`}},
		{`{"op":`, []string{`op: invalid JSON`}},
		{`{"op":"eq",}`, []string{`invalid JSON`}},
		{`{} {}`, []string{`1:4: (root): data after the filter object`}},
		{"{\"op\":\"\xff\"}", []string{`1:8: (root): invalid UTF-8`}},
		{"", []string{`invalid JSON: unexpected end of input`}},
		{`{"a b":1}`, []string{`(root): logical op "and" without a list`, `1:2: ["a b"]: unknown member "a b"`}},
		// several errors, sorted by position, on several lines
		{"{\"op\":\"and\",\"value\":[\n  {\"op\":\"eq\",\"param\":\"x\",\"value\":1},\n  {\"op\":\"co\",\"param\":\"cert.subject.cn\",\"value\":2}\n]}",
			[]string{`2:22: value[0].param: unknown param "x"`, `3:48: value[1].value: "co" takes a string value`}},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.filter))
		if err == nil {
			t.Errorf("Parse(%s) = nil error, want %q", tt.filter, tt.want)
			continue
		}
		var list ErrorList
		if !errors.As(err, &list) {
			t.Errorf("Parse(%s): error %T is not an ErrorList", tt.filter, err)
			continue
		}
		if len(list) != len(tt.want) {
			t.Errorf("Parse(%s): %d errors, want %d:\n%v", tt.filter, len(list), len(tt.want), err)
			continue
		}
		for i, e := range list {
			if !strings.Contains(e.Error(), tt.want[i]) {
				t.Errorf("Parse(%s): error %d = %q, want it to contain %q", tt.filter, i, e, tt.want[i])
			}
		}
		var one *Error
		if !errors.As(err, &one) || one != list[0] {
			t.Errorf("Parse(%s): errors.As does not reach the first *Error", tt.filter)
		}
	}
}

func TestParseDepth(t *testing.T) {
	nest := func(n int) string {
		return strings.Repeat(`{"op":"not","value":[`, n) + vf("eq", "key.type", `"RSA"`) + strings.Repeat(`]}`, n)
	}
	if _, err := Parse([]byte(nest(MaxDepth - 1))); err != nil {
		t.Errorf("%d levels: %v", MaxDepth, err)
	}
	_, err := Parse([]byte(nest(MaxDepth)))
	if err == nil || !strings.Contains(err.Error(), "nested deeper than") {
		t.Errorf("%d levels: err = %v, want nesting error", MaxDepth+1, err)
	}
}

func TestErrorListLimit(t *testing.T) {
	var parts []string
	for range 15 {
		parts = append(parts, `{"op":"bad","value":[]}`)
	}
	_, err := Parse([]byte(`{"value":[` + strings.Join(parts, ",") + `]}`))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 15 {
		t.Fatalf("err = %v, want 15 errors", err)
	}
	msg := err.Error()
	if n := strings.Count(msg, "\n"); n != 10 {
		t.Errorf("printed %d lines, want 10 errors and a summary:\n%s", n+1, msg)
	}
	if !strings.HasSuffix(msg, "(and 5 more)") || !strings.HasPrefix(msg, "1:17: value[0].op:") {
		t.Errorf("message:\n%s", msg)
	}
}

func TestNilFilterMatchesAll(t *testing.T) {
	var f *Filter
	if !f.Match(&Candidate{}) {
		t.Error("nil filter does not match")
	}
	if f.String() != `{"op":"and","value":[]}` {
		t.Errorf("nil filter String = %s", f)
	}
}

func TestCanonical(t *testing.T) {
	f, err := Parse([]byte(seedComplex))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"op":"and","value":[{"op":"eq","param":"key.id","value":"signing"},{"op":"eq","param":"cert.subject.cn","value":"Samuel"},{"op":"or","value":[{"op":"and","value":[{"op":"eq","param":"key.type","value":"RSA"},{"op":"ge","param":"key.size","value":2048}]},{"op":"and","value":[{"op":"eq","param":"key.type","value":"ECC"},{"op":"ge","param":"key.size","value":192}]}]}]}`
	if got := f.String(); got != want {
		t.Errorf("canonical\n got %s\nwant %s", got, want)
	}
	g, _ := Parse([]byte(vf("eq", "cert.serial", `"00:0a:1B"`)))
	if got := g.String(); got != `{"op":"eq","param":"cert.serial","value":"A1B"}` {
		t.Errorf("serial canonical: %s", got)
	}
}

func TestCandidateFacts(t *testing.T) {
	c := alice(t)
	b, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		`"cert.issuer.cn":["Cardwright Test CA"]`,
		`"cert.subject.ou":["Sales","Support"]`,
		`"cert.subject.email":["alice@dn.example","alice@example.com"]`,
		`"cert.keyusage":"digitalSignature,nonRepudiation,clientAuth,smartcardLogon,1.2.3.4"`,
		`"cert.serial":"A1B2C"`,
		`"key.id":"01AB"`,
		`"key.size":2048`,
		`"key.type":"RSA"`,
		`"token.id":"12345"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("facts lack %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "cert.subject.l") || strings.Contains(s, "token.profiletype") {
		t.Errorf("absent facts listed:\n%s", s)
	}
	if v, ok := c.Values("cert.subject.s"); !ok || len(v) != 1 || v[0] != "Stockholm" {
		t.Errorf("Values(cert.subject.s) = %q, %v", v, ok)
	}
	if v, ok := c.Values("key.size"); !ok || len(v) != 1 || v[0] != "2048" {
		t.Errorf("Values(key.size) = %q, %v", v, ok)
	}
	if _, ok := c.Values("cert.bogus"); ok {
		t.Error("Values(cert.bogus) ok")
	}
	if len(Params()) != int(numParams) {
		t.Errorf("Params() has %d names", len(Params()))
	}
}
