package main

// This file wires the hardware adapters (pcsc, p11) to the runner's
// interfaces. It is the only place where the runner meets real readers and
// PKCS#11 modules; it also measures how long the job spends in each.

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/cpf"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/pcsc"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/secret"
)

// ioClock adds up the time a job spends waiting on the card and on the
// PKCS#11 module, for the figures (`cardwright encode --timing`).
type ioClock struct {
	card, token, issuer atomic.Int64 // nanoseconds
	apdus, calls        atomic.Int64
}

func (c *ioClock) addCard(start time.Time) {
	if c != nil {
		c.card.Add(int64(time.Since(start)))
		c.apdus.Add(1)
	}
}

// addCardTime counts PC/SC time that is not an APDU (connect, transaction,
// reset).
func (c *ioClock) addCardTime(start time.Time) {
	if c != nil {
		c.card.Add(int64(time.Since(start)))
	}
}

func (c *ioClock) addToken(start time.Time) {
	if c != nil {
		c.token.Add(int64(time.Since(start)))
		c.calls.Add(1)
	}
}

// pcscReaders is runner.Readers over PC/SC. The PC/SC context is
// established on first use, so a job that fails validation never needs the
// service; while the service is not there, every use tries again (an agent
// started before pcscd recovers once it runs).
type pcscReaders struct {
	mu    sync.Mutex
	ctx   *pcsc.Context
	clock *ioClock
}

func (r *pcscReaders) open() (*pcsc.Context, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil {
		ctx, err := pcsc.Open()
		if err != nil {
			return nil, pcscErr(err)
		}
		r.ctx = ctx
	}
	return r.ctx, nil
}

// Close releases the PC/SC context, if one was established.
func (r *pcscReaders) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx != nil {
		return r.ctx.Close()
	}
	return nil
}

func (r *pcscReaders) List(context.Context) ([]runner.ReaderInfo, error) {
	pc, err := r.open()
	if err != nil {
		return nil, err
	}
	st, err := pc.Status(nil)
	if err != nil {
		return nil, pcscErr(err)
	}
	out := make([]runner.ReaderInfo, 0, len(st))
	for _, s := range st {
		out = append(out, runner.ReaderInfo{Name: s.Name, Present: s.Present && !s.Mute, ATR: s.ATR})
	}
	return out, nil
}

func (r *pcscReaders) Connect(_ context.Context, reader string) (runner.Conn, error) {
	defer r.clock.addCardTime(time.Now())
	pc, err := r.open()
	if err != nil {
		return nil, err
	}
	k, err := pc.Connect(reader, pcsc.Shared)
	if err != nil {
		return nil, pcscErr(err)
	}
	return &pcscConn{k: k, clock: r.clock}, nil
}

// pcscErr maps the adapter's sentinels to the runner's.
func pcscErr(err error) error {
	switch {
	case errors.Is(err, pcsc.ErrNoCard):
		return fmt.Errorf("%w: %w", runner.ErrCardRemoved, err)
	case errors.Is(err, pcsc.ErrNoService), errors.Is(err, pcsc.ErrUnknownReader):
		return fmt.Errorf("%w: %w", runner.ErrReaderGone, err)
	}
	return err
}

// pcscConn is runner.Conn over one PC/SC connection.
type pcscConn struct {
	k     *pcsc.Card
	clock *ioClock
	inTx  bool
}

func (c *pcscConn) Transmit(cmd []byte) ([]byte, error) {
	defer c.clock.addCard(time.Now())
	resp, err := c.k.Transmit(cmd)
	if err != nil {
		return nil, pcscErr(err)
	}
	return resp, nil
}

// ATR asks the reader for the card's ATR now; a removed card leaves the one
// read at connect, and the next APDU (Serial) reports the removal.
func (c *pcscConn) ATR() []byte {
	if atr, err := c.k.Status(); err == nil {
		return atr
	}
	return c.k.ATR()
}

func (c *pcscConn) Begin() error {
	defer c.clock.addCardTime(time.Now())
	if err := c.k.Begin(); err != nil {
		return pcscErr(err)
	}
	c.inTx = true
	return nil
}

// End ends the transaction and resets the card, so the next application
// finds no verified PIN.
func (c *pcscConn) End() error {
	if !c.inTx {
		return nil
	}
	defer c.clock.addCardTime(time.Now())
	c.inTx = false
	return c.k.End(true)
}

// Serial reads the ICCSN with GET DATA 005A. A card that has no such data
// object (it answers with a status word) has no chip serial: the runner then
// takes the token's serial.
func (c *pcscConn) Serial() ([]byte, error) {
	s, err := runner.ReadSerial(c)
	var se *iso7816.StatusError
	if errors.As(err, &se) {
		return nil, nil
	}
	return s, err
}

func (c *pcscConn) Close() error {
	defer c.clock.addCardTime(time.Now())
	return c.k.Close()
}

// p11Tokens is runner.Tokens over package p11: modules from the
// configuration's allow-list; the token for a reader is the one whose slot
// names the reader, else the one the [tokens] section maps to the reader
// (found by label; while it is not initialised, a free slot of the module).
type p11Tokens struct {
	cfg   *config.Config
	clock *ioClock
}

func (t *p11Tokens) Allowed(module string) bool { return t.cfg.ModuleAllowed(module) }

func (t *p11Tokens) Open(ctx context.Context, module, reader string, loc runner.Location) (runner.Token, error) {
	defer t.clock.addToken(time.Now())
	m, err := p11.Load(module, t.cfg.ModuleAllowed)
	if err != nil {
		return nil, p11Err(err)
	}
	if tm, ok := t.cfg.TokenFor(reader); ok && sameModule(tm.Module, module) {
		if loc == runner.LocationSignature {
			return nil, fmt.Errorf("the configuration maps reader %q to one token, no signature token: %w", reader, runner.ErrTokenNotFound)
		}
		pt := &p11Token{m: m, fixed: tm.Label, standIn: true, clock: t.clock}
		tok, err := m.FindToken(tm.Label)
		if errors.Is(err, p11.ErrTokenNotFound) {
			return pt, nil // not initialised yet: InitToken takes a free slot
		}
		if err != nil {
			return nil, p11Err(err)
		}
		return pt, pt.open(tok)
	}
	pl := p11.LocationDefault
	if loc == runner.LocationSignature {
		pl = p11.LocationSignature
	}
	tok, err := m.TokenForReader(reader, pl, nil)
	if err != nil {
		return nil, p11Err(err)
	}
	pt := &p11Token{m: m, clock: t.clock}
	return pt, pt.open(tok)
}

func sameModule(a, b string) bool {
	if filepath.IsAbs(a) || filepath.IsAbs(b) {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return a == b
}

// p11Err maps package p11's errors to the runner's, keeping them in the chain.
func p11Err(err error) error {
	if err == nil {
		return nil
	}
	var pe *p11.PINError
	var me *p11.ModuleError
	switch {
	case errors.As(err, &pe):
		who := "PIN"
		if pe.SO {
			who = "SO PIN"
		}
		return &runner.PINError{Who: who, Retries: pe.Retries(), Err: err}
	case errors.Is(err, p11.ErrNotAllowed):
		return fmt.Errorf("%w: %w", runner.ErrModuleNotAllowed, err)
	case errors.As(err, &me):
		return fmt.Errorf("%w: %w", runner.ErrModule, err)
	case errors.Is(err, p11.ErrTokenNotFound), errors.Is(err, p11.ErrAmbiguous):
		return fmt.Errorf("%w: %w", runner.ErrTokenNotFound, err)
	case errors.Is(err, p11.ErrObjectNotFound):
		return fmt.Errorf("%w: %w", runner.ErrObjectNotFound, err)
	case errors.Is(err, p11.ErrNotSupported):
		return fmt.Errorf("%w: %w", runner.ErrNotSupported, err)
	}
	return fmt.Errorf("%w: %w", runner.ErrToken, err)
}

// p11Token is runner.Token over one p11 session.
type p11Token struct {
	m       *p11.Module
	t       *p11.Token   // nil: a mapped token not initialised yet
	s       *p11.Session // open while t is set
	fixed   string
	standIn bool // a [tokens] mapping: the token stands in for the card
	clock   *ioClock
}

func (p *p11Token) open(t *p11.Token) error {
	s, err := t.Open()
	if err != nil {
		return p11Err(err)
	}
	p.t, p.s = t, s
	return nil
}

// do runs op on the session, timing it and mapping its error.
func (p *p11Token) do(op func(s *p11.Session) error) error {
	defer p.clock.addToken(time.Now())
	if p.s == nil {
		return fmt.Errorf("the token is not initialised: %w", runner.ErrToken)
	}
	return p11Err(op(p.s))
}

func (p *p11Token) Info() (runner.TokenInfo, error) {
	defer p.clock.addToken(time.Now())
	if p.t == nil {
		return runner.TokenInfo{FixedLabel: p.fixed, StandIn: p.standIn}, nil
	}
	ti, err := p.t.Refresh()
	if err != nil {
		return runner.TokenInfo{}, p11Err(err)
	}
	return runner.TokenInfo{Label: ti.Label, Serial: ti.Serial, Initialized: ti.Initialized(),
		UserPIN: ti.UserPINInitialized(), FixedLabel: p.fixed, StandIn: p.standIn,
		MinPIN: pinLen(ti.MinPIN), MaxPIN: pinLen(ti.MaxPIN)}, nil
}

// pinLen is a CK_TOKEN_INFO PIN length; CK_UNAVAILABLE_INFORMATION and
// other absurd values mean "not said".
func pinLen(n uint) int {
	if n > 1<<16 {
		return 0
	}
	return int(n)
}

func (p *p11Token) InitToken(so secret.Value, label string) error {
	defer p.clock.addToken(time.Now())
	target := p.t
	if p.t != nil && !p.t.Info().Initialized() && p.fixed != "" {
		target = nil
	}
	if p.s != nil {
		p.s.Close()
		p.s = nil
	}
	nt, err := p.m.InitToken(target, so, label)
	if err != nil {
		return p11Err(err)
	}
	return p.open(nt)
}

func (p *p11Token) Login(pin secret.Value) error {
	return p.do(func(s *p11.Session) error { return s.Login(pin) })
}

func (p *p11Token) LoginSO(cred secret.Value) error {
	return p.do(func(s *p11.Session) error { return s.LoginSO(cred) })
}

func (p *p11Token) Logout() error {
	if p.s == nil {
		return nil
	}
	return p.do(func(s *p11.Session) error { return s.Logout() })
}

func (p *p11Token) InitPIN(pin secret.Value) error {
	return p.do(func(s *p11.Session) error { return s.InitPIN(pin) })
}

func (p *p11Token) SetPIN(old, new secret.Value) error {
	return p.do(func(s *p11.Session) error { return s.SetPIN(old, new) })
}

func (p *p11Token) GenerateKeyPair(spec runner.KeySpec) (crypto.Signer, error) {
	var ks p11.KeySpec
	switch {
	case spec.Type == "RSA":
		ks.RSABits = spec.Bits
	case spec.Type == "EC" && spec.Bits == 256:
		ks.Curve = elliptic.P256()
	case spec.Type == "EC" && spec.Bits == 384:
		ks.Curve = elliptic.P384()
	default:
		return nil, fmt.Errorf("%s key of %d bits: %w", spec.Type, spec.Bits, runner.ErrNotSupported)
	}
	var k *p11.Key
	err := p.do(func(s *p11.Session) (err error) {
		k, err = s.GenerateKeyPair(ks, spec.Label, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	return timedSigner{k, p.clock}, nil
}

// timedSigner counts the token's signing time as PKCS#11 time.
type timedSigner struct {
	k     *p11.Key
	clock *ioClock
}

func (t timedSigner) Public() crypto.PublicKey { return t.k.Public() }
func (t timedSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	defer t.clock.addToken(time.Now())
	return t.k.Sign(r, digest, opts)
}

func (p *p11Token) Signer(id []byte) (crypto.Signer, error) {
	var k *p11.Key
	err := p.do(func(s *p11.Session) (err error) {
		k, err = s.FindKey(id, "")
		return err
	})
	if err != nil {
		return nil, err
	}
	return timedSigner{k, p.clock}, nil
}

func (p *p11Token) WriteCertificate(der []byte, label string, id []byte) error {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("parsing the certificate: %w", err)
	}
	return p.do(func(s *p11.Session) error {
		_, err := s.WriteCertificate(cert, label, id)
		return err
	})
}

func (p *p11Token) ImportPKCS12(data []byte, password secret.Value, label string, id []byte) error {
	return p.do(func(s *p11.Session) error {
		_, err := s.ImportPKCS12(data, password, label, id)
		return err
	})
}

func (p *p11Token) Find(c runner.Criteria) ([]runner.Object, error) {
	cls, err := p11.ParseClass(c.Class)
	if err != nil {
		return nil, err
	}
	attr, err := p11.ParseAttribute(c.Attr, c.Type, c.Text)
	if err != nil {
		return nil, err
	}
	var objs []p11.Object
	err = p.do(func(s *p11.Session) (err error) {
		objs, err = s.Find(p11.Criteria{cls, attr})
		return err
	})
	out := make([]runner.Object, 0, len(objs))
	for _, o := range objs {
		out = append(out, runner.Object{Class: o.Class, ID: o.ID, Label: o.Label})
	}
	return out, err
}

// WriteData stores a public data object: CMSCardSerialNumber, or the
// card's "Encrypted PINs" on a stand-in token.
func (p *p11Token) WriteData(label string, value []byte) error {
	return p.do(func(s *p11.Session) error { return s.WriteData(label, value) })
}

func (p *p11Token) ReadData(label string) ([]byte, error) {
	var v []byte
	err := p.do(func(s *p11.Session) error {
		objs, err := s.Find(p11.Criteria{p11.ClassIs(p11.ClassData), p11.LabelIs(label)})
		if err != nil {
			return err
		}
		if len(objs) == 0 {
			return fmt.Errorf("data object %q: %w", label, p11.ErrObjectNotFound)
		}
		v, err = s.Value(objs[0])
		return err
	})
	return v, err
}

func (p *p11Token) Erase() error {
	return p.do(func(s *p11.Session) error {
		_, err := s.EraseObjects()
		return err
	})
}

func (p *p11Token) Close() error {
	if p.s == nil {
		return nil
	}
	err := p.s.Close()
	p.s = nil
	return err
}

// runnerDeps builds the runner's dependencies from the configuration.
func runnerDeps(cfg *config.Config, clock *ioClock) (runner.Deps, error) {
	d := runner.Deps{
		Tokens:   &p11Tokens{cfg: cfg, clock: clock},
		Skip:     cfg.SkipReader,
		Headless: cfg.Headless,
	}
	prof := runner.CPF{Config: cpf.Config{Models: cfg.Dialects}}
	if cfg.PINEncryptionCert != "" {
		c, err := readCertFile(cfg.PINEncryptionCert)
		if err != nil {
			return d, fmt.Errorf("reading the PIN-encryption certificate: %w", err)
		}
		prof.PINCert = c
	}
	d.Profiles = prof
	keys, err := pinKeys(cfg) // pinkeys.go
	if err != nil {
		return d, err
	}
	d.PINKeys = keys
	return d, nil
}

// agentRunner lets the WebSocket agent run its jobs with the runner: the
// portal's issue hook answers certificate requests, the prompt hook tells
// the portal while a local dialog is open, progress goes to the hook. One
// runner (one Engine) serves every job, so the per-reader busy policy holds
// across connections.
type agentRunner struct {
	r *runner.Runner
}

func (a agentRunner) Run(ctx context.Context, job *agent.Job, hooks agent.Hooks) agent.Result {
	rj := &runner.Job{Name: "job.dsc", Description: job.Description, DSZ: job.DSZ, Fields: job.Fields,
		SecretOutputs: job.SecretOutputs, Reader: job.Reader, Headless: job.Headless}
	if job.Files != nil {
		rj.Files = runner.Files(job.Files)
	}
	if hooks.Issue != nil {
		rj.Issuer = hookIssuer{hooks.Issue}
	}
	if hooks.Prompt != nil && a.r.Engine.Prompter != nil {
		rj.Prompter = notifyingPrompter{p: a.r.Engine.Prompter, notify: hooks.Prompt}
	}
	res := a.r.Run(ctx, rj, func(p runner.Progress) {
		if hooks.Progress != nil {
			hooks.Progress(p.Step, p.N, p.Total)
		}
	})
	return agent.Result{Fields: res.Fields, Secrets: res.Secrets, Err: res.Err}
}

// hookIssuer sends a job's certificate request to the portal.
type hookIssuer struct {
	issue agent.CertificateIssuer
}

func (h hookIssuer) Issue(ctx context.Context, req issuer.Request) ([]byte, [][]byte, error) {
	ans, err := h.issue(ctx, agent.CertRequest{Application: req.Application, Template: runner.CertTemplate(ctx), CSR: req.CSR})
	if err != nil {
		return nil, nil, err
	}
	if ans == nil || ans.Certificate == nil {
		return nil, nil, fmt.Errorf("the portal answered the request of Application_%s without a certificate", req.Application)
	}
	var chain [][]byte
	for _, c := range ans.Chain {
		chain = append(chain, c.Raw)
	}
	return ans.Certificate.Raw, chain, nil
}

// notifyingPrompter tells the portal that a local dialog is open.
type notifyingPrompter struct {
	p      runner.Prompter
	notify func(kind, state, reader string)
}

func (n notifyingPrompter) Prompt(ctx context.Context, kind, label, reader string) (secret.Value, error) {
	n.notify(kind, api.PromptWaiting, reader)
	defer n.notify(kind, api.PromptDone, reader)
	return n.p.Prompt(ctx, kind, label, reader)
}

// newAgentRunner is the runner the agent uses: PC/SC readers, PKCS#11 as
// configured, the portal as issuer (per job), no local dialogs when
// headless (the GUI supplies a Prompter later).
func newAgentRunner(cfg *config.Config, prompter runner.Prompter) (agent.Runner, error) {
	deps, err := runnerDeps(cfg, nil)
	if err != nil {
		return nil, err
	}
	if cfg.Headless || prompter == nil {
		prompter = runner.Refuse{}
	}
	return agentRunner{r: &runner.Runner{Engine: &runner.Engine{Readers: &pcscReaders{}, Prompter: prompter}, Deps: deps}}, nil
}

func init() { serveRunner = newServeRunner }

// newServeRunner wires `cardwright serve`: the runner over PC/SC and the
// configured PKCS#11 modules (no local dialogs: serve is headless), and the
// readers with their events.
func newServeRunner(cfg *config.Config, log *slog.Logger) (agent.Runner, agent.ReaderSource, io.Closer, error) {
	deps, err := runnerDeps(cfg, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	deps.Headless = true
	readers := &pcscReaders{}
	eng := &runner.Engine{Readers: readers, Prompter: runner.Refuse{}}
	return agentRunner{r: &runner.Runner{Engine: eng, Deps: deps}},
		&pcscSource{readers: readers, engine: eng, skip: cfg.SkipReader, log: log}, readers, nil
}

// pcscSource is agent.ReaderSource over PC/SC.
type pcscSource struct {
	readers *pcscReaders
	engine  *runner.Engine
	skip    func(string) bool
	log     *slog.Logger
}

func (p *pcscSource) Readers(ctx context.Context) ([]api.Reader, error) {
	pc, err := p.readers.open()
	if err != nil {
		return nil, err
	}
	st, err := pc.Status(nil)
	if err != nil {
		return nil, pcscErr(err)
	}
	out := make([]api.Reader, 0, len(st))
	for _, s := range st {
		r := api.Reader{Name: s.Name, Card: s.Present && !s.Mute, Busy: p.engine.Busy(s.Name), Skipped: p.skip(s.Name)}
		if r.Card {
			r.ATR = strings.ToUpper(hex.EncodeToString(s.ATR))
		}
		out = append(out, r)
	}
	return out, nil
}

// Watch reports reader and card events until ctx ends.
func (p *pcscSource) Watch(ctx context.Context, fn func(ev any)) error {
	pc, err := p.readers.open()
	if err != nil {
		return err
	}
	ch, err := pc.Watch(ctx, nil)
	if err != nil {
		return pcscErr(err)
	}
	for ev := range ch {
		switch ev.Kind {
		case pcsc.ReaderAdded:
			fn(api.ReaderEvent{Type: api.TypeReaderEvent, Event: api.EventReaderAdded, Reader: ev.Reader})
		case pcsc.ReaderRemoved:
			fn(api.ReaderEvent{Type: api.TypeReaderEvent, Event: api.EventReaderRemoved, Reader: ev.Reader})
		case pcsc.CardInserted:
			fn(api.CardEvent{Type: api.TypeCardEvent, Event: api.EventCardInserted, Reader: ev.Reader, ATR: strings.ToUpper(hex.EncodeToString(ev.ATR))})
		case pcsc.CardRemoved:
			fn(api.CardEvent{Type: api.TypeCardEvent, Event: api.EventCardRemoved, Reader: ev.Reader})
		case pcsc.Synced:
			fn(agent.WatchSynced{})
		}
	}
	return nil
}
