package iso7816_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/iso7816/memcard"
)

func TestParseATR(t *testing.T) {
	tests := []struct {
		name      string
		atr       string
		protocols []int
		hist      string
		caps      *iso7816.Capabilities
	}{
		{"vicc", "3B 95 13 81 01 80 73 FF 01 00 0B", []int{1}, "80 73 FF 01 00",
			&iso7816.Capabilities{SelectionMethods: 0xFF, DataCoding: 0x01}},
		{"T=0 only, no TCK", "3B 02 14 50", []int{0}, "14 50", nil},
		{"T=0 and T=1", "3B 80 80 01 01", []int{0, 1}, "", nil},
		{"TA1 only", "3B 10 96", []int{0}, "", nil},
		{"global bytes T=15", "3B 80 8F 01 0E", []int{1}, "", nil},
		{"status indicator form", "3B 88 80 01 00 73 C8 40 00 00 90 00 62", []int{0, 1}, "00 73 C8 40 00 00 90 00",
			&iso7816.Capabilities{SelectionMethods: 0xC8, DataCoding: 0x40, Chaining: false, ExtendedLength: false}},
		{"inverse convention", "3F 00", []int{0}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := unhex(t, tt.atr)
			a, err := iso7816.ParseATR(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a.Protocols, tt.protocols) || !bytes.Equal(a.Historical, unhex(t, tt.hist)) || !bytes.Equal(a.Raw, raw) {
				t.Errorf("ParseATR = %+v, want protocols %v, historical %s", a, tt.protocols, tt.hist)
			}
			caps, ok := a.Capabilities()
			if ok != (tt.caps != nil) || ok && caps != *tt.caps {
				t.Errorf("Capabilities = %+v, %v; want %+v", caps, ok, tt.caps)
			}
		})
	}
}

func TestATRCapabilitiesOfMemcard(t *testing.T) {
	for _, ext := range []bool{false, true} {
		a, err := iso7816.ParseATR(memcard.DefaultATR(ext))
		if err != nil {
			t.Fatal(err)
		}
		caps, ok := a.Capabilities()
		if !ok || !caps.Chaining || caps.ExtendedLength != ext || !reflect.DeepEqual(a.Protocols, []int{1}) {
			t.Errorf("DefaultATR(%v): %+v, %+v %v", ext, a, caps, ok)
		}
	}
}

func TestParseATRErrors(t *testing.T) {
	for _, s := range []string{
		"",
		"3B",
		"3C 00",                         // bad TS
		"3B 01",                         // one historical byte missing
		"3B 90",                         // TA1 missing
		"3B 80 81",                      // TD1 names TD2, which is missing
		"3B 80 01",                      // T=1 without TCK
		"3B 80 01 02",                   // wrong TCK
		"3B 80 01 81 81",                // bytes after TCK
		"3B 00 00",                      // T=0 only: no TCK allowed
		"3B 95 13 81 01 80 73 FF 01 00", // vicc without TCK
	} {
		if a, err := iso7816.ParseATR(unhex(t, s)); !errors.Is(err, iso7816.ErrMalformedATR) {
			t.Errorf("ParseATR(%s) = %+v, %v; want ErrMalformedATR", s, a, err)
		}
	}
}

func FuzzParseATR(f *testing.F) {
	f.Add(unhex(f, "3B95138101807 3FF01000B"))
	f.Add(memcard.DefaultATR(true))
	f.Add(unhex(f, "3B021450"))
	f.Add(unhex(f, "3B88800100 73C8400000 900062"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := iso7816.ParseATR(b)
		if err != nil {
			if !errors.Is(err, iso7816.ErrMalformedATR) {
				t.Fatalf("error %v does not wrap ErrMalformedATR", err)
			}
			return
		}
		if len(a.Protocols) == 0 || len(a.Historical) > 15 || !bytes.Equal(a.Raw, b) {
			t.Fatalf("ParseATR(%X) = %+v", b, a)
		}
		a.Capabilities()
	})
}

// TestTrimATR: zeros after a well-formed ATR go (a driver that reports the
// buffer's full size); a valid ATR, one ending in a zero byte, and bytes
// that do not parse stay as they are.
func TestTrimATR(t *testing.T) {
	own := []byte{0x3B, 0x85, 0x81, 0x01, 0x80, 0x73, 0xB6, 0x01, 0x80, 0xC1}
	padded := append(append([]byte{}, own...), make([]byte, 23)...)
	endsInZero := []byte{0x3B, 0x02, 0x14, 0x00} // T=0, two historical bytes, the last 00
	for _, tc := range []struct{ in, want []byte }{
		{padded, own},
		{own, own},
		{endsInZero, endsInZero},
		{append(append([]byte{}, endsInZero...), 0, 0), endsInZero},
		{[]byte{0x3B, 0x00, 0x00}, []byte{0x3B, 0x00}},
		{[]byte{0x12, 0x00, 0x00}, []byte{0x12, 0x00, 0x00}},
		{append(append([]byte{}, own...), 0, 1), append(append([]byte{}, own...), 0, 1)},
	} {
		if got := iso7816.TrimATR(tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("TrimATR(% X) = % X, want % X", tc.in, got, tc.want)
		}
	}
}

// FuzzTrimATR: the result is the input, or a prefix that parses and is
// followed by zeros only.
func FuzzTrimATR(f *testing.F) {
	f.Add([]byte{0x3B, 0x85, 0x81, 0x01, 0x80, 0x73, 0xB6, 0x01, 0x80, 0xC1, 0, 0, 0})
	f.Add([]byte{0x3B, 0x02, 0x14, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		got := iso7816.TrimATR(b)
		if len(got) == len(b) {
			return
		}
		if _, err := iso7816.ParseATR(got); err != nil {
			t.Fatalf("TrimATR(% X) = % X, which does not parse: %v", b, got, err)
		}
		if !bytes.Equal(b[:len(got)], got) || bytes.ContainsFunc(b[len(got):], func(r rune) bool { return r != 0 }) {
			t.Fatalf("TrimATR(% X) = % X: not a prefix followed by zeros", b, got)
		}
	})
}
