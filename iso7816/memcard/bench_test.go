package memcard_test

import (
	"testing"

	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/iso7816/memcard"
)

// BenchmarkTransmitGetChallenge is the in-process floor of one short APDU
// (GET CHALLENGE, Le 8) on the in-memory card, transcript included:
//
//	go test ./iso7816/memcard/ -run XXX -bench .
func BenchmarkTransmitGetChallenge(b *testing.B) {
	card := memcard.New(memcard.Config{})
	cmd, _ := iso7816.GetChallenge(8).Bytes()
	for b.Loop() {
		if resp, err := card.Transmit(cmd); err != nil || len(resp) != 10 {
			b.Fatalf("GET CHALLENGE = %X, %v", resp, err)
		}
	}
}

// BenchmarkExchangeReadBinaryT0 reads a 1000-byte EF through Exchange on a
// card that sends every response through GET RESPONSE (4 READ BINARY and
// their GET RESPONSE loops).
func BenchmarkExchangeReadBinaryT0(b *testing.B) {
	card := memcard.New(memcard.Config{AlwaysGetResponse: true, TranscriptLimit: -1})
	for _, c := range []iso7816.Command{
		must(iso7816.CreateFile(iso7816.FCP{FID: 0x3F00, FDB: iso7816.FDBDF})),
		must(iso7816.CreateFile(iso7816.FCP{FID: 0x2F01, FDB: iso7816.FDBTransparent, Size: 1000})),
	} {
		if _, err := iso7816.Send(card, c); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		n := 0
		for off := 0; off < 1000; off += 256 {
			data, err := iso7816.Send(card, must(iso7816.ReadBinary(off, 256)))
			if err != nil {
				b.Fatal(err)
			}
			n += len(data)
		}
		if n != 1000 {
			b.Fatalf("read %d bytes", n)
		}
	}
}

// BenchmarkTransmitNoTranscript is BenchmarkTransmitGetChallenge without
// the transcript, to see what recording costs.
func BenchmarkTransmitNoTranscript(b *testing.B) {
	card := memcard.New(memcard.Config{TranscriptLimit: -1})
	cmd, _ := iso7816.GetChallenge(8).Bytes()
	for b.Loop() {
		if resp, err := card.Transmit(cmd); err != nil || len(resp) != 10 {
			b.Fatalf("GET CHALLENGE = %X, %v", resp, err)
		}
	}
}
