package iso7816_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/cardwright/cardwright/iso7816"
)

func FuzzParseCommand(f *testing.F) {
	for _, c := range []iso7816.Command{
		{INS: 0xA4, P1: 0x04, P2: 0x0C},
		{INS: 0x84, Ne: 8},
		{INS: 0xB0, Ne: 256},
		{INS: 0xB0, Ne: 65536},
		{INS: 0xD6, Data: seq(255)},
		{INS: 0xD6, Data: seq(256), Ne: 1},
		{CLA: 0x10, INS: 0xDB, Data: seq(3), Ne: 300},
	} {
		b, err := c.Bytes()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0, 0xD6, 0, 0, 0, 0, 1, 0xAA}) // extended form of a short command
	f.Add([]byte{0, 0xB0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := iso7816.ParseCommand(b)
		if err != nil {
			if !errors.Is(err, iso7816.ErrMalformedAPDU) {
				t.Fatalf("error %v does not wrap ErrMalformedAPDU", err)
			}
			return
		}
		enc, err := c.Bytes()
		if err != nil {
			t.Fatalf("parsed %X into %+v, which does not encode: %v", b, summary(c), err)
		}
		if len(enc) > len(b) {
			t.Fatalf("canonical encoding %X longer than input %X", enc, b)
		}
		back, err := iso7816.ParseCommand(enc)
		if err != nil || !sameCommand(back, c) {
			t.Fatalf("round trip of %X: %+v, %v; want %+v", b, summary(back), err, summary(c))
		}
		if ext := len(enc) > 5 && enc[4] == 0; c.Extended() != ext {
			t.Fatalf("Extended() = %v for encoding %X", c.Extended(), enc)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte{0x90, 0x00})
	f.Add([]byte{0x01, 0x02, 0x61, 0x10})
	f.Add([]byte{0x63, 0xC2})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := iso7816.ParseResponse(b)
		if err != nil {
			if len(b) >= 2 {
				t.Fatalf("ParseResponse(%X): %v", b, err)
			}
			return
		}
		if !bytes.Equal(r.Bytes(), b) {
			t.Fatalf("Bytes() = %X, want %X", r.Bytes(), b)
		}
		if (r.Err() == nil) != r.OK() {
			t.Fatalf("%04X: Err %v but OK %v", r.SW, r.Err(), r.OK())
		}
		if iso7816.SWMeaning(r.SW) == "" {
			t.Fatalf("no meaning for %04X", r.SW)
		}
	})
}

func FuzzParseFCP(f *testing.F) {
	for _, p := range []iso7816.FCP{
		{FDB: iso7816.FDBDF, FID: 0x3F00, LCS: 5, Security: &iso7816.CompactSecurity{AM: 0x43, SC: []byte{0xFF, 0x11, 0}}},
		{FDB: iso7816.FDBDF, FID: 0x5000, DFName: []byte{0xA0, 0, 0, 0, 0x63}},
		{FDB: iso7816.FDBTransparent, FID: 0x2F01, Size: 300, SFI: 1},
		{FDB: iso7816.FDBLinearFixed, DCB: 0x21, MaxRecordSize: 32, NumRecords: 300, FID: 0x4001, TotalSize: 9600},
		{FID: 1, Extra: []iso7816.TLV{{Tag: 0xA5, Value: []byte{0x80, 0}}}},
	} {
		b, err := p.Bytes()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		b, _ = p.FCIBytes()
		f.Add(b)
	}
	f.Add([]byte{0x6F, 0x0C, 0x84, 0x02, 0xA0, 0x01, 0x62, 0x06, 0x82, 0x01, 0x38, 0x8A, 0x01, 0x05})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := iso7816.ParseFCP(b)
		if err != nil {
			if !errors.Is(err, iso7816.ErrMalformedFCP) {
				t.Fatalf("error %v does not wrap ErrMalformedFCP", err)
			}
			return
		}
		enc, err := p.Bytes()
		if err != nil {
			t.Fatalf("parsed %X into %+v, which does not encode: %v", b, p, err)
		}
		back, err := iso7816.ParseFCP(enc)
		if err != nil {
			t.Fatalf("re-parsing %X (from %X): %v", enc, b, err)
		}
		if !reflect.DeepEqual(back, p) {
			t.Fatalf("round trip of %X:\n got %+v\nwant %+v", b, back, p)
		}
	})
}

// FuzzExchange feeds arbitrary responses to Exchange: it must neither
// panic nor loop for ever, and it never sends more than the limits allow.
func FuzzExchange(f *testing.F) {
	f.Add([]byte{0x02, 0x61, 0x05, 0x01, 0x6C, 0x02, 0x04, 0x01, 0x02, 0x90, 0x00}, uint8(3), 5)
	f.Add([]byte{0x02, 0x61, 0x00}, uint8(0), 300)
	f.Fuzz(func(t *testing.T, script []byte, maxNc uint8, nc int) {
		nc = max(0, min(nc, 2000))
		lim := iso7816.Limits{MaxNc: int(maxNc)}
		calls := 0
		card := iso7816.CardFunc(func(cmd []byte) ([]byte, error) {
			calls++
			c, err := iso7816.ParseCommand(cmd)
			if err != nil {
				t.Fatalf("Exchange sent a malformed command %X: %v", cmd, err)
			}
			if c.Extended() {
				t.Fatalf("Exchange sent an extended command %X to a short card", cmd)
			}
			if len(script) == 0 {
				return []byte{0x90, 0x00}, nil
			}
			// Take 1 + script[0] % 4 bytes as the response.
			n := min(len(script), 1+int(script[0]%4))
			r := script[:n]
			script = script[n:]
			return r, nil
		})
		_, _ = iso7816.Exchange(card, iso7816.Command{INS: 0xDB, Data: make([]byte, nc), Ne: 256}, lim)
		if calls > 4000 {
			t.Fatalf("%d commands sent", calls)
		}
	})
}
