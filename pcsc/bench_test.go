package pcsc_test

// Benchmarks against the real stack (scripts/teststack), the floor every
// later figure is compared with:
//
//	go test ./pcsc/ -run XXX -bench . -benchtime 200x
//
// BenchmarkInsertionEvent* take about half a second per iteration; run them
// with -benchtime 10x.

import (
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/pcsc"
)

// benchTransmit times one short APDU (GET CHALLENGE, Le 8) through pcscd to
// the card in the reader named by key.
func benchTransmit(b *testing.B, key string) {
	s := stacktest.Require(b)
	c := open(b)
	k := connect(b, c, s.Get(b, key), pcsc.Shared)
	cmd, err := getChallenge.Bytes()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		resp, err := k.Transmit(cmd)
		if err != nil {
			b.Fatal(err)
		}
		if r, err := iso7816.ParseResponse(resp); err != nil || !r.OK() || len(r.Data) != 8 {
			b.Fatalf("GET CHALLENGE = %X, %v", resp, err)
		}
	}
}

func BenchmarkGetChallengeOwnCard(b *testing.B) { benchTransmit(b, "READER_OWN_1") }
func BenchmarkGetChallengeVICC(b *testing.B)    { benchTransmit(b, "READER_VICC_1") }

// benchInsertion times card insertion to the CardInserted event reaching a
// Watch subscriber: the card emulator is killed, its removal awaited, then
// it is started again (bash, process start-up and the vpcd handshake
// included) and the clock stops when the event arrives.
func benchInsertion(b *testing.B, key string) {
	s := stacktest.Require(b)
	c := open(b)
	reader := s.Get(b, key)
	ev, _ := watch(b, c)
	if _, ok := ev.next(pcsc.CardInserted, reader, 5*time.Second); !ok {
		b.Fatalf("no card in %q", reader)
	}
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s.StopCard(b, reader)
		if _, ok := ev.next(pcsc.CardRemoved, reader, 5*time.Second); !ok {
			b.Fatalf("removal from %q not seen", reader)
		}
		b.StartTimer()
		start := time.Now()
		s.StartCardNoWait(b, reader)
		e, ok := ev.next(pcsc.CardInserted, reader, 10*time.Second)
		if !ok {
			b.Fatalf("insertion into %q not seen", reader)
		}
		total += e.Time.Sub(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/insertion")
}

func BenchmarkInsertionEventOwnCard(b *testing.B) { benchInsertion(b, "READER_OWN_2") }
func BenchmarkInsertionEventVICC(b *testing.B)    { benchInsertion(b, "READER_VICC_2") }

// BenchmarkInsertionEventOwnCardDirect starts bin/vcard itself instead of
// through scripts/teststack, so the figure holds only the process start,
// the vpcd handshake, pcscd's detection and the event delivery. pcscd finds
// a card in a vpcd reader by polling every 400 ms (the driver has no event
// of its own), so the figure is about 200 ms on average and at most ~400.
func BenchmarkInsertionEventOwnCardDirect(b *testing.B) {
	s := stacktest.Require(b)
	c := open(b)
	reader := s.Get(b, "READER_OWN_2")
	port := s.Get(b, "PORT_OWN_2")
	ev, _ := watch(b, c)
	if _, ok := ev.next(pcsc.CardInserted, reader, 5*time.Second); !ok {
		b.Fatalf("no card in %q", reader)
	}
	s.StopCard(b, reader) // put back by the script when the benchmark ends
	if _, ok := ev.next(pcsc.CardRemoved, reader, 5*time.Second); !ok {
		b.Fatalf("removal from %q not seen", reader)
	}
	bin := filepath.Join(s.Root, "bin", "vcard")
	var total time.Duration
	lo, hi := time.Hour, time.Duration(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// pcscd polls vpcd readers every 400 ms and the removal event just
		// seen came on a poll: start at a random phase of that cycle, as a
		// real insertion would.
		b.StopTimer()
		time.Sleep(time.Duration(rand.Int64N(int64(400 * time.Millisecond))))
		b.StartTimer()
		cmd := exec.Command(bin, "--port", port)
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatalf("starting %s (run 'make build'): %v", bin, err)
		}
		e, ok := ev.next(pcsc.CardInserted, reader, 10*time.Second)
		b.StopTimer()
		if !ok {
			cmd.Process.Kill()
			cmd.Wait()
			b.Fatalf("insertion into %q not seen", reader)
		}
		d := e.Time.Sub(start)
		total += d
		lo, hi = min(lo, d), max(hi, d)
		cmd.Process.Kill()
		cmd.Wait()
		if _, ok := ev.next(pcsc.CardRemoved, reader, 5*time.Second); !ok {
			b.Fatalf("removal from %q not seen", reader)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/insertion")
	b.ReportMetric(float64(lo.Milliseconds()), "ms-min")
	b.ReportMetric(float64(hi.Milliseconds()), "ms-max")
}
