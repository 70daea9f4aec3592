package iso7816_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/cardwright/cardwright/iso7816"
)

func TestFCPEncoding(t *testing.T) {
	tests := []struct {
		name string
		fcp  iso7816.FCP
		want string
	}{
		{
			name: "MF",
			fcp:  iso7816.FCP{FDB: iso7816.FDBDF, FID: 0x3F00},
			want: "62 07 82 01 38 83 02 3F 00",
		},
		{
			name: "application DF with name, LCS and rules",
			fcp: iso7816.FCP{FDB: iso7816.FDBDF, FID: 0x5000, DFName: []byte{0xA0, 0x00, 0x00, 0x00, 0x63},
				LCS: iso7816.LCSOperationalActivated,
				Security: &iso7816.CompactSecurity{AM: iso7816.AMDelete | iso7816.AMCreateEF,
					SC: []byte{iso7816.SCNever, iso7816.SCUser(0x81)}}},
			want: "62 16 82 01 38 83 02 50 00 84 05 A0 00 00 00 63 8A 01 05 8C 03 42 FF 11",
		},
		{
			name: "transparent EF with SFI",
			fcp:  iso7816.FCP{FDB: iso7816.FDBTransparent, FID: 0x2F01, Size: 300, SFI: 1},
			want: "62 0E 80 02 01 2C 82 01 01 83 02 2F 01 88 01 08",
		},
		{
			name: "linear-fixed EF, 10 records of 32 bytes",
			fcp:  iso7816.FCP{FDB: iso7816.FDBLinearFixed, DCB: 0x21, MaxRecordSize: 32, NumRecords: 10, FID: 0x4001},
			want: "62 0B 82 05 02 21 00 20 0A 83 02 40 01",
		},
		{
			name: "record EF with 300 records and a large total",
			fcp:  iso7816.FCP{FDB: iso7816.FDBLinearFixed, MaxRecordSize: 1, NumRecords: 300, TotalSize: 0x123456},
			want: "62 0D 81 03 12 34 56 82 06 02 00 00 01 01 2C",
		},
		{
			name: "extra tags kept in order",
			fcp:  iso7816.FCP{FID: 0x0001, Extra: []iso7816.TLV{{Tag: 0x85, Value: []byte{1}}, {Tag: 0xA5, Value: []byte{0x80, 0x00}}}},
			want: "62 0B 83 02 00 01 85 01 01 A5 02 80 00",
		},
		{name: "empty", fcp: iso7816.FCP{}, want: "62 00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.fcp.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Fatalf("Bytes() = % X\nwant      % X", got, want)
			}
			back, err := iso7816.ParseFCP(got)
			if err != nil {
				t.Fatalf("ParseFCP: %v", err)
			}
			if !reflect.DeepEqual(back, tt.fcp) {
				t.Errorf("ParseFCP(Bytes()) = %+v\nwant %+v", back, tt.fcp)
			}
			fci, err := tt.fcp.FCIBytes()
			if err != nil || fci[0] != 0x6F || !bytes.Equal(fci[1:], got[1:]) {
				t.Errorf("FCIBytes() = % X, %v", fci, err)
			}
			back, err = iso7816.ParseFCP(fci)
			if err != nil || !reflect.DeepEqual(back, tt.fcp) {
				t.Errorf("ParseFCP(FCIBytes()) = %+v, %v", back, err)
			}
		})
	}
}

func TestParseFCPForms(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want iso7816.FCP
	}{
		{"one-byte size", "62 03 80 01 05", iso7816.FCP{Size: 5}},
		{"four-byte size", "62 06 80 04 01 00 00 00", iso7816.FCP{Size: 1 << 24}},
		{"descriptor with DCB", "62 04 82 02 01 21", iso7816.FCP{FDB: 1, DCB: 0x21}},
		{"descriptor with one-byte record size", "62 05 82 03 02 21 10", iso7816.FCP{FDB: 2, DCB: 0x21, MaxRecordSize: 16}},
		{"descriptor with two-byte record size", "62 06 82 04 02 21 01 00", iso7816.FCP{FDB: 2, DCB: 0x21, MaxRecordSize: 256}},
		{"empty SFI: none supported", "62 02 88 00", iso7816.FCP{}},
		{"SFI in b8-b4", "62 03 88 01 F0", iso7816.FCP{SFI: 30}},
		{"empty DF name", "62 02 84 00", iso7816.FCP{}},
		{"FCI with nested FCP", "6F 0C 84 02 A0 01 62 06 82 01 38 8A 01 05", iso7816.FCP{DFName: []byte{0xA0, 0x01}, FDB: 0x38, LCS: 5}},
		{"proprietary AM bit", "62 04 8C 02 80 AA", iso7816.FCP{Security: &iso7816.CompactSecurity{AM: 0x80, SC: []byte{0xAA}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := iso7816.ParseFCP(unhex(t, tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseFCP = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseFCPErrors(t *testing.T) {
	for _, s := range []string{
		"",
		"62",
		"62 05 83 02 3F 00",             // length beyond the input
		"62 02 83 02 3F 00",             // inner object beyond the template
		"62 04 83 02 3F 00 00",          // byte after the template
		"64 04 83 02 3F 00",             // not an FCP or FCI
		"62 81 04 83 02 3F 00",          // non-minimal length
		"62 08 83 02 3F 00 83 02 3F 01", // repeated tag
		"62 03 83 01 3F",                // FID of one byte
		"62 02 80 00",                   // empty size
		"62 07 80 05 01 02 03 04 05",    // size of five bytes
		"62 02 82 00",                   // empty descriptor
		"62 09 82 07 01 02 03 04 05 06 07",
		"62 04 88 02 08 00",
		"62 02 8A 00",
		"62 02 8C 00",
		"62 03 8C 01 03",       // two AM bits, no SC bytes
		"62 05 8C 03 01 00 00", // one AM bit, two SC bytes
		"62 13 84 11 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10", // DF name of 17 bytes
		"62 04 62 02 80 00", // FCP nested in FCP
		"62 04 1F 81 01 00", // multi-byte tag
	} {
		if f, err := iso7816.ParseFCP(unhex(t, s)); !errors.Is(err, iso7816.ErrMalformedFCP) {
			t.Errorf("ParseFCP(%s) = %+v, %v; want ErrMalformedFCP", s, f, err)
		}
	}
}

func TestFCPBytesErrors(t *testing.T) {
	for _, f := range []iso7816.FCP{
		{Security: &iso7816.CompactSecurity{AM: 0x03, SC: []byte{0}}},
		{Size: -1},
		{MaxRecordSize: 0x10000},
		{NumRecords: 0x10000},
		{SFI: 32},
	} {
		if b, err := f.Bytes(); !errors.Is(err, iso7816.ErrMalformedFCP) {
			t.Errorf("Bytes(%+v) = % X, %v; want ErrMalformedFCP", f, b, err)
		}
	}
}

func TestCompactSecurity(t *testing.T) {
	// AM 0x43: DELETE (b7), UPDATE (b2), READ (b1); SC bytes b7 first.
	s := iso7816.CompactSecurity{AM: 0x43, SC: []byte{0xFF, 0x11, 0x00}}
	for am, want := range map[byte]byte{
		iso7816.AMDelete:     0xFF,
		iso7816.AMUpdate:     0x11,
		iso7816.AMRead:       0x00,
		iso7816.AMWrite:      iso7816.SCAlways,
		iso7816.AMActivate:   iso7816.SCAlways,
		iso7816.AMTerminate:  iso7816.SCAlways,
		iso7816.AMDeactivate: iso7816.SCAlways,
		0x03:                 iso7816.SCAlways, // not one bit
	} {
		if got := s.Condition(am); got != want {
			t.Errorf("Condition(%02X) = %02X, want %02X", am, got, want)
		}
	}
	// Set keeps the order b7..b1 and the other conditions.
	s.Set(iso7816.AMActivate, 0x14)
	if s.AM != 0x53 || !bytes.Equal(s.SC, []byte{0xFF, 0x14, 0x11, 0x00}) {
		t.Errorf("after Set(ACTIVATE) = %02X % X", s.AM, s.SC)
	}
	s.Set(iso7816.AMUpdate, 0x00)
	if s.AM != 0x53 || !bytes.Equal(s.SC, []byte{0xFF, 0x14, 0x00, 0x00}) {
		t.Errorf("after Set(UPDATE) = %02X % X", s.AM, s.SC)
	}
	before := s
	s.Set(0x80, 0x00) // ignored: not an access-mode bit
	s.Set(0x06, 0x00) // ignored: two bits
	if s.AM != before.AM || !bytes.Equal(s.SC, before.SC) {
		t.Errorf("invalid Set changed %02X % X", s.AM, s.SC)
	}
	// Fewer SC bytes than bits: the missing ones read as never.
	short := iso7816.CompactSecurity{AM: 0x03, SC: []byte{0x00}}
	if got := short.Condition(iso7816.AMRead); got != iso7816.SCNever {
		t.Errorf("missing SC byte = %02X, want FF", got)
	}
	if got := iso7816.SCUser(0x81); got != 0x11 {
		t.Errorf("SCUser(81) = %02X", got)
	}
	if got := iso7816.SCUser(0x84); got != 0x14 {
		t.Errorf("SCUser(84) = %02X", got)
	}
}
