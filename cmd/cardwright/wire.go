package main

// This file chooses the hardware adapters for the runner and the agent:
// PC/SC readers (runner/pcscreaders), the configured PKCS#11 tokens
// (runner/p11tokens) and PIN-decryption keys (pinblob/decryptkeys), timed
// by runner/iotime where a command reports figures. It wires; the adapters
// live beside the ports they serve.

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/cpf"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/pinblob/decryptkeys"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/iotime"
	"github.com/cardwright/cardwright/runner/p11tokens"
	"github.com/cardwright/cardwright/runner/pcscreaders"
	"github.com/cardwright/cardwright/secret"
)

// runnerDeps builds the runner's dependencies from the configuration.
func runnerDeps(cfg *config.Config, clock *iotime.Clock) (runner.Deps, error) {
	d := runner.Deps{
		Tokens:   p11tokens.New(cfg, clock),
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
	keys, err := decryptkeys.Load(cfg)
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
	return agentRunner{r: &runner.Runner{Engine: &runner.Engine{Readers: pcscreaders.New(nil), Prompter: prompter}, Deps: deps}}, nil
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
	readers := pcscreaders.New(nil)
	eng := &runner.Engine{Readers: readers, Prompter: runner.Refuse{}}
	return agentRunner{r: &runner.Runner{Engine: eng, Deps: deps}},
		pcscreaders.NewSource(readers, eng.Busy, cfg.SkipReader), readers, nil
}
