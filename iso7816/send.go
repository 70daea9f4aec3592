package iso7816

import (
	"fmt"
)

// Instruction bytes used by the transport layer itself.
const (
	claChaining byte = 0x10 // ISO/IEC 7816-4 §5.4.1, b5 of an interindustry CLA
)

// Limits says how large the APDUs a card accepts are. The zero value means
// short APDUs only (255 data bytes out, 256 in).
type Limits struct {
	// MaxNc is the largest data field the card takes in one command; longer
	// data is sent with command chaining. 0 means 255.
	MaxNc int
	// MaxNe is the largest response the card sends in one response; 0 means 256.
	MaxNe int
}

func (l Limits) maxNc() int {
	if l.MaxNc <= 0 {
		return MaxShortNc
	}
	return min(l.MaxNc, MaxExtendedNc)
}

func (l Limits) maxNe() int {
	if l.MaxNe <= 0 {
		return MaxShortNe
	}
	return min(l.MaxNe, MaxExtendedNe)
}

// extended reports whether the card takes extended length fields.
func (l Limits) extended() bool { return l.maxNc() > MaxShortNc || l.maxNe() > MaxShortNe }

// maxGetResponses bounds the GET RESPONSE loop so that a card that answers
// 61xx forever cannot hang the caller.
const maxGetResponses = 1024

// Exchange sends cmd and returns the final response with the whole data
// field: data longer than the card's MaxNc goes out as a command chain
// (ISO/IEC 7816-4 §5.4.1); 61xx is followed by GET RESPONSE until the data
// is complete (§5.3.4); 6Cxx is answered by re-issuing the command with the
// right Le (also during the GET RESPONSE loop). A card whose limits are
// short (MaxNc <= 255 and MaxNe <= 256) never sees an extended Le: an Ne
// above 256 is sent as Le 00, "up to 256", and a card that has more, or
// sends less per response than asked, announces the rest with 61xx. The
// status word is returned, not interpreted: use Response.Err.
func Exchange(card Card, cmd Command, lim Limits) (Response, error) {
	maxNc := lim.maxNc()
	if !lim.extended() {
		cmd.Ne = min(cmd.Ne, MaxShortNe)
	}
	r, err := sendChain(card, cmd, maxNc)
	if err != nil {
		return Response{}, err
	}
	if r.SW1() == 0x6C { // wrong Le: re-issue with Le = SW2 (§5.3.4), the whole chain
		cmd.Ne = shortNe(r.SW2())
		if r, err = sendChain(card, cmd, maxNc); err != nil {
			return Response{}, err
		}
	}
	out := r.Data
	for i := 0; r.SW1() == 0x61; i++ {
		if i == maxGetResponses {
			return Response{}, fmt.Errorf("sending %02X%02X: card kept answering 61xx after %d GET RESPONSE commands", cmd.CLA, cmd.INS, i)
		}
		gr := Command{CLA: cmd.CLA &^ claChaining, INS: InsGetResponse, Ne: shortNe(r.SW2())}
		if r, err = transmit(card, gr); err != nil {
			return Response{}, err
		}
		if r.SW1() == 0x6C { // GET RESPONSE with a wrong Le (§5.3.4)
			gr.Ne = shortNe(r.SW2())
			if r, err = transmit(card, gr); err != nil {
				return Response{}, err
			}
		}
		out = append(out, r.Data...)
	}
	return Response{Data: out, SW: r.SW}, nil
}

// sendChain sends cmd, as a command chain when its data is longer than
// maxNc. A part of the chain answered with anything but 9000 ends it; that
// answer is returned.
func sendChain(card Card, cmd Command, maxNc int) (Response, error) {
	data := cmd.Data
	for len(data) > maxNc {
		part := cmd
		part.CLA |= claChaining
		part.Data = data[:maxNc]
		part.Ne = 0
		r, err := transmit(card, part)
		if err != nil || r.SW != SWOK {
			return r, err
		}
		data = data[maxNc:]
	}
	cmd.Data = data
	return transmit(card, cmd)
}

// Send is Exchange with short APDUs, returning the data field on 9000 and
// a *StatusError or *AuthError otherwise.
func Send(card Card, cmd Command) ([]byte, error) {
	r, err := Exchange(card, cmd, Limits{})
	if err != nil {
		return nil, err
	}
	if err := r.Err(); err != nil {
		return r.Data, err
	}
	return r.Data, nil
}

func transmit(card Card, cmd Command) (Response, error) {
	b, err := cmd.Bytes()
	if err != nil {
		return Response{}, err
	}
	raw, err := card.Transmit(b)
	if err != nil {
		return Response{}, fmt.Errorf("transmitting %02X%02X: %w", cmd.CLA, cmd.INS, err)
	}
	r, err := ParseResponse(raw)
	if err != nil {
		return Response{}, fmt.Errorf("transmitting %02X%02X: %w", cmd.CLA, cmd.INS, err)
	}
	return r, nil
}
