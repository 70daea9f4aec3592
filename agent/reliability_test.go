package agent_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/agenttest"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/agent/journal"
)

// childEnv names the journal directory when the test binary runs as an
// agent for TestKillMidJob.
const childEnv = "CARDWRIGHT_AGENT_TEST_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		runChildAgent(dir)
		return
	}
	os.Exit(m.Run())
}

// runChildAgent serves until killed and prints "listening ADDR".
func runChildAgent(dir string) {
	j, n, err := journal.Open(dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	srv, err := agent.New(agent.Config{AllowedOrigins: []string{testOrigin}},
		agent.Deps{Runner: &agenttest.FakeRunner{}, Journal: j, Logger: slog.New(slog.NewJSONHandler(os.Stderr, nil))})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ln, err := agent.Listen("127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Printf("listening %s interrupted=%d\n", ln.Addr(), n)
	srv.Serve(ln, nil)
}

func startChild(t *testing.T, dir string) (*exec.Cmd, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening ") {
		t.Fatalf("child agent: %q %v", line, err)
	}
	f := strings.Fields(line)
	return cmd, "ws://" + f[1] + "/v1/ws", f[2]
}

// TestKillMidJob: kill -9 the agent while one job is finished but not
// acknowledged and another is running. The restarted agent delivers the
// finished result again (its secret output named as lost: never stored in
// clear) and records the running one as interrupted.
func TestKillMidJob(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	dir := t.TempDir()
	cmd, url, _ := startChild(t, dir)
	ctx := ctxT(t)
	c, err := client.Dial(ctx, url, client.Options{Origin: testOrigin})
	if err != nil {
		t.Fatal(err)
	}
	sess := c.Welcome.Session
	done, err := c.Run(ctx, &api.Job{ID: "finished", Description: "x", Fields: map[string]string{"Echo": "kept", "PIN": "3141"}, Secret: []string{"PIN1"}, Reader: "A"}, nil, nil)
	if err != nil || !done.OK || done.Secrets["PIN1"] != "3141" {
		t.Fatalf("first job: %+v %v", done, err)
	}
	running, err := c.Submit(ctx, &api.Job{ID: "running", Description: "x", Fields: map[string]string{"Steps": "1000", "StepDelayMs": "50"}, Reader: "B"})
	if err != nil {
		t.Fatal(err)
	}
	<-running.Events() // it is on the card
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	<-c.Done()

	_, url, interrupted := startChild(t, dir)
	if interrupted != "interrupted=1" {
		t.Fatalf("restart reports %s", interrupted)
	}
	c2, err := client.Dial(ctx, url, client.Options{Origin: testOrigin, Session: sess})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.Welcome.Pending != 2 {
		t.Fatalf("pending %d, want 2", c2.Welcome.Pending)
	}
	got := map[string]*api.Result{}
	for len(got) < 2 {
		select {
		case r := <-c2.Redelivered():
			got[r.ID] = r
		case <-time.After(10 * time.Second):
			t.Fatalf("redelivered only %v", got)
		}
	}
	f := got["finished"]
	if f == nil || !f.OK || !f.Redelivered || f.Fields["Echo"] != "kept" || f.Secrets != nil || fmt.Sprint(f.SecretsLost) != "[PIN1]" {
		t.Fatalf("finished job after the crash: %+v", f)
	}
	r := got["running"]
	if r == nil || r.OK || r.Error == nil || r.Error.Code != api.CodeInterrupted || !r.Redelivered {
		t.Fatalf("interrupted job: %+v", r)
	}
	for _, id := range []string{"finished", "running"} {
		if err := c2.Ack(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	journal, _ := readJournalFile(dir)
	if strings.Contains(journal, "3141") {
		t.Fatal("the secret output reached the disk in clear")
	}
}

// TestResultJournaledBeforeSent: when a result arrives, the journal
// already holds it as done.
func TestResultJournaledBeforeSent(t *testing.T) {
	ta := startAgent(t)
	c := ta.dial(client.Options{})
	ctx := ctxT(t)
	for i := 0; i < 20; i++ {
		res, err := c.Run(ctx, &api.Job{Description: "x", Fields: map[string]string{"Steps": "0"}}, nil, nil)
		if err != nil || !res.OK {
			t.Fatal(res, err)
		}
		recs, err := ta.journal.All()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range recs {
			if r.ReqID == res.ID {
				found = r.State == journal.StateDone && r.Result != nil && r.Result.OK
			}
		}
		if !found {
			t.Fatalf("result %s received before it was journaled as done", res.ID)
		}
		c.Ack(ctx, res.ID)
	}
}

// TestManyClients: 100 connections each run jobs at once, some with a
// certificate request answered by that client's own CA; every result
// comes once, to its own client, with its own values.
func TestManyClients(t *testing.T) {
	const clients, jobsEach = 100, 5
	ta := startAgent(t, func(c *agentConfig, _ *agentDeps) { c.MaxConnections = 200 })
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, clients*jobsEach)
	var mu sync.Mutex
	seen := map[string]int{}
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := client.Dial(ctx, ta.url, client.Options{Origin: testOrigin, Trace: schemaTrace(t)})
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			ca := newTestCA(t)
			var jw sync.WaitGroup
			for k := 0; k < jobsEach; k++ {
				jw.Add(1)
				go func(k int) {
					defer jw.Done()
					echo := fmt.Sprintf("client-%d-job-%d", i, k)
					f := map[string]string{"Echo": echo, "Steps": "2"}
					if k == 0 {
						f["Request"] = "T"
					}
					// Jobs of one client run on distinct readers; MaxJobs
					// (4) caps the session, so the fifth waits its turn.
					var (
						res *api.Result
						err error
					)
					for {
						res, err = c.Run(ctx, &api.Job{Description: "x", Fields: f, Reader: echo}, ca.issue, nil)
						if ce, ok := err.(*client.Error); ok && ce.Code == api.CodeTooManyJobs {
							time.Sleep(5 * time.Millisecond)
							continue
						}
						break
					}
					if err != nil {
						errs <- fmt.Errorf("%s: %w", echo, err)
						return
					}
					if !res.OK || res.Fields["Echo"] != echo || res.Fields["Reader"] != echo || (k == 0) != (res.Fields["Certificate"] != "") {
						errs <- fmt.Errorf("%s: crossed or failed result %+v %+v", echo, res, res.Error)
						return
					}
					mu.Lock()
					seen[echo]++
					mu.Unlock()
					if err := c.Ack(ctx, res.ID); err != nil {
						errs <- fmt.Errorf("%s: ack: %w", echo, err)
					}
				}(k)
			}
			jw.Wait()
			// Nothing more may arrive for this client.
			select {
			case r := <-c.Redelivered():
				errs <- fmt.Errorf("client %d: stray result %+v", i, r)
			case <-time.After(10 * time.Millisecond):
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(seen) != clients*jobsEach {
		t.Fatalf("%d distinct results, want %d", len(seen), clients*jobsEach)
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("%s delivered %d times", k, n)
		}
	}
	if n := ta.runner.Calls(); n != clients*jobsEach {
		t.Fatalf("runner ran %d jobs", n)
	}
	waitFor(t, func() bool { recs, _ := ta.journal.All(); return len(recs) == 0 })
}

var _ = context.Background
