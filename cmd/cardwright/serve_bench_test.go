package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/internal/stacktest"
)

// buildCardwright builds the binary once per benchmark run.
func buildCardwright(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "cardwright")
	// CARDWRIGHT_BENCH_TAGS=nogui measures the server build.
	out, err := exec.Command("go", "build", "-tags", os.Getenv("CARDWRIGHT_BENCH_TAGS"), "-o", bin, ".").CombinedOutput()
	if err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// fakeArgs run the agent with the fake runner and no configuration.
var fakeArgs = []string{"--fake-runner", "--config", "/dev/null"}

// stackArgs run the agent as a production station does: the real runner
// over PC/SC, the test stack's SoftHSM2 module allowed, the own-card readers
// paired with tokens (testdata/demo/cardwright.cfg) and one allowed origin.
func stackArgs(b *testing.B) []string {
	s := stacktest.Require(b)
	cfg := filepath.Join(b.TempDir(), "cardwright.cfg")
	err := os.WriteFile(cfg, []byte(fmt.Sprintf("[server]\norigin = %s\n[pkcs11]\nmodule = %s\n[tokens]\n%s = %s, cardwright demo 1\n",
		memOrigin, s.Get(b, "SOFTHSM_MODULE"), regexpQuote(s.Get(b, "READER_OWN_1")), s.Get(b, "SOFTHSM_MODULE"))), 0o600)
	if err != nil {
		b.Fatal(err)
	}
	return []string{"--config", cfg}
}

// startProcess runs `cardwright serve` with args and returns once a TCP
// connection to the agent succeeds, with the address.
func startProcess(b *testing.B, bin, journal string, args ...string) (*exec.Cmd, string) {
	cmd := exec.Command(bin, append(append([]string{"serve"}, args...), "--listen", "127.0.0.1:0", "--journal", journal)...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if u, _ := serveAnnounced(sc.Text()); u != "" {
			addr := strings.TrimSuffix(strings.TrimPrefix(u, "ws://"), "/v1/ws")
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
			go func() {
				for sc.Scan() {
				}
			}()
			return cmd, addr
		}
	}
	b.Fatalf("serve did not start")
	return nil, ""
}

// BenchmarkServeStartup: from exec to the first accepted TCP connection
// (p50/p99 in ms), with an existing journal; with the fake runner, and with
// the real runner and the stack's configuration (needs the test stack).
func BenchmarkServeStartup(b *testing.B) {
	bin := buildCardwright(b)
	b.Run("runner=fake", func(b *testing.B) { benchStartup(b, bin, fakeArgs) })
	b.Run("runner=pcsc", func(b *testing.B) { benchStartup(b, bin, stackArgs(b)) })
}

func benchStartup(b *testing.B, bin string, args []string) {
	journal := b.TempDir()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		cmd, _ := startProcess(b, bin, journal, args...)
		lat = append(lat, time.Since(t0))
		b.StopTimer()
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		b.StartTimer()
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1e3, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)-1)*99/100].Microseconds())/1e3, "p99-ms")
}

// BenchmarkServeIdle: resident memory one second after start-up, then CPU
// time and context switches of all threads (wake-ups) over 10 idle
// seconds. Run it with -benchtime 1x. runner=fake: the agent alone.
// runner=pcsc,subscribed: the real runner and the stack's configuration,
// with a portal connected and subscribed to reader and card events, so the
// agent sits in SCardGetStatusChange the whole time (needs the test stack).
func BenchmarkServeIdle(b *testing.B) {
	bin := buildCardwright(b)
	b.Run("runner=fake", func(b *testing.B) { benchIdle(b, bin, fakeArgs, false) })
	b.Run("runner=pcsc,subscribed", func(b *testing.B) { benchIdle(b, bin, stackArgs(b), true) })
}

func benchIdle(b *testing.B, bin string, args []string, subscribe bool) {
	for i := 0; i < b.N; i++ {
		cmd, addr := startProcess(b, bin, b.TempDir(), args...)
		pid := cmd.Process.Pid
		if subscribe {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c, err := client.Dial(ctx, "ws://"+addr+"/v1/ws", client.Options{Origin: memOrigin})
			if err != nil {
				b.Fatal(err)
			}
			if l, _, err := c.Subscribe(ctx); err != nil || len(l) == 0 {
				b.Fatalf("subscribing: %d readers, %v", len(l), err)
			}
			cancel()
			defer c.Close()
		}
		time.Sleep(time.Second)
		rss := procStatus(b, pid, "VmRSS")
		cpu0, sw0 := procCPU(b, pid), procStatus(b, pid, "voluntary_ctxt_switches")+procStatus(b, pid, "nonvoluntary_ctxt_switches")
		const idle = 10 * time.Second
		time.Sleep(idle)
		cpu1, sw1 := procCPU(b, pid), procStatus(b, pid, "voluntary_ctxt_switches")+procStatus(b, pid, "nonvoluntary_ctxt_switches")
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		b.ReportMetric(float64(rss)/1024, "RSS-MiB")
		b.ReportMetric(float64(cpu1-cpu0)*10/idle.Seconds(), "CPU-ms/s")
		b.ReportMetric(float64(sw1-sw0)/idle.Seconds(), "wakeups/s")
	}
}

// procStatus reads a numeric field (kB for sizes) of /proc/pid/status,
// summed over the process (the main thread's file).
func procStatus(b *testing.B, pid int, key string) int64 {
	if key == "VmRSS" {
		return statusField(b, filepath.Join("/proc", strconv.Itoa(pid), "status"), key)
	}
	// Context switches: every thread.
	tasks, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "status"))
	var n int64
	for _, t := range tasks {
		n += statusField(b, t, key)
	}
	return n
}

func statusField(b *testing.B, file, key string) int64 {
	data, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

// procCPU is utime+stime in clock ticks (1/100 s on Linux).
func procCPU(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}
