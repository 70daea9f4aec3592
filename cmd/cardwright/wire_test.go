package main

import (
	"context"
	"crypto/x509"
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
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/secret"
)

// TestAgentRunner runs the demo job as the WebSocket agent would hand it
// over — files as a map, fields as secrets, the portal's hooks — on an
// in-memory card and the token fake.
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
	readers := runner.NewMemReaders(map[string]*memcard.Card{"R0": memcard.New(memcard.Config{})})
	var mu sync.Mutex
	var prompts, steps, templates []string
	ar := agentRunner{r: &runner.Runner{
		Engine: &runner.Engine{Readers: readers, Prompter: promptFn(func() (secret.Value, error) { return secret.New(demoPIN), nil })},
		Deps:   runner.Deps{Tokens: &runner.FakeTokens{StandIn: true}, Profiles: runner.CPF{}},
	}}
	hooks := agent.Hooks{
		Progress: func(step string, n, total int) { mu.Lock(); steps = append(steps, step); mu.Unlock() },
		Prompt:   func(kind, state, reader string) { mu.Lock(); prompts = append(prompts, state); mu.Unlock() },
		Issue: func(ctx context.Context, req agent.CertRequest) (*agent.CertAnswer, error) {
			templates = append(templates, req.Template)
			der, _, err := ca.Issue(ctx, issuer.Request{CSR: req.CSR})
			if err != nil {
				return nil, err
			}
			c, err := x509.ParseCertificate(der)
			return &agent.CertAnswer{Certificate: c, Chain: []*x509.Certificate{ca.Certificate()}}, err
		},
	}
	job := &agent.Job{ID: "1", Description: []byte(strings.Replace(string(src), "PIN=PIN_FIELD", "PIN=!FROM_USER_DIALOG_2_FIELD", 1)),
		Files: map[string][]byte{"demo.cpf": cpfSrc}, Reader: "R0",
		Fields: map[string]secret.Value{"PUK_FIELD": secret.New(demoPUK), "HOLDER": secret.New("SG9sZGVy"),
			"CARD_SERIAL": secret.New("CW-9"), "TOKEN_LABEL": secret.New("agent")}}
	res := ar.Run(context.Background(), job, hooks)
	if res.Err != nil {
		t.Fatalf("%+v", res.Err)
	}
	if res.Fields["ICCSN"] == "" {
		t.Error("no ICCSN")
	}
	if strings.Join(prompts, ",") != api.PromptWaiting+","+api.PromptDone {
		t.Errorf("prompt hook calls %v", prompts)
	}
	if strings.Join(templates, ",") != "DigitalSignature,Encryption" {
		t.Errorf("templates sent to the portal: %v", templates)
	}
	if len(steps) != 6 || steps[1] != "InitToken" {
		t.Errorf("progress %v", steps)
	}
	// A headless agent refuses the same job before any card I/O.
	job.Headless = true
	if res := ar.Run(context.Background(), job, hooks); res.Err == nil || res.Err.Code != api.CodePromptUnavailable {
		t.Errorf("headless: %+v", res.Err)
	}
	// The portal refusing a request is issuer_error.
	job.Headless = false
	hooks.Issue = func(context.Context, agent.CertRequest) (*agent.CertAnswer, error) {
		return nil, &api.JobError{Code: api.CodeIssuerError, Message: "template unknown"}
	}
	if res := ar.Run(context.Background(), job, hooks); res.Err == nil || res.Err.Code != api.CodeIssuerError {
		t.Errorf("portal refusal: %+v", res.Err)
	}
}

type promptFn func() (secret.Value, error)

func (p promptFn) Prompt(context.Context, string, string, string) (secret.Value, error) { return p() }

func TestNewAgentRunner(t *testing.T) {
	cfg, err := config.Load(filepath.Join(demoDir, "cardwright.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newAgentRunner(cfg, nil); err != nil {
		t.Fatal(err)
	}
	cfg.PINEncryptionCert = "/nonexistent.pem"
	if _, err := newAgentRunner(cfg, nil); err == nil {
		t.Error("a missing PIN-encryption certificate was accepted")
	}
}
