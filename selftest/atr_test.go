package selftest

import (
	"bytes"
	"testing"
)

func TestDialectForATR(t *testing.T) {
	d := map[string]string{
		"3B 95 13 81 01 80 73 FF 01 00 0B": "ISO7816",
		"3B:95*":                           "ISO7816-EXT",
		"3B95 13*":                         "A",
		"ISO7816":                          "ISO7816",
		"CAFE":                             "ISO7816", // not 3B/3F: a model name
	}
	for _, tc := range []struct {
		atr, pat, dialect string
		ok                bool
	}{
		{"3B951381018073FF01000B", "3B951381018073FF01000B", "ISO7816", true}, // exact wins
		{"3B951381018073FF01000C", "3B9513*", "A", true},                      // longest prefix
		{"3B9500", "3B95*", "ISO7816-EXT", true},
		{"3B8581018073B60180C1", "", "", false},
		{"CAFE", "", "", false},
	} {
		pat, dialect, ok := DialectForATR(d, atr(tc.atr))
		if pat != tc.pat || dialect != tc.dialect || ok != tc.ok {
			t.Errorf("%s: %q %q %v, want %q %q %v", tc.atr, pat, dialect, ok, tc.pat, tc.dialect, tc.ok)
		}
	}
}

func TestParseATRPatternErrors(t *testing.T) {
	for _, s := range []string{"", "*", "3B", "3G00", "3B9", "ISO7816", "CAFE", "3B*00", "3B" + string(bytes.Repeat([]byte("00"), 33))} {
		if p, err := ParseATRPattern(s); err == nil {
			t.Errorf("%q parsed as %v", s, p)
		}
	}
}

// FuzzATRPattern: no input panics; a parsed pattern prints as a key that
// parses back to the same pattern, and an exact one matches its bytes.
func FuzzATRPattern(f *testing.F) {
	for _, s := range []string{"3B951381018073FF01000B", "3B 95 13*", "3F:00", "ISO7816", "3b95*", " 3B00 * ", "**", "3B\t00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseATRPattern(s)
		if err != nil {
			return
		}
		q, err := ParseATRPattern(p.String())
		if err != nil || !bytes.Equal(p.Bytes, q.Bytes) || p.Prefix != q.Prefix {
			t.Fatalf("%q -> %v -> %v %v", s, p, q, err)
		}
		if !p.Match(p.Bytes) || p.Match(append(p.Bytes[:len(p.Bytes):len(p.Bytes)], 0)) != p.Prefix {
			t.Fatalf("%v does not match as it should", p)
		}
	})
}
