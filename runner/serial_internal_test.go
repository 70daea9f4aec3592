package runner

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseCMSSerial(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"CW-000042", "CW-000042", true},
		{"", "", true},
		{"Zähler 7", "Zähler 7", true},
		{"A,B", "", false},
		{"A\nB", "", false},
		{"\xff", "", false},
		{strings.Repeat("9", 257), "", false},
	} {
		got, err := parseCMSSerial([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseCMSSerial(%q) = %q, %v", tc.in, got, err)
		}
	}
}

// FuzzParseCMSSerial: what parseCMSSerial accepts is the data object's
// value unchanged, UTF-8 without commas or control characters, and fits
// the comma-separated list of RetrieveAllTokens as one item.
func FuzzParseCMSSerial(f *testing.F) {
	for _, s := range []string{"CW-000042", "", "A,B", "\x00", "Zähler", "\xc3", strings.Repeat("x", 300)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		s, err := parseCMSSerial(v)
		if err != nil {
			return
		}
		if s != string(v) || !utf8.ValidString(s) || len(s) > 256 || len(strings.Split(s+",x", ",")) != 2 || strings.ContainsAny(s, "\x00\n\r\t") {
			t.Fatalf("accepted %q as %q", v, s)
		}
	})
}
