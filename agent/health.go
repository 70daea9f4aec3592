package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// SelfTest runs the station self-test (spec/station.md "Self-test") for
// GET /v1/health?full=1: report is written as JSON under "selftest", ok is
// false when a check failed.
type SelfTest func(ctx context.Context) (report any, ok bool)

// fullHealthTTL: a full report this recent is answered again rather than
// run again (a key generation on every token costs time).
const fullHealthTTL = 5 * time.Second

// fullHealth serialises full runs: a request that arrives while one runs
// waits for it and gets its report.
type fullHealth struct {
	mu  sync.Mutex
	at  time.Time
	rep any
	ok  bool
}

// run returns a report at most fullHealthTTL old, running the self-test
// when there is none.
func (f *fullHealth) run(ctx context.Context, st SelfTest) (any, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rep != nil && time.Since(f.at) < fullHealthTTL {
		return f.rep, f.ok
	}
	rep, ok := st(ctx)
	if ctx.Err() == nil { // a report cut short by a caller who left is not kept
		f.rep, f.ok, f.at = rep, ok, time.Now()
	}
	return rep, ok
}

// serveFullHealth answers GET /v1/health?full=1: the plain health fields,
// "selftest" (the report), status "ok" or "fail", and 503 when a check
// failed, which is what monitoring looks at.
func (s *Server) serveFullHealth(w http.ResponseWriter, r *http.Request, plain map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if s.deps.SelfTest == nil {
		w.WriteHeader(http.StatusNotImplemented)
		plain["status"], plain["error"] = "error", "this agent has no self-test"
		json.NewEncoder(w).Encode(plain)
		return
	}
	rep, ok := s.full.run(r.Context(), s.deps.SelfTest)
	plain["selftest"] = rep
	if !ok {
		plain["status"] = "fail"
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(plain)
}
