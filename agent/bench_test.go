package agent_test

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
)

// reportPercentiles adds p50 and p99 (microseconds) of d to b's metrics.
func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(p float64) float64 {
		i := int(p * float64(len(d)-1))
		return float64(d[i].Nanoseconds()) / 1e3
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

func benchClient(b *testing.B, ta *testAgent) *client.Client {
	c, err := client.Dial(context.Background(), ta.url, client.Options{Origin: testOrigin})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkReadersRoundTrip: one readers request and its reader_list over
// the socket (a no-op request: the fake reader source answers at once).
func BenchmarkReadersRoundTrip(b *testing.B) {
	ta := startAgent(b, func(c *agentConfig, _ *agentDeps) { c.RatePerSecond = 1 << 30 })
	c := benchClient(b, ta)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := c.Readers(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkJobRoundTrip: job → accepted → progress → result over the
// socket with the fake runner (one step, no card), including the two
// journal commits (fsync) before accepted and before result; the ack
// that follows is outside the measured time.
func BenchmarkJobRoundTrip(b *testing.B) {
	ta := startAgent(b)
	c := benchClient(b, ta)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	job := func() *api.Job { return &api.Job{Description: "x", Fields: map[string]string{"Steps": "1"}} }
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		res, err := c.Run(ctx, job(), nil, nil)
		if err != nil || !res.OK {
			b.Fatal(res, err)
		}
		lat = append(lat, time.Since(t0))
		b.StopTimer()
		if err := c.Ack(ctx, res.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkJobs50Clients: 50 connected clients run jobs (submit, result,
// ack) as fast as they can; jobs/s is the throughput of the whole agent.
func BenchmarkJobs50Clients(b *testing.B) {
	const clients = 50
	ta := startAgent(b)
	cs := make([]*client.Client, clients)
	for i := range cs {
		cs[i] = benchClient(b, ta)
	}
	ctx := context.Background()
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func(i int, c *client.Client) {
			defer wg.Done()
			reader := "R" + itoa(i)
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				res, err := c.Run(ctx, &api.Job{Description: "x", Fields: map[string]string{"Steps": "1"}, Reader: reader}, nil, nil)
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
		}(i, c)
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "jobs/s")
	reportPercentiles(b, lat)
}
