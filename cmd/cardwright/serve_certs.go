package main

import (
	"context"
	"log/slog"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/p11"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/signing"
	"github.com/cardwright/cardwright/signing/p11store"
	"github.com/cardwright/cardwright/softstore"
	"github.com/cardwright/cardwright/softtoken"
)

// certService is the agent's certificates/sign/authenticate service over the
// configured PKCS#11 modules ([pkcs11] module): signing.Service over
// p11store. The modules are loaded at the first request, not at start-up,
// so an agent that never signs never loads middleware. One that fails to
// load is logged and left out (the others still answer), and tried again
// at a request after retryLoad: middleware installed while the agent runs
// needs no restart.
//
// PINs come only from prompter, the local dialog; a headless agent has
// none, so sign and authenticate answer prompt_unavailable there while
// certificates (no PIN) works.
type certService struct {
	modules   []string
	allow     func(string) bool
	prompter  prompt.Prompter
	log       *slog.Logger
	retryLoad time.Duration

	once  sync.Once
	svc   *signing.Service
	store *p11store.Store
	soft  *softtoken.Service // softtoken requests (agent.SoftTokenService)

	mu     sync.Mutex
	loaded map[string]bool
	tried  map[string]time.Time // last failed attempt per module
}

func newCertService(cfg *config.Config, prompter prompt.Prompter, log *slog.Logger) *certService {
	return &certService{
		modules:   cfg.Modules,
		allow:     cfg.ModuleAllowed,
		prompter:  prompter,
		log:       log,
		retryLoad: 30 * time.Second,
		store:     p11store.New(), // made here: the self-test's probe takes its token locks (serve.go)
	}
}

func (c *certService) service() *signing.Service {
	c.once.Do(func() {
		stores := signing.Stores{c.store}
		c.soft = &softtoken.Service{Prompter: c.prompter}
		// The agent's own soft-token store (docs/protocol.md, softtoken):
		// its tokens are listed and used like the modules' tokens.
		if dir, err := softstore.DefaultDir(); err == nil {
			ss := softstore.New(dir)
			stores = append(stores, ss)
			c.soft.Targets = append(c.soft.Targets, softtoken.AgentStore{Store: ss})
		} else {
			c.log.Warn("certificate service: no soft-token store", "err", err)
		}
		if _, err := exec.LookPath("pk12util"); err == nil && runtime.GOOS != "windows" {
			c.soft.Targets = append(c.soft.Targets, softtoken.NSS{})
		}
		// A token of the configured modules, named by the request.
		c.soft.Targets = append(c.soft.Targets, softtoken.PKCS11{Modules: c.store.Loaded, Lock: c.store.LockToken, Prompter: c.prompter})
		c.svc = &signing.Service{Store: stores, Prompter: c.prompter}
	})
	c.load()
	return c.svc
}

// load loads the configured modules not loaded yet, each at most once per
// retryLoad.
func (c *certService) load() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded == nil {
		c.loaded, c.tried = map[string]bool{}, map[string]time.Time{}
	}
	for _, path := range c.modules {
		if c.loaded[path] {
			continue
		}
		if last, ok := c.tried[path]; ok && time.Since(last) < c.retryLoad {
			continue
		}
		m, err := p11.Load(path, c.allow)
		if err != nil {
			if _, again := c.tried[path]; !again {
				c.log.Warn("certificate service: module left out", "module", path, "err", err)
			}
			c.tried[path] = time.Now()
			continue
		}
		if _, again := c.tried[path]; again {
			c.log.Info("certificate service: module loaded", "module", path)
		}
		c.store.Add(m)
		c.loaded[path] = true
	}
}

func (c *certService) Certificates(ctx context.Context, origin string, req *api.Certificates) (*api.CertificateList, error) {
	return c.service().Certificates(ctx, origin, req)
}

func (c *certService) Sign(ctx context.Context, origin string, req *api.Sign) (*api.Signature, error) {
	return c.service().Sign(ctx, origin, req)
}

func (c *certService) Authenticate(ctx context.Context, origin string, req *api.Authenticate) (*api.Authentication, error) {
	return c.service().Authenticate(ctx, origin, req)
}

// DeliverSoftToken implements agent.SoftTokenService.
func (c *certService) DeliverSoftToken(ctx context.Context, origin string, req *api.SoftToken, notify func(string)) (*api.SoftTokenStored, error) {
	c.service()
	return c.soft.DeliverSoftToken(ctx, origin, req, notify)
}
