package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/issuer"
)

// iccsnJob reads the card serial number into ICCSN and touches nothing
// else (no profile, no token).
const iccsnJob = "[Encoding]\nType=1024,Chip\n\n[Fields]\nICCSN=\n\n[Description]\niccsnfield=ICCSN\n"

// TestServePCSCDRestartOnStack: pcscd restarts under a running `cardwright
// serve` (real runner). The agent recovers by itself: a subscribed portal
// sees the own card go and come back, and the next job on the same
// connection reads the card.
func TestServePCSCDRestartOnStack(t *testing.T) {
	e := newStackEnv(t)
	url, _, logs := e.serve("--allow-origin", memOrigin)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Origin: memOrigin})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readers, events, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range readers {
		found = found || r.Name == e.own[0] && r.Card
	}
	if !found {
		t.Fatalf("%q with a card not in %+v", e.own[0], readers)
	}
	serial := e.s.Get(t, "SERIAL_OWN_1")
	run := func(when string) {
		t.Helper()
		res, err := c.Run(ctx, &api.Job{Description: iccsnJob, Reader: e.own[0]}, nil, nil)
		if err != nil || !res.OK || res.Fields["ICCSN"] != serial {
			t.Fatalf("job %s: %+v %v\n%s", when, res, err, logs())
		}
		if err := c.Ack(ctx, res.ID); err != nil {
			t.Fatal(err)
		}
	}
	run("before the restart")

	e.s.RestartPCSCD(t)
	var removed, inserted bool
	for !inserted {
		select {
		case ev := <-events:
			if ce, ok := ev.(*api.CardEvent); ok && ce.Reader == e.own[0] {
				switch ce.Event {
				case api.EventCardRemoved:
					removed = true
				case api.EventCardInserted:
					inserted = removed
				}
			}
		case <-ctx.Done():
			t.Fatalf("no card removed then inserted for %q after the restart (removed %v)\n%s", e.own[0], removed, logs())
		}
	}
	run("after the restart")
}

// TestServeKillMidJobOnStack: `cardwright serve` (real runner) is killed
// with SIGKILL while the demo job on the second own card waits for its
// first certificate; an earlier finished job was not acknowledged. A new
// agent on the same journal gives the resuming portal both: the finished
// result again and the interrupted one as interrupted. The half-written
// card then takes the demo job again.
func TestServeKillMidJobOnStack(t *testing.T) {
	e := newStackEnv(t)
	url, _, logs1 := e.serve("--allow-origin", memOrigin)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Origin: memOrigin})
	if err != nil {
		t.Fatal(err)
	}
	session := c.Welcome.Session
	finished, err := c.Run(ctx, &api.Job{Description: iccsnJob, Reader: e.own[0]}, nil, nil)
	if err != nil || !finished.OK {
		t.Fatalf("first job: %+v %v\n%s", finished, err, logs1())
	}
	ca, err := issuer.OpenLocalCA(e.ca)
	if err != nil {
		t.Fatal(err)
	}
	killed := e.served
	job := demoJobOnStack(t, e.own[1], "cardwright demo 2", "Killed Midway")
	_, err = c.Run(ctx, job, func(context.Context, *api.Request) *api.Answer {
		killed.Process.Kill()
		killed.Wait()
		return &api.Answer{Error: "the agent is gone"}
	}, nil)
	if err == nil {
		t.Fatal("the job's connection outlived the agent")
	}
	c.Close()

	url, _, logs2 := e.serve("--allow-origin", memOrigin)
	c2, err := client.Dial(ctx, url, client.Options{Origin: memOrigin, Session: session})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.Welcome.Pending != 2 {
		t.Fatalf("welcome after the restart: %d pending, want 2\n%s", c2.Welcome.Pending, logs2())
	}
	got := map[string]*api.Result{}
	for len(got) < 2 {
		select {
		case r := <-c2.Redelivered():
			got[r.ID] = r
		case <-ctx.Done():
			t.Fatalf("redelivered %d of 2 results", len(got))
		}
	}
	if r := got[finished.ID]; r == nil || !r.OK || !r.Redelivered || r.Fields["ICCSN"] != e.s.Get(t, "SERIAL_OWN_1") {
		t.Fatalf("the finished result after the restart: %+v", r)
	}
	if r := got[job.ID]; r == nil || r.OK || r.Error == nil || r.Error.Code != api.CodeInterrupted {
		t.Fatalf("the killed job after the restart: %+v", r)
	}
	for id := range got {
		if err := c2.Ack(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(logs2(), "interrupted") {
		t.Errorf("the new agent did not log the interrupted job:\n%s", logs2())
	}
	// The card the killed job left half-written takes the job again.
	res, err := c2.Run(ctx, demoJobOnStack(t, e.own[1], "cardwright demo 2", "After The Kill"), func(ctx context.Context, req *api.Request) *api.Answer {
		csr, _ := base64.StdEncoding.DecodeString(req.CSR)
		der, _, err := ca.Issue(ctx, issuer.Request{CSR: csr, Application: req.Application})
		if err != nil {
			return &api.Answer{Error: err.Error()}
		}
		return &api.Answer{Certificate: base64.StdEncoding.EncodeToString(der)}
	}, nil)
	if err != nil || !res.OK {
		t.Fatalf("the demo job after the restart: %+v %v\n%s", res, err, logs2())
	}
	c2.Ack(ctx, res.ID)
	readCard(t, e.own[1], "After The Kill", demoPIN)
	noPINs(t, logs1(), logs2())
}

// demoJobOnStack is the demo job (testdata/demo) for reader and the
// SoftHSM2 token label the stack's configuration pairs with it.
func demoJobOnStack(t *testing.T, reader, token, holder string) *api.Job {
	src, err := os.ReadFile(filepath.Join(demoDir, "demo.dsc"))
	if err != nil {
		t.Fatal(err)
	}
	cpfSrc, err := os.ReadFile(filepath.Join(demoDir, "demo.cpf"))
	if err != nil {
		t.Fatal(err)
	}
	return &api.Job{Description: string(src), Files: map[string]string{"demo.cpf": base64.StdEncoding.EncodeToString(cpfSrc)},
		Fields: map[string]string{"PIN_FIELD": demoPIN, "PUK_FIELD": demoPUK, "HOLDER": base64.StdEncoding.EncodeToString([]byte(holder)),
			"CARD_SERIAL": "CW-9", "TOKEN_LABEL": token}, Reader: reader}
}

// TestServeTwoReadersOnStack: two portals submit the demo job at once, one
// per own-card reader, to one `cardwright serve` (real runner). Each
// portal holds its first certificate request until the other job has
// reached its own: both jobs are mid-way at the same time (a runner that
// ran them one after the other would never get there). Both end well, each
// with its own card's serial.
func TestServeTwoReadersOnStack(t *testing.T) {
	e := newStackEnv(t)
	url, _, logs := e.serve("--allow-origin", memOrigin)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ca, err := issuer.OpenLocalCA(e.ca)
	if err != nil {
		t.Fatal(err)
	}
	var both sync.WaitGroup
	both.Add(2)
	type outcome struct {
		res *api.Result
		err error
	}
	out := make([]outcome, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		c, err := client.Dial(ctx, url, client.Options{Origin: memOrigin})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			job := demoJobOnStack(t, e.own[i], fmt.Sprintf("cardwright demo %d", i+1), fmt.Sprintf("Parallel %d", i+1))
			res, err := c.Run(ctx, job, func(ctx context.Context, req *api.Request) *api.Answer {
				if first {
					first = false
					both.Done()
					waited := make(chan struct{})
					go func() { both.Wait(); close(waited) }()
					select {
					case <-waited:
					case <-time.After(30 * time.Second):
						return &api.Answer{Error: "the other job never reached its certificate request"}
					}
				}
				csr, _ := base64.StdEncoding.DecodeString(req.CSR)
				der, _, err := ca.Issue(ctx, issuer.Request{CSR: csr, Application: req.Application})
				if err != nil {
					return &api.Answer{Error: err.Error()}
				}
				return &api.Answer{Certificate: base64.StdEncoding.EncodeToString(der)}
			}, nil)
			if err == nil && res.OK {
				c.Ack(ctx, res.ID)
			}
			out[i] = outcome{res, err}
		}()
	}
	wg.Wait()
	for i, o := range out {
		want := e.s.Get(t, fmt.Sprintf("SERIAL_OWN_%d", i+1))
		if o.err != nil || !o.res.OK || o.res.Fields["ICCSN"] != want {
			t.Errorf("job on %q: %+v %v (want ICCSN %s)", e.own[i], o.res, o.err, want)
			if o.res != nil && o.res.Error != nil {
				t.Errorf("  error %+v", o.res.Error)
			}
		}
	}
	if t.Failed() {
		t.Fatalf("agent log:\n%s", logs())
	}
	for i := range 2 {
		readCard(t, e.own[i], fmt.Sprintf("Parallel %d", i+1), demoPIN)
	}
	noPINs(t, logs())
}

// TestServeLatePCSCDOnStack: the agent starts while the PC/SC service
// cannot be reached (the client library's socket, PCSCLITE_CSOCK_NAME,
// points at nothing yet): readers and jobs answer reader_unavailable. Once
// the service is there, the same agent and connection list the readers and
// run a job, without a restart.
func TestServeLatePCSCDOnStack(t *testing.T) {
	e := newStackEnv(t)
	const daemonSocket = "/run/pcscd/pcscd.comm" // pcsc-lite's default
	if _, err := os.Stat(daemonSocket); err != nil {
		t.Fatalf("the stack's pcscd socket: %v", err)
	}
	link := filepath.Join(t.TempDir(), "pcscd.comm")
	t.Setenv("PCSCLITE_CSOCK_NAME", link) // inherited by the serve child
	url, _, logs := e.serve("--allow-origin", memOrigin)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Origin: memOrigin})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ce *client.Error
	if _, err := c.Readers(ctx); !errors.As(err, &ce) || ce.Code != api.CodeReaderUnavailable {
		t.Fatalf("readers without the service: %v", err)
	}
	res, err := c.Run(ctx, &api.Job{Description: iccsnJob, Reader: e.own[0]}, nil, nil)
	if err != nil || res.OK || res.Error.Code != api.CodeReaderUnavailable {
		t.Fatalf("job without the service: %+v %v", res, err)
	}
	c.Ack(ctx, res.ID)

	if err := os.Symlink(daemonSocket, link); err != nil { // the service comes up
		t.Fatal(err)
	}
	readers, err := c.Readers(ctx)
	if err != nil || len(readers) == 0 {
		t.Fatalf("readers once the service is there: %v %v\n%s", readers, err, logs())
	}
	res, err = c.Run(ctx, &api.Job{Description: iccsnJob, Reader: e.own[0]}, nil, nil)
	if err != nil || !res.OK || res.Fields["ICCSN"] != e.s.Get(t, "SERIAL_OWN_1") {
		t.Fatalf("job once the service is there: %+v %v\n%s", res, err, logs())
	}
	c.Ack(ctx, res.ID)
}
