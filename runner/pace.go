package runner

// pace.go: per-step timing, timeouts and ETA (spec/station.md "Slow cards",
// "Per-step timing"). The engine times every step; the time a step spends
// waiting for a person (a PIN dialog, a PIN pad) or for the portal (a
// certificate request) is counted apart, so neither a timeout nor what is
// learned depends on how fast someone types.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cardwright/cardwright/dsc"
)

// StepTime is how long one step of a job took.
type StepTime struct {
	Name string // the step ("Application_A"; "select" and "finish" for the engine's own work)
	Kind string // what it does, for timing and metrics: StepKind
	// Duration is the step's wall time; Waited the part of it spent
	// waiting for a person or the portal (dialogs, PIN pad, issuer).
	Duration, Waited time.Duration
	OK               bool
}

// Work is the time the step spent working: Duration less Waited.
func (t StepTime) Work() time.Duration { return t.Duration - t.Waited }

// Step kinds beyond dsc's (dsc.StepKind names the rest: "init_profile",
// "set_pin", …).
const (
	KindSelect = "select" // choose the card, connect, begin the transaction, read the ICCSN
	KindKeygen = "keygen" // an application that generates its key on the card or token
	KindFinish = "finish" // identify the card once more before reporting
)

// StepKind is the kind of a plan step: dsc's kind name, except that an
// application generating a key is KindKeygen (the slow operation of real
// cards, research/anchors_turn2.md §4).
func StepKind(ps dsc.Step) string {
	if a, ok := ps.(*dsc.ApplicationStep); ok && a.App.Action == dsc.AppGenerateKey {
		return KindKeygen
	}
	return ps.Kind().String()
}

// Model names a card model for timing: its ATR in upper-case hex. Cards of
// one model and mask share an ATR; readers do not change it.
func Model(atr []byte) string { return strings.ToUpper(fmt.Sprintf("%X", atr)) }

// Pace learns how long each kind of step takes on each card model. The
// engine asks it for a step's timeout before the step and for expected
// durations to give progress events an ETA, and tells it what a step that
// ended well took (its work time). Implementations are safe for concurrent
// use; package pace has the station's.
type Pace interface {
	// Timeout is the longest a step of kind may work on model; 0 is none.
	Timeout(model, kind string) time.Duration
	// Expect is how long such a step is expected to work; false when
	// nothing is known yet.
	Expect(model, kind string) (time.Duration, bool)
	// Observe records a step of kind on model that ended well after work.
	Observe(model, kind string, work time.Duration)
}

// watch is one step's clock: it counts work time and waiting time apart and
// ends the step (cancel) when work time passes the limit. A step may wait
// several times; waits may nest.
type watch struct {
	mu      sync.Mutex
	start   time.Time
	limit   time.Duration // 0: none
	cancel  context.CancelFunc
	depth   int       // open waits
	since   time.Time // start of the current wait
	waited  time.Duration
	timer   *time.Timer
	expired bool
}

func newWatch(limit time.Duration, cancel context.CancelFunc) *watch {
	w := &watch{start: time.Now(), limit: limit, cancel: cancel}
	w.arm(limit)
	return w
}

func (w *watch) arm(d time.Duration) {
	if w.limit <= 0 {
		return
	}
	w.timer = time.AfterFunc(d, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.depth == 0 && w.work() >= w.limit {
			w.expired = true
			w.cancel()
		}
	})
}

// work is the time worked so far; w.mu held.
func (w *watch) work() time.Duration {
	d := time.Since(w.start) - w.waited
	if w.depth > 0 {
		d -= time.Since(w.since)
	}
	return d
}

// hold stops the work clock until the returned function is called.
func (w *watch) hold() (resume func()) {
	if w == nil {
		return func() {}
	}
	w.mu.Lock()
	if w.depth == 0 {
		w.since = time.Now()
		if w.timer != nil {
			w.timer.Stop()
		}
	}
	w.depth++
	w.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.depth--
			if w.depth == 0 {
				w.waited += time.Since(w.since)
				if w.limit > 0 && !w.expired {
					w.arm(max(w.limit-w.work(), 0))
				}
			}
		})
	}
}

// stop ends the clock and returns the step's wall time, its waiting time and
// whether the limit ended it.
func (w *watch) stop() (total, waited time.Duration, expired bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
	if w.depth > 0 {
		w.waited += time.Since(w.since)
		w.depth = 0
	}
	return time.Since(w.start), w.waited, w.expired
}

// eta is the expected work time of steps[from:] on model; false when pace
// knows nothing of one of them.
func eta(p Pace, model string, steps []Step, from int) (time.Duration, bool) {
	if p == nil {
		return 0, false
	}
	var sum time.Duration
	for _, st := range steps[from:] {
		d, ok := p.Expect(model, st.Kind)
		if !ok {
			return 0, false
		}
		sum += d
	}
	if d, ok := p.Expect(model, KindFinish); ok {
		sum += d
	}
	return sum, true
}
