package iso7816

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// ErrMalformedFCP is returned (wrapped) for bytes that are not a File
// Control Parameters template this package can read.
var ErrMalformedFCP = errors.New("malformed FCP")

// Templates and tags of file control information (ISO/IEC 7816-4 §7.4.1,
// tables 10 and 12).
const (
	TagFCP           byte = 0x62 // FCP template
	TagFCI           byte = 0x6F // FCI template
	TagFileSize      byte = 0x80 // number of data bytes in the file
	TagTotalSize     byte = 0x81 // number of bytes in the file, structure included
	TagFileDesc      byte = 0x82 // file descriptor byte, data coding byte, record size, records
	TagFID           byte = 0x83
	TagDFName        byte = 0x84
	TagSFI           byte = 0x88
	TagLCS           byte = 0x8A
	TagSecCompact    byte = 0x8C // security attributes, compact format (§7.5.3)
	tagProprietaryA5 byte = 0xA5
)

// File descriptor bytes (ISO/IEC 7816-4 §7.4.5, table 14). Bit b7 (0x40)
// marks a shareable file and is kept as given.
const (
	FDBTransparent    byte = 0x01 // working EF, transparent structure
	FDBLinearFixed    byte = 0x02 // working EF, linear structure, records of fixed size
	FDBLinearVariable byte = 0x04
	FDBCyclic         byte = 0x06
	FDBDF             byte = 0x38
	FDBShareable      byte = 0x40
)

// Life cycle status bytes (ISO/IEC 7816-4 §7.4.10, table 15).
const (
	LCSNone                   byte = 0x00
	LCSCreation               byte = 0x01
	LCSInitialization         byte = 0x03
	LCSOperationalDeactivated byte = 0x04
	LCSOperationalActivated   byte = 0x05
	LCSTerminated             byte = 0x0C // 0C to 0F
)

// Access-mode bits of the compact security attributes (ISO/IEC 7816-4
// §7.5.3, tables 17 and 18). b1 to b3 mean different things for EFs and DFs.
const (
	AMRead        byte = 0x01 // EF: READ BINARY/RECORD
	AMUpdate      byte = 0x02 // EF: UPDATE BINARY/RECORD
	AMWrite       byte = 0x04 // EF: WRITE BINARY/RECORD, APPEND RECORD
	AMDeleteChild byte = 0x01 // DF: DELETE FILE of a child
	AMCreateEF    byte = 0x02 // DF: CREATE FILE of an EF
	AMCreateDF    byte = 0x04 // DF: CREATE FILE of a DF
	AMDeactivate  byte = 0x08 // DEACTIVATE FILE
	AMActivate    byte = 0x10 // ACTIVATE FILE
	AMTerminate   byte = 0x20 // TERMINATE DF/EF (and CARD USAGE on the MF)
	AMDelete      byte = 0x40 // DELETE FILE (self)
)

// Security condition bytes of the compact format (ISO/IEC 7816-4 §7.5.3,
// table 19).
const (
	SCAlways byte = 0x00
	SCNever  byte = 0xFF
	scUser   byte = 0x10 // b5: user authentication; b4-b1 the SE number
)

// SCUser returns the security condition "user authentication with the
// credential of reference 0x80|n verified", n = ref & 0x0F, e.g. 0x11 for
// PIN reference 0x81.
func SCUser(ref byte) byte { return scUser | ref&0x0F }

// CompactSecurity is the compact format of tag 8C: an access-mode byte and
// one security-condition byte per bit set in b7..b1, highest bit first.
type CompactSecurity struct {
	AM byte
	SC []byte
}

// Condition returns the security condition for one access-mode bit; an
// access mode with its bit clear is always allowed.
func (s CompactSecurity) Condition(am byte) byte {
	if s.AM&am == 0 || bits.OnesCount8(am) != 1 {
		return SCAlways
	}
	// SC bytes run from b7 down: count the set bits above am.
	i := bits.OnesCount8(s.AM & 0x7F &^ (am<<1 - 1))
	if i >= len(s.SC) {
		return SCNever
	}
	return s.SC[i]
}

// Set sets the condition of one access mode (am must have exactly one bit in
// b7..b1 set).
func (s *CompactSecurity) Set(am, sc byte) {
	if bits.OnesCount8(am) != 1 || am&0x80 != 0 {
		return
	}
	var all [7]byte
	for bit := byte(0x40); bit != 0; bit >>= 1 {
		all[bits.TrailingZeros8(bit)] = s.Condition(bit)
	}
	had := s.AM
	all[bits.TrailingZeros8(am)] = sc
	s.AM = had | am
	s.SC = s.SC[:0:0]
	for bit := byte(0x40); bit != 0; bit >>= 1 {
		if s.AM&bit != 0 {
			s.SC = append(s.SC, all[bits.TrailingZeros8(bit)])
		}
	}
}

func (s CompactSecurity) valid() bool {
	return s.AM&0x80 != 0 || bits.OnesCount8(s.AM) == len(s.SC)
}

// FCP is a decoded File Control Parameters template (ISO/IEC 7816-4 §7.4).
// A zero field means the tag is absent (or, equivalently for this
// package, zero); ParseFCP(f.Bytes()) gives back f.
type FCP struct {
	Size      int // tag 80: data bytes (transparent EF)
	TotalSize int // tag 81

	// Tag 82 (§7.4.5): FDB, data coding byte, maximum record size (two
	// bytes) and number of records (one or two bytes).
	FDB, DCB      byte
	MaxRecordSize int
	NumRecords    int

	FID    uint16 // tag 83
	DFName []byte // tag 84, the AID of an application DF
	SFI    byte   // tag 88 (1..30; 0 none). Encoded in b8-b4 as ISO requires.
	LCS    byte   // tag 8A

	Security *CompactSecurity // tag 8C

	// Other tags, kept in order, values undecoded.
	Extra []TLV
}

// TLV is one undecoded BER-TLV data object with a one-byte tag.
type TLV struct {
	Tag   byte
	Value []byte
}

// IsDF reports whether the descriptor says dedicated file.
func (f *FCP) IsDF() bool { return f.FDB&^FDBShareable == FDBDF }

// Bytes encodes f as a 62 template with minimal DER lengths.
func (f *FCP) Bytes() ([]byte, error) {
	return f.marshal(TagFCP)
}

// FCIBytes encodes f as a 6F (FCI) template holding the same data objects.
func (f *FCP) FCIBytes() ([]byte, error) {
	return f.marshal(TagFCI)
}

func (f *FCP) marshal(template byte) ([]byte, error) {
	if f.Security != nil && !f.Security.valid() {
		return nil, fmt.Errorf("encoding FCP: access mode %02X needs %d condition bytes, have %d: %w",
			f.Security.AM, bits.OnesCount8(f.Security.AM), len(f.Security.SC), ErrMalformedFCP)
	}
	if f.Size < 0 || f.TotalSize < 0 || f.MaxRecordSize < 0 || f.MaxRecordSize > 0xFFFF ||
		f.NumRecords < 0 || f.NumRecords > 0xFFFF || f.SFI > 31 {
		return nil, fmt.Errorf("encoding FCP: field out of range: %w", ErrMalformedFCP)
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(asn1.Tag(template), func(b *cryptobyte.Builder) {
		if f.Size > 0 {
			addSize(b, TagFileSize, f.Size)
		}
		if f.TotalSize > 0 {
			addSize(b, TagTotalSize, f.TotalSize)
		}
		if f.FDB != 0 || f.DCB != 0 || f.MaxRecordSize != 0 || f.NumRecords != 0 {
			b.AddASN1(asn1.Tag(TagFileDesc), func(b *cryptobyte.Builder) {
				b.AddUint8(f.FDB)
				if f.DCB == 0 && f.MaxRecordSize == 0 && f.NumRecords == 0 {
					return
				}
				b.AddUint8(f.DCB)
				if f.MaxRecordSize == 0 && f.NumRecords == 0 {
					return
				}
				b.AddUint16(uint16(f.MaxRecordSize))
				switch {
				case f.NumRecords > 0xFF:
					b.AddUint16(uint16(f.NumRecords))
				case f.NumRecords > 0:
					b.AddUint8(uint8(f.NumRecords))
				}
			})
		}
		if f.FID != 0 {
			b.AddASN1(asn1.Tag(TagFID), func(b *cryptobyte.Builder) { b.AddUint16(f.FID) })
		}
		if len(f.DFName) > 0 {
			b.AddASN1(asn1.Tag(TagDFName), func(b *cryptobyte.Builder) { b.AddBytes(f.DFName) })
		}
		if f.SFI != 0 {
			b.AddASN1(asn1.Tag(TagSFI), func(b *cryptobyte.Builder) { b.AddUint8(f.SFI << 3) })
		}
		if f.LCS != 0 {
			b.AddASN1(asn1.Tag(TagLCS), func(b *cryptobyte.Builder) { b.AddUint8(f.LCS) })
		}
		if f.Security != nil {
			b.AddASN1(asn1.Tag(TagSecCompact), func(b *cryptobyte.Builder) {
				b.AddUint8(f.Security.AM)
				b.AddBytes(f.Security.SC)
			})
		}
		for _, t := range f.Extra {
			b.AddASN1(asn1.Tag(t.Tag), func(b *cryptobyte.Builder) { b.AddBytes(t.Value) })
		}
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("encoding FCP: %w: %w", ErrMalformedFCP, err)
	}
	return out, nil
}

// addSize writes a size in two bytes, or more when it does not fit.
func addSize(b *cryptobyte.Builder, tag byte, n int) {
	b.AddASN1(asn1.Tag(tag), func(b *cryptobyte.Builder) {
		switch {
		case n <= 0xFFFF:
			b.AddUint16(uint16(n))
		case n <= 0xFFFFFF:
			b.AddUint24(uint32(n))
		default:
			b.AddUint32(uint32(n))
		}
	})
}

// ParseFCP decodes an FCP template (62) or an FCI template (6F) whose data
// objects are those of an FCP (an FCP nested in the FCI is read too). The
// template must fill b exactly; lengths must be in minimal (DER) form, tags
// one byte. Repeated tags are an error.
func ParseFCP(b []byte) (FCP, error) {
	var f FCP
	in := cryptobyte.String(b)
	var body cryptobyte.String
	var tag asn1.Tag
	if !in.ReadAnyASN1(&body, &tag) {
		return f, fmt.Errorf("parsing FCP: bad template header or length: %w", ErrMalformedFCP)
	}
	if byte(tag) != TagFCP && byte(tag) != TagFCI {
		return f, fmt.Errorf("parsing FCP: template tag %02X, want 62 or 6F: %w", byte(tag), ErrMalformedFCP)
	}
	if !in.Empty() {
		return f, fmt.Errorf("parsing FCP: %d bytes after the template: %w", len(in), ErrMalformedFCP)
	}
	seen := map[byte]bool{}
	if err := f.parseObjects(body, byte(tag), seen); err != nil {
		return FCP{}, err
	}
	return f, nil
}

func (f *FCP) parseObjects(body cryptobyte.String, template byte, seen map[byte]bool) error {
	for off := 0; !body.Empty(); {
		var v cryptobyte.String
		var t asn1.Tag
		before := len(body)
		if !body.ReadAnyASN1(&v, &t) {
			return fmt.Errorf("parsing FCP: bad data object at offset %d: %w", off, ErrMalformedFCP)
		}
		tag := byte(t)
		if seen[tag] {
			return fmt.Errorf("parsing FCP: tag %02X repeated: %w", tag, ErrMalformedFCP)
		}
		seen[tag] = true
		if err := f.parseObject(tag, v, template, seen); err != nil {
			return fmt.Errorf("parsing FCP: tag %02X at offset %d: %w", tag, off, err)
		}
		off += before - len(body)
	}
	return nil
}

func (f *FCP) parseObject(tag byte, v cryptobyte.String, template byte, seen map[byte]bool) error {
	bad := func(what string) error { return fmt.Errorf("%s (%d bytes): %w", what, len(v), ErrMalformedFCP) }
	switch tag {
	case TagFileSize, TagTotalSize:
		if len(v) < 1 || len(v) > 4 {
			return bad("size of 1 to 4 bytes expected")
		}
		n := 0
		for _, c := range v {
			n = n<<8 | int(c)
		}
		if tag == TagFileSize {
			f.Size = n
		} else {
			f.TotalSize = n
		}
	case TagFileDesc:
		switch len(v) {
		case 1, 2, 3, 4, 5, 6:
		default:
			return bad("file descriptor of 1 to 6 bytes expected")
		}
		f.FDB = v[0]
		if len(v) >= 2 {
			f.DCB = v[1]
		}
		switch len(v) {
		case 3:
			f.MaxRecordSize = int(v[2])
		case 4, 5, 6:
			f.MaxRecordSize = int(v[2])<<8 | int(v[3])
		}
		switch len(v) {
		case 5:
			f.NumRecords = int(v[4])
		case 6:
			f.NumRecords = int(v[4])<<8 | int(v[5])
		}
	case TagFID:
		if len(v) != 2 {
			return bad("file identifier of 2 bytes expected")
		}
		f.FID = uint16(v[0])<<8 | uint16(v[1])
	case TagDFName:
		if len(v) > 16 {
			return bad("DF name of at most 16 bytes expected")
		}
		f.DFName = slices.Clone([]byte(v))
		if len(v) == 0 {
			f.DFName = nil
		}
	case TagSFI:
		switch len(v) {
		case 0: // no SFI supported
		case 1:
			f.SFI = v[0] >> 3
		default:
			return bad("SFI of 0 or 1 byte expected")
		}
	case TagLCS:
		if len(v) != 1 {
			return bad("life cycle status of 1 byte expected")
		}
		f.LCS = v[0]
	case TagSecCompact:
		if len(v) < 1 {
			return bad("access-mode byte expected")
		}
		s := &CompactSecurity{AM: v[0], SC: slices.Clone([]byte(v[1:]))}
		if !s.valid() {
			return fmt.Errorf("access mode %02X needs %d condition bytes, have %d: %w",
				s.AM, bits.OnesCount8(s.AM), len(s.SC), ErrMalformedFCP)
		}
		f.Security = s
	case TagFCP:
		if template != TagFCI {
			return bad("FCP template nested in an FCP")
		}
		return f.parseObjects(v, TagFCP, seen)
	default:
		f.Extra = append(f.Extra, TLV{Tag: tag, Value: slices.Clone([]byte(v))})
	}
	return nil
}
