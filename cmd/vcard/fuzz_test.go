package main

import (
	"bytes"
	"testing"

	"github.com/cardwright/cardwright/iso7816/memcard"
)

// FuzzFrames feeds a byte stream to the vpcd framing and the card behind
// it, as pcscd's driver would: reading never panics, every answer fits one
// vpcd frame, and a frame written reads back unchanged.
func FuzzFrames(f *testing.F) {
	f.Add([]byte{0x00, 0x01, ctlPowerOn, 0x00, 0x01, ctlATR, 0x00, 0x05, 0x00, 0x84, 0x00, 0x00, 0x08})
	f.Add([]byte{0x00, 0x07, 0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00})
	f.Add([]byte{0xFF, 0xFF, 0x00})
	f.Add([]byte{0x00})
	f.Fuzz(func(t *testing.T, stream []byte) {
		card := memcard.New(memcard.Config{})
		r := bytes.NewReader(stream)
		for {
			msg, err := readFrame(r, nil)
			if err != nil {
				return
			}
			resp := answer(card, msg)
			var b bytes.Buffer
			if err := writeFrame(&b, resp); err != nil {
				t.Fatalf("answer to % X does not fit a frame: %v", msg, err)
			}
			back, err := readFrame(&b, nil)
			if err != nil || !bytes.Equal(back, resp) || (resp == nil && len(back) != 0) {
				t.Fatalf("frame round trip: % X → % X, %v", resp, back, err)
			}
		}
	})
}
