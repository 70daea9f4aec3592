package agent

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/cardwright/cardwright/agent/journal"
	"github.com/cardwright/cardwright/p11/allowlist"
)

// DefaultPort is the agent's first-choice port; FallbackPorts are tried in
// order when it is taken. Portals (web/cardwright.js) probe the same list.
const DefaultPort = 27140

// FallbackPorts follow DefaultPort when it is in use.
var FallbackPorts = []int{27141, 27142, 27143}

// Config is what the agent enforces. Zero values take the defaults noted.
type Config struct {
	// AllowedOrigins are exact origins (scheme://host[:port]) whose pages may
	// use the agent. No wildcard exists.
	AllowedOrigins []string
	// AllowedModules lists PKCS#11 modules a description may name, with
	// the rule of every other part of the program (allowlist.Modules).
	AllowedModules allowlist.Modules

	MaxMessageBytes int           // default 4 MiB
	MaxJobs         int           // jobs in flight per session, default 4
	MaxConnections  int           // default 256
	RatePerSecond   int           // messages per second per connection, default 50 (burst 2×)
	IssueTimeout    time.Duration // how long a certificate request waits for its answer, default 5 min
	JournalMaxAge   time.Duration // unacknowledged results older than this are purged at start, default 30 days

	// Pairing policy (docs/protocol.md, "pair → pairing → paired"); it
	// holds whatever the Approver does.
	PairTimeout   time.Duration // an unanswered pairing request is denied after this, default 60 s
	PairPerMinute int           // pairing dialogs one origin may open per minute, default 3

	RecentJobs int // finished jobs State reports, default 10

	Version string // reported in welcome and health
}

func (c *Config) defaults() {
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 4 << 20
	}
	if c.MaxJobs == 0 {
		c.MaxJobs = 4
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 256
	}
	if c.RatePerSecond == 0 {
		c.RatePerSecond = 50
	}
	if c.IssueTimeout == 0 {
		c.IssueTimeout = 5 * time.Minute
	}
	if c.JournalMaxAge == 0 {
		c.JournalMaxAge = 30 * 24 * time.Hour
	}
	if c.PairTimeout == 0 {
		c.PairTimeout = 60 * time.Second
	}
	if c.PairPerMinute == 0 {
		c.PairPerMinute = 3
	}
	if c.RecentJobs == 0 {
		c.RecentJobs = 10
	}
	if c.Version == "" {
		c.Version = "dev"
	}
}

// ValidateOrigin checks that o is an exact origin: http or https, a host,
// no path, query, fragment or user info, no wildcard.
func ValidateOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil {
		return fmt.Errorf("origin %q: %w", o, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("origin %q: scheme must be http or https", o)
	}
	if u.Host == "" || strings.Contains(u.Host, "*") {
		return fmt.Errorf("origin %q: needs an exact host", o)
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("origin %q: an origin is scheme://host[:port] with nothing after it", o)
	}
	if strings.ToLower(o) != o {
		return fmt.Errorf("origin %q: write it in lower case, as browsers send it", o)
	}
	return nil
}

// Deps are the agent's collaborators. Runner and Journal are required.
type Deps struct {
	Runner   Runner
	Journal  *journal.Journal
	Readers  ReaderSource // nil: readers answers with an empty list
	Approver Approver     // nil: headless, no pairing
	Certs    CertService  // nil: certificates/sign/authenticate are not_supported
	Raiser   Raiser       // nil: headless, POST /v1/raise answers no_desktop_app
	Logger   *slog.Logger // nil: discard
	// Audit, if set, records every job that ran (report.go) before its
	// result is journaled and sent; while its Err is not nil no new job
	// runs (audit_unavailable).
	Audit AuditLog
	// Observers are told of every job that ran (the station's metrics).
	Observers []JobObserver
	// Metrics, if set, serves GET /v1/metrics (metrics.go); nil: 404.
	Metrics http.Handler
	// SelfTest, if set, answers GET /v1/health?full=1 (health.go); nil:
	// full=1 answers 501.
	SelfTest SelfTest
}

// Server is the agent's HTTP and WebSocket front.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	handlers map[string]http.HandlerFunc

	mu         sync.Mutex
	allowed    map[string]bool          // configured and paired origins
	configured []string                 // read-only sites: Config.AllowedOrigins, AllowOrigin
	paired     map[string]time.Time     // origins the local user approved, and when
	pairs      map[string]*pairRequest  // open pairing requests by origin
	pairRate   map[string]*rate.Limiter // pairing dialogs per origin
	sessions   map[string]*session
	conns      map[*conn]struct{}
	port       int
	addr       string
	tls        bool
	httpSrv    *http.Server

	xml   cardJobs
	state stateHub
	full  fullHealth // GET /v1/health?full=1 (health.go)

	nconns    atomic.Int64
	closing   atomic.Bool
	jobsWG    sync.WaitGroup
	baseCtx   context.Context
	cancelAll context.CancelFunc
}

// New builds a server. It validates the configuration and loads paired
// origins from the journal.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg.defaults()
	if deps.Runner == nil || deps.Journal == nil {
		return nil, errors.New("agent: Runner and Journal are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Logger, allowed: map[string]bool{},
		paired: map[string]time.Time{}, pairs: map[string]*pairRequest{}, pairRate: map[string]*rate.Limiter{},
		sessions: map[string]*session{}, conns: map[*conn]struct{}{}}
	for _, o := range cfg.AllowedOrigins {
		if err := ValidateOrigin(o); err != nil {
			return nil, fmt.Errorf("checking allowed origins: %w", err)
		}
		if !s.allowed[o] {
			s.configured = append(s.configured, o)
		}
		s.allowed[o] = true
	}
	for _, m := range cfg.AllowedModules {
		if m == "" || (strings.ContainsRune(m, '/') && !strings.HasPrefix(m, "/")) {
			return nil, fmt.Errorf("checking allowed modules: %q is neither an absolute path nor a file name", m)
		}
	}
	paired, err := deps.Journal.PairedOrigins()
	if err != nil {
		return nil, fmt.Errorf("loading paired origins: %w", err)
	}
	if deps.Approver != nil { // headless: configuration only
		for _, p := range paired {
			if !s.allowed[p.Origin] {
				s.paired[p.Origin] = p.At
				s.allowed[p.Origin] = true
			}
		}
	}
	if n, err := deps.Journal.Purge(cfg.JournalMaxAge); err != nil {
		return nil, fmt.Errorf("purging journal: %w", err)
	} else if n > 0 {
		s.log.Info("purged old unacknowledged results", "count", n)
	}
	s.baseCtx, s.cancelAll = context.WithCancel(context.Background())
	s.handlers = map[string]http.HandlerFunc{
		"/v1/ws":      s.serveWS,
		"/v1/health":  s.serveHealth,
		"/v1/raise":   s.serveRaise,   // raise.go
		"/v1/metrics": s.serveMetrics, // metrics.go
		"/CardJob":    s.serveCardJob,
	}
	return s, nil
}

// Listen opens a loopback listener on addr ("127.0.0.1:27140", "[::1]:0",
// "localhost:27140"). A non-loopback host is refused. When the port is
// DefaultPort and taken, FallbackPorts are tried in order.
func Listen(addr string) (net.Listener, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("parsing listen address: %w", err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("listen address %q: the agent listens on loopback only", addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: bad port", addr)
	}
	ports := []int{port}
	if port == DefaultPort {
		ports = append(ports, FallbackPorts...)
	}
	var firstErr error
	for _, p := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			return ln, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("listening on %s: %w", addr, firstErr)
}

// Serve serves on ln (which must be a loopback TCP listener) until
// Shutdown. tlsCfg may be nil for plain ws://.
func (s *Server) Serve(ln net.Listener, tlsCfg *tls.Config) error {
	ta, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !ta.IP.IsLoopback() {
		return fmt.Errorf("serving on %s: not a loopback TCP address", ln.Addr())
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.mu.Lock()
	if s.closing.Load() { // Shutdown came first
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.port = ta.Port
	s.addr = ta.String()
	s.httpSrv = hs
	s.tls = tlsCfg != nil
	s.mu.Unlock()
	s.changed()
	s.log.Info("agent listening", "addr", ln.Addr().String(), "tls", tlsCfg != nil, "origins", len(s.cfg.AllowedOrigins))
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, lets running jobs finish until ctx ends, then
// cancels the rest (their results are journaled as cancelled), and closes
// every socket with a reason.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true) // under mu: see beginJob
	hs := s.httpSrv
	s.mu.Unlock()
	var err error
	if hs != nil {
		err = hs.Shutdown(ctx)
	}
	done := make(chan struct{})
	go func() { s.jobsWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("shutdown: cancelling running jobs")
		s.cancelAll()
		<-done
	}
	s.cancelAll()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeWith(closeGoingAway, "agent shutting down")
	}
	s.log.Info("agent stopped")
	return err
}

// beginJob counts a job in jobsWG unless the agent is shutting down; the
// check and the Add happen under mu so Shutdown's Wait never races an Add.
func (s *Server) beginJob() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.jobsWG.Add(1)
	return true
}

// Port is the port Serve listens on (0 before Serve).
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// AllowOrigin adds an origin at run time (the demo portal). Like a
// configured origin it is a read-only site: RemoveSite refuses it.
func (s *Server) AllowOrigin(o string) error {
	if err := ValidateOrigin(o); err != nil {
		return err
	}
	s.mu.Lock()
	if !slices.Contains(s.configured, o) {
		s.configured = append(s.configured, o)
	}
	delete(s.paired, o)
	s.allowed[o] = true
	s.mu.Unlock()
	s.changed()
	return nil
}

func (s *Server) originAllowed(o string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allowed[o]
}

// checkHost accepts only loopback names with the port we listen on: a page
// on evil.example that rebinds its name to 127.0.0.1 still sends
// Host: evil.example and is refused (DNS rebinding).
func (s *Server) checkHost(h string) bool {
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		return false
	}
	s.mu.Lock()
	want := s.port
	s.mu.Unlock()
	if port != strconv.Itoa(want) {
		return false
	}
	switch strings.ToLower(host) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

// originState classifies a request's Origin.
type originState int

const (
	originNone    originState = iota // no Origin header: a local program, not a browser
	originAllowed                    // configured or paired
	originPairing                    // unknown, but may ask to pair on /v1/ws
	originDenied
)

func (s *Server) classifyOrigin(r *http.Request) (string, originState) {
	vals := r.Header.Values("Origin")
	if len(vals) == 0 {
		return "", originNone
	}
	o := vals[0]
	if len(vals) > 1 || o == "" || o == "null" {
		return o, originDenied
	}
	if s.originAllowed(o) {
		return o, originAllowed
	}
	if s.deps.Approver != nil && r.URL.Path == "/v1/ws" && ValidateOrigin(o) == nil {
		return o, originPairing
	}
	return o, originDenied
}

// ServeHTTP applies the Host and Origin checks to every request, answers
// CORS and Private Network Access preflights, then dispatches through the
// handler table.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.checkHost(r.Host) {
		s.log.Warn("request refused: host not loopback", "host", clip(r.Host, 200), "path", clip(r.URL.Path, 200), "origin", clip(r.Header.Get("Origin"), 200))
		http.Error(w, "forbidden: Host must be a loopback name with the agent's port", http.StatusForbidden)
		return
	}
	origin, st := s.classifyOrigin(r)
	if st == originDenied {
		s.log.Warn("request refused: origin not allowed", "origin", clip(origin, 200), "path", clip(r.URL.Path, 200))
		http.Error(w, "forbidden: origin not allowed", http.StatusForbidden)
		return
	}
	h, ok := s.handlers[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if st == originAllowed {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
		if r.Method == http.MethodOptions {
			// CORS preflight, and Chromium's Private/Local Network Access
			// preflight for a public page reaching 127.0.0.1.
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
			w.Header().Set("Access-Control-Max-Age", "600")
			if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
				w.Header().Set("Access-Control-Allow-Private-Network", "true")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
	} else if r.Method == http.MethodOptions {
		http.Error(w, "forbidden: origin not allowed", http.StatusForbidden)
		return
	}
	h(w, r)
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	running := 0
	for _, ss := range s.sessions {
		running += ss.running()
	}
	s.mu.Unlock()
	s.xml.mu.Lock()
	running += len(s.xml.running) // POST /CardJob jobs (cardjob.go): the self-test beside the agent reads "jobs"
	s.xml.mu.Unlock()
	plain := map[string]any{
		"status": "ok", "agent": "cardwright/" + s.cfg.Version, "protocol": []int{1},
		"connections": s.nconns.Load(), "jobs": running,
	}
	if r.URL.Query().Get("full") == "1" {
		s.serveFullHealth(w, r, plain) // health.go
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(plain)
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
