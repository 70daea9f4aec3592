package agent_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
)

func TestHelloVersionNegotiation(t *testing.T) {
	ta := startAgent(t)
	tests := []struct {
		versions []int
		want     int
		code     api.Code
	}{
		{versions: []int{1}, want: 1},
		{versions: []int{3, 1, 2}, want: 1},
		{versions: []int{99}, code: api.CodeUnsupportedVersion},
		{versions: []int{}, code: api.CodeUnsupportedVersion},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.versions), func(t *testing.T) {
			c, err := client.Dial(ctxT(t), ta.url, client.Options{Origin: testOrigin, Versions: tc.versions})
			if tc.code != "" {
				var ce *client.Error
				if !errors.As(err, &ce) || ce.Code != tc.code {
					t.Fatalf("Dial error = %v, want code %s", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			w := c.Welcome
			if w.Version != tc.want || w.Session == "" || !w.Paired || w.Agent != "cardwright/test" || w.Limits.MaxJobs == 0 {
				t.Fatalf("welcome = %+v", w)
			}
		})
	}
}

func TestRequestBeforeHello(t *testing.T) {
	ta := startAgent(t)
	c := ta.dial(client.Options{})
	// A second hello on the same connection is refused; a fresh raw
	// connection without hello is tested through the raw frame helpers in
	// security_test.go.
	err := c.Send(&api.Hello{Type: api.TypeHello, ID: "again", Versions: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	raw := rawDial(t, ta, testOrigin)
	raw.send(t, `{"type":"readers","id":"r1"}`)
	m := raw.read(t)
	if m["type"] != api.TypeError || m["code"] != string(api.CodeBadRequest) || m["id"] != "r1" {
		t.Fatalf("readers before hello: %v", m)
	}
	raw.send(t, `{"type":"nonsense","id":"n1"}`)
	if m := raw.read(t); m["code"] != string(api.CodeBadRequest) || m["id"] != "n1" {
		t.Fatalf("unknown type: %v", m)
	}
	raw.send(t, `{"type":"hello","versions":[1]}`)
	if m := raw.read(t); m["code"] != string(api.CodeBadRequest) {
		t.Fatalf("hello without id: %v", m)
	}
}

func TestReadersAndEvents(t *testing.T) {
	ta := startAgent(t)
	c := ta.dial(client.Options{})
	ctx := ctxT(t)
	list, err := c.Readers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "Fake Reader 0" || !list[0].Card || list[1].Card {
		t.Fatalf("readers = %+v", list)
	}
	_, events, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The watcher starts asynchronously; emit until it is seen.
	deadline := time.After(10 * time.Second)
	for got := false; !got; {
		ta.readers.Emit(api.CardEvent{Event: api.EventCardInserted, Reader: "Fake Reader 1", ATR: "3B8F"})
		select {
		case ev := <-events:
			ce, ok := ev.(*api.CardEvent)
			if !ok || ce.Event != api.EventCardInserted || ce.Reader != "Fake Reader 1" || ce.ATR != "3B8F" || ce.Type != api.TypeCardEvent {
				t.Fatalf("event = %#v", ev)
			}
			got = true
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatal("no card event")
		}
	}
	ta.readers.Emit(api.ReaderEvent{Event: api.EventReaderRemoved, Reader: "Fake Reader 1"})
	for ev := range events {
		if re, ok := ev.(*api.ReaderEvent); ok {
			if re.Event != api.EventReaderRemoved || re.Reader != "Fake Reader 1" {
				t.Fatalf("reader event = %+v", re)
			}
			break
		}
	}
}

// TestFullJob runs the whole conversation: job → prompt → progress →
// request (PKCS#10) → answer → result → ack.
func TestFullJob(t *testing.T) {
	ta := startAgent(t)
	ca := newTestCA(t)
	c := ta.dial(client.Options{})
	ctx := ctxT(t)
	var events []string
	job := &api.Job{Description: "[Description]\nName=demo\n", Fields: map[string]string{
		"Steps": "3", "Prompt": "pin", "Request": "SmartcardLogon", "Echo": "hello", "PIN": "904417"},
		Secret: []string{"PIN1"}, Reader: "Fake Reader 1"}
	res, err := c.Run(ctx, job, ca.issue, func(ev any) {
		switch e := ev.(type) {
		case *api.Progress:
			events = append(events, fmt.Sprintf("progress %d/%d %s", e.N, e.Total, e.Step))
		case *api.Prompt:
			events = append(events, "prompt "+e.Kind+" "+e.State+" "+e.Reader)
		case *api.Request:
			events = append(events, "request "+e.Template+" "+e.Request)
			if e.CSR == "" || e.ID != job.ID {
				t.Errorf("request = %+v", e)
			}
		case *api.Result:
			events = append(events, "result")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"prompt pin waiting Fake Reader 1", "prompt pin done Fake Reader 1",
		"progress 1/3 fake step 1", "progress 2/3 fake step 2", "progress 3/3 fake step 3",
		"request SmartcardLogon 1", "result"}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Fatalf("events:\n got %q\nwant %q", events, want)
	}
	if !res.OK || res.Error != nil || res.ID != job.ID || res.Fields["Echo"] != "hello" || res.Fields["Reader"] != "Fake Reader 1" ||
		res.Fields["Certificate"] != "1001" || res.Secrets["PIN1"] != "904417" || res.Started == "" || res.Finished == "" {
		t.Fatalf("result = %+v", res)
	}
	if err := c.Ack(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	var ce *client.Error
	if err := c.Ack(ctx, job.ID); !errors.As(err, &ce) || ce.Code != api.CodeUnknownJob {
		t.Fatalf("second ack = %v", err)
	}
	recs, _ := ta.journal.All()
	if len(recs) != 0 {
		t.Fatalf("journal after ack holds %d records", len(recs))
	}
}

func TestJobErrors(t *testing.T) {
	ta := startAgent(t)
	c := ta.dial(client.Options{})
	ctx := ctxT(t)
	tests := []struct {
		name string
		job  api.Job
		code api.Code
	}{
		{"runner failure", api.Job{Description: "x", Fields: map[string]string{"Fail": "card_error"}}, api.CodeCardError},
		{"undeclared secret", api.Job{Description: "x", Fields: map[string]string{"LeakPIN": "1234"}}, api.CodeSecretOutput},
		{"issuer refuses", api.Job{Description: "x", Fields: map[string]string{"Request": "T"}}, api.CodeIssuerError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Run(ctx, &tc.job, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK || res.Error == nil || res.Error.Code != tc.code || len(res.Secrets) != 0 {
				t.Fatalf("result = %+v (error %+v)", res, res.Error)
			}
			if err := c.Ack(ctx, tc.job.ID); err != nil {
				t.Fatal(err)
			}
		})
	}
	refused := []struct {
		name string
		job  api.Job
		code api.Code
	}{
		{"no description", api.Job{}, api.CodeBadRequest},
		{"both", api.Job{Description: "x", DSZ: "eA=="}, api.CodeBadRequest},
		{"dsz not base64", api.Job{DSZ: "!!"}, api.CodeInvalidDescription},
		{"file not base64", api.Job{Description: "x", Files: map[string]string{"a.cpf": "!!"}}, api.CodeInvalidField},
	}
	// These jobs break the job schema on purpose.
	c = ta.dial(client.Options{Trace: schemaTraceReceived(t)})
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Submit(ctx, &tc.job)
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Code != tc.code {
				t.Fatalf("Submit = %v, want %s", err, tc.code)
			}
		})
	}
	if n := ta.runner.Calls(); n != 3 {
		t.Fatalf("runner ran %d jobs, want 3 (refused jobs must not reach it)", n)
	}
}

func TestCancel(t *testing.T) {
	ta := startAgent(t)
	c := ta.dial(client.Options{})
	ctx := ctxT(t)
	j, err := c.Submit(ctx, &api.Job{Description: "x", Fields: map[string]string{"Steps": "1000", "StepDelayMs": "20"}})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range j.Events() {
		if p, ok := ev.(*api.Progress); ok && p.N == 2 {
			if err := c.Cancel(ctx, j.ID); err != nil {
				t.Fatal(err)
			}
		}
		if r, ok := ev.(*api.Result); ok {
			if r.OK || r.Error.Code != api.CodeCancelled {
				t.Fatalf("result = %+v", r)
			}
			var ce *client.Error
			if err := c.Cancel(ctx, j.ID); !errors.As(err, &ce) || ce.Code != api.CodeUnknownJob {
				t.Fatalf("cancel of a finished job = %v", err)
			}
			return
		}
	}
	t.Fatalf("no result: %v", j.Err())
}

func TestBusyAndJobLimit(t *testing.T) {
	ta := startAgent(t, func(c *agentConfig, _ *agentDeps) { c.MaxJobs = 2 })
	c := ta.dial(client.Options{})
	ctx := ctxT(t)
	slow := map[string]string{"Steps": "1000", "StepDelayMs": "10"}
	j1, err := c.Submit(ctx, &api.Job{Description: "x", Fields: slow, Reader: "R1"})
	if err != nil {
		t.Fatal(err)
	}
	<-j1.Events() // first progress: it holds R1
	res, err := c.Run(ctx, &api.Job{Description: "x", Reader: "R1"}, nil, nil)
	if err != nil || res.Error == nil || res.Error.Code != api.CodeBusy {
		t.Fatalf("second job on R1 = %+v, %v", res, err)
	}
	j2, err := c.Submit(ctx, &api.Job{Description: "x", Fields: slow, Reader: "R2"})
	if err != nil {
		t.Fatal(err)
	}
	var ce *client.Error
	if _, err := c.Submit(ctx, &api.Job{Description: "x", Reader: "R3"}); !errors.As(err, &ce) || ce.Code != api.CodeTooManyJobs {
		t.Fatalf("third job in flight = %v", err)
	}
	// The client refuses to reuse the id of a job it still follows.
	if _, err := c.Submit(ctx, &api.Job{ID: j2.ID, Description: "x", Reader: "R4"}); err == nil {
		t.Fatal("Submit reused a running job's id")
	}
	for _, j := range []*client.Job{j1, j2} {
		c.Cancel(ctx, j.ID)
		for range j.Events() {
		}
	}
}

// TestReconnectRedelivers: the client goes away mid-job; the result waits
// in the journal and comes with the next hello of the same session, until
// acknowledged; another session never sees it.
func TestReconnectRedelivers(t *testing.T) {
	ta := startAgent(t)
	ctx := ctxT(t)
	c1 := ta.dial(client.Options{})
	sess := c1.Welcome.Session
	j, err := c1.Submit(ctx, &api.Job{Description: "x", Fields: map[string]string{"Steps": "5", "StepDelayMs": "30", "Echo": "e1", "PIN": "pin-7777-q"}, Secret: []string{"PIN1"}})
	if err != nil {
		t.Fatal(err)
	}
	<-j.Events()
	c1.Close()
	<-c1.Done()
	waitFor(t, func() bool {
		recs, _ := ta.journal.All()
		return len(recs) == 1 && recs[0].State == "done"
	})
	other := ta.dial(client.Options{})
	if other.Welcome.Pending != 0 {
		t.Fatalf("another session sees %d pending", other.Welcome.Pending)
	}
	for round := 0; round < 2; round++ {
		c2 := ta.dial(client.Options{Session: sess})
		// In round 0 the job may still be finishing (journaled, not yet
		// sent): then it is not pending but sent live to this connection.
		if c2.Welcome.Session != sess || round == 1 && c2.Welcome.Pending != 1 {
			t.Fatalf("round %d: session %s: welcome = %+v", round, sess, c2.Welcome)
		}
		select {
		case r := <-c2.Redelivered():
			if !r.OK || r.Redelivered != (c2.Welcome.Pending == 1) || r.ID != j.ID || r.Fields["Echo"] != "e1" || r.Secrets["PIN1"] != "pin-7777-q" {
				t.Fatalf("redelivered = %+v", r)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no redelivery")
		}
		if round == 1 {
			if err := c2.Ack(ctx, j.ID); err != nil {
				t.Fatal(err)
			}
		}
		c2.Close()
	}
	c3 := ta.dial(client.Options{Session: sess})
	if c3.Welcome.Pending != 0 {
		t.Fatalf("after ack: pending %d", c3.Welcome.Pending)
	}
	// The secret output is sealed on disk. (The secret is not four hex
	// digits: "7777" alone was once found in the file's other, random
	// content on a CI run.)
	if out, _ := readJournalFile(ta.dir); containsAll(out, "pin-7777-q") {
		t.Fatal("journal file holds the secret output in clear")
	}
}

// TestReconnectRequest: a certificate request outstanding when the socket
// drops is asked again on the resumed session and the job completes.
func TestReconnectRequest(t *testing.T) {
	ta := startAgent(t)
	ca := newTestCA(t)
	ctx := ctxT(t)
	c1 := ta.dial(client.Options{})
	j, err := c1.Submit(ctx, &api.Job{Description: "x", Fields: map[string]string{"Request": "T", "Steps": "0"}})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range j.Events() {
		if _, ok := ev.(*api.Request); ok {
			break
		}
	}
	c1.Close()
	<-c1.Done()
	raw := rawDial(t, ta, testOrigin)
	raw.send(t, `{"type":"hello","id":"h","versions":[1],"session":"`+c1.Welcome.Session+`"}`)
	if m := raw.read(t); m["type"] != api.TypeWelcome {
		t.Fatalf("welcome: %v", m)
	}
	m := raw.read(t)
	if m["type"] != api.TypeRequest || m["id"] != j.ID {
		t.Fatalf("want the request again, got %v", m)
	}
	ans := ca.issue(ctx, &api.Request{CSR: m["csr"].(string), Template: "T"})
	ans.Type, ans.ID, ans.Job, ans.Request = api.TypeAnswer, "a1", j.ID, m["request"].(string)
	raw.sendJSON(t, ans)
	for {
		m := raw.read(t)
		if m["type"] == api.TypeResult {
			if m["ok"] != true {
				t.Fatalf("result %v", m)
			}
			return
		}
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCardRemovedKeepsServing: a card pulled mid-job ends that job with
// card_removed; the reader is free again and the next job works.
func TestCardRemovedKeepsServing(t *testing.T) {
	ta := startAgent(t)
	c := ta.dial(client.Options{})
	ctx := ctxT(t)
	res, err := c.Run(ctx, &api.Job{Description: "x", Reader: "R", Fields: map[string]string{"Steps": "5", "RemoveAt": "2"}}, nil, nil)
	if err != nil || res.OK || res.Error.Code != api.CodeCardRemoved || res.Error.Step != "fake step 2" {
		t.Fatalf("pulled card: %+v %v", res, err)
	}
	res, err = c.Run(ctx, &api.Job{Description: "x", Reader: "R"}, nil, nil)
	if err != nil || !res.OK {
		t.Fatalf("next job: %+v %v", res, err)
	}
}

func TestHeadlessPrompt(t *testing.T) {
	ta := startAgent(t)
	ta.runner.Headless = true // the runner decides, once (runner.Deps.Headless)
	c := ta.dial(client.Options{})
	var prompts int
	res, err := c.Run(ctxT(t), &api.Job{Description: "x", Fields: map[string]string{"Prompt": "pin"}}, nil, func(ev any) {
		if _, ok := ev.(*api.Prompt); ok {
			prompts++
		}
	})
	if err != nil || res.OK || res.Error.Code != api.CodePromptUnavailable || prompts != 0 {
		t.Fatalf("headless prompt: %+v %v (%d prompts)", res, err, prompts)
	}
}

// TestShutdown: a job still running when the grace period ends is
// cancelled, its result journaled and delivered, then the socket is closed
// with 1001 and a reason.
func TestShutdown(t *testing.T) {
	ta := startAgent(t)
	raw := rawDial(t, ta, testOrigin)
	raw.hello(t)
	raw.send(t, `{"type":"job","id":"long","description":"x","fields":{"Steps":"1000","StepDelayMs":"20"}}`)
	if m := raw.read(t); m["type"] != api.TypeAccepted {
		t.Fatalf("%v", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ta.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	var result map[string]any
	for {
		raw.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m map[string]any
		if err := raw.ws.ReadJSON(&m); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway || ce.Text != "agent shutting down" {
				t.Fatalf("close: %v", err)
			}
			break
		}
		if m["type"] == api.TypeResult {
			result = m
		}
	}
	if result == nil || result["ok"] != false || result["error"].(map[string]any)["code"] != string(api.CodeCancelled) {
		t.Fatalf("result before close: %v", result)
	}
	recs, _ := ta.journal.All()
	if len(recs) != 1 || recs[0].State != "done" || recs[0].Result.Error.Code != api.CodeCancelled {
		t.Fatalf("journal: %+v", recs)
	}
}
