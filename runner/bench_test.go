package runner_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/runnertest"
)

// BenchmarkEngineOverhead measures the engine's own cost per job (selection,
// lock, transaction, ten steps with progress) on an in-process card whose
// operations cost nothing, so the figure is runner overhead only.
func BenchmarkEngineOverhead(b *testing.B) {
	e := &runner.Engine{Readers: twoReaders()}
	steps := make([]runner.Step, 10)
	for i := range steps {
		steps[i] = runner.Step{Name: "step", Run: func(ctx context.Context, s *runner.Session) error {
			_, err := s.Conn.Transmit([]byte{0x00, 0xA4, 0x00, 0x00})
			return err
		}}
	}
	ctx := context.Background()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		res := e.Exec(ctx, runner.Selection{ICCSN: "010203"}, steps, func(runner.Progress) { n++ })
		if res.Err != nil {
			b.Fatal(res.Err)
		}
	}
}

// stubIssuer answers every request with the same certificate, so that the
// benchmarks measure the runner, not a CA's signature.
type stubIssuer struct{ der []byte }

func (s stubIssuer) Issue(context.Context, issuer.Request) ([]byte, [][]byte, error) {
	return s.der, nil, nil
}

// benchDeps are the runner's dependencies with costs taken out: pre-made
// keys, a stub issuer, the real card profile engine. The token fake is a
// stand-in (as the demo configuration's SoftHSM2 token): after the card
// profile the runner initialises it with the job's label and PINs.
func benchDeps(b *testing.B) runner.Deps {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	ca := newIssuer(b)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "bench"}}, key)
	der, _, err := ca.Issue(context.Background(), issuer.Request{CSR: csr})
	if err != nil {
		b.Fatal(err)
	}
	return runner.Deps{
		Tokens:   &runnertest.FakeTokens{StandIn: true, NewKey: func(runner.KeySpec) (crypto.Signer, error) { return key, nil }},
		Issuer:   stubIssuer{der},
		Profiles: runner.CPF{},
	}
}

// BenchmarkRunnerOverhead is the runner's cost for the whole demo job —
// description check and plan, card profile compile and prepare, eight steps
// of erase, profile (about 15 APDUs), two applications with PKCS#10
// requests, ICCSN — on an in-memory card and the in-process token fake. The
// card's own processing is included (it is in-memory and tiny); key
// generation and the CA's signature are not (pre-made keys, a stub issuer);
// the two ECDSA P-256 request signatures are.
func BenchmarkRunnerOverhead(b *testing.B) {
	r := &runner.Runner{Engine: &runner.Engine{Readers: runnertest.NewMemReaders(map[string]*memcard.Card{"R0": memcard.New(memcard.Config{TranscriptLimit: -1})})}, Deps: benchDeps(b)}
	job := demoJob(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res := r.Run(ctx, job, nil); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
}

// BenchmarkValidation is the part of a job before any card I/O: check,
// plan, profile compile and trial prepare, Build.
func BenchmarkValidation(b *testing.B) {
	r := &runner.Runner{Engine: &runner.Engine{Readers: runnertest.NewMemReaders(nil)}, Deps: benchDeps(b)}
	job := demoJob(b, nil)
	b.ReportAllocs()
	for b.Loop() {
		plan, err := r.Plan(job)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := runner.Build(plan, r.Deps); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkThroughput runs demo jobs on 1, 2 and 4 readers at once, each
// reader one job after the other (the busy policy), with 1 ms of card
// latency per APDU standing in for a real card. jobs/s should grow with the
// readers (target: at least 0.9 × N times the one-reader rate).
func BenchmarkThroughput(b *testing.B) {
	for _, n := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("readers=%d", n), func(b *testing.B) {
			cards := map[string]*memcard.Card{}
			var names []string
			for i := range n {
				name := fmt.Sprintf("R%d", i)
				cards[name] = memcard.New(memcard.Config{Serial: []byte{byte(i + 1)}, Latency: time.Millisecond, TranscriptLimit: -1})
				names = append(names, name)
			}
			r := &runner.Runner{Engine: &runner.Engine{Readers: runnertest.NewMemReaders(cards)}, Deps: benchDeps(b)}
			var next atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			b.ResetTimer()
			for _, name := range names {
				wg.Add(1)
				go func() {
					defer wg.Done()
					job := demoJob(b, nil)
					job.Reader = name
					for next.Add(1) <= int64(b.N) {
						if res := r.Run(context.Background(), job, nil); res.Err != nil {
							b.Error(res.Err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
		})
	}
}
