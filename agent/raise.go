package agent

// raise.go: POST /v1/raise, how 'cardwright open' (the handler of the
// cardwright: URI scheme) brings a running desktop app forward. Only a
// local program may ask: a request with an Origin header — whatever its
// value, an allowed portal's too — or with the Sec-Fetch-* headers
// browsers add is refused, so no web page can pull windows to the front.

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/cardwright/cardwright/prompt"
)

// Raiser brings the desktop app forward: its status window, in front
// (gui/link's Supervisor). It fails with prompt.ErrUnavailable while no
// desktop app runs.
type Raiser interface {
	Raise() error
}

// Answers of POST /v1/raise besides 200 {"status":"raised"}, as the
// "error" of a JSON body {"error", "message"}.
const (
	RaiseNoDesktop   = "no_desktop_app"          // 409: a headless agent (serve, the service)
	RaiseUnavailable = "desktop_app_unavailable" // 503: the desktop app is not up (starting, restarting)
	RaiseForbidden   = "forbidden"               // 403: a browser's request
)

func (s *Server) serveRaise(w http.ResponseWriter, r *http.Request) {
	if vals := r.Header.Values("Origin"); len(vals) > 0 || r.Header.Get("Sec-Fetch-Site") != "" || r.Header.Get("Sec-Fetch-Mode") != "" {
		s.log.Warn("raise refused: a browser's request", "origin", clip(r.Header.Get("Origin"), 200), "sec_fetch_site", clip(r.Header.Get("Sec-Fetch-Site"), 40))
		raiseAnswer(w, http.StatusForbidden, RaiseForbidden, "only a local program may raise the desktop app, not a web page")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		raiseAnswer(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	if s.deps.Raiser == nil {
		raiseAnswer(w, http.StatusConflict, RaiseNoDesktop, "this agent runs headless (cardwright serve or the service): it has no desktop app to show")
		return
	}
	if err := s.deps.Raiser.Raise(); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, prompt.ErrUnavailable) {
			code = http.StatusServiceUnavailable
		}
		s.log.Warn("raise: the desktop app cannot be shown", "err", err)
		raiseAnswer(w, code, RaiseUnavailable, err.Error())
		return
	}
	s.log.Info("desktop app raised")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"status": "raised"})
}

func raiseAnswer(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "message": msg})
}

// clip shortens s for a log line: a header (up to 1 MB) is not ours to
// copy into the log whole.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
