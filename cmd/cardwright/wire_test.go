package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/runnertest"
	"github.com/cardwright/cardwright/secret"
)

// The runner is the agent's runner: one job type from the socket to the
// engine.
var _ agent.Runner = (*runner.Runner)(nil)

// TestAgentRunner runs the demo job as the WebSocket agent hands it over —
// files as a map, fields as secrets, the portal as issuer, prompt
// notifications — on an in-memory card and the token fake.
func TestAgentRunner(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(demoDir, "demo.dsc"))
	if err != nil {
		t.Fatal(err)
	}
	cpfSrc, err := os.ReadFile(filepath.Join(demoDir, "demo.cpf"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := issuer.OpenLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	readers := runnertest.NewMemReaders(map[string]*memcard.Card{"R0": memcard.New(memcard.Config{})})
	var mu sync.Mutex
	var prompts, steps, templates []string
	cfg := &config.Config{}
	ar, err := newRunner(cfg, readers, promptFn(func() (secret.Value, error) { return secret.New(demoPIN), nil }), nil)
	if err != nil {
		t.Fatal(err)
	}
	ar.Deps.Tokens = &runnertest.FakeTokens{StandIn: true}
	portal := issuerFn(func(ctx context.Context, req issuer.Request) ([]byte, [][]byte, error) {
		templates = append(templates, req.Template)
		return ca.Issue(ctx, req)
	})
	newJob := func() *runner.Job {
		return &runner.Job{Description: []byte(strings.Replace(string(src), "PIN=PIN_FIELD", "PIN=!FROM_USER_DIALOG_2_FIELD", 1)),
			Files: runner.Files{"demo.cpf": cpfSrc}, Reader: "R0", Issuer: portal,
			PromptNotify: func(kind, state, reader string) { mu.Lock(); prompts = append(prompts, state); mu.Unlock() },
			Fields: map[string]secret.Value{"PUK_FIELD": secret.New(demoPUK), "HOLDER": secret.New("SG9sZGVy"),
				"CARD_SERIAL": secret.New("CW-9"), "TOKEN_LABEL": secret.New("agent")}}
	}
	progress := func(p runner.Progress) { mu.Lock(); steps = append(steps, p.Step); mu.Unlock() }
	res := ar.Run(context.Background(), newJob(), progress)
	if res.Err != nil {
		t.Fatalf("%+v", res.Err)
	}
	if res.Fields["ICCSN"] == "" {
		t.Error("no ICCSN")
	}
	if strings.Join(prompts, ",") != api.PromptWaiting+","+api.PromptDone {
		t.Errorf("prompt notifications %v", prompts)
	}
	if strings.Join(templates, ",") != "DigitalSignature,Encryption" {
		t.Errorf("templates sent to the portal: %v", templates)
	}
	if len(steps) != 6 || steps[1] != "InitToken" {
		t.Errorf("progress %v", steps)
	}
	// The portal refusing a request is issuer_error.
	j := newJob()
	j.Issuer = issuerFn(func(context.Context, issuer.Request) ([]byte, [][]byte, error) {
		return nil, nil, &api.JobError{Code: api.CodeIssuerError, Message: "template unknown"}
	})
	if res := ar.Run(context.Background(), j, nil); res.Err == nil || res.Err.Code != api.CodeIssuerError {
		t.Errorf("portal refusal: %+v", res.Err)
	}
	// Headless is decided once, when the runner is made: the same job is
	// refused before any card I/O.
	cfg.Headless = true
	headless, err := newRunner(cfg, readers, promptFn(func() (secret.Value, error) { return secret.New(demoPIN), nil }), nil)
	if err != nil {
		t.Fatal(err)
	}
	headless.Deps.Tokens = &runnertest.FakeTokens{StandIn: true}
	if res := headless.Run(context.Background(), newJob(), nil); res.Err == nil || res.Err.Code != api.CodePromptUnavailable || res.Err.Step != "validate" {
		t.Errorf("headless: %+v", res.Err)
	}
}

type issuerFn func(ctx context.Context, req issuer.Request) ([]byte, [][]byte, error)

func (f issuerFn) Issue(ctx context.Context, req issuer.Request) ([]byte, [][]byte, error) {
	return f(ctx, req)
}

type promptFn func() (secret.Value, error)

func (p promptFn) Ask(context.Context, prompt.Request) (prompt.Answer, error) {
	v, err := p()
	return prompt.Answer{PIN: v}, err
}

// TestNewServeRunner: serve's runner comes up with the demo configuration
// and refuses a missing PIN-encryption certificate at start.
func TestNewServeRunner(t *testing.T) {
	cfg, err := config.Load(filepath.Join(demoDir, "cardwright.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, closer, err := newServeRunner(cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	closer.Close()
	cfg.PINEncryptionCert = "/nonexistent.pem"
	if _, _, _, err := newServeRunner(cfg, nil, nil, nil); err == nil {
		t.Error("a missing PIN-encryption certificate was accepted")
	}
}
