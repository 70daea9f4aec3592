package agent

// certs.go: certificates, sign and authenticate, served by the CertService
// with the connection's checked origin.

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/cardwright/cardwright/agent/api"
)

func (c *conn) onCertService(id string, raw []byte) {
	cs := c.s.deps.Certs
	if cs == nil {
		c.fail(id, api.CodeNotSupported, "this agent has no certificate service")
		return
	}
	// The goroutine decodes raw after the read loop has moved on, and the
	// loop reuses its buffer for the next frame: without the copy, a sign
	// request could sign the data of the one after it.
	raw = bytes.Clone(raw)
	var env api.Envelope
	json.Unmarshal(raw, &env)
	ctx, origin := c.ctx, c.origin
	go func() {
		var (
			reply any
			err   error
		)
		switch env.Type {
		case api.TypeCertificates:
			var m api.Certificates
			if !decode(c, id, raw, &m) {
				return
			}
			var r *api.CertificateList
			r, err = cs.Certificates(ctx, origin, &m)
			if r != nil {
				r.Type, r.ID = api.TypeCertificateList, id
			}
			reply = r
		case api.TypeSign:
			var m api.Sign
			if !decode(c, id, raw, &m) {
				return
			}
			var r *api.Signature
			r, err = cs.Sign(ctx, origin, &m)
			if r != nil {
				r.Type, r.ID = api.TypeSignature, id
			}
			reply = r
		case api.TypeAuthenticate:
			var m api.Authenticate
			if !decode(c, id, raw, &m) {
				return
			}
			var r *api.Authentication
			r, err = cs.Authenticate(ctx, origin, &m)
			if r != nil {
				r.Type, r.ID = api.TypeAuthentication, id
			}
			reply = r
		}
		if err != nil {
			var je *api.JobError
			if errors.As(err, &je) {
				c.fail(id, je.Code, je.Message)
			} else {
				c.fail(id, api.CodeInternal, err.Error())
			}
			return
		}
		c.send(reply)
	}()
}
