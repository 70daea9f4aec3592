package agent

// jobs.go: jobs — accepting a job message, the one job lifecycle that
// WebSocket and POST /CardJob share (execute), the portal as issuer, cancel,
// ack and answers.

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/journal"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/jobrecord"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/secret"
)

// jobRun is a running job.
type jobRun struct {
	seq    uint64
	reqID  string
	cancel context.CancelFunc

	mu       sync.Mutex
	nextReq  int
	requests map[string]*pendingRequest
}

type pendingRequest struct {
	msg api.Request
	ch  chan *api.Answer
}

func (c *conn) onJob(id string, raw []byte) {
	s := c.s
	var m api.Job
	if !decode(c, id, raw, &m) {
		return
	}
	if s.closing.Load() {
		c.fail(id, api.CodeShuttingDown, "the agent is shutting down")
		return
	}
	if jerr := s.auditUnusable(); jerr != nil {
		c.fail(id, jerr.Code, jerr.Message)
		return
	}
	job, jerr := s.buildJob(&m)
	if jerr != nil {
		s.log.Warn("job refused", "origin", c.origin, "id", id, "code", jerr.Code, "reason", jerr.Message)
		c.fail(id, jerr.Code, jerr.Message)
		return
	}
	c.mu.Lock()
	ss := c.sess
	c.mu.Unlock()
	if ss == nil {
		c.fail(id, api.CodeBadRequest, "send hello first")
		return
	}
	// The job's context exists from its reservation on, so RemoveSite can
	// cancel every job it finds in a session.
	ctx, cancel := context.WithCancel(s.baseCtx)
	ss.mu.Lock()
	if len(ss.jobs) >= s.cfg.MaxJobs {
		ss.mu.Unlock()
		cancel()
		c.fail(id, api.CodeTooManyJobs, fmt.Sprintf("at most %d jobs may run at once per session", s.cfg.MaxJobs))
		return
	}
	if _, dup := ss.jobs[id]; dup {
		ss.mu.Unlock()
		cancel()
		c.fail(id, api.CodeBadRequest, "a job with this id is running")
		return
	}
	c.mu.Lock()
	paired := c.paired // RemoveSite unpairs the connection before it cancels the session's jobs
	c.mu.Unlock()
	if !paired {
		ss.mu.Unlock()
		cancel()
		c.fail(id, api.CodeNotPaired, "origin "+c.origin+" is not approved on this computer; send pair")
		return
	}
	jr := &jobRun{reqID: id, cancel: cancel, requests: map[string]*pendingRequest{}}
	ss.jobs[id] = jr // reserve before the journal write
	ss.mu.Unlock()
	if !s.beginJob() {
		ss.mu.Lock()
		delete(ss.jobs, id)
		ss.mu.Unlock()
		cancel()
		c.fail(id, api.CodeShuttingDown, "the agent is shutting down")
		return
	}
	seq, err := s.deps.Journal.Begin(ss.origin, ss.id, id, job.Reader)
	if err != nil {
		s.jobsWG.Done()
		ss.mu.Lock()
		delete(ss.jobs, id)
		ss.mu.Unlock()
		cancel()
		if errors.Is(err, journal.ErrDuplicateJob) {
			c.fail(id, api.CodeBadRequest, "job id already used and not yet acknowledged")
		} else {
			s.log.Error("journaling job", "err", err)
			c.fail(id, api.CodeInternal, "journal unavailable")
		}
		return
	}
	jr.seq = seq
	c.send(&api.Accepted{Type: api.TypeAccepted, ID: id})
	s.log.Info("job accepted", "origin", ss.origin, "session", ss.id[:6], "id", id, "job", seq, "reader", job.Reader)
	go s.runJob(ctx, ss, jr, job)
}

// buildJob decodes a job message into the runner's job and runs the checks
// that need no card: one description, base64, the module allow-list.
func (s *Server) buildJob(m *api.Job) (*runner.Job, *api.JobError) {
	job := &runner.Job{Reader: m.Reader, SecretOutputs: m.Secret,
		Fields: make(map[string]secret.Value, len(m.Fields))}
	switch {
	case m.Description != "" && m.DSZ != "":
		return nil, &api.JobError{Code: api.CodeBadRequest, Message: "give description or dsz, not both"}
	case m.Description != "":
		job.Name, job.Description = "job.dsc", []byte(m.Description)
	case m.DSZ != "":
		b, err := base64.StdEncoding.DecodeString(m.DSZ)
		if err != nil {
			return nil, &api.JobError{Code: api.CodeInvalidDescription, Message: "dsz is not base64: " + err.Error()}
		}
		job.DSZ = b
	default:
		return nil, &api.JobError{Code: api.CodeBadRequest, Message: "a job needs a description or a dsz"}
	}
	if len(m.Files) > 0 {
		files := runner.Files{}
		for name, v := range m.Files {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return nil, &api.JobError{Code: api.CodeInvalidField, Message: "file " + strconv.Quote(name) + " is not base64", File: name}
			}
			files[name] = b
		}
		job.Files = files
	}
	for k, v := range m.Fields {
		job.Fields[k] = secret.New(v)
	}
	if jerr := s.checkModules(job); jerr != nil {
		return nil, jerr
	}
	return job, nil
}

func (s *Server) runJob(ctx context.Context, ss *session, jr *jobRun, job *runner.Job) {
	defer s.jobsWG.Done()
	defer jr.cancel()
	started := time.Now()
	job.Issuer = portalIssuer{s: s, ss: ss, jr: jr}
	job.PromptNotify = func(kind, state, reader string) {
		ss.send(&api.Prompt{Type: api.TypePrompt, ID: jr.reqID, Kind: kind, State: state, Reader: reader})
	}
	wire := s.execute(ctx, "ws", ss.origin, jr.seq, jr.reqID, job, func(p runner.Progress) {
		ss.send(wireProgress(jr.reqID, p))
	}, nil)
	// Remove the job and send its result under the session lock: see
	// onHello for why.
	ss.mu.Lock()
	delete(ss.jobs, jr.reqID)
	idle := ss.conn == nil && len(ss.jobs) == 0
	if ss.conn != nil {
		ss.conn.send(wire)
	}
	ss.mu.Unlock()
	s.log.Info("job finished", "origin", ss.origin, "id", jr.reqID, "job", jr.seq, "result", resultCode(wire), "ms", time.Since(started).Milliseconds())
	if idle {
		s.dropSession(ss)
	}
}

// execute is the one job lifecycle that WebSocket and POST /CardJob jobs
// share once the job is journaled as running (seq): run it (a panic is
// internal, not the agent's end), turn the result into its wire form (only
// declared secret outputs carry secrets), journal it before anyone sees it
// — a result that cannot be journaled is not sent, an internal error is —
// and wipe the job's fields and secrets; the audit log and the observers
// get the job's record first (report.go; the record failing to append
// leaves the result as it is). fix, if set, amends the runner's
// result first.
func (s *Server) execute(ctx context.Context, via, origin string, seq uint64, reqID string, job *runner.Job, progress func(runner.Progress), fix func(*runner.Result)) (wire *api.Result) {
	started := time.Now().UTC()
	job.Origin = origin // the local PIN dialogs name it (spec/gui.md property 3)
	s.state.jobStarted()
	s.changed()
	reader := job.Reader
	defer func() {
		rec := RecentJob{Origin: origin, ID: reqID, Reader: reader, OK: wire.OK, Started: started, Finished: time.Now().UTC()}
		if wire.Error != nil {
			rec.Code = wire.Error.Code
		}
		if wire.OK {
			rec.ICCSN = wire.Fields["ICCSN"]
		}
		s.state.jobFinished(rec, s.cfg.RecentJobs)
		s.changed()
	}()
	res := s.safeRun(ctx, seq, job, progress)
	if fix != nil {
		fix(&res)
	}
	if res.Reader != "" {
		reader = res.Reader
	}
	finished := time.Now().UTC()
	wire = toWire(reqID, job, &res)
	wire.Started = started.Format(time.RFC3339Nano)
	wire.Finished = finished.Format(time.RFC3339Nano)
	rec := Report(via, origin, reqID, job, &res, started, finished)
	wipe(job, &res)
	s.report(rec) // a failed append is logged; the result stands
	if err := s.deps.Journal.Finish(seq, wire); err != nil {
		// Not durable: do not send what a crash could lose track of.
		s.log.Error("journaling result", "job", seq, "err", err)
		return &api.Result{Type: api.TypeResult, ID: reqID, Error: &api.JobError{Code: api.CodeInternal, Message: "the result could not be journaled"}}
	}
	return wire
}

// resultCode is "ok" or the result's error code, for the log.
func resultCode(r *api.Result) string {
	if r.Error != nil {
		return string(r.Error.Code)
	}
	return "ok"
}

// safeRun runs the job; a panicking runner ends the job with internal, not
// the agent.
func (s *Server) safeRun(ctx context.Context, seq uint64, job *runner.Job, progress func(runner.Progress)) (res runner.Result) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("runner panicked", "job", seq, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res = runner.Result{Err: &api.JobError{Code: api.CodeInternal, Message: "the runner failed unexpectedly"}}
		}
	}()
	return s.deps.Runner.Run(ctx, job, progress)
}

// toWire turns a runner result into the wire result, enforcing that secrets
// go only to outputs the job declared secret.
func toWire(reqID string, job *runner.Job, res *runner.Result) *api.Result {
	w := &api.Result{Type: api.TypeResult, ID: reqID, Steps: wireSteps(res.Steps)}
	if res.Err != nil {
		e := *res.Err
		w.Error = &e
		return w
	}
	for name := range res.Secrets {
		if !isSecretOutput(job, name) {
			w.Error = &api.JobError{Code: api.CodeSecretOutput, Message: "the job produced a secret for output " + strconv.Quote(name) + ", which the job did not declare secret; the result is withheld"}
			return w
		}
	}
	w.OK = true
	w.Fields = res.Fields
	if len(res.Secrets) > 0 {
		w.Secrets = make(map[string]string, len(res.Secrets))
		for k, v := range res.Secrets {
			w.Secrets[k] = v.Reveal() // declared secret output: leaves on purpose
		}
	}
	return w
}

// wireProgress is a progress event on the wire, with its ETA when known.
func wireProgress(id string, p runner.Progress) *api.Progress {
	w := &api.Progress{Type: api.TypeProgress, ID: id, Step: p.Step, N: p.N, Total: p.Total}
	if p.ETAKnown {
		w.ETAMS = max(p.ETA.Milliseconds(), 1)
	}
	return w
}

// wireSteps is a result's per-step timing on the wire.
func wireSteps(steps []runner.StepTime) []api.StepTime {
	var w []api.StepTime
	for _, st := range jobrecord.Steps(steps) {
		w = append(w, api.StepTime{Step: st.Name, Kind: st.Kind, OK: st.OK, MS: st.MS, WaitedMS: st.WaitedMS})
	}
	return w
}

func wipe(job *runner.Job, res *runner.Result) {
	for k, v := range job.Fields {
		v.Wipe()
		delete(job.Fields, k)
	}
	for k, v := range res.Secrets {
		v.Wipe()
		delete(res.Secrets, k)
	}
}

// portalIssuer is issuer.Issuer over the session that sent the job: each
// request goes to the portal as a request event and waits for its answer.
type portalIssuer struct {
	s  *Server
	ss *session
	jr *jobRun
}

// Issue implements issuer.Issuer.
func (p portalIssuer) Issue(ctx context.Context, req issuer.Request) ([]byte, [][]byte, error) {
	a, err := p.s.issue(ctx, p.ss, p.jr, req)
	if err != nil {
		return nil, nil, err
	}
	return decodeAnswer(a, req.Application)
}

// Archive implements issuer.Archiver: a request with key_archival and no
// csr; the portal answers with the PKCS#12 of the key it made and archived,
// and its password (docs/protocol.md, "request → answer → ok").
func (p portalIssuer) Archive(ctx context.Context, req issuer.Request) (issuer.Archived, error) {
	req.KeyArchival, req.CSR = true, nil
	a, err := p.s.issue(ctx, p.ss, p.jr, req)
	if err != nil {
		return issuer.Archived{}, err
	}
	return decodeArchived(a, req.Application)
}

// issue sends a request event to the session and waits for the answer.
func (s *Server) issue(ctx context.Context, ss *session, jr *jobRun, req issuer.Request) (*api.Answer, error) {
	jr.mu.Lock()
	jr.nextReq++
	rid := strconv.Itoa(jr.nextReq)
	msg := api.Request{Type: api.TypeRequest, ID: jr.reqID, Request: rid, Application: req.Application, Template: req.Template, KeyArchival: req.KeyArchival}
	if !req.KeyArchival {
		msg.CSR = base64.StdEncoding.EncodeToString(req.CSR)
	}
	p := &pendingRequest{ch: make(chan *api.Answer, 1), msg: msg}
	jr.requests[rid] = p
	jr.mu.Unlock()
	defer func() {
		jr.mu.Lock()
		delete(jr.requests, rid)
		jr.mu.Unlock()
	}()
	ss.send(&p.msg)
	t := time.NewTimer(s.cfg.IssueTimeout)
	defer t.Stop()
	select {
	case a := <-p.ch:
		return a, nil
	case <-ctx.Done():
		return nil, &api.JobError{Code: api.CodeCancelled, Message: "job cancelled while waiting for the certificate", Step: "request"}
	case <-t.C:
		return nil, &api.JobError{Code: api.CodeIssuerError, Message: "the portal did not answer the certificate request in time", Step: "request"}
	}
}

// decodeArchived returns the PKCS#12 (DER) and password of an answer to a
// key-archival request. The password becomes a secret.Value and leaves
// the answer; it is in no message. A missing or undecodable pkcs12 is
// issuer_error; whether the PKCS#12 opens with the password, and that the
// password is there, the runner checks before writing anything.
func decodeArchived(a *api.Answer, app string) (issuer.Archived, error) {
	pw := secret.New(a.Password)
	a.Password = ""
	ierr := func(msg string) error {
		pw.Wipe()
		return &api.JobError{Code: api.CodeIssuerError, Message: msg, Step: "request"}
	}
	if a.Error != "" {
		return issuer.Archived{}, ierr("the portal could not archive the key of Application_" + app + ": " + truncate(a.Error, 300))
	}
	if a.PKCS12 == "" {
		if a.Certificate != "" {
			return issuer.Archived{}, ierr("the portal answered the key-archival request of Application_" + app + " with a certificate; the server makes this key and must answer with pkcs12 and password")
		}
		return issuer.Archived{}, ierr("the answer to the key-archival request of Application_" + app + " has no pkcs12")
	}
	der, err := base64.StdEncoding.DecodeString(a.PKCS12)
	if err != nil {
		return issuer.Archived{}, ierr("the pkcs12 of the answer for Application_" + app + " is not base64")
	}
	return issuer.Archived{PKCS12: der, Password: pw}, nil
}

// decodeAnswer returns the certificate and chain of an answer (DER). A
// PKCS#12 answer to a request with a csr is refused: that key was made on
// the card (server-made keys are key-archival requests, decodeArchived).
func decodeAnswer(a *api.Answer, app string) ([]byte, [][]byte, error) {
	a.Password = "" // not used here; dropped at once
	ierr := func(msg string) error {
		return &api.JobError{Code: api.CodeIssuerError, Message: msg, Step: "request"}
	}
	if a.Error != "" {
		return nil, nil, ierr("the portal could not issue the certificate: " + truncate(a.Error, 300))
	}
	if a.PKCS12 != "" {
		return nil, nil, ierr("the portal answered the request of Application_" + app + " with a PKCS#12; this job generates its key on the card and needs a certificate")
	}
	if a.Certificate == "" {
		return nil, nil, ierr("the answer has neither certificate nor pkcs12")
	}
	parse := func(s string) ([]byte, error) {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, ierr("certificate is not base64")
		}
		if _, err := x509.ParseCertificate(der); err != nil {
			return nil, ierr("parsing the issued certificate: " + err.Error())
		}
		return der, nil
	}
	cert, err := parse(a.Certificate)
	if err != nil {
		return nil, nil, err
	}
	var chain [][]byte
	for _, c := range a.Chain {
		der, err := parse(c)
		if err != nil {
			return nil, nil, err
		}
		chain = append(chain, der)
	}
	return cert, chain, nil
}

func (c *conn) onCancel(id string, raw []byte) {
	var m api.Cancel
	if !decode(c, id, raw, &m) {
		return
	}
	jr := c.job(m.Job)
	if jr == nil {
		c.fail(id, api.CodeUnknownJob, "no running job "+strconv.Quote(m.Job))
		return
	}
	jr.cancel()
	c.send(&api.OK{Type: api.TypeOK, ID: id})
}

func (c *conn) job(reqID string) *jobRun {
	c.mu.Lock()
	ss := c.sess
	c.mu.Unlock()
	if ss == nil {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.jobs[reqID]
}

func (c *conn) onAck(id string, raw []byte) {
	var m api.Ack
	if !decode(c, id, raw, &m) {
		return
	}
	c.mu.Lock()
	ss := c.sess
	c.mu.Unlock()
	if ss == nil {
		c.fail(id, api.CodeBadRequest, "send hello first")
		return
	}
	if err := c.s.deps.Journal.Ack(ss.origin, ss.id, m.Job); err != nil {
		if errors.Is(err, journal.ErrUnknownJob) {
			c.fail(id, api.CodeUnknownJob, "no finished, unacknowledged job "+strconv.Quote(m.Job))
			return
		}
		c.s.log.Error("journaling ack", "err", err)
		c.fail(id, api.CodeInternal, "journal unavailable")
		return
	}
	c.send(&api.OK{Type: api.TypeOK, ID: id})
}

func (c *conn) onAnswer(id string, raw []byte) {
	// An answer may carry a PKCS#12 password: the frame's bytes are
	// overwritten once decoded (the read loop is done with them).
	defer clear(raw)
	var m api.Answer
	if !decode(c, id, raw, &m) {
		return
	}
	jr := c.job(m.Job)
	if jr == nil {
		c.fail(id, api.CodeUnknownJob, "no running job "+strconv.Quote(m.Job))
		return
	}
	jr.mu.Lock()
	p := jr.requests[m.Request]
	if p != nil {
		delete(jr.requests, m.Request)
	}
	jr.mu.Unlock()
	if p == nil {
		c.fail(id, api.CodeUnknownJob, "job "+strconv.Quote(m.Job)+" has no open request "+strconv.Quote(m.Request))
		return
	}
	p.ch <- &m
	c.send(&api.OK{Type: api.TypeOK, ID: id})
}
