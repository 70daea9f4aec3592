package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/agenttest"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/journal"
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/gui/link"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/metrics"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/iotime"
	"github.com/cardwright/cardwright/web"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

var serveCmd = &command{
	name:    "serve",
	args:    "[flags]",
	summary: "run the agent headless: WebSocket /v1/ws, POST /CardJob, /v1/health",
	detail: `Serves card jobs from the allowed web origins on a loopback address until stopped
(SIGINT, SIGTERM). Logs go to stderr (or [log] file) as one JSON object a line.
The configuration is --config, else $CARDWRIGHT_CONFIG, else the system and per-user files
(docs/config.md); the protocol is in docs/protocol.md.`,
}

func init() {
	serveCmd.run = runServe
	register(serveCmd)
}

type serveFlags struct {
	config, listen, journal, logFormat, demoAddr string
	demoJob, demoCA, issuerCA                    string
	origins                                      stringList
	demo, fake                                   bool

	// desk is the desktop mode's GUI supervisor (desktop.go); nil for
	// serve, which is headless.
	desk *link.Supervisor

	// The Windows service's hooks (service_windows.go): logTo is a further
	// handler every log record goes to (the event log), ready is called
	// once the agent listens.
	logTo slog.Handler
	ready func()
}

// prompter is the local PIN dialog: the desktop app, or none (headless).
func (f *serveFlags) prompter() prompt.Prompter {
	if f.desk == nil {
		return nil
	}
	return f.desk
}

// define adds serve's flags to fs (desktop mode takes the same).
func (f *serveFlags) define(fs *flagSet) {
	fs.StringVar(&f.config, "config", "", "configuration `file` (default: $CARDWRIGHT_CONFIG, then the system and per-user files)")
	fs.StringVar(&f.listen, "listen", "", "loopback `address` to listen on (overrides [server] listen)")
	fs.Var(&f.origins, "allow-origin", "allow this web `origin` (repeatable; added to [server] origin)")
	fs.StringVar(&f.journal, "journal", "", "journal `directory` (overrides [log] journal)")
	fs.BoolVar(&f.demo, "demo-portal", false, "serve the demo portal on its own loopback origin and allow it")
	fs.StringVar(&f.demoAddr, "demo-listen", "127.0.0.1:0", "loopback `address` of the demo portal")
	fs.StringVar(&f.demoJob, "demo-job", "", "JSON `file` of the job (an api.Job: description, files, fields, secret, reader) the demo page submits")
	fs.StringVar(&f.demoCA, "demo-ca", "", "`directory` of the demo portal's test CA (default: demo-ca in the journal directory)")
	fs.StringVar(&f.issuerCA, "issuer-ca", "", "test CA `directory` that issues the certificates of POST /CardJob jobs (overrides [issuer] ca_dir; created when empty)")
	fs.BoolVar(&f.fake, "fake-runner", false, "run jobs with the in-memory fake runner (no card is touched; for demos and tests)")
	fs.StringVar(&f.logFormat, "log-format", "json", "log format: json or text")
}

func runServe(ctx context.Context, env *cmdEnv, args []string) int {
	var f serveFlags
	fs := serveCmd.flags(env)
	f.define(fs)
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	if !f.demo && (f.demoCA != "" || f.demoJob != "") {
		return fs.usageError("--demo-ca and --demo-job need --demo-portal (the CA of POST /CardJob is --issuer-ca or [issuer] ca_dir)")
	}
	if err := serve(ctx, env, &f); err != nil {
		// Like every line serve writes to stderr, one JSON object (or a
		// text record with --log-format text).
		if lg, lerr := newLogger(env.stderr, f.logFormat, "error"); lerr == nil {
			lg.Error("cardwright serve stopped", "err", err)
		} else {
			fmt.Fprintf(env.stderr, "cardwright serve: %v\n", err)
		}
		return exitFailure
	}
	return exitOK
}

func serve(ctx context.Context, env *cmdEnv, f *serveFlags) error {
	start := time.Now()
	path := f.config
	if path == "" {
		path = env.getenv(config.EnvVar)
	}
	cfg, err := config.Load(path)
	if err != nil {
		return fmt.Errorf("loading configuration: %w", err)
	}
	if f.listen != "" {
		cfg.Listen = f.listen
	}
	if f.journal != "" {
		cfg.Journal = f.journal
	}
	for _, o := range f.origins {
		if err := config.CheckOrigin(o); err != nil {
			return fmt.Errorf("--allow-origin: %w", err)
		}
		cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
	}

	logOut, closeLog, err := openLog(env, cfg.LogFile)
	if err != nil {
		return err
	}
	defer closeLog()
	log, err := newLogger(logOut, f.logFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	if f.logTo != nil {
		log = slog.New(slog.NewMultiHandler(log.Handler(), f.logTo))
	}
	// announce logs the addresses serve listens on; they also reach stderr
	// when the log goes to a file, so whoever started serve learns them.
	// stderr carries log records only (issue 11: no plain lines).
	announce := func(msg string, args ...any) {
		log.Info(msg, args...)
		if logOut != env.stderr {
			if lg, err := newLogger(env.stderr, f.logFormat, "info"); err == nil {
				lg.Info(msg, args...)
			}
		}
	}

	// The audit log first: the jobs the journal marks interrupted get
	// their records in it (an audit log that does not open leaves them
	// running in the journal for the next start).
	auditLog, closeAudit, err := serveAudit(env, cfg, log) // audit.go
	if err != nil {
		return err
	}
	defer closeAudit()
	dir := journalDir(env, cfg.Journal)
	journal, interrupted, err := journal.Open(dir)
	if err != nil {
		return err
	}
	defer journal.Close()
	if interrupted > 0 {
		log.Warn("jobs interrupted by the previous run are recorded as interrupted", "count", interrupted)
	}
	auditInterrupted(auditLog, journal.Interrupted(), log) // audit.go

	var (
		run     agent.Runner
		readers agent.ReaderSource // set below, before the agent serves
		busy    func(string) bool  // the Engine's reader locks: the self-test leaves busy readers alone
	)
	// The station's metrics, GET /v1/metrics (spec/station.md "Observability").
	stats := metrics.New(metrics.Options{Backlog: journal.Backlog, Readers: func(ctx context.Context) (int, error) {
		l, err := readers.Readers(ctx)
		return len(l), err
	}})
	clock := &iotime.Clock{OnAPDU: stats.APDU}
	switch {
	case f.fake:
		log.Warn("running with the fake runner: no card is touched")
		run = &agenttest.FakeRunner{Readers: []string{"Fake Reader 0"}, Headless: f.desk == nil}
		readers = &agenttest.FakeReaders{List: []api.Reader{{Name: "Fake Reader 0", Card: true, ATR: "3B8F8001804F0CA000000306030001000000006A"}}}
	default:
		book, err := openPace(env, cfg) // wire.go
		if err != nil {
			return err
		}
		if book.Discarded != nil {
			log.Warn("learned step timings discarded", "err", book.Discarded)
		}
		defer book.Save()
		r, rs, closer, err := newServeRunner(cfg, f.prompter(), book, clock) // wire.go
		if err != nil {
			return fmt.Errorf("starting the job runner: %w", err)
		}
		if closer != nil {
			defer closer.Close()
		}
		run, readers = r, rs
		if rr, ok := r.(*runner.Runner); ok {
			busy = rr.Engine.Busy
		}
	}

	// Headless: no PIN dialog, so sign and authenticate are refused with
	// prompt_unavailable; certificates works. The fake runner has no tokens.
	var certs agent.CertService
	var tokenLock func(module, serial string) (func(), bool) // the self-test's probe and certs share it
	if !f.fake {
		p := f.prompter()
		if p == nil {
			p = prompt.Refuse{}
		}
		cs := newCertService(cfg, p, log)
		certs, tokenLock = cs, cs.store.TryLockToken
	}
	deps := agent.Deps{Runner: run, Journal: journal, Readers: readers, Logger: log, Certs: certs}
	deps.Audit = auditLog // spec/station.md "Audit"
	deps.Observers = append(deps.Observers, stats)
	deps.Metrics = stats.Handler()
	deps.SelfTest = agentSelfTest(env, cfg, dir, busy, tokenLock) // GET /v1/health?full=1 (selftest.go)
	if f.desk != nil {
		deps.Approver = f.desk // pairing needs the local user (spec/gui.md property 4)
		deps.Raiser = f.desk   // cardwright open brings the app forward
	}
	srv, err := agent.New(agent.Config{
		AllowedOrigins:  cfg.AllowedOrigins,
		AllowedModules:  cfg.Modules,
		MaxMessageBytes: cfg.MaxMessageBytes,
		MaxJobs:         cfg.MaxJobs,
		RatePerSecond:   cfg.RatePerSecond,
		Version:         version,
		PairTimeout:     cfg.PairTimeout,
	}, deps)
	if err != nil {
		return err
	}
	if err := setCardJobIssuer(srv, cfg, f.issuerCA, log); err != nil { // serve_issuer.go
		return err
	}
	var tlsCfg *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("loading TLS certificate: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := agent.Listen(cfg.Listen)
	if err != nil {
		return err
	}
	scheme := "ws"
	if tlsCfg != nil {
		scheme = "wss"
	}
	agentURL := scheme + "://" + ln.Addr().String() + "/v1/ws"

	var wg sync.WaitGroup
	var demoSrv *http.Server
	if f.demo {
		dln, err := agent.Listen(f.demoAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("demo portal: %w", err)
		}
		origin := "http://" + dln.Addr().String()
		if err := srv.AllowOrigin(origin); err != nil {
			return err
		}
		caDir := f.demoCA
		if caDir == "" {
			caDir = filepath.Join(dir, "demo-ca")
		}
		ca, err := issuer.OpenLocalCA(caDir)
		if err != nil {
			return fmt.Errorf("demo portal CA: %w", err)
		}
		var job []byte
		if f.demoJob != "" {
			if job, err = os.ReadFile(f.demoJob); err != nil {
				return fmt.Errorf("demo job: %w", err)
			}
			var probe api.Job
			if err := json.Unmarshal(job, &probe); err != nil {
				return fmt.Errorf("demo job %s: %w", f.demoJob, err)
			}
		}
		demoSrv = &http.Server{Handler: demoHandler(agentURL, f.fake, job, ca, log), ReadHeaderTimeout: 5 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := demoSrv.Serve(dln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("demo portal", "err", err)
			}
		}()
		announce("demo portal", "url", origin+"/")
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln, tlsCfg) }()
	stopDesk := func() {}
	if f.desk != nil {
		f.desk.Agent, f.desk.Log = srv, log
		f.desk.PINTimeout = cfg.PINTimeout
		var dctx context.Context
		dctx, stopDesk = context.WithCancel(ctx)
		wg.Add(1)
		go func() { defer wg.Done(); f.desk.Run(dctx) }()
	}
	announce("agent ready", "url", agentURL, "journal", dir, "startup_ms", float64(time.Since(start).Microseconds())/1000)
	if f.ready != nil {
		f.ready()
	}

	select {
	case err = <-errc:
	case <-ctx.Done():
		log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = srv.Shutdown(sctx)
		if demoSrv != nil {
			demoSrv.Shutdown(sctx)
		}
		cancel()
		if e := <-errc; err == nil {
			err = e
		}
	}
	stopDesk()
	wg.Wait()
	return err
}

// demoHandler serves web/, sends / to the demo page with the agent's
// address, and issues certificates for the page's requests from a local
// test CA (POST /issue {csr, template} → {certificate, chain}; with
// key_archival and no csr → {pkcs12, password}, demoArchive), standing in
// for the portal's CA.
//
// With a demo job (--demo-job) the page submits that job (GET /demo-job.json)
// with the name typed on the page in the field HOLDER_NAME, or base64 in
// HOLDER (a profile parameter), when the job has it.
func demoHandler(agentURL string, fake bool, job []byte, ca *issuer.LocalCA, log *slog.Logger) http.Handler {
	files := http.FileServer(http.FS(web.Files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			q := url.Values{"agent": {agentURL}}
			if fake {
				q.Set("fake", "1")
			}
			http.Redirect(w, r, "/demo.html?"+q.Encode(), http.StatusFound)
			return
		}
		if r.URL.Path == "/issue" {
			demoIssue(w, r, ca, log)
			return
		}
		if r.URL.Path == "/demo-job.json" {
			if job == nil {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.Write(job)
			return
		}
		if _, err := fs.Stat(web.Files, strings.TrimPrefix(r.URL.Path, "/")); err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		files.ServeHTTP(w, r)
	})
}

func demoIssue(w http.ResponseWriter, r *http.Request, ca *issuer.LocalCA, log *slog.Logger) {
	if r.Method != http.MethodPost {
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	var req struct {
		CSR, Template, Application string
		KeyArchival                bool `json:"key_archival"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if req.KeyArchival {
		demoArchive(w, r, ca, req.Application, req.Template, log)
		return
	}
	csr, err := base64.StdEncoding.DecodeString(req.CSR)
	if err != nil {
		http.Error(w, "csr is not base64", http.StatusBadRequest)
		return
	}
	cert, chain, err := ca.Issue(r.Context(), issuer.Request{CSR: csr, Application: req.Application})
	if err != nil {
		log.Warn("demo CA refused a request", "err", err)
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	out := struct {
		Certificate string   `json:"certificate"`
		Chain       []string `json:"chain"`
	}{Certificate: base64.StdEncoding.EncodeToString(cert)}
	for _, c := range chain {
		out.Chain = append(out.Chain, base64.StdEncoding.EncodeToString(c))
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(&out)
}

// journalDir: the flag or [log] journal; else systemd's StateDirectory;
// else the per-user state directory.
func journalDir(env *cmdEnv, configured string) string {
	if configured != "" {
		return configured
	}
	if d := env.getenv("STATE_DIRECTORY"); d != "" {
		return strings.Split(d, ":")[0]
	}
	if d := env.getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "cardwright")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "cardwright")
	}
	return filepath.Join(os.TempDir(), "cardwright")
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want json or text", format)
}

// openLog opens the log file ([log] file) with size-based rotation, or
// returns stderr (journald collects it under systemd).
func openLog(env *cmdEnv, path string) (io.Writer, func(), error) {
	if path == "" {
		return env.stderr, func() {}, nil
	}
	rw, err := newRotatingFile(path, 10<<20, 5)
	if err != nil {
		return nil, nil, fmt.Errorf("opening log file: %w", err)
	}
	return rw, func() { rw.Close() }, nil
}

// rotatingFile renames path to path.1 (… path.N) when it passes max bytes.
type rotatingFile struct {
	mu   sync.Mutex
	path string
	max  int64
	keep int
	f    *os.File
	size int64
}

func newRotatingFile(path string, max int64, keep int) (*rotatingFile, error) {
	r := &rotatingFile{path: path, max: max, keep: keep}
	return r, r.open()
}

func (r *rotatingFile) open() error {
	if err := os.MkdirAll(filepath.Dir(r.path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, st.Size()
	return nil
}

func (r *rotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.size+int64(len(p)) > r.max && r.size > 0 {
		r.f.Close()
		for i := r.keep - 1; i >= 1; i-- {
			os.Rename(fmt.Sprintf("%s.%d", r.path, i), fmt.Sprintf("%s.%d", r.path, i+1))
		}
		os.Rename(r.path, r.path+".1")
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *rotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}
