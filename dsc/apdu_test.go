package dsc

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestParseScriptErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"00 A4 0", "odd number of hex digits"},
		{"00A4 ${AID", "placeholder without '}'"},
		{"00A4 ${<hex>}", "bad placeholder"},
		{"00A40000 => 90", `expected status word "90"`},
		{"00A4 | 01", "the header before '|' must be 4 literal bytes"},
		{"00A40000 | 01 | 0000", "Le after the second '|' must be one literal byte"},
		{"00A40000 | 01 | 00 | 00", "more than two '|'"},
		{"00A4G0", `unexpected 'G'`},
		{"=> 9000", "empty command"},
	}
	for _, tc := range tests {
		_, err := ParseScript("s.apdu", []byte("; first line\n"+tc.src+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "s.apdu:2:1: error: ") {
			t.Errorf("%q: got %v, want %q", tc.src, err, tc.want)
		}
	}
}

func TestScriptResolve(t *testing.T) {
	s, err := ParseScript("s.apdu", []byte("\ufeff00 CA 00 5A 00 // get serial\r\n00DA0181|${<base64>B}${<string>S}\n00A4040C | ${h} => 9000,6a8x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Fields(), ","); got != "B,S,h" {
		t.Errorf("fields %s", got)
	}
	vals := map[string]string{"B": "AQI=", "S": "ab", "h": "3F 00"}
	cmds, err := s.Resolve(func(f string) (string, bool, bool) { v, ok := vals[f]; return v, f == "S", ok })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"00ca005a00", "00da018104010261 62", "00a4040c023f00"}
	for i, c := range cmds {
		if got := strings.ReplaceAll(hexs(c.APDU), " ", ""); got != strings.ReplaceAll(want[i], " ", "") {
			t.Errorf("line %d: %s want %s", c.Line, got, want[i])
		}
	}
	if cmds[0].Secret || !cmds[1].Secret || !cmds[2].Accepts(0x6A82) || cmds[2].Accepts(0x6982) {
		t.Error("secret/expect")
	}
	if _, err := s.Resolve(func(string) (string, bool, bool) { return "", false, false }); err == nil || !strings.Contains(err.Error(), "s.apdu:2:1: field B is not declared") {
		t.Errorf("got %v", err)
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestCheckReportsScriptErrors(t *testing.T) {
	files := fstest.MapFS{"s.apdu": {Data: []byte("00A40000 | ${AID}\n00 B0 0\n")}}
	_, diags := Load("d.dsc", []byte("[Description]\nApduFile=s.apdu\n"), CheckOptions{Files: files})
	var got []string
	for _, d := range diags {
		got = append(got, d.String())
	}
	if len(got) != 2 || got[0] != "s.apdu:1:1: error: placeholder ${AID}: field AID is not declared in [Fields] of d.dsc" || got[1] != `s.apdu:2:1: error: odd number of hex digits in "00B00"` {
		t.Errorf("%q", got)
	}
}

func TestObjectCriteriaForms(t *testing.T) {
	tests := []struct {
		in          string
		class, attr uint
		typ         string
		bytes       string
		i           uint64
	}{
		{`CKO_PUBLIC_KEY,CKA_LABEL,string,"Digital Signature"`, 2, 3, "string", "Digital Signature", 0},
		{`cko_private_key , cka_id , HEX , 0x01:02 A0`, 3, 0x102, "hex", "\x01\x02\xa0", 0},
		{`CKO_CERTIFICATE,CKA_TOKEN,bool,TRUE`, 1, 1, "bool", "\x01", 0},
		{`CKO_PRIVATE_KEY,CKA_MODULUS_BITS,int,0x800`, 3, 0x121, "int", "", 2048},
		{`0x80000001,0x80000002,string,"a, \"b\""`, 0x80000001, 0x80000002, "string", `a, "b"`, 0},
		{`CKO_DATA,CKA_LABEL,string,plain, with comma`, 0, 3, "string", "plain, with comma", 0},
	}
	for _, tc := range tests {
		c, err := ParseObjectCriteria(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if c.ClassID != tc.class || c.AttrID != tc.attr || c.Type != tc.typ || string(c.Bytes) != tc.bytes || c.Int != tc.i {
			t.Errorf("%s: %+v", tc.in, c)
		}
	}
}
