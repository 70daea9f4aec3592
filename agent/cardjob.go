package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/journal"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/runner"
)

// Card-SDK-style XML jobs (POST /CardJob), for production integrations
// written against the incumbent's SDK. The exchange is synchronous: the
// response is the job's outcome. docs/protocol.md ("POST /CardJob") gives
// the format.

// CardJobRequest is the request document.
type CardJobRequest struct {
	XMLName      xml.Name       `xml:"card_job"`
	ID           string         `xml:"id,attr,omitempty"`
	Reader       string         `xml:"reader,omitempty"`
	Applications []CardJobApp   `xml:"applications>application"`
	Fields       []CardJobField `xml:"text_fields>text_field"`
}

// CardJobApp carries one encoding description: a base64 .dsz (zip).
type CardJobApp struct {
	Name string `xml:"name,attr,omitempty"`
	DSZ  string `xml:",chardata"`
}

// CardJobField is a text field: a value the job supplies, or (read="true")
// one the job returns. secret="true" marks an output that may carry a
// secret (decrypted PINs).
type CardJobField struct {
	Name   string `xml:"name,attr"`
	Read   bool   `xml:"read,attr,omitempty"`
	Secret bool   `xml:"secret,attr,omitempty"`
	Value  string `xml:",chardata"`
}

// CardJobResponse is the success document.
type CardJobResponse struct {
	XMLName xml.Name       `xml:"card_job_response"`
	ID      string         `xml:"id,attr,omitempty"`
	Fields  []CardJobField `xml:"text_fields>text_field"`
}

// CardJobCancel cancels a running XML job by its id.
type CardJobCancel struct {
	XMLName xml.Name `xml:"cancel_job"`
	ID      string   `xml:"id,attr"`
}

// StatusResponse reports errors, cancellation, and the outcome of a cancel.
type StatusResponse struct {
	XMLName xml.Name `xml:"status_response"`
	ID      string   `xml:"id,attr,omitempty"`
	Status  string   `xml:"status"` // "ok", "error", "cancelled"
	Code    api.Code `xml:"code,omitempty"`
	Message string   `xml:"message,omitempty"`
	Step    string   `xml:"step,omitempty"`
	Key     string   `xml:"key,omitempty"`
	Line    int      `xml:"line,omitempty"`
}

const cardJobSession = "cardjob-http-session"

// CardJobMaxBytes caps a POST /CardJob body. An application is a base64
// .dsz of up to dsc.MaxDSZSize (16 MiB), 4/3 of that in base64 (21.3 MiB,
// 21.9 MiB wrapped in 76-character lines); the rest is room for the XML and
// the text fields. A WebSocket frame limit set higher raises it.
const CardJobMaxBytes = 24 << 20

// cardJobs are the XML jobs running now, by origin NUL id, for cancel_job,
// and the issuer that answers their certificate requests.
type cardJobs struct {
	mu      sync.Mutex
	running map[string]context.CancelFunc
	issuer  issuer.Issuer
}

// SetCardJobIssuer gives POST /CardJob jobs an issuer for the certificate
// requests of keys they generate (`cardwright serve`: the local CA of
// [issuer] ca_dir or --issuer-ca). Without one such jobs are refused before
// any card I/O. Call it before Serve.
func (s *Server) SetCardJobIssuer(iss issuer.Issuer) {
	s.xml.mu.Lock()
	s.xml.issuer = iss
	s.xml.mu.Unlock()
}

// noIssuerHint is added to the runner's refusal of a job that generates
// keys when no issuer is configured for POST /CardJob.
const noIssuerHint = "; POST /CardJob has no portal to answer certificate requests: configure a local CA with [issuer] ca_dir (docs/config.md) or cardwright serve --issuer-ca DIR"

// writeXML writes the document and flushes it; the error says whether it
// reached the connection (results are acknowledged only then).
func writeXML(w http.ResponseWriter, status int, v any) error {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.WriteByte('\n')
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	if _, err := w.Write(b.Bytes()); err != nil {
		return err
	}
	return http.NewResponseController(w).Flush()
}

// rootElement is the name of the document's first element.
func rootElement(body []byte) (string, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.Token()
		if err != nil {
			return "", err
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name.Local, nil
		}
	}
}

func statusErr(id string, e *api.JobError) *StatusResponse {
	st := "error"
	if e.Code == api.CodeCancelled {
		st = "cancelled"
	}
	return &StatusResponse{ID: id, Status: st, Code: e.Code, Message: e.Message, Step: e.Step, Key: e.Key, Line: e.Line}
}

// serveCardJob answers POST /CardJob. HTTP statuses (docs/protocol.md):
// 200 with card_job_response or status_response for every card_job and
// cancel_job that was read (job errors included), 400 for a body that is
// not one of them, 405 for another method, 413 over the size limit, 503
// while shutting down.
func (s *Server) serveCardJob(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeXML(w, http.StatusMethodNotAllowed, &StatusResponse{Status: "error", Code: api.CodeBadRequest, Message: "use POST"})
		return
	}
	limit := int64(max(CardJobMaxBytes, s.cfg.MaxMessageBytes))
	tooLarge := &StatusResponse{Status: "error", Code: api.CodeMessageTooLarge, Message: "request exceeds the size limit of " + strconv.FormatInt(limit, 10) + " bytes"}
	if r.ContentLength > limit {
		writeXML(w, http.StatusRequestEntityTooLarge, tooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeXML(w, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		writeXML(w, http.StatusBadRequest, &StatusResponse{Status: "error", Code: api.CodeBadRequest, Message: "reading the request body failed"})
		return
	}
	// Which document is it? Its first element says; the body is parsed
	// once more below, in full.
	root, err := rootElement(body)
	if err != nil {
		writeXML(w, http.StatusBadRequest, &StatusResponse{Status: "error", Code: api.CodeBadRequest, Message: truncate("parsing XML: "+err.Error(), 200)})
		return
	}
	switch root {
	case "cancel_job":
		var c CardJobCancel
		xml.Unmarshal(body, &c)
		s.xml.mu.Lock()
		cancel := s.xml.running[r.Header.Get("Origin")+"\x00"+c.ID]
		s.xml.mu.Unlock()
		if cancel == nil {
			writeXML(w, http.StatusOK, &StatusResponse{ID: c.ID, Status: "error", Code: api.CodeUnknownJob, Message: "no running job with this id"})
			return
		}
		cancel()
		writeXML(w, http.StatusOK, &StatusResponse{ID: c.ID, Status: "ok"})
		return
	case "card_job":
	default:
		writeXML(w, http.StatusBadRequest, &StatusResponse{Status: "error", Code: api.CodeBadRequest, Message: "expected card_job or cancel_job"})
		return
	}
	var req CardJobRequest
	if err := xml.Unmarshal(body, &req); err != nil {
		writeXML(w, http.StatusBadRequest, &StatusResponse{Status: "error", Code: api.CodeBadRequest, Message: truncate("parsing card_job: "+err.Error(), 200)})
		return
	}
	if s.closing.Load() {
		writeXML(w, http.StatusServiceUnavailable, &StatusResponse{ID: req.ID, Status: "error", Code: api.CodeShuttingDown, Message: "the agent is shutting down"})
		return
	}
	if jerr := s.auditUnusable(); jerr != nil {
		writeXML(w, http.StatusServiceUnavailable, statusErr(req.ID, jerr))
		return
	}
	if len(req.Applications) == 0 {
		writeXML(w, http.StatusOK, &StatusResponse{ID: req.ID, Status: "error", Code: api.CodeBadRequest, Message: "card_job has no application"})
		return
	}
	id := req.ID
	if id == "" {
		id = randomToken(9)
	}
	origin := r.Header.Get("Origin")
	key := origin + "\x00" + id
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	s.xml.mu.Lock()
	if s.xml.running == nil {
		s.xml.running = map[string]context.CancelFunc{}
	}
	if s.xml.running[key] != nil {
		s.xml.mu.Unlock()
		writeXML(w, http.StatusOK, &StatusResponse{ID: req.ID, Status: "error", Code: api.CodeBusy, Message: "a job with this id is running"})
		return
	}
	s.xml.running[key] = cancel
	s.xml.mu.Unlock()
	defer func() {
		s.xml.mu.Lock()
		delete(s.xml.running, key)
		s.xml.mu.Unlock()
	}()
	if origin != "" && !s.originAllowed(origin) { // removed (RemoveSite) since ServeHTTP's check
		writeXML(w, http.StatusOK, &StatusResponse{ID: req.ID, Status: "error", Code: api.CodeOriginNotAllowed, Message: "origin not allowed"})
		return
	}
	stop := context.AfterFunc(s.baseCtx, cancel)
	defer stop()

	fields := map[string]string{}
	var secretOut []string
	for _, f := range req.Fields {
		if f.Secret {
			secretOut = append(secretOut, f.Name)
		}
		if !f.Read {
			fields[f.Name] = f.Value
		}
	}
	out := map[string]string{}
	secrets := map[string]string{}
	// Results are acknowledged in the journal only once the response is
	// out; a crash or a broken connection before that leaves them there.
	var done []string
	ack := func() {
		for _, rid := range done {
			s.deps.Journal.Ack(origin, cardJobSession, rid)
		}
	}
	reply := func(v any) {
		if err := writeXML(w, http.StatusOK, v); err != nil {
			s.log.Warn("card job response not delivered; results stay in the journal", "origin", origin, "id", id, "err", err)
			return
		}
		ack()
	}
	for i, app := range req.Applications {
		m := &api.Job{Type: api.TypeJob, ID: id, DSZ: strings.Join(strings.Fields(app.DSZ), ""), Fields: fields, Secret: secretOut, Reader: req.Reader}
		if _, err := base64.StdEncoding.DecodeString(m.DSZ); err != nil {
			writeXML(w, http.StatusOK, &StatusResponse{ID: req.ID, Status: "error", Code: api.CodeInvalidDescription, Message: "application " + app.Name + ": not base64"})
			return
		}
		job, jerr := s.buildJob(m)
		if jerr != nil {
			s.log.Warn("card job refused", "origin", origin, "id", id, "code", jerr.Code)
			writeXML(w, http.StatusOK, statusErr(req.ID, jerr))
			return
		}
		rid := id + "#" + strconv.Itoa(i)
		res := s.runSync(ctx, origin, rid, job)
		if res.Error == nil || res.Error.Code != api.CodeInternal {
			done = append(done, rid)
		}
		if res.Error != nil {
			reply(statusErr(req.ID, res.Error))
			return
		}
		for k, v := range res.Fields {
			out[k] = v
		}
		for k, v := range res.Secrets {
			secrets[k] = v
		}
	}
	resp := &CardJobResponse{ID: req.ID}
	for k, v := range out {
		resp.Fields = append(resp.Fields, CardJobField{Name: k, Read: true, Value: v})
	}
	for k, v := range secrets {
		resp.Fields = append(resp.Fields, CardJobField{Name: k, Read: true, Secret: true, Value: v})
	}
	sort.Slice(resp.Fields, func(a, b int) bool { return resp.Fields[a].Name < resp.Fields[b].Name })
	reply(resp)
}

// runSync runs one job for the XML endpoint, journaled like a WebSocket job;
// the caller acknowledges it once the response is written (a crash in
// between leaves an interrupted or unacknowledged record to inspect).
func (s *Server) runSync(ctx context.Context, origin, reqID string, job *runner.Job) *api.Result {
	if jerr := s.auditUnusable(); jerr != nil { // broken by an earlier application of this card_job
		return &api.Result{Type: api.TypeResult, ID: reqID, Error: jerr}
	}
	seq, err := s.deps.Journal.Begin(origin, cardJobSession, reqID, job.Reader)
	if errors.Is(err, journal.ErrDuplicateJob) {
		return &api.Result{Error: &api.JobError{Code: api.CodeBadRequest, Message: "a job with this id ran before and its response was never delivered; use another id"}}
	}
	if err != nil {
		s.log.Error("journaling card job", "err", err)
		return &api.Result{Error: &api.JobError{Code: api.CodeInternal, Message: "journal unavailable"}}
	}
	if !s.beginJob() {
		wire := &api.Result{Type: api.TypeResult, ID: reqID, Error: &api.JobError{Code: api.CodeShuttingDown, Message: "the agent is shutting down"}}
		s.deps.Journal.Finish(seq, wire)
		return wire
	}
	defer s.jobsWG.Done()
	started := time.Now()
	s.xml.mu.Lock()
	iss := s.xml.issuer
	s.xml.mu.Unlock()
	job.Issuer = iss
	wire := s.execute(ctx, "cardjob", origin, seq, reqID, job, nil, func(res *runner.Result) {
		if iss == nil && res.Err != nil && res.Err.Code == api.CodeConfig && strings.Contains(res.Err.Message, "certificate issuer") {
			// The runner refused the job before card I/O; say how to fix it.
			e := *res.Err
			e.Message += noIssuerHint
			res.Err = &e
		}
	})
	s.log.Info("card job finished", "origin", origin, "id", reqID, "job", seq, "result", resultCode(wire), "ms", time.Since(started).Milliseconds())
	return wire
}
