package iso7816

import (
	"errors"
	"fmt"
	"slices"
)

// ErrMalformedATR is returned (wrapped) for bytes that are not an answer to
// reset as ISO/IEC 7816-3 §8.2 lays it out.
var ErrMalformedATR = errors.New("malformed ATR")

// ATR is a decoded answer to reset (ISO/IEC 7816-3 §8.2): the protocols the
// card offers and its historical bytes (ISO/IEC 7816-4 §8.1.1).
type ATR struct {
	Raw        []byte
	Protocols  []int  // T values named in TD1, TD2, … (T=15 left out), in order without repeats; [0] when none is named
	Historical []byte // the K historical bytes
}

// ParseATR decodes an ATR: TS, T0, the interface bytes chained by TDi, K
// historical bytes and, when a protocol other than T=0 is named, the check
// byte TCK, which must make the XOR of T0..TCK zero.
func ParseATR(b []byte) (ATR, error) {
	bad := func(format string, args ...any) (ATR, error) {
		return ATR{}, fmt.Errorf("parsing ATR %X: %s: %w", b, fmt.Sprintf(format, args...), ErrMalformedATR)
	}
	if len(b) < 2 {
		return bad("%d bytes, need at least TS and T0", len(b))
	}
	if b[0] != 0x3B && b[0] != 0x3F {
		return bad("TS %02X is neither 3B (direct) nor 3F (inverse convention)", b[0])
	}
	a := ATR{Raw: slices.Clone(b)}
	k := int(b[1] & 0x0F)
	y := b[1] >> 4
	i := 2
	needTCK := false
	for y != 0 {
		n := 0
		for bit := byte(1); bit <= 8; bit <<= 1 {
			if y&bit != 0 {
				n++
			}
		}
		if i+n > len(b) {
			return bad("interface bytes run past the end")
		}
		if y&0x08 == 0 { // no TDi: the chain ends
			i += n
			break
		}
		td := b[i+n-1]
		i += n
		t := int(td & 0x0F)
		if t != 0 {
			needTCK = true
		}
		if t != 15 && !slices.Contains(a.Protocols, t) { // T=15: global interface bytes, not a protocol
			a.Protocols = append(a.Protocols, t)
		}
		y = td >> 4
	}
	if len(a.Protocols) == 0 {
		a.Protocols = []int{0}
	}
	if i+k > len(b) {
		return bad("%d historical bytes announced, %d left", k, len(b)-i)
	}
	a.Historical = slices.Clone(b[i : i+k])
	i += k
	switch {
	case needTCK && i == len(b)-1:
		var x byte
		for _, c := range b[1:] {
			x ^= c
		}
		if x != 0 {
			return bad("check byte TCK %02X does not match", b[i])
		}
	case needTCK:
		return bad("%d bytes after the historical bytes, want TCK alone", len(b)-i)
	case i != len(b):
		return bad("%d bytes after the historical bytes", len(b)-i)
	}
	return a, nil
}

// TrimATR cuts zero bytes that follow a well-formed ATR: some reader
// drivers (vpcd, seen with pcsc-lite 2) report the ATR buffer's full size
// in SCardStatus after a card change, so the same card's ATR would come
// back with trailing zeros and look like another card. Anything else —
// an ATR that does not parse, or non-zero bytes after it — is returned as
// it is.
func TrimATR(b []byte) []byte {
	for n := len(b) - 1; n >= 2 && b[n] == 0; n-- {
		if _, err := ParseATR(b[:n]); err == nil {
			return b[:n]
		}
	}
	return b
}

// Capabilities is the card capabilities data object of the historical
// bytes (compact-TLV tag 7, ISO/IEC 7816-4 §8.1.1.2.7): three bytes,
// selection methods, data coding, and the command chaining and length
// field capabilities.
type Capabilities struct {
	SelectionMethods byte
	DataCoding       byte
	Chaining         bool // third byte b8: command chaining
	ExtendedLength   bool // third byte b7: extended Lc and Le fields
}

// Capabilities returns the card capabilities announced in the historical
// bytes, and false when the ATR has none (or only one or two of the three
// bytes, which say nothing about chaining and lengths).
func (a ATR) Capabilities() (Capabilities, bool) {
	h := a.Historical
	if len(h) == 0 {
		return Capabilities{}, false
	}
	var objs []byte
	switch h[0] {
	case 0x80: // compact-TLV data objects, status indicator optional among them
		objs = h[1:]
	case 0x00: // compact-TLV data objects, then a 3-byte status indicator
		if len(h) < 4 {
			return Capabilities{}, false
		}
		objs = h[1 : len(h)-3]
	default:
		return Capabilities{}, false
	}
	for len(objs) > 0 {
		tag, n := objs[0]>>4, int(objs[0]&0x0F)
		if 1+n > len(objs) {
			return Capabilities{}, false
		}
		v := objs[1 : 1+n]
		if tag == 0x7 && n == 3 {
			return Capabilities{
				SelectionMethods: v[0],
				DataCoding:       v[1],
				Chaining:         v[2]&0x80 != 0,
				ExtendedLength:   v[2]&0x40 != 0,
			}, true
		}
		objs = objs[1+n:]
	}
	return Capabilities{}, false
}
