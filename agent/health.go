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
type SelfTest func(ctx context.Context, req SelfTestRequest) (report any, ok bool)

// SelfTestRequest is what a full health request asks of the self-test.
type SelfTestRequest struct {
	// Keygen: &keygen=1, a key generation on each token no job and no
	// certificate or sign operation is using. Monitoring scrapes full=1
	// often, so it generates nothing unless asked.
	Keygen bool
}

// fullHealthTTL: a full report this recent is answered again rather than
// run again.
const fullHealthTTL = 5 * time.Second

// fullHealth serialises full runs, with and without key generation: a
// request that arrives while one runs waits for it, and gets its report
// when it asked the same.
type fullHealth struct {
	mu   sync.Mutex
	last map[SelfTestRequest]fullReport
}

type fullReport struct {
	at  time.Time
	rep any
	ok  bool
}

// run returns a report for req at most fullHealthTTL old, running the
// self-test when there is none.
func (f *fullHealth) run(ctx context.Context, st SelfTest, req SelfTestRequest) (any, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l, ok := f.last[req]; ok && time.Since(l.at) < fullHealthTTL {
		return l.rep, l.ok
	}
	rep, ok := st(ctx, req)
	if ctx.Err() == nil { // a report cut short by a caller who left is not kept
		if f.last == nil {
			f.last = map[SelfTestRequest]fullReport{}
		}
		f.last[req] = fullReport{time.Now(), rep, ok}
	}
	return rep, ok
}

// serveFullHealth answers GET /v1/health?full=1[&keygen=1]: the plain
// health fields, "selftest" (the report), status "ok" or "fail", and 503
// when a check failed, which is what monitoring looks at.
func (s *Server) serveFullHealth(w http.ResponseWriter, r *http.Request, plain map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	var req SelfTestRequest
	switch r.URL.Query().Get("keygen") {
	case "1":
		req.Keygen = true
	case "", "0":
	default:
		w.WriteHeader(http.StatusBadRequest)
		plain["status"], plain["error"] = "error", "keygen: want 1 or 0"
		json.NewEncoder(w).Encode(plain)
		return
	}
	if s.deps.SelfTest == nil {
		w.WriteHeader(http.StatusNotImplemented)
		plain["status"], plain["error"] = "error", "this agent has no self-test"
		json.NewEncoder(w).Encode(plain)
		return
	}
	rep, ok := s.full.run(r.Context(), s.deps.SelfTest, req)
	plain["selftest"] = rep
	if !ok {
		plain["status"] = "fail"
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(plain)
}
