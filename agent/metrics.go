package agent

import "net/http"

// serveMetrics answers GET /v1/metrics with the station's metrics in the
// Prometheus exposition format (spec/station.md "Observability"). ServeHTTP
// has already checked the Host and the Origin, as for every endpoint; a
// local scraper sends no Origin.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.deps.Metrics == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.deps.Metrics.ServeHTTP(w, r)
}
