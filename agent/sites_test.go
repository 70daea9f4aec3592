package agent_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/agenttest"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
)

const pairOrigin = "https://new-portal.example"

// pairAsync sends pair on c; the returned channel gets Pair's error, codes
// the code the page was shown.
func pairAsync(ctx context.Context, c *client.Client) (errc chan error, codes chan string) {
	errc, codes = make(chan error, 1), make(chan string, 1)
	go func() { errc <- c.Pair(ctx, func(code string) { codes <- code }) }()
	return errc, codes
}

// nextAsk waits for the next dialog the Approver shows.
func nextAsk(t *testing.T, ctx context.Context, ap *agenttest.Approver) *agenttest.Ask {
	t.Helper()
	select {
	case a := <-ap.Asks:
		return a
	case <-ctx.Done():
		t.Fatal("no pairing dialog was shown")
		return nil
	}
}

// pairNew pairs origin on a new connection, approving its dialog.
func pairNew(t *testing.T, ta *testAgent, ap *agenttest.Approver, origin string) *client.Client {
	t.Helper()
	ctx := ctxT(t)
	c := ta.dial(client.Options{Origin: origin})
	errc, _ := pairAsync(ctx, c)
	nextAsk(t, ctx, ap).Answer(true)
	if err := <-errc; err != nil {
		t.Fatalf("pairing %s: %v", origin, err)
	}
	return c
}

func withApprover(ap agent.Approver) agentOpt {
	return func(_ *agentConfig, d *agentDeps) { d.Approver = ap }
}

// waitState calls State after each change until ok says it is the one.
func waitState(t *testing.T, ctx context.Context, srv *agent.Server, ch <-chan struct{}, ok func(agent.State) bool) agent.State {
	t.Helper()
	for {
		if st := srv.State(ctx); ok(st) {
			return st
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("state never became what the test waits for: %+v", srv.State(context.Background()))
		}
	}
}

func TestSites(t *testing.T) {
	ap := agenttest.NewApprover(4)
	ta := startAgent(t, withApprover(ap))
	if got := ta.srv.Sites(); len(got) != 1 || got[0] != (agent.Site{Origin: testOrigin, Configured: true}) {
		t.Fatalf("sites before pairing: %+v", got)
	}
	pairNew(t, ta, ap, pairOrigin)
	got := ta.srv.Sites()
	if len(got) != 2 || got[1].Origin != pairOrigin || got[1].Configured || got[1].PairedAt.IsZero() {
		t.Fatalf("sites after pairing: %+v", got)
	}
	// The time of pairing survives a restart (it is the journal's value).
	ta.srv.Shutdown(ctxT(t))
	ta.journal.Close()
	ta2 := startAgentIn(t, ta.dir, withApprover(ap))
	if got2 := ta2.srv.Sites(); len(got2) != 2 || !got2[1].PairedAt.Equal(got[1].PairedAt) {
		t.Fatalf("sites after restart: %+v, before %+v", got2, got)
	}
	// Headless, paired origins do not count and are not listed.
	ta2.srv.Shutdown(ctxT(t))
	ta2.journal.Close()
	ta3 := startAgentIn(t, ta.dir)
	if got3 := ta3.srv.Sites(); len(got3) != 1 {
		t.Fatalf("headless sites: %+v", got3)
	}
}

func TestRemoveSiteEndsSessions(t *testing.T) {
	ap := agenttest.NewApprover(4)
	ta := startAgent(t, withApprover(ap))
	ctx := ctxT(t)
	changes, stop := ta.srv.StateChanges()
	defer stop()
	c := pairNew(t, ta, ap, pairOrigin)
	idle := ta.dial(client.Options{Origin: pairOrigin}) // a second page, no job
	if !idle.Welcome.Paired {
		t.Fatal("second page of a paired origin not paired")
	}
	configured := ta.dial(client.Options{})
	j, err := c.Submit(ctx, &api.Job{Fields: map[string]string{"Steps": "1", "StepDelayMs": "600000"}, Description: "x"})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, ta.srv, changes, func(st agent.State) bool { return st.Running == 1 })

	if err := ta.srv.RemoveSite(pairOrigin); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*client.Client{c, idle} {
		<-cl.Done()
		var ce *websocket.CloseError
		if !errors.As(cl.Err(), &ce) || ce.Code != websocket.ClosePolicyViolation || !strings.Contains(ce.Text, "removed") {
			t.Fatalf("connection of a removed site ended with %v", cl.Err())
		}
	}
	for range j.Events() {
	}
	// The job is cancelled and its result journaled as usual.
	st := waitState(t, ctx, ta.srv, changes, func(st agent.State) bool { return st.Running == 0 && len(st.Recent) == 1 })
	if r := st.Recent[0]; r.Origin != pairOrigin || r.OK || r.Code != api.CodeCancelled {
		t.Fatalf("recent job: %+v", r)
	}
	recs, err := ta.journal.All()
	if err != nil || len(recs) != 1 || recs[0].Result == nil || recs[0].Result.Error == nil || recs[0].Result.Error.Code != api.CodeCancelled {
		t.Fatalf("journal: %+v %v", recs, err)
	}
	for _, s := range st.Sites {
		if s.Origin == pairOrigin {
			t.Fatalf("removed site still listed: %+v", st.Sites)
		}
	}
	if p, _ := ta.journal.Paired(); len(p) != 0 {
		t.Fatalf("journal still pairs %v", p)
	}
	// The configured origin's connection is untouched.
	if _, err := configured.Readers(ctx); err != nil {
		t.Fatalf("configured origin after the removal: %v", err)
	}
	// A later connection has to pair again.
	c2 := ta.dial(client.Options{Origin: pairOrigin, Session: c.Welcome.Session})
	if c2.Welcome.Paired {
		t.Fatal("a removed origin starts paired")
	}
	var ce *client.Error
	if _, err := c2.Submit(ctx, &api.Job{Description: "x"}); !errors.As(err, &ce) || ce.Code != api.CodeNotPaired {
		t.Fatalf("job from a removed origin: %v", err)
	}
	errc, _ := pairAsync(ctx, c2)
	nextAsk(t, ctx, ap).Answer(true)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// Paired again, the session's cancelled result is delivered.
	c3 := ta.dial(client.Options{Origin: pairOrigin, Session: c.Welcome.Session})
	select {
	case r := <-c3.Redelivered():
		if r.Error == nil || r.Error.Code != api.CodeCancelled {
			t.Fatalf("redelivered: %+v", r)
		}
	case <-ctx.Done():
		t.Fatal("the cancelled job's result was not redelivered")
	}
}

func TestRemoveSiteRefused(t *testing.T) {
	ta := startAgent(t, withApprover(agenttest.NewApprover(1)))
	if err := ta.srv.RemoveSite(testOrigin); !errors.Is(err, agent.ErrSiteConfigured) {
		t.Fatalf("removing a configured origin: %v", err)
	}
	if err := ta.srv.RemoveSite(pairOrigin); !errors.Is(err, agent.ErrSiteNotPaired) {
		t.Fatalf("removing an unknown origin: %v", err)
	}
	c := ta.dial(client.Options{})
	if _, err := c.Readers(ctxT(t)); err != nil {
		t.Fatalf("configured origin after a refused removal: %v", err)
	}
}

func TestPairingTimeout(t *testing.T) {
	// The dialog neither answers nor closes when asked: the agent denies
	// all the same, and an approval that comes later pairs nothing.
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	asked := make(chan struct{}, 1)
	stubborn := approverFunc(func(context.Context, string, string) (bool, error) {
		asked <- struct{}{}
		<-release
		return true, nil
	})
	ta := startAgent(t, withApprover(stubborn), func(c *agentConfig, _ *agentDeps) { c.PairTimeout = 1 })
	ctx := ctxT(t)
	c := ta.dial(client.Options{Origin: pairOrigin})
	errc, codes := pairAsync(ctx, c)
	var ce *client.Error
	if err := <-errc; !errors.As(err, &ce) || ce.Code != api.CodeNotPaired || !strings.Contains(ce.Message, "timed out") {
		t.Fatalf("pairing with no answer: %v", err)
	}
	if len(codes) != 1 {
		t.Fatal("the page was not shown a code before the denial")
	}
	<-asked
	once.Do(func() { close(release) }) // the dialog approves, too late
	if _, err := c.Submit(ctx, &api.Job{Description: "x"}); !errors.As(err, &ce) || ce.Code != api.CodeNotPaired {
		t.Fatalf("job after a timed-out pairing: %v", err)
	}
	if len(ta.srv.Sites()) != 1 {
		t.Fatalf("sites: %+v", ta.srv.Sites())
	}

	// With an Approver that honours ctx, the dialog is told to close.
	ap := agenttest.NewApprover(1)
	tb := startAgent(t, withApprover(ap), func(c *agentConfig, _ *agentDeps) { c.PairTimeout = 1 })
	errc, _ = pairAsync(ctx, tb.dial(client.Options{Origin: pairOrigin}))
	if err := <-errc; !errors.As(err, &ce) || ce.Code != api.CodeNotPaired {
		t.Fatalf("pairing with no answer: %v", err)
	}
	select {
	case a := <-ap.Asks:
		<-a.Done()
	default: // withdrawn before the dialog was shown
	}
}

type approverFunc func(ctx context.Context, origin, code string) (bool, error)

func (f approverFunc) Approve(ctx context.Context, origin, code string) (bool, error) {
	return f(ctx, origin, code)
}

func TestPairingRateLimit(t *testing.T) {
	ap := &fakeApprover{ok: false}
	ta := startAgent(t, withApprover(ap), func(c *agentConfig, _ *agentDeps) { c.PairPerMinute = 2 })
	ctx := ctxT(t)
	c := ta.dial(client.Options{Origin: pairOrigin})
	var ce *client.Error
	for i := range 2 {
		if err := c.Pair(ctx, nil); !errors.As(err, &ce) || ce.Code != api.CodeNotPaired {
			t.Fatalf("pairing %d: %v", i, err)
		}
	}
	// A new connection does not reset the origin's limit.
	c2 := ta.dial(client.Options{Origin: pairOrigin})
	if err := c2.Pair(ctx, func(string) { t.Error("a code was shown past the limit") }); !errors.As(err, &ce) || ce.Code != api.CodeRateLimited {
		t.Fatalf("pairing past the limit: %v", err)
	}
	if len(ap.codes) != 2 {
		t.Fatalf("%d dialogs shown, want 2", len(ap.codes))
	}
	// Another origin has its own.
	if err := ta.dial(client.Options{Origin: "https://other.example"}).Pair(ctx, nil); !errors.As(err, &ce) || ce.Code != api.CodeNotPaired {
		t.Fatalf("another origin: %v", err)
	}
}

func TestPairingOpenDialogsCapped(t *testing.T) {
	ap := agenttest.NewApprover(8)
	ta := startAgent(t, withApprover(ap))
	ctx := ctxT(t)
	var errs []chan error
	var asks []*agenttest.Ask
	for i := range 3 {
		errc, _ := pairAsync(ctx, ta.dial(client.Options{Origin: "https://o" + itoa(i) + ".example"}))
		errs = append(errs, errc)
		asks = append(asks, nextAsk(t, ctx, ap))
	}
	var ce *client.Error
	if err := ta.dial(client.Options{Origin: "https://o9.example"}).Pair(ctx, nil); !errors.As(err, &ce) || ce.Code != api.CodeRateLimited {
		t.Fatalf("a fourth open dialog: %v", err)
	}
	for i, a := range asks {
		a.Answer(false)
		if err := <-errs[i]; !errors.As(err, &ce) || ce.Code != api.CodeNotPaired {
			t.Fatalf("denied %d: %v", i, err)
		}
	}
}

func TestPairingOneDialogPerOrigin(t *testing.T) {
	ap := agenttest.NewApprover(4)
	ta := startAgent(t, withApprover(ap))
	ctx := ctxT(t)
	c1 := ta.dial(client.Options{Origin: pairOrigin})
	c2 := ta.dial(client.Options{Origin: pairOrigin})
	err1, code1 := pairAsync(ctx, c1)
	ask := nextAsk(t, ctx, ap)
	err2, code2 := pairAsync(ctx, c2)
	a, b := <-code1, <-code2 // c2 joined: it was shown the open request's code
	if a != b || a != ask.Code || ask.Origin != pairOrigin {
		t.Fatalf("codes %q %q, dialog %q", a, b, ask.Code)
	}
	// The same connection asking again is refused; still one dialog.
	var ce *client.Error
	if err := c1.Pair(ctx, nil); !errors.As(err, &ce) || ce.Code != api.CodeBadRequest {
		t.Fatalf("second pair on one connection: %v", err)
	}
	ask.Answer(true)
	for _, errc := range []chan error{err1, err2} {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if len(ap.Asks) != 0 {
		t.Fatal("a second dialog was opened")
	}
	if _, err := c2.Readers(ctx); err != nil {
		t.Fatalf("joined page after approval: %v", err)
	}
}

func TestPairingWithdrawnWhenPageGoes(t *testing.T) {
	ap := agenttest.NewApprover(4)
	ta := startAgent(t, withApprover(ap))
	ctx := ctxT(t)
	c := ta.dial(client.Options{Origin: pairOrigin})
	pairAsync(ctx, c)
	ask := nextAsk(t, ctx, ap)
	c.Close()
	<-ask.Done() // the dialog is told to close
	// The page comes back: a fresh request, a fresh dialog.
	pairNew(t, ta, ap, pairOrigin)
}

func TestState(t *testing.T) {
	ta := startAgent(t)
	ta.readers.WatchStarted = make(chan struct{}, 1)
	ctx := ctxT(t)
	changes, stop := ta.srv.StateChanges()
	defer stop()
	c := ta.dial(client.Options{}) // Serve has begun

	st := ta.srv.State(ctx)
	if st.Version != "test" || st.Addr != ta.addr || st.TLS || st.Running != 0 || len(st.Recent) != 0 ||
		len(st.Readers) != 2 || st.Readers[0].Name != "Fake Reader 0" || !st.Readers[0].Card || st.Readers[0].ATR != "3B00" ||
		len(st.Sites) != 1 || st.Sites[0].Origin != testOrigin {
		t.Fatalf("state: %+v", st)
	}

	// Changes are coalesced and never block: many, unread, leave one.
	for range 5 {
		ta.srv.AllowOrigin("https://demo.example")
	}
	<-changes
	select {
	case <-changes:
		t.Fatal("changes not coalesced")
	default:
	}

	// Reader and card events are changes.
	<-ta.readers.WatchStarted
	ta.readers.Emit(api.CardEvent{Type: api.TypeCardEvent, Event: api.EventCardRemoved, Reader: "Fake Reader 0"})
	<-changes

	// Jobs: running, then recent, newest first.
	if res, err := c.Run(ctx, &api.Job{Description: "x", Reader: "Fake Reader 1"}, nil, nil); err != nil || !res.OK {
		t.Fatalf("job: %+v %v", res, err)
	}
	if res, err := c.Run(ctx, &api.Job{Description: "x", Fields: map[string]string{"Fail": "card_error"}}, nil, nil); err != nil || res.OK {
		t.Fatalf("failing job: %+v %v", res, err)
	}
	st = waitState(t, ctx, ta.srv, changes, func(st agent.State) bool { return len(st.Recent) == 2 })
	if r := st.Recent[0]; r.Origin != testOrigin || r.Reader != "Fake Reader 0" || r.OK || r.Code != api.CodeCardError || r.Finished.Before(r.Started) {
		t.Fatalf("recent[0]: %+v", r)
	}
	if r := st.Recent[1]; r.Reader != "Fake Reader 1" || !r.OK || r.Code != "" || !strings.HasPrefix(r.ICCSN, "FAKE") {
		t.Fatalf("recent[1]: %+v", r)
	}
	j, err := c.Submit(ctx, &api.Job{Description: "x", Fields: map[string]string{"Steps": "1", "StepDelayMs": "600000"}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, ta.srv, changes, func(st agent.State) bool { return st.Running == 1 })
	if err := c.Cancel(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	st = waitState(t, ctx, ta.srv, changes, func(st agent.State) bool { return st.Running == 0 && len(st.Recent) == 3 })
	if st.Recent[0].Code != api.CodeCancelled {
		t.Fatalf("recent after cancel: %+v", st.Recent)
	}
	if len(st.Sites) != 2 || st.Sites[1] != (agent.Site{Origin: "https://demo.example", Configured: true}) {
		t.Fatalf("sites: %+v", st.Sites)
	}
}

func TestStateRecentJobsBounded(t *testing.T) {
	ta := startAgent(t, func(c *agentConfig, _ *agentDeps) { c.RecentJobs = 2 })
	ctx := ctxT(t)
	c := ta.dial(client.Options{})
	for i := range 3 {
		if _, err := c.Run(ctx, &api.Job{ID: "job" + itoa(i), Description: "x"}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	st := ta.srv.State(ctx)
	if len(st.Recent) != 2 || st.Recent[0].ID != "job2" || st.Recent[1].ID != "job1" {
		t.Fatalf("recent: %+v", st.Recent)
	}
}
