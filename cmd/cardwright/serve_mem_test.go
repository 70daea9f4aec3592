package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/agent/api/schema"
	"github.com/cardwright/cardwright/agent/journal"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/runnertest"
)

// The agent of `cardwright serve` in-process with the real runner over
// in-memory cards (iso7816/memcard) and the PKCS#11 token fake: the same
// socket, journal, runner, description checker and card profile engine as
// the service, without PC/SC and SoftHSM2, so that hundreds of cards can
// run at once.

const (
	memOrigin  = "https://portal.example"
	demoModule = "/usr/lib/softhsm/libsofthsm2.so" // the module testdata/demo/demo.dsc names
)

type memAgent struct {
	addr    string // host:port
	url     string
	cards   map[string]*memcard.Card
	journal *journal.Journal
	log     *lockedBuffer
	ca      *issuer.LocalCA
	srv     *agent.Server
	job     api.Job // the demo job without reader and holder
	issued  atomic.Int64
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// memReader names reader i; its card's serial is 4357 + i (four bytes).
func memReader(i int) string { return fmt.Sprintf("Memory Reader %03d", i) }

func memSerial(i int) []byte { return []byte{0x43, 0x57, byte(i >> 8), byte(i)} }

// startMemAgent serves the agent with n in-memory readers, each holding a
// virgin card. Key generation hands out two pre-made keys (P-256 and
// RSA-2048) so that figures and tests measure the agent and the runner,
// not RSA key generation.
func startMemAgent(tb testing.TB, n int) *memAgent {
	tb.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	ma := &memAgent{cards: map[string]*memcard.Card{}, log: &lockedBuffer{}}
	for i := range n {
		ma.cards[memReader(i)] = memcard.New(memcard.Config{Serial: memSerial(i)})
	}
	if ma.ca, err = issuer.OpenLocalCA(tb.TempDir()); err != nil {
		tb.Fatal(err)
	}
	tokens := &runnertest.FakeTokens{StandIn: true, NewKey: func(s runner.KeySpec) (crypto.Signer, error) {
		if s.Type == "RSA" {
			return rk, nil
		}
		return ec, nil
	}}
	run := &runner.Runner{
		Engine: &runner.Engine{Readers: runnertest.NewMemReaders(ma.cards)},
		Deps:   runner.Deps{Tokens: tokens, Profiles: runner.CPF{}, Headless: true},
	}
	dir := tb.TempDir()
	if ma.journal, _, err = journal.Open(dir); err != nil {
		tb.Fatal(err)
	}
	srv, err := agent.New(agent.Config{AllowedOrigins: []string{memOrigin}, AllowedModules: []string{demoModule}, Version: "test",
		RatePerSecond: 10000, MaxConnections: 256},
		agent.Deps{Runner: run, Journal: ma.journal, Logger: slog.New(slog.NewJSONHandler(ma.log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := agent.Listen("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ma.srv = srv
	ma.addr = ln.Addr().String()
	ma.url = "ws://" + ma.addr + "/v1/ws"
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln, nil); err != nil {
			tb.Errorf("Serve: %v", err)
		}
	}()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
		ma.journal.Close()
	})

	src, err := os.ReadFile(filepath.Join(demoDir, "demo.dsc"))
	if err != nil {
		tb.Fatal(err)
	}
	cpfSrc, err := os.ReadFile(filepath.Join(demoDir, "demo.cpf"))
	if err != nil {
		tb.Fatal(err)
	}
	ma.job = api.Job{Description: string(src), Files: map[string]string{"demo.cpf": base64.StdEncoding.EncodeToString(cpfSrc)},
		Fields: map[string]string{"PIN_FIELD": demoPIN, "PUK_FIELD": demoPUK, "CARD_SERIAL": "CW-0042", "TOKEN_LABEL": "cardwright demo"}}
	return ma
}

// dial connects a portal. In tests (not benchmarks) every frame either way
// is checked against its JSON Schema (agent/api/schema).
func (ma *memAgent) dial(tb testing.TB) *client.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := client.Options{Origin: memOrigin}
	if t, ok := tb.(*testing.T); ok {
		var mu sync.Mutex
		over := false
		t.Cleanup(func() { mu.Lock(); over = true; mu.Unlock() })
		o.Trace = func(sent bool, frame []byte) {
			if err := schema.Validate(frame); err != nil {
				mu.Lock()
				defer mu.Unlock()
				if !over {
					t.Errorf("frame (sent %v) outside its schema: %v\n%.300s", sent, err, frame)
				}
			}
		}
	}
	c, err := client.Dial(ctx, ma.url, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// demoJob is the demo job for reader with holder as the card holder name.
func (ma *memAgent) demoJob(reader, holder string) *api.Job {
	j := ma.job
	j.Reader = reader
	j.Fields = map[string]string{"HOLDER": base64.StdEncoding.EncodeToString([]byte(holder))}
	for k, v := range ma.job.Fields {
		j.Fields[k] = v
	}
	return &j
}

// issue answers a certificate request from the test CA, as a portal does.
func (ma *memAgent) issue(ctx context.Context, req *api.Request) *api.Answer {
	csr, err := base64.StdEncoding.DecodeString(req.CSR)
	if err != nil {
		return &api.Answer{Error: err.Error()}
	}
	der, chain, err := ma.ca.Issue(ctx, issuer.Request{CSR: csr, Application: req.Application})
	if err != nil {
		return &api.Answer{Error: err.Error()}
	}
	ma.issued.Add(1)
	a := &api.Answer{Certificate: base64.StdEncoding.EncodeToString(der)}
	for _, c := range chain {
		a.Chain = append(a.Chain, base64.StdEncoding.EncodeToString(c))
	}
	return a
}

// checkMemCard reads the card independently with plain APDUs: the holder
// file the profile wrote, and the job's PIN.
func checkMemCard(card iso7816.Card, wantHolder string) error {
	if _, err := iso7816.Send(card, iso7816.SelectPath(true, 0x5015, 0x5032)); err != nil {
		return fmt.Errorf("selecting the holder file: %w", err)
	}
	cmd, _ := iso7816.ReadBinary(0, len(wantHolder))
	if got, err := iso7816.Send(card, cmd); err != nil || string(got) != wantHolder {
		return fmt.Errorf("holder file = %q, %v; want %q", got, err, wantHolder)
	}
	if _, err := iso7816.Send(card, iso7816.Verify(0x81, []byte(demoPIN))); err != nil {
		return fmt.Errorf("verifying the job's PIN: %w", err)
	}
	return nil
}

// TestServeManyClientsMemCards: 100 portals connected at once, each runs
// the demo job twice on its own in-memory card through the real runner
// (erase, card profile, token, two keys whose PKCS#10 requests the portal
// answers mid-job, ICCSN). Every result arrives once, at its own client,
// with its own card's serial; every card then holds its own client's
// second holder name and PIN; the journal is empty after the acks and the
// log holds no PIN.
func TestServeManyClientsMemCards(t *testing.T) {
	const clients, jobsEach = 100, 2
	ma := startMemAgent(t, clients)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, clients*jobsEach)
	var mu sync.Mutex
	seen := map[string]int{} // result id → deliveries
	for i := range clients {
		c := ma.dial(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			reader := memReader(i)
			for k := range jobsEach {
				holder := fmt.Sprintf("holder %d/%d", i, k)
				var requests int
				res, err := c.Run(ctx, ma.demoJob(reader, holder), func(ctx context.Context, r *api.Request) *api.Answer {
					requests++
					return ma.issue(ctx, r)
				}, nil)
				if err != nil {
					errs <- fmt.Errorf("client %d job %d: %w", i, k, err)
					return
				}
				want := strings.ToUpper(hex.EncodeToString(memSerial(i)))
				if !res.OK || res.Fields["ICCSN"] != want || requests != 2 {
					errs <- fmt.Errorf("client %d job %d: result %+v (error %+v) after %d requests, want ICCSN %s after 2", i, k, res, res.Error, requests, want)
					return
				}
				mu.Lock()
				seen[res.ID]++
				mu.Unlock()
				if err := c.Ack(ctx, res.ID); err != nil {
					errs <- fmt.Errorf("client %d job %d: ack: %w", i, k, err)
					return
				}
			}
			select {
			case r := <-c.Redelivered():
				errs <- fmt.Errorf("client %d: stray result %+v", i, r)
			case <-time.After(10 * time.Millisecond):
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	if len(seen) != clients*jobsEach {
		t.Fatalf("%d distinct results, want %d", len(seen), clients*jobsEach)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("result %s delivered %d times", id, n)
		}
	}
	if n := ma.issued.Load(); n != 2*clients*jobsEach {
		t.Fatalf("%d certificates issued, want %d", n, 2*clients*jobsEach)
	}
	for i := range clients {
		if err := checkMemCard(ma.cards[memReader(i)], fmt.Sprintf("holder %d/%d", i, jobsEach-1)); err != nil {
			t.Errorf("card %d: %v", i, err)
		}
	}
	if recs, _ := ma.journal.All(); len(recs) != 0 {
		t.Fatalf("journal holds %d records after every ack", len(recs))
	}
	if log := ma.log.String(); strings.Contains(log, demoPIN) || strings.Contains(log, demoPUK) {
		t.Fatal("a PIN or PUK in the agent log")
	}
}

// TestServeCardRemovedMemCard: the card goes away in the middle of the
// job (after its eighth APDU, inside the erase and card profile: from then
// on every APDU fails with iso7816.ErrCardRemoved, as PC/SC reports a
// pulled card); the job ends with card_removed, the agent keeps serving,
// and the same connection's next job on the card put back succeeds.
func TestServeCardRemovedMemCard(t *testing.T) {
	ma := startMemAgent(t, 1)
	c := ma.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	card := ma.cards[memReader(0)]
	card.FailAfter(8, fmt.Errorf("the card left the field: %w", iso7816.ErrCardRemoved))
	res, err := c.Run(ctx, ma.demoJob(memReader(0), "pulled"), ma.issue, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || res.Error == nil || res.Error.Code != api.CodeCardRemoved || res.Error.Step == "" {
		t.Fatalf("result %+v (error %+v), want card_removed naming the step", res, res.Error)
	}
	t.Logf("card_removed at %s: %s", res.Error.Step, res.Error.Message)
	if err := c.Ack(ctx, res.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Readers(ctx); err != nil {
		t.Fatalf("the agent stopped serving: %v", err)
	}
	card.ClearFaults()
	card.Reset()
	res, err = c.Run(ctx, ma.demoJob(memReader(0), "put back"), ma.issue, nil)
	if err != nil || !res.OK {
		t.Fatalf("the job after the card came back: %+v %v", res, err)
	}
	c.Ack(ctx, res.ID)
	if err := checkMemCard(card, "put back"); err != nil {
		t.Fatal(err)
	}
}

// TestServeCardJobMemCard: a Card-SDK-style POST /CardJob with the demo
// description and profile as a .dsz (without the key applications: a
// synchronous XML job has no portal to issue certificates) runs with the
// real runner on an in-memory card and returns the ICCSN as a read field.
func TestServeCardJobMemCard(t *testing.T) {
	ma := startMemAgent(t, 1)
	src, err := os.ReadFile(filepath.Join(demoDir, "demo.dsc"))
	if err != nil {
		t.Fatal(err)
	}
	cpfSrc, err := os.ReadFile(filepath.Join(demoDir, "demo.cpf"))
	if err != nil {
		t.Fatal(err)
	}
	dsc, _, ok := strings.Cut(string(src), "[Application_A]")
	if !ok {
		t.Fatal("the demo description has no [Application_A]")
	}
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	for name, data := range map[string]string{"demo.dsc": dsc, "demo.cpf": string(cpfSrc)} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	body := `<card_job id="77"><reader>` + memReader(0) + `</reader>
<applications><application name="demo">` + base64.StdEncoding.EncodeToString(z.Bytes()) + `</application></applications>
<text_fields>
<text_field name="PIN_FIELD">` + demoPIN + `</text_field>
<text_field name="PUK_FIELD">` + demoPUK + `</text_field>
<text_field name="HOLDER">` + base64.StdEncoding.EncodeToString([]byte("Card SDK")) + `</text_field>
<text_field name="TOKEN_LABEL">sdk</text_field>
<text_field name="ICCSN" read="true"/>
</text_fields></card_job>`
	resp, err := http.Post("http://"+ma.addr+"/CardJob", "application/xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var r agent.CardJobResponse
	if err := xml.Unmarshal(out, &r); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d %v:\n%s", resp.StatusCode, err, out)
	}
	want := strings.ToUpper(hex.EncodeToString(memSerial(0)))
	var got *agent.CardJobField
	for i, f := range r.Fields {
		if f.Name == "ICCSN" {
			got = &r.Fields[i]
		}
	}
	if r.ID != "77" || got == nil || !got.Read || got.Value != want || !strings.Contains(string(out), `read="true"`) {
		t.Fatalf("response, want ICCSN %s read=\"true\":\n%s", want, out)
	}
	if strings.Contains(string(out), demoPIN) || strings.Contains(string(out), demoPUK) {
		t.Fatalf("a PIN in the response:\n%s", out)
	}
	if err := checkMemCard(ma.cards[memReader(0)], "Card SDK"); err != nil {
		t.Fatal(err)
	}
}

// TestServeModuleNotAllowedMemCard: the demo job naming a PKCS#11 module
// that is not on the allow-list is refused with module_not_allowed, naming
// the module, before the card sees a single APDU.
func TestServeModuleNotAllowedMemCard(t *testing.T) {
	ma := startMemAgent(t, 1)
	c := ma.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, evil := range []string{"/tmp/evil.so", "/usr/lib/softhsm/../../../tmp/evil.so"} {
		job := ma.demoJob(memReader(0), "evil")
		job.Description = strings.Replace(job.Description, "PKCS11LibraryLinux="+demoModule, "PKCS11LibraryLinux="+evil, 1)
		if !strings.Contains(job.Description, evil) {
			t.Fatal("the demo description names no module to replace")
		}
		_, err := c.Run(ctx, job, ma.issue, nil)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != api.CodeModuleNotAllowed || !strings.Contains(ce.Message, "evil.so") {
			t.Fatalf("%s: got %v, want module_not_allowed naming it", evil, err)
		}
	}
	if tr := ma.cards[memReader(0)].Transcript(); len(tr) != 0 {
		t.Fatalf("the card saw %d APDUs", len(tr))
	}
	// The same connection then runs the job with the allowed module.
	res, err := c.Run(ctx, ma.demoJob(memReader(0), "allowed"), ma.issue, nil)
	if err != nil || !res.OK {
		t.Fatalf("the allowed job: %+v %v", res, err)
	}
	if len(ma.cards[memReader(0)].Transcript()) == 0 {
		t.Fatal("no transcript: the check above proves nothing")
	}
}

// percentiles reports p50 and p99 of d in milliseconds.
func percentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1e3 }
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// BenchmarkServeMemCardJob: the round trip of the full demo job on an
// in-memory card over the socket — job, accepted, six progress events, two
// certificate requests answered by the client (the test CA signs: ECDSA
// P-256), result — with the journal's fsyncs; the ack is outside the
// measured time. Key generation is out (pre-made keys); the runner, the
// card profile engine and the card are in.
func BenchmarkServeMemCardJob(b *testing.B) {
	ma := startMemAgent(b, 1)
	c := ma.dial(b)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		res, err := c.Run(ctx, ma.demoJob(memReader(0), "bench"), ma.issue, nil)
		if err != nil || !res.OK {
			b.Fatal(res, err)
		}
		lat = append(lat, time.Since(t0))
		b.StopTimer()
		c.Ack(ctx, res.ID)
		b.StartTimer()
	}
	b.StopTimer()
	percentiles(b, lat)
}

// BenchmarkServeMemCardJobs50Clients: 50 connected portals, each with its
// own in-memory card, run the demo job (submit, answer both requests,
// result, ack) as fast as they can; jobs/s is the whole agent's throughput
// on this machine.
func BenchmarkServeMemCardJobs50Clients(b *testing.B) {
	const clients = 50
	ma := startMemAgent(b, clients)
	cs := make([]*client.Client, clients)
	for i := range cs {
		cs[i] = ma.dial(b)
	}
	ctx := context.Background()
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				res, err := c.Run(ctx, ma.demoJob(memReader(i), "bench"), ma.issue, nil)
				if err != nil || !res.OK {
					b.Error(res, err)
					return
				}
				d := time.Since(t0)
				if err := c.Ack(ctx, res.ID); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "jobs/s")
	percentiles(b, lat)
}
