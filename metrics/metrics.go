// Package metrics keeps a station's Prometheus metrics (spec/station.md
// "Observability"): jobs by result, step and key-generation durations by
// card model, APDU round trips, cards per hour, readers present and the
// journal's backlog. The agent serves them on GET /v1/metrics; the station's
// existing Prometheus scrapes them.
//
// A Station learns of jobs as an agent.JobObserver (JobFinished with the
// job's audit.Record) and of APDUs through iotime.Clock.OnAPDU (APDU).
package metrics

import (
	"context"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cardwright/cardwright/audit"
)

const namespace = "cardwright"

// Label values that stand for a model the Station does not name.
const (
	ModelNone  = "none"  // the job read no ATR (it failed before the card, or used a token only)
	ModelOther = "other" // past Options.MaxModels, or not an ATR
)

// StepBuckets are the step-duration buckets in seconds: 10 ms to 5 min,
// since real cards take seconds to minutes for an RSA key
// (research/anchors_turn2.md §4: averages 2–69 s, tails to 146 s; Nitrokey
// up to 5 min) and milliseconds for everything else.
var StepBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 90, 120, 180, 300}

// APDUBuckets are the APDU round-trip buckets in seconds: a virtual card
// answers in well under a millisecond, a real one in about 40 ms
// (anchors §4), GENERATE ASYMMETRIC KEY PAIR in seconds to minutes.
var APDUBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 150}

// Options are a Station's sources. Zero values take the defaults noted.
type Options struct {
	// Readers counts the readers present (agent.ReaderSource's list);
	// nil: cardwright_readers_present is not exported.
	Readers func(ctx context.Context) (int, error)
	// Backlog counts the results not yet acknowledged by their portal
	// (journal.Backlog); nil: cardwright_journal_backlog is not exported.
	Backlog func() (int, error)
	// MaxModels caps the distinct model label values (each an ATR a card
	// chose), so that cards with made-up ATRs cannot grow the metrics
	// without bound; later models are ModelOther. Default 32.
	MaxModels int
	// Now is the clock of the cards-per-hour window; default time.Now.
	Now func() time.Time
	// NoRuntime leaves out the Go and process collectors (benchmarks).
	NoRuntime bool
}

// Station is a station's metrics. It is safe for concurrent use.
type Station struct {
	reg    *prometheus.Registry
	jobs   *prometheus.CounterVec
	jobDur prometheus.Histogram
	steps  *prometheus.HistogramVec
	keygen *prometheus.HistogramVec
	apdu   prometheus.Histogram

	now       func() time.Time
	maxModels int

	mu     sync.Mutex
	models map[string]bool // model label values in use, at most maxModels
	hour   window
}

// New builds a Station with its own registry.
func New(o Options) *Station {
	if o.MaxModels <= 0 {
		o.MaxModels = 32
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Station{reg: prometheus.NewRegistry(), now: o.Now, maxModels: o.MaxModels, models: map[string]bool{}}
	s.jobs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "jobs_total",
		Help: `Jobs that ran, by how they came (via: ws, cardjob, batch, cli) and how they ended (result: "ok" or the error code).`,
	}, []string{"via", "result"})
	s.jobDur = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "job_duration_seconds",
		Help:    "Wall time of each job that ran, from accepted to finished, waits for people included.",
		Buckets: StepBuckets,
	})
	s.steps = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "step_duration_seconds",
		Help:    "Work time of each step (waits for a person or the portal left out), by step kind and card model (ATR hex).",
		Buckets: StepBuckets,
	}, []string{"kind", "model"})
	s.keygen = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "keygen_duration_seconds",
		Help:    "Work time of each key generation that succeeded, by card model (ATR hex).",
		Buckets: StepBuckets,
	}, []string{"model"})
	s.apdu = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "apdu_round_trip_seconds",
		Help:    "Round trip of each APDU exchanged with a card over PC/SC.",
		Buckets: APDUBuckets,
	})
	s.reg.MustRegister(s.jobs, s.jobDur, s.steps, s.keygen, s.apdu)
	s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "cards_per_hour",
		Help: "Jobs that ended ok in the last 60 minutes (a sliding window of one-minute slots).",
	}, s.cardsPerHour))
	if o.Readers != nil {
		s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "readers_present",
			Help: "Card readers the agent sees now (NaN when they cannot be listed).",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return count(o.Readers(ctx))
		}))
	}
	if o.Backlog != nil {
		s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "journal_backlog",
			Help: "Finished job results in the journal that their portal has not acknowledged yet (NaN when the journal cannot be read).",
		}, func() float64 { return count(o.Backlog()) }))
	}
	if !o.NoRuntime {
		s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return s
}

func count(n int, err error) float64 {
	if err != nil {
		return math.NaN()
	}
	return float64(n)
}

// JobFinished counts a job that ran (agent.JobObserver). It does not block
// on anything but the Station's own lock.
func (s *Station) JobFinished(rec *audit.Record) {
	s.jobs.WithLabelValues(label(rec.Via), label(rec.Result)).Inc()
	if !rec.Started.IsZero() && !rec.Time.Before(rec.Started) {
		s.jobDur.Observe(rec.Time.Sub(rec.Started).Seconds())
	}
	model := s.model(rec.ATR)
	for _, st := range rec.Steps {
		work := max(st.MS-st.WaitedMS, 0) / 1000
		s.steps.WithLabelValues(label(st.Kind), model).Observe(work)
		if st.Kind == "keygen" && st.OK { // runner.KindKeygen
			s.keygen.WithLabelValues(model).Observe(work)
		}
	}
	if rec.Result == "ok" {
		at := rec.Time
		if at.IsZero() {
			at = s.now()
		}
		s.mu.Lock()
		s.hour.add(at)
		s.mu.Unlock()
	}
}

// APDU counts one APDU round trip (iotime.Clock.OnAPDU).
func (s *Station) APDU(d time.Duration) { s.apdu.Observe(d.Seconds()) }

// Handler serves the metrics in the Prometheus exposition formats.
func (s *Station) Handler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Gatherer is the Station's registry, for tests and other exporters.
func (s *Station) Gatherer() prometheus.Gatherer { return s.reg }

// model is the label value of a card's ATR: the ATR itself while fewer
// than maxModels are in use, else ModelOther. An ATR is at most 33 bytes
// (ISO/IEC 7816-3 §8.2.1) written in upper-case hex.
func (s *Station) model(atr string) string {
	if atr == "" {
		return ModelNone
	}
	if len(atr) > 66 || len(atr)%2 != 0 || strings.IndexFunc(atr, notHex) >= 0 {
		return ModelOther
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.models[atr] {
		return atr
	}
	if len(s.models) >= s.maxModels {
		return ModelOther
	}
	s.models[atr] = true
	return atr
}

// label is s as a label value. Via, result and kind come from the program's
// own fixed lists; this only keeps a label value valid UTF-8 and short, since
// the client library panics on invalid UTF-8.
func label(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.ToValidUTF8(s, "?")
}

func notHex(r rune) bool { return !('0' <= r && r <= '9' || 'A' <= r && r <= 'F') }

func (s *Station) cardsPerHour() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return float64(s.hour.sum(s.now()))
}

// window counts events over the last 60 minutes in one-minute slots: the
// current minute and the 59 before it. Its size is fixed whatever the rate.
type window struct {
	slot [60]struct {
		minute int64 // Unix minute the count belongs to
		n      int
	}
}

func (w *window) add(t time.Time) {
	m := t.Unix() / 60
	sl := &w.slot[(m%60+60)%60]
	switch {
	case sl.minute > m: // older than the window the slot now holds
		return
	case sl.minute < m:
		sl.minute, sl.n = m, 0
	}
	sl.n++
}

func (w *window) sum(now time.Time) int {
	m := now.Unix() / 60
	n := 0
	for _, sl := range w.slot {
		if sl.minute > m-60 && sl.minute <= m {
			n += sl.n
		}
	}
	return n
}
