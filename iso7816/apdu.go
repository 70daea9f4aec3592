package iso7816

import (
	"errors"
	"fmt"
)

// Limits of the two APDU encodings (ISO/IEC 7816-4 §5.1).
const (
	MaxShortNc    = 255   // Lc in one byte
	MaxShortNe    = 256   // Le 00 means 256
	MaxExtendedNc = 65535 // Lc in two bytes after a 00 marker
	MaxExtendedNe = 65536 // Le 00 00 means 65536
)

// Command is a command APDU. Ne is the maximum number of response bytes
// expected: 0 means no Le field; 256 (short) or 65536 (extended) mean
// "as many as available".
type Command struct {
	CLA, INS, P1, P2 byte
	Data             []byte
	Ne               int
}

// ErrMalformedAPDU is returned (wrapped) for byte strings that are not a
// valid APDU encoding.
var ErrMalformedAPDU = errors.New("malformed APDU")

// Extended reports whether c needs the extended length encoding.
func (c Command) Extended() bool {
	return len(c.Data) > MaxShortNc || c.Ne > MaxShortNe
}

// Bytes encodes c in the short form when it fits, else the extended form
// (ISO/IEC 7816-4 §5.1, cases 1 to 4).
func (c Command) Bytes() ([]byte, error) {
	nc := len(c.Data)
	if nc > MaxExtendedNc {
		return nil, fmt.Errorf("encoding %02X%02X: %d data bytes exceed the extended limit of %d: %w", c.CLA, c.INS, nc, MaxExtendedNc, ErrMalformedAPDU)
	}
	if c.Ne < 0 || c.Ne > MaxExtendedNe {
		return nil, fmt.Errorf("encoding %02X%02X: Ne %d out of range 0..%d: %w", c.CLA, c.INS, c.Ne, MaxExtendedNe, ErrMalformedAPDU)
	}
	out := make([]byte, 0, 4+3+nc+3)
	out = append(out, c.CLA, c.INS, c.P1, c.P2)
	if !c.Extended() {
		if nc > 0 {
			out = append(out, byte(nc))
			out = append(out, c.Data...)
		}
		if c.Ne > 0 {
			out = append(out, byte(c.Ne)) // 256 encodes as 00
		}
		return out, nil
	}
	if nc > 0 {
		out = append(out, 0, byte(nc>>8), byte(nc))
		out = append(out, c.Data...)
	}
	if c.Ne > 0 {
		if nc == 0 {
			out = append(out, 0) // case 2E: the marker byte precedes Le
		}
		out = append(out, byte(c.Ne>>8), byte(c.Ne)) // 65536 encodes as 00 00
	}
	return out, nil
}

// ParseCommand decodes a command APDU in short or extended form.
func ParseCommand(b []byte) (Command, error) {
	if len(b) < 4 {
		return Command{}, fmt.Errorf("parsing command: %d bytes, need at least 4: %w", len(b), ErrMalformedAPDU)
	}
	c := Command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3]}
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
		return c, nil
	case len(body) == 1: // case 2S
		c.Ne = shortNe(body[0])
		return c, nil
	case body[0] != 0: // case 3S or 4S
		nc := int(body[0])
		switch len(body) {
		case 1 + nc:
		case 2 + nc:
			c.Ne = shortNe(body[1+nc])
		default:
			return Command{}, fmt.Errorf("parsing command: Lc %d does not match %d body bytes: %w", nc, len(body), ErrMalformedAPDU)
		}
		c.Data = append([]byte(nil), body[1:1+nc]...)
		return c, nil
	case len(body) == 3: // case 2E
		c.Ne = extendedNe(body[1], body[2])
		return c, nil
	case len(body) > 3: // case 3E or 4E
		nc := int(body[1])<<8 | int(body[2])
		if nc == 0 {
			return Command{}, fmt.Errorf("parsing command: extended Lc of zero: %w", ErrMalformedAPDU)
		}
		switch len(body) {
		case 3 + nc:
		case 5 + nc:
			c.Ne = extendedNe(body[3+nc], body[4+nc])
		default:
			return Command{}, fmt.Errorf("parsing command: extended Lc %d does not match %d body bytes: %w", nc, len(body), ErrMalformedAPDU)
		}
		c.Data = append([]byte(nil), body[3:3+nc]...)
		return c, nil
	default:
		return Command{}, fmt.Errorf("parsing command: %d body bytes after a 00 marker: %w", len(body), ErrMalformedAPDU)
	}
}

func shortNe(b byte) int {
	if b == 0 {
		return MaxShortNe
	}
	return int(b)
}

func extendedNe(hi, lo byte) int {
	n := int(hi)<<8 | int(lo)
	if n == 0 {
		return MaxExtendedNe
	}
	return n
}

// Response is a response APDU: the data field and the status word.
type Response struct {
	Data []byte
	SW   uint16
}

// ParseResponse splits a raw response into data and SW1 SW2.
func ParseResponse(b []byte) (Response, error) {
	if len(b) < 2 {
		return Response{}, fmt.Errorf("parsing response: %d bytes, need at least 2: %w", len(b), ErrMalformedAPDU)
	}
	n := len(b) - 2
	return Response{Data: b[:n:n], SW: uint16(b[n])<<8 | uint16(b[n+1])}, nil
}

// Bytes encodes r as data followed by SW1 SW2.
func (r Response) Bytes() []byte {
	out := make([]byte, 0, len(r.Data)+2)
	out = append(out, r.Data...)
	return append(out, byte(r.SW>>8), byte(r.SW))
}

// SW1 and SW2 return the two status bytes.
func (r Response) SW1() byte { return byte(r.SW >> 8) }
func (r Response) SW2() byte { return byte(r.SW) }

// OK reports whether the status word is 9000.
func (r Response) OK() bool { return r.SW == SWOK }

// Err returns nil for 9000 (and 62xx/63xx warnings other than 63Cx are
// returned as errors too, so callers see them) and a *StatusError otherwise.
func (r Response) Err() error {
	if r.SW == SWOK {
		return nil
	}
	return StatusErr(r.SW)
}
