package iso7816_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/iso7816"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// TestCommandEncoding covers the four cases of ISO/IEC 7816-4 §5.1 in the
// short and extended forms, at the edges where the form changes.
func TestCommandEncoding(t *testing.T) {
	tests := []struct {
		name     string
		cmd      iso7816.Command
		want     string // header, then the body built from prefix + data + suffix
		data     int    // length of seq data expected between prefix and suffix
		prefix   string
		suffix   string
		extended bool
	}{
		{name: "case 1", cmd: iso7816.Command{CLA: 0x00, INS: 0xA4, P1: 0x04, P2: 0x0C}, want: "00A4040C"},
		{name: "case 2S Le 1", cmd: iso7816.Command{INS: 0x84, Ne: 1}, want: "00840000", suffix: "01"},
		{name: "case 2S Le 255", cmd: iso7816.Command{INS: 0xB0, Ne: 255}, want: "00B00000", suffix: "FF"},
		{name: "case 2S Le 256", cmd: iso7816.Command{INS: 0xB0, Ne: 256}, want: "00B00000", suffix: "00"},
		{name: "case 2E Le 257", cmd: iso7816.Command{INS: 0xB0, Ne: 257}, want: "00B00000", suffix: "000101", extended: true},
		{name: "case 2E Le 65535", cmd: iso7816.Command{INS: 0xB0, Ne: 65535}, want: "00B00000", suffix: "00FFFF", extended: true},
		{name: "case 2E Le 65536", cmd: iso7816.Command{INS: 0xB0, Ne: 65536}, want: "00B00000", suffix: "000000", extended: true},
		{name: "case 3S Lc 1", cmd: iso7816.Command{INS: 0xD6, Data: seq(1)}, want: "00D60000", prefix: "01", data: 1},
		{name: "case 3S Lc 255", cmd: iso7816.Command{INS: 0xD6, Data: seq(255)}, want: "00D60000", prefix: "FF", data: 255},
		{name: "case 3E Lc 256", cmd: iso7816.Command{INS: 0xD6, Data: seq(256)}, want: "00D60000", prefix: "000100", data: 256, extended: true},
		{name: "case 3E Lc 65535", cmd: iso7816.Command{INS: 0xD6, Data: seq(65535)}, want: "00D60000", prefix: "00FFFF", data: 65535, extended: true},
		{name: "case 4S Lc 255 Le 256", cmd: iso7816.Command{INS: 0x88, Data: seq(255), Ne: 256}, want: "00880000", prefix: "FF", data: 255, suffix: "00"},
		{name: "case 4S Lc 1 Le 1", cmd: iso7816.Command{INS: 0x88, Data: seq(1), Ne: 1}, want: "00880000", prefix: "01", data: 1, suffix: "01"},
		{name: "case 4E Lc 256 Le 1", cmd: iso7816.Command{INS: 0x88, Data: seq(256), Ne: 1}, want: "00880000", prefix: "000100", data: 256, suffix: "0001", extended: true},
		{name: "case 4E Lc 1 Le 257", cmd: iso7816.Command{INS: 0x88, Data: seq(1), Ne: 257}, want: "00880000", prefix: "000001", data: 1, suffix: "0101", extended: true},
		{name: "case 4E Lc 1 Le 65536", cmd: iso7816.Command{INS: 0x88, Data: seq(1), Ne: 65536}, want: "00880000", prefix: "000001", data: 1, suffix: "0000", extended: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.want)
			want = append(want, unhex(t, tt.prefix)...)
			want = append(want, seq(tt.data)...)
			want = append(want, unhex(t, tt.suffix)...)
			if got := tt.cmd.Extended(); got != tt.extended {
				t.Errorf("Extended() = %v, want %v", got, tt.extended)
			}
			got, err := tt.cmd.Bytes()
			if err != nil {
				t.Fatalf("Bytes: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Bytes() = % X\nwant      % X", head(got), head(want))
			}
			back, err := iso7816.ParseCommand(got)
			if err != nil {
				t.Fatalf("ParseCommand: %v", err)
			}
			if !sameCommand(back, tt.cmd) {
				t.Errorf("ParseCommand(Bytes()) = %+v, want %+v", summary(back), summary(tt.cmd))
			}
		})
	}
}

func head(b []byte) []byte { return b[:min(len(b), 16)] }

func sameCommand(a, b iso7816.Command) bool {
	return a.CLA == b.CLA && a.INS == b.INS && a.P1 == b.P1 && a.P2 == b.P2 && a.Ne == b.Ne && bytes.Equal(a.Data, b.Data)
}

type cmdSummary struct {
	CLA, INS, P1, P2 byte
	Nc, Ne           int
}

func summary(c iso7816.Command) cmdSummary {
	return cmdSummary{c.CLA, c.INS, c.P1, c.P2, len(c.Data), c.Ne}
}

func TestCommandEncodingLimits(t *testing.T) {
	for _, c := range []iso7816.Command{
		{INS: 0xD6, Data: make([]byte, 65536)},
		{INS: 0xB0, Ne: 65537},
		{INS: 0xB0, Ne: -1},
	} {
		if b, err := c.Bytes(); !errors.Is(err, iso7816.ErrMalformedAPDU) {
			t.Errorf("Bytes(%+v) = %d bytes, %v; want ErrMalformedAPDU", summary(c), len(b), err)
		}
	}
}

func TestParseCommandErrors(t *testing.T) {
	for _, s := range []string{
		"",
		"00",
		"00A404",
		"00D6000002AA",         // Lc 2, one byte
		"00D6000001AABBCC",     // Lc 1, two bytes left over
		"00B0000000FF",         // 00 marker with 2 bytes
		"00D60000000000AA",     // extended Lc 0
		"00D6000000000201",     // extended Lc 2, one byte
		"00D600000000020102FF", // extended Lc 2, then one Le byte
	} {
		if c, err := iso7816.ParseCommand(unhex(t, s)); !errors.Is(err, iso7816.ErrMalformedAPDU) {
			t.Errorf("ParseCommand(%s) = %+v, %v; want ErrMalformedAPDU", s, summary(c), err)
		}
	}
}

func TestParseCommandDoesNotAlias(t *testing.T) {
	raw := unhex(t, "00D6000002AABB")
	c, err := iso7816.ParseCommand(raw)
	if err != nil {
		t.Fatal(err)
	}
	raw[5] = 0
	if c.Data[0] != 0xAA {
		t.Error("Command.Data aliases the input")
	}
}

func TestParseResponse(t *testing.T) {
	r, err := iso7816.ParseResponse(unhex(t, "0102039000"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Data, []byte{1, 2, 3}) || r.SW != 0x9000 || r.SW1() != 0x90 || r.SW2() != 0 {
		t.Errorf("ParseResponse = %+v", r)
	}
	if got := r.Bytes(); !bytes.Equal(got, unhex(t, "0102039000")) {
		t.Errorf("Bytes() = %X", got)
	}
	// Appending to Data must not overwrite the status word of the input.
	raw := unhex(t, "AA6A82")
	r, _ = iso7816.ParseResponse(raw)
	_ = append(r.Data, 0xFF)
	if raw[1] != 0x6A {
		t.Error("appending to Data overwrote SW1")
	}
	r, err = iso7816.ParseResponse(unhex(t, "6A82"))
	if err != nil || len(r.Data) != 0 || r.SW != 0x6A82 {
		t.Errorf("ParseResponse(6A82) = %+v, %v", r, err)
	}
	for _, s := range []string{"", "90"} {
		if _, err := iso7816.ParseResponse(unhex(t, s)); !errors.Is(err, iso7816.ErrMalformedAPDU) {
			t.Errorf("ParseResponse(%q) error %v, want ErrMalformedAPDU", s, err)
		}
	}
}
