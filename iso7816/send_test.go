package iso7816_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/iso7816/memcard"
)

// script is a fake card that expects a fixed sequence of commands and
// answers each with a fixed response.
type script struct {
	t     *testing.T
	steps []step
	i     int
}

type step struct {
	cmd, resp string // hex; resp "" with err set for a transport error
	err       error
}

func (s *script) Transmit(cmd []byte) ([]byte, error) {
	s.t.Helper()
	if s.i >= len(s.steps) {
		s.t.Fatalf("unexpected command %X after %d steps", cmd, s.i)
	}
	st := s.steps[s.i]
	s.i++
	if want := unhex(s.t, st.cmd); !bytes.Equal(cmd, want) {
		s.t.Fatalf("step %d: command %X, want %X", s.i, cmd, want)
	}
	if st.err != nil {
		return nil, st.err
	}
	return unhex(s.t, st.resp), nil
}

func (s *script) done() {
	s.t.Helper()
	if s.i != len(s.steps) {
		s.t.Errorf("%d of %d steps run", s.i, len(s.steps))
	}
}

func TestExchangeScripted(t *testing.T) {
	tests := []struct {
		name  string
		cmd   iso7816.Command
		lim   iso7816.Limits
		steps []step
		data  string
		sw    uint16
	}{
		{
			name:  "plain",
			cmd:   iso7816.GetChallenge(4),
			steps: []step{{"0084000004", "010203049000", nil}},
			data:  "01020304", sw: 0x9000,
		},
		{
			name: "61xx loop",
			cmd:  iso7816.Command{INS: 0xCA, P1: 0x01, P2: 0x02, Ne: 256},
			steps: []step{
				{"00CA010200", "AABB6103", nil},
				{"00C0000003", "CCDDEE6102", nil},
				{"00C0000002", "FF009000", nil},
			},
			data: "AABBCCDDEEFF00", sw: 0x9000,
		},
		{
			name: "61xx with no data first, 6100 means 256",
			cmd:  iso7816.Command{INS: 0xCA, Ne: 256},
			steps: []step{
				{"00CA000000", "6100", nil},
				{"00C0000000", "01029000", nil},
			},
			data: "0102", sw: 0x9000,
		},
		{
			name: "GET RESPONSE keeps the class minus chaining",
			cmd:  iso7816.Command{CLA: 0x04, INS: 0xCA, Ne: 256},
			steps: []step{
				{"04CA000000", "6101", nil},
				{"04C0000001", "019000", nil},
			},
			data: "01", sw: 0x9000,
		},
		{
			name: "6Cxx re-issue",
			cmd:  iso7816.Command{INS: 0xB2, P1: 1, P2: 4, Ne: 256},
			steps: []step{
				{"00B2010400", "6C05", nil},
				{"00B2010405", "01020304059000", nil},
			},
			data: "0102030405", sw: 0x9000,
		},
		{
			name: "6Cxx then 61xx",
			cmd:  iso7816.Command{INS: 0xB2, P1: 1, P2: 4, Ne: 1},
			steps: []step{
				{"00B2010401", "6C02", nil},
				{"00B2010402", "01026101", nil},
				{"00C0000001", "039000", nil},
			},
			data: "010203", sw: 0x9000,
		},
		{
			name: "6Cxx inside the GET RESPONSE loop",
			cmd:  iso7816.Command{INS: 0xCA, Ne: 256},
			steps: []step{
				{"00CA000000", "016104", nil},
				{"00C0000004", "6C03", nil},
				{"00C0000003", "0203049000", nil},
			},
			data: "01020304", sw: 0x9000,
		},
		{
			name: "error status ends the loop and is returned",
			cmd:  iso7816.Command{INS: 0xCA, Ne: 256},
			steps: []step{
				{"00CA000000", "016101", nil},
				{"00C0000001", "6F00", nil},
			},
			data: "01", sw: 0x6F00,
		},
		{
			name: "Ne above MaxNe is lowered",
			cmd:  iso7816.Command{INS: 0xB0, Ne: 1000},
			steps: []step{
				{"00B0000000", "01029000", nil},
			},
			data: "0102", sw: 0x9000,
		},
		{
			name: "extended card gets the extended Le",
			cmd:  iso7816.Command{INS: 0xB0, Ne: 1000},
			lim:  iso7816.Limits{MaxNc: 65535, MaxNe: 65536},
			steps: []step{
				{"00B000000003E8", "01029000", nil},
			},
			data: "0102", sw: 0x9000,
		},
		{
			name: "command chaining",
			cmd:  iso7816.Command{CLA: 0x00, INS: 0xDB, P1: 0x3F, P2: 0xFF, Data: seq(7), Ne: 256},
			lim:  iso7816.Limits{MaxNc: 3},
			steps: []step{
				{"10DB3FFF03000102", "9000", nil},
				{"10DB3FFF03030405", "9000", nil},
				{"00DB3FFF01060", "", nil}, // replaced below
			},
			data: "AB", sw: 0x9000,
		},
		{
			name: "chain refused",
			cmd:  iso7816.Command{INS: 0xDB, Data: seq(5)},
			lim:  iso7816.Limits{MaxNc: 2},
			steps: []step{
				{"10DB0000020001", "6884", nil},
			},
			sw: 0x6884,
		},
		{
			name: "6Cxx at the end of a chain re-sends the whole chain",
			cmd:  iso7816.Command{INS: 0xA4, P1: 0x08, Data: seq(4), Ne: 2},
			lim:  iso7816.Limits{MaxNc: 2},
			steps: []step{
				{"10A40800020001", "9000", nil},
				{"00A4080002020302", "6C03", nil},
				{"10A40800020001", "9000", nil},
				{"00A4080002020303", "6203019000", nil},
			},
			data: "620301", sw: 0x9000,
		},
		{
			name: "exactly MaxNc is not chained",
			cmd:  iso7816.Command{INS: 0xDB, Data: seq(2)},
			lim:  iso7816.Limits{MaxNc: 2},
			steps: []step{
				{"00DB0000020001", "9000", nil},
			},
			sw: 0x9000,
		},
	}
	// The last part of the chain carries Le.
	tests[10].steps[2] = step{"00DB3FFF010600", "AB9000", nil}
	if tests[10].name != "command chaining" {
		t.Fatal("table order changed")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &script{t: t, steps: tt.steps}
			r, err := iso7816.Exchange(s, tt.cmd, tt.lim)
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			s.done()
			if !bytes.Equal(r.Data, unhex(t, tt.data)) || r.SW != tt.sw {
				t.Errorf("Exchange = %X %04X, want %s %04X", r.Data, r.SW, tt.data, tt.sw)
			}
		})
	}
}

func TestExchangeEndless61xx(t *testing.T) {
	n := 0
	card := iso7816.CardFunc(func([]byte) ([]byte, error) { n++; return []byte{0x00, 0x61, 0x01}, nil })
	_, err := iso7816.Exchange(card, iso7816.GetChallenge(1), iso7816.Limits{})
	if err == nil || !strings.Contains(err.Error(), "61xx") {
		t.Fatalf("Exchange = %v, want an error about 61xx", err)
	}
	if n > 2000 {
		t.Errorf("%d commands sent", n)
	}
}

func TestExchangeTransportErrors(t *testing.T) {
	removed := fmt.Errorf("reader X: %w", iso7816.ErrCardRemoved)
	tests := []struct {
		name  string
		steps []step
		want  error
	}{
		{"first command", []step{{"0084000008", "", removed}}, iso7816.ErrCardRemoved},
		{"inside GET RESPONSE", []step{{"0084000008", "016107", nil}, {"00C0000007", "", removed}}, iso7816.ErrCardRemoved},
		{"short response", []step{{"0084000008", "90", nil}}, iso7816.ErrMalformedAPDU},
		{"empty response", []step{{"0084000008", "", nil}}, iso7816.ErrMalformedAPDU},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &script{t: t, steps: tt.steps}
			_, err := iso7816.Exchange(s, iso7816.GetChallenge(8), iso7816.Limits{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Exchange error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), "transmitting 00") {
				t.Errorf("error %q does not name the command", err)
			}
		})
	}
	// An unencodable command is refused before anything is sent.
	s := &script{t: t}
	if _, err := iso7816.Exchange(s, iso7816.Command{INS: 0xB0, Ne: -1}, iso7816.Limits{}); !errors.Is(err, iso7816.ErrMalformedAPDU) {
		t.Errorf("Exchange(Ne -1) = %v", err)
	}
}

func TestSendErrors(t *testing.T) {
	s := &script{t: t, steps: []step{{"00A4000C023F00", "6A82", nil}}}
	_, err := iso7816.Send(s, iso7816.Command{INS: 0xA4, P2: 0x0C, Data: []byte{0x3F, 0x00}})
	if !errors.Is(err, iso7816.ErrFileNotFound) {
		t.Errorf("Send = %v, want ErrFileNotFound", err)
	}
	s = &script{t: t, steps: []step{{"002000810431323334", "63C1", nil}}}
	_, err = iso7816.Send(s, iso7816.Verify(0x81, []byte("1234")))
	var ae *iso7816.AuthError
	if !errors.As(err, &ae) || ae.Retries != 1 {
		t.Errorf("Send(VERIFY) = %v, want AuthError with 1 retry", err)
	}
	s = &script{t: t, steps: []step{{"00CA005A00", "C0DE9000", nil}}}
	data, err := iso7816.Send(s, iso7816.GetData(iso7816.TagSerialNumber, 256))
	if err != nil || !bytes.Equal(data, []byte{0xC0, 0xDE}) {
		t.Errorf("Send(GET DATA) = %X, %v", data, err)
	}
}

// The same exchanges against the in-memory card, which really splits its
// responses and joins chains.
func TestExchangeMemcard(t *testing.T) {
	content := seq(1000)
	tests := []struct {
		name string
		cfg  memcard.Config
		lim  iso7816.Limits
	}{
		{"T=0 style, every response through 61xx", memcard.Config{AlwaysGetResponse: true}, iso7816.Limits{}},
		{"small MaxNe and MaxNc", memcard.Config{MaxNc: 16, MaxNe: 16}, iso7816.Limits{MaxNc: 16, MaxNe: 16}},
		{"card limit below the caller's", memcard.Config{MaxNc: 16, MaxNe: 16}, iso7816.Limits{MaxNc: 16}},
		{"extended", memcard.Config{Extended: true}, iso7816.Limits{MaxNc: 65535, MaxNe: 65536}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			card := memcard.New(tt.cfg)
			send := func(c iso7816.Command) []byte {
				t.Helper()
				r, err := iso7816.Exchange(card, c, tt.lim)
				if err != nil {
					t.Fatalf("Exchange %02X: %v", c.INS, err)
				}
				if err := r.Err(); err != nil {
					t.Fatalf("Exchange %02X: %v", c.INS, err)
				}
				return r.Data
			}
			mf, _ := iso7816.CreateFile(iso7816.FCP{FID: 0x3F00, FDB: iso7816.FDBDF})
			send(mf)
			ef, _ := iso7816.CreateFile(iso7816.FCP{FID: 0x2F01, FDB: iso7816.FDBTransparent, Size: len(content)})
			send(ef)
			// One UPDATE BINARY with all the data: chained when MaxNc is small.
			up, _ := iso7816.UpdateBinary(0, content)
			if !tt.cfg.Extended {
				up.Data = content[:255]
			}
			send(up)
			if !tt.cfg.Extended {
				for off := 255; off < len(content); off += 255 {
					up, _ := iso7816.UpdateBinary(off, content[off:min(off+255, len(content))])
					send(up)
				}
			}
			// One READ BINARY for the whole file (Le 00 or extended Le).
			rb, _ := iso7816.ReadBinary(0, 65536)
			if !tt.cfg.Extended {
				rb.Ne = 256
			}
			got := send(rb)
			want := content
			if !tt.cfg.Extended {
				want = content[:256]
			}
			if !bytes.Equal(got, want) {
				t.Errorf("READ BINARY: %d bytes, want %d (first %X)", len(got), len(want), head(got))
			}
			// A whole FCP comes back through 61xx when MaxNe is small.
			fcp := send(iso7816.SelectPath(true, 0x2F01))
			p, err := iso7816.ParseFCP(fcp)
			if err != nil || p.FID != 0x2F01 || p.Size != len(content) {
				t.Errorf("SELECT FCP = %X (%+v, %v)", fcp, p, err)
			}
			// A chain sent in MaxNc pieces: CREATE FILE with a long FCP.
			long := iso7816.FCP{FID: 0x2F02, FDB: iso7816.FDBTransparent, Size: 4,
				Extra: []iso7816.TLV{{Tag: 0x85, Value: seq(40)}}}
			send(iso7816.SelectMF())
			cf, _ := iso7816.CreateFile(long)
			send(cf)
			send(iso7816.SelectPath(true, 0x2F02))
			ch := send(iso7816.GetChallenge(256))
			if len(ch) != 256 {
				t.Errorf("GET CHALLENGE 256: %d bytes", len(ch))
			}
		})
	}
}

func TestExchangeMemcardNoChaining(t *testing.T) {
	card := memcard.New(memcard.Config{MaxNc: 8, NoChaining: true})
	r, err := iso7816.Exchange(card, iso7816.Command{INS: 0xE0, Data: seq(20)}, iso7816.Limits{MaxNc: 8})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(r.Err(), iso7816.ErrChaining) {
		t.Errorf("chain to a card without chaining: %04X, want 6884", r.SW)
	}
	// Without chaining a long command is refused with 6700.
	r, err = iso7816.Exchange(card, iso7816.Command{INS: 0xE0, Data: seq(20)}, iso7816.Limits{MaxNc: 255})
	if err != nil || r.SW != 0x6700 {
		t.Errorf("20 bytes to a MaxNc 8 card: %04X, %v; want 6700", r.SW, err)
	}
}

// A SELECT by path sent as a chain with a short Le: the card answers 6Cxx
// to the last part, and the whole chain must go again.
func TestExchangeMemcardChainWrongLe(t *testing.T) {
	card := memcard.New(memcard.Config{MaxNc: 2})
	for _, f := range []iso7816.FCP{
		{FID: 0x3F00, FDB: iso7816.FDBDF},
		{FID: 0x5000, FDB: iso7816.FDBDF},
		{FID: 0x5001, FDB: iso7816.FDBTransparent, Size: 3},
	} {
		c, _ := iso7816.CreateFile(f)
		if _, err := iso7816.Exchange(card, c, card.Limits()); err != nil {
			t.Fatal(err)
		}
	}
	sel := iso7816.SelectPath(true, 0x5000, 0x5001)
	sel.Ne = 2
	r, err := iso7816.Exchange(card, sel, card.Limits())
	if err != nil || r.SW != 0x9000 {
		t.Fatalf("SELECT by path in a chain with Le 2: %X %04X, %v", r.Data, r.SW, err)
	}
	p, err := iso7816.ParseFCP(r.Data)
	if err != nil || p.FID != 0x5001 {
		t.Errorf("selected %+v, %v; want 5001", p, err)
	}
}
