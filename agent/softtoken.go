package agent

// softtoken.go: the softtoken request (docs/protocol.md), served by a
// CertService that also implements SoftTokenService.

import (
	"bytes"
	"context"
	"errors"

	"github.com/cardwright/cardwright/agent/api"
)

// SoftTokenService delivers a PKCS#12 software token to the local user: it
// asks the passphrase in the agent's dialog (the page learns only through
// notify that the dialog is open, api.PromptWaiting, and closed,
// api.PromptDone) and stores the key and certificate. origin is the
// connection's checked Origin. The agent's CertService offers it when it
// implements this interface; otherwise softtoken is not_supported.
type SoftTokenService interface {
	DeliverSoftToken(ctx context.Context, origin string, req *api.SoftToken, notify func(state string)) (*api.SoftTokenStored, error)
}

// promptKindPassphrase is the prompt event's kind while the passphrase
// dialog is open.
const promptKindPassphrase = "passphrase"

func (c *conn) onSoftToken(id string, raw []byte) {
	st, ok := c.s.deps.Certs.(SoftTokenService)
	if !ok {
		c.fail(id, api.CodeNotSupported, "this agent has no soft-token service")
		return
	}
	raw = bytes.Clone(raw) // the read loop reuses its buffer (certs.go)
	ctx, origin := c.ctx, c.origin
	go func() {
		var m api.SoftToken
		if !decode(c, id, raw, &m) {
			return
		}
		notify := func(state string) {
			c.send(&api.Prompt{Type: api.TypePrompt, ID: id, Kind: promptKindPassphrase, State: state})
		}
		r, err := st.DeliverSoftToken(ctx, origin, &m, notify)
		if err != nil {
			var je *api.JobError
			if errors.As(err, &je) {
				c.fail(id, je.Code, je.Message)
			} else {
				c.fail(id, api.CodeInternal, err.Error())
			}
			return
		}
		r.Type, r.ID = api.TypeSoftTokenStored, id
		c.send(r)
	}()
}
