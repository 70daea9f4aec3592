package agent_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/secret"
	"github.com/cardwright/cardwright/signing"
	"github.com/cardwright/cardwright/softstore"
	"github.com/cardwright/cardwright/softstore/softstoretest"
	"github.com/cardwright/cardwright/softtoken"
)

// scriptedPrompter answers each Ask with the next of its answers (the
// last one again when they run out) and records the requests.
type scriptedPrompter struct {
	mu      sync.Mutex
	answers []string
	store   string
	asked   []prompt.Request
}

func (p *scriptedPrompter) Ask(_ context.Context, r prompt.Request) (prompt.Answer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := min(len(p.asked), len(p.answers)-1)
	p.asked = append(p.asked, r)
	return prompt.Answer{PIN: secret.New(p.answers[i]), Store: p.store}, nil
}

func (p *scriptedPrompter) requests() []prompt.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]prompt.Request(nil), p.asked...)
}

// softCerts is a certificate service over the agent's soft-token store
// only, offering softtoken (as cmd/cardwright's certService does).
type softCerts struct {
	*signing.Service
	deliver *softtoken.Service
}

func (c softCerts) DeliverSoftToken(ctx context.Context, origin string, req *api.SoftToken, notify func(string)) (*api.SoftTokenStored, error) {
	return c.deliver.DeliverSoftToken(ctx, origin, req, notify)
}

func softAgent(t *testing.T, p prompt.Prompter) (*rawConn, *softstore.Store) {
	t.Helper()
	store := &softstore.Store{Dir: filepath.Join(t.TempDir(), "soft"), KDF: softstore.KDF{Time: 1, MemoryKiB: 64, Threads: 1}}
	certs := softCerts{Service: &signing.Service{Store: signing.Stores{store}, Prompter: p},
		deliver: &softtoken.Service{Targets: []softtoken.Target{softtoken.AgentStore{Store: store}}, Prompter: p}}
	if p == nil { // a nil *scriptedPrompter is not a nil interface
		certs.Service.Prompter, certs.deliver.Prompter = nil, nil
	}
	ta := startAgent(t, func(_ *agentConfig, d *agentDeps) { d.Certs = certs })
	rc := rawDial(t, ta, testOrigin)
	rc.hello(t)
	return rc, store
}

var _ agent.SoftTokenService = softCerts{}

func TestSoftTokenIntoAgentStore(t *testing.T) {
	p12 := softstoretest.NewP12("Alice Soft", "s3cret pass")
	p := &scriptedPrompter{answers: []string{"wrong", "s3cret pass"}}
	rc, store := softAgent(t, p)
	rc.sendJSON(t, api.SoftToken{Type: api.TypeSoftToken, ID: "st1", PKCS12: base64.StdEncoding.EncodeToString(p12.Data),
		Label: "alice", Store: api.StoreAgent})
	var states []string
	var m map[string]any
	for {
		m = rc.read(t)
		if m["type"] != api.TypePrompt {
			break
		}
		if m["id"] != "st1" || m["kind"] != "passphrase" {
			t.Fatalf("prompt event %v", m)
		}
		states = append(states, m["state"].(string))
	}
	if m["type"] != api.TypeSoftTokenStored || m["store"] != "agent" || m["profile_type"] != "FILEP12SW" || m["label"] != "alice" {
		t.Fatalf("answer %v", m)
	}
	if len(states) != 4 || states[0] != "waiting" || states[3] != "done" {
		t.Fatalf("prompt states %v, want waiting/done twice", states)
	}
	reqs := p.requests()
	if len(reqs) != 2 || reqs[0].Kind != prompt.Passphrase || reqs[0].Retry || !reqs[1].Retry || reqs[0].Origin != testOrigin || reqs[0].Card != "alice" {
		t.Fatalf("dialogs %+v", reqs)
	}
	if ents, _ := store.List(); len(ents) != 1 || !ents[0].Cert.Equal(p12.Cert) {
		t.Fatalf("store holds %v", ents)
	}

	// certificates filtered by token.profiletype and token.type lists it.
	rc.send(t, `{"type":"certificates","id":"c1","filter":{"value":[{"op":"eq","param":"token.profiletype","value":"FILEP12SW"},{"op":"eq","param":"token.type","value":"SOFTWARE"}]}}`)
	m = rc.read(t)
	list, _ := m["certificates"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["certificate"] != base64.StdEncoding.EncodeToString(p12.Cert.Raw) {
		t.Fatalf("certificate_list %v", m)
	}
	rc.send(t, `{"type":"certificates","id":"c2","filter":{"op":"eq","param":"token.profiletype","value":"SW"}}`)
	if m = rc.read(t); len(m["certificates"].([]any)) != 0 {
		t.Fatalf("profile type SW listed %v", m)
	}

	// sign asks the passphrase (the prompter's last answer) and verifies.
	rc.send(t, `{"type":"sign","id":"s1","filter":{"op":"eq","param":"token.profiletype","value":"FILEP12SW"},"data":"aGVsbG8="}`)
	m = rc.read(t)
	if m["type"] != api.TypeSignature {
		t.Fatalf("sign: %v", m)
	}
	sig, _ := base64.StdEncoding.DecodeString(m["signature"].(string))
	d := sha256.Sum256([]byte("hello"))
	if !ecdsa.VerifyASN1(&p12.Key.PublicKey, d[:], sig) {
		t.Fatal("the signature does not verify")
	}
	if last := p.requests()[len(p.requests())-1]; last.Kind != prompt.Sign || last.Label != "passphrase" {
		t.Fatalf("sign dialog %+v", last)
	}
}

func TestSoftTokenWrongPassphraseStoresNothing(t *testing.T) {
	p12 := softstoretest.NewP12("Bob Soft", "right")
	p := &scriptedPrompter{answers: []string{"wrong"}}
	rc, store := softAgent(t, p)
	rc.sendJSON(t, api.SoftToken{Type: api.TypeSoftToken, ID: "st2", PKCS12: base64.StdEncoding.EncodeToString(p12.Data)})
	var m map[string]any
	for m = rc.read(t); m["type"] == api.TypePrompt; m = rc.read(t) {
	}
	if m["type"] != api.TypeError || m["code"] != string(api.CodePinIncorrect) {
		t.Fatalf("answer %v", m)
	}
	if n := len(p.requests()); n != softtoken.MaxTries {
		t.Fatalf("%d dialogs, want %d", n, softtoken.MaxTries)
	}
	if ents, err := store.List(); len(ents) != 0 || err != nil {
		t.Fatalf("store holds %v (%v)", ents, err)
	}
}

func TestSoftTokenHeadless(t *testing.T) {
	p12 := softstoretest.NewP12("Carol Soft", "pw")
	rc, store := softAgent(t, nil)
	rc.sendJSON(t, api.SoftToken{Type: api.TypeSoftToken, ID: "st3", PKCS12: base64.StdEncoding.EncodeToString(p12.Data), Store: api.StoreAgent})
	if m := rc.read(t); m["type"] != api.TypeError || m["code"] != string(api.CodePromptUnavailable) {
		t.Fatalf("answer %v", m)
	}
	if ents, _ := store.List(); len(ents) != 0 {
		t.Fatalf("store holds %v", ents)
	}
}

func TestSoftTokenAskAndBadInput(t *testing.T) {
	p12 := softstoretest.NewP12("Dan Soft", "pw")
	p := &scriptedPrompter{answers: []string{"pw"}, store: api.StoreAgent}
	rc, _ := softAgent(t, p)
	rc.sendJSON(t, api.SoftToken{Type: api.TypeSoftToken, ID: "st4", PKCS12: base64.StdEncoding.EncodeToString(p12.Data), Store: api.StoreAsk})
	var m map[string]any
	for m = rc.read(t); m["type"] == api.TypePrompt; m = rc.read(t) {
	}
	if m["type"] != api.TypeSoftTokenStored || m["label"] != "Dan Soft" {
		t.Fatalf("answer %v", m)
	}
	if r := p.requests()[0]; len(r.Stores) != 1 || r.Stores[0].ID != api.StoreAgent {
		t.Fatalf("dialog offered %+v", r.Stores)
	}
	rc.send(t, `{"type":"softtoken","id":"st5","pkcs12":"MIIB","store":"nss"}`)
	if m = rc.read(t); m["code"] != string(api.CodeInvalidField) {
		t.Fatalf("unknown store: %v", m)
	}
	rc.send(t, `{"type":"softtoken","id":"st6","pkcs12":"AAAA","store":"agent"}`)
	for m = rc.read(t); m["type"] == api.TypePrompt; m = rc.read(t) {
	}
	if m["code"] != string(api.CodeInvalidField) {
		t.Fatalf("garbage PKCS#12: %v", m)
	}
}
