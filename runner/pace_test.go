package runner_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/secret"
)

// fixedPace is a runner.Pace with set answers that records what it saw.
type fixedPace struct {
	mu       sync.Mutex
	timeout  map[string]time.Duration
	expect   map[string]time.Duration
	observed []string
	work     map[string]time.Duration
}

func (p *fixedPace) Timeout(model, kind string) time.Duration { return p.timeout[kind] }
func (p *fixedPace) Expect(model, kind string) (time.Duration, bool) {
	d, ok := p.expect[kind]
	return d, ok
}
func (p *fixedPace) Observe(model, kind string, work time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.observed = append(p.observed, model+"/"+kind)
	if p.work == nil {
		p.work = map[string]time.Duration{}
	}
	p.work[kind] = work
}

// TestStepTimes: every result carries the steps' timing, the engine's own
// select first and finish last, with the card's ATR and serial; steps that
// ended well are observed under the card model, with waiting held apart.
func TestStepTimes(t *testing.T) {
	rd := twoReaders()
	pace := &fixedPace{}
	ask := promptFunc(func() (secret.Value, error) {
		time.Sleep(30 * time.Millisecond) // a person typing
		return secret.New("1234"), nil
	})
	e := &runner.Engine{Readers: rd, Pace: pace, Prompter: ask}
	steps := []runner.Step{
		{Name: "Erase", Kind: "delete_profile", Run: func(context.Context, *runner.Session) error { return nil }},
		{Name: "SetPIN", Kind: "set_pin", Run: func(ctx context.Context, s *runner.Session) error {
			_, err := s.Ask(ctx, prompt.Request{Kind: prompt.TwoFields})
			return err
		}},
	}
	res := e.Exec(context.Background(), runner.Selection{Reader: "R1"}, steps, nil)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	var names []string
	for _, st := range res.Steps {
		names = append(names, st.Name+":"+st.Kind)
		if !st.OK || st.Duration < st.Waited {
			t.Errorf("step %+v", st)
		}
	}
	if got, want := names, []string{"select:select", "Erase:delete_profile", "SetPIN:set_pin", "finish:finish"}; !equal(got, want) {
		t.Errorf("steps %v, want %v", got, want)
	}
	pin := res.Steps[2]
	if pin.Waited < 30*time.Millisecond {
		t.Errorf("SetPIN waited %v, want the dialog's 30 ms held apart", pin.Waited)
	}
	if string(res.ATR) != "\x3B\x01" || string(res.Serial) != "\x04\x05\x06" {
		t.Errorf("ATR % X serial % X", res.ATR, res.Serial)
	}
	if got, want := pace.observed, []string{"3B01/delete_profile", "3B01/set_pin", "3B01/finish"}; !equal(got, want) {
		t.Errorf("observed %v, want %v", got, want)
	}
	if w := pace.work["set_pin"]; w != pin.Work() || w > pin.Duration-30*time.Millisecond {
		t.Errorf("learned work %v of a step of %v that waited %v: the dialog is not held apart", w, pin.Duration, pin.Waited)
	}
}

// TestStepTimeout: a step that works longer than its timeout ends the job
// with timeout, naming the step; waiting for a person does not count, and
// a failed step is not learned from.
func TestStepTimeout(t *testing.T) {
	// The limit is generous beside the step's own work (microseconds), the
	// dialog three times the limit: no outcome depends on the machine's load.
	pace := &fixedPace{timeout: map[string]time.Duration{"keygen": 300 * time.Millisecond}}
	e := &runner.Engine{Readers: twoReaders(), Pace: pace, Prompter: promptFunc(func() (secret.Value, error) {
		time.Sleep(900 * time.Millisecond)
		return secret.New("1234"), nil
	})}
	slow := func(ctx context.Context, s *runner.Session) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
			return nil
		}
	}
	res := e.Exec(context.Background(), runner.Selection{Reader: "R0"}, []runner.Step{{Name: "Application_A", Kind: "keygen", Run: slow}}, nil)
	if res.Err == nil || res.Err.Code != api.CodeTimeout || res.Err.Step != "Application_A" {
		t.Fatalf("err %+v, want timeout in Application_A", res.Err)
	}
	last := res.Steps[len(res.Steps)-1]
	if last.Name != "Application_A" || last.OK {
		t.Errorf("last step %+v", last)
	}
	for _, o := range pace.observed {
		if o == "3B00/keygen" {
			t.Error("a timed-out step was learned from")
		}
	}

	// The dialog takes 900 ms, three times the limit: held off the clock.
	waits := func(ctx context.Context, s *runner.Session) error {
		_, err := s.Ask(ctx, prompt.Request{Kind: prompt.OneField})
		return err
	}
	res = e.Exec(context.Background(), runner.Selection{Reader: "R0"}, []runner.Step{{Name: "Application_A", Kind: "keygen", Run: waits}}, nil)
	if res.Err != nil {
		t.Fatalf("a step waiting for a person timed out: %v", res.Err)
	}

	// The portal's cancel is cancelled, not timeout.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	pace.timeout["keygen"] = time.Hour
	res = e.Exec(ctx, runner.Selection{Reader: "R0"}, []runner.Step{{Name: "Application_A", Kind: "keygen", Run: slow}}, nil)
	if res.Err == nil || res.Err.Code != api.CodeCancelled {
		t.Fatalf("err %+v, want cancelled", res.Err)
	}
}

// TestProgressETA: progress events carry the expected work left once every
// remaining kind is known, and none before.
func TestProgressETA(t *testing.T) {
	ok := func(context.Context, *runner.Session) error { return nil }
	steps := []runner.Step{{Name: "A", Kind: "init_profile", Run: ok}, {Name: "B", Kind: "keygen", Run: ok}}
	pace := &fixedPace{expect: map[string]time.Duration{"init_profile": time.Second, "keygen": 20 * time.Second, "finish": 10 * time.Millisecond}}
	var got []runner.Progress
	e := &runner.Engine{Readers: twoReaders(), Pace: pace}
	e.Exec(context.Background(), runner.Selection{Reader: "R0"}, steps, func(p runner.Progress) { got = append(got, p) })
	if len(got) != 2 || !got[0].ETAKnown || got[0].ETA != 21010*time.Millisecond || got[1].ETA != 20010*time.Millisecond {
		t.Fatalf("progress %+v", got)
	}
	delete(pace.expect, "keygen")
	got = nil
	e.Exec(context.Background(), runner.Selection{Reader: "R0"}, steps, func(p runner.Progress) { got = append(got, p) })
	if got[0].ETAKnown || got[1].ETAKnown {
		t.Fatalf("ETA known without keygen: %+v", got)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
