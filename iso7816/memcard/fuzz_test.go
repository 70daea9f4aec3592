package memcard_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/iso7816/memcard"
)

// FuzzTransmit runs a sequence of arbitrary APDUs on a personalised,
// operational card. The input is split into commands by a length byte
// before each. The card must answer every command with at least a status
// word, never more than it may send, never panic, keep the "never" file
// unchanged and never record the PIN in its transcript.
func FuzzTransmit(f *testing.F) {
	frame := func(cmds ...iso7816.Command) []byte {
		var out []byte
		for _, c := range cmds {
			b, err := c.Bytes()
			if err != nil {
				f.Fatal(err)
			}
			out = append(out, byte(len(b)))
			out = append(out, b...)
		}
		return out
	}
	f.Add(frame(iso7816.SelectMF(), iso7816.Verify(0x81, pin), must(iso7816.ReadBinarySFI(2, 0, 8))))
	f.Add(frame(iso7816.SelectFID(0x2F02), must(iso7816.UpdateBinary(0, []byte{1})), iso7816.DeleteFile(0)))
	f.Add(frame(iso7816.Verify(0x82, puk), iso7816.DeleteFile(iso7816.MFID), iso7816.SelectMF()))
	f.Add(frame(iso7816.ResetRetryCounter(0x81, puk, pin2), iso7816.ChangeReferenceData(0x81, pin2, pin)))
	f.Add(frame(iso7816.Command{CLA: 0x10, INS: 0xE0, Data: []byte{0x62, 0x03}}, iso7816.Command{INS: 0xE0, Data: []byte{0x83, 0x01, 0x01}}))
	f.Add(frame(iso7816.GetChallenge(256), iso7816.GetResponse(0), iso7816.TerminateDF(0)))
	f.Fuzz(func(t *testing.T, in []byte) {
		c := personalised(t)
		c.card.ClearTranscript()
		for len(in) > 0 {
			n := min(int(in[0]), len(in)-1)
			raw := in[1 : 1+n]
			in = in[1+n:]
			resp, err := c.card.Transmit(raw)
			if err != nil {
				t.Fatalf("Transmit(%X): %v", raw, err)
			}
			if len(resp) < 2 || len(resp) > 256+2 {
				t.Fatalf("Transmit(%X) = %d bytes", raw, len(resp))
			}
		}
		// Whatever a credential command carried after its header is masked.
		for _, e := range c.card.Transcript() {
			if len(e.Command) > 4 && memcard.DefaultMask(iso7816.Command{INS: e.Command[1], P1: e.Command[2]}) &&
				bytes.Contains(e.Command[4:], pin) {
				t.Fatalf("transcript shows the PIN: %s", e)
			}
			if strings.Contains(e.String(), fmt.Sprintf("%X", pin)) && e.Masked {
				t.Fatalf("masked entry shows the PIN: %s", e)
			}
		}
		// The never-updatable EF keeps its content (unless the card was
		// erased or the file deleted, which its rules forbid).
		d := &tcard{t: t, card: c.card}
		d.card.Reset()
		_, s := d.run(must(iso7816.ReadBinarySFI(2, 0, 8)))
		if s == iso7816.SWOK || s == iso7816.SWSecurityStatus {
			d.run(iso7816.Verify(0x81, pin))
			data, s := d.run(must(iso7816.ReadBinarySFI(2, 0, 8)))
			if s == iso7816.SWOK && !bytes.Equal(data, []byte("private!")) {
				t.Fatalf("the never-updatable EF now holds %q", data)
			}
		}
	})
}
