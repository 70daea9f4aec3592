package main

// This file chooses the hardware adapters for the runner and the agent:
// PC/SC readers (runner/pcscreaders), the configured PKCS#11 tokens
// (runner/p11tokens) and PIN-decryption keys (pinblob/decryptkeys), timed
// by runner/iotime where a command reports figures. It wires; the adapters
// live beside the ports they serve.

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/cpf"
	"github.com/cardwright/cardwright/pace"
	"github.com/cardwright/cardwright/pinblob/decryptkeys"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/iotime"
	"github.com/cardwright/cardwright/runner/p11tokens"
	"github.com/cardwright/cardwright/runner/pcscreaders"
)

// runnerDeps builds the runner's dependencies from the configuration.
func runnerDeps(cfg *config.Config, clock *iotime.Clock) (runner.Deps, error) {
	d := runner.Deps{
		Tokens: p11tokens.New(cfg, clock),
		Skip:   cfg.SkipReader,
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

// newRunner is the runner over readers and the configured PKCS#11 modules,
// with prompter for local dialogs. Whether there are local dialogs is
// decided here, once: none when prompter is nil or the configuration says
// headless; jobs that need one are then refused before card I/O
// (prompt_unavailable).
func newRunner(cfg *config.Config, readers runner.Readers, prompter prompt.Prompter, clock *iotime.Clock) (*runner.Runner, error) {
	deps, err := runnerDeps(cfg, clock)
	if err != nil {
		return nil, err
	}
	if cfg.Headless || prompter == nil {
		deps.Headless, prompter = true, nil
	}
	return &runner.Runner{Engine: &runner.Engine{Readers: readers, Prompter: prompter}, Deps: deps}, nil
}

// newServeRunner wires the agent of `cardwright serve` and of desktop mode:
// the runner over PC/SC and the configured PKCS#11 modules, with prompter
// for local dialogs (nil: headless, as serve is), and the readers with
// their events. One runner (one Engine) serves every job, so the
// per-reader busy policy holds across connections. clock (may be nil)
// times the card and token I/O (the station's APDU metrics).
func newServeRunner(cfg *config.Config, prompter prompt.Prompter, pace runner.Pace, clock *iotime.Clock) (agent.Runner, agent.ReaderSource, io.Closer, error) {
	readers := pcscreaders.New(clock)
	r, err := newRunner(cfg, readers, prompter, clock)
	if err != nil {
		return nil, nil, nil, err
	}
	r.Engine.Pace = pace
	return r, pcscreaders.NewSource(readers, r.Engine.Busy, cfg.SkipReader), readers, nil
}

// openPace opens what this machine learned of its card models' step times
// (spec/station.md "Slow cards"): pace.json beside the journal, shared by
// serve, encode, batch and the card-initialization window, with the
// [timeouts] floors. Callers set it as their Engine's Pace and Save it when
// they end.
func openPace(env *cmdEnv, cfg *config.Config) (*pace.Book, error) {
	dir := journalDir(env, cfg.Journal)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("making the state folder: %w", err)
	}
	return pace.Open(filepath.Join(dir, "pace.json"), pace.Options{
		Floor: cfg.TimeoutFloor, KeygenFloor: cfg.KeygenTimeoutFloor, Learn: cfg.LearnTimeouts})
}
