package signing

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/certfilter"
	"github.com/cardwright/cardwright/prompt"
)

// Service answers the agent's certificates, sign and authenticate requests
// (it has the method set of agent.CertService). Failures are *api.JobError
// with the code Code gives.
//
// Every method takes the requesting page's origin as a parameter: the
// agent passes its connection's checked Origin header, so a page cannot
// choose it.
type Service struct {
	Store    Store
	Prompter prompt.Prompter
}

// parseFilter parses a request's filter; absent or null admits everything.
func parseFilter(raw []byte) (*certfilter.Filter, error) {
	if len(raw) == 0 || strings.TrimSpace(string(raw)) == "null" {
		return nil, nil
	}
	f, err := certfilter.Parse(raw)
	if err != nil {
		return nil, &api.JobError{Code: api.CodeInvalidField, Key: "filter", Message: "invalid certificate filter: " + strings.ReplaceAll(err.Error(), "\n", "; ")}
	}
	return f, nil
}

// Certificates lists the candidates the filter selects.
func (s *Service) Certificates(ctx context.Context, origin string, req *api.Certificates) (*api.CertificateList, error) {
	f, err := parseFilter(req.Filter)
	if err != nil {
		return nil, err
	}
	cands, err := List(ctx, s.Store, Selector{Filter: f})
	if err != nil {
		return nil, JobError(err)
	}
	out := &api.CertificateList{Certificates: []api.Certificate{}}
	for _, c := range cands {
		out.Certificates = append(out.Certificates, api.Certificate{
			Token:       c.Token.Serial,
			KeyID:       strings.ToUpper(hex.EncodeToString(c.KeyID)),
			Certificate: base64.StdEncoding.EncodeToString(c.Cert.Raw),
		})
	}
	return out, nil
}

// Sign signs the request's data (base64) with the one certificate the
// filter selects; the PIN prompt names origin.
func (s *Service) Sign(ctx context.Context, origin string, req *api.Sign) (*api.Signature, error) {
	f, err := parseFilter(req.Filter)
	if err != nil {
		return nil, err
	}
	data, err := base64.StdEncoding.DecodeString(req.Data)
	if err != nil {
		return nil, &api.JobError{Code: api.CodeInvalidField, Key: "data", Message: fmt.Sprintf("data is not base64: %v", err)}
	}
	r := Request{Select: Selector{Filter: f}, Data: data, Origin: origin}
	if req.Algorithm != "" {
		if r.Algorithm, err = ParseAlgorithm(req.Algorithm); err != nil {
			return nil, &api.JobError{Code: api.CodeInvalidField, Key: "algorithm", Message: err.Error()}
		}
	}
	res, err := Sign(ctx, s.Store, s.Prompter, r)
	if err != nil {
		return nil, JobError(err)
	}
	return &api.Signature{
		Signature:   base64.StdEncoding.EncodeToString(res.Signature),
		Certificate: base64.StdEncoding.EncodeToString(res.Candidate.Cert.Raw),
	}, nil
}

// Authenticate signs the challenge together with origin. The answer's Signature and Certificate are those of the
// AuthToken, whose algorithm is DefaultAlgorithm of the certificate's key.
func (s *Service) Authenticate(ctx context.Context, origin string, req *api.Authenticate) (*api.Authentication, error) {
	f, err := parseFilter(req.Filter)
	if err != nil {
		return nil, err
	}
	tok, err := Authenticate(ctx, s.Store, s.Prompter, AuthRequest{Select: Selector{Filter: f}, Origin: origin, Nonce: req.Challenge})
	if err != nil {
		return nil, JobError(err)
	}
	return &api.Authentication{
		Format:      tok.Format,
		Algorithm:   string(tok.Algorithm),
		Signature:   base64.StdEncoding.EncodeToString(tok.Signature),
		Certificate: base64.StdEncoding.EncodeToString(tok.Certificate),
	}, nil
}
