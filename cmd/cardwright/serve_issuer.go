package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/issuer"
)

// setCardJobIssuer gives POST /CardJob its issuer: the local CA of
// --issuer-ca, else of [issuer] ca_dir (errors then name that line). A
// synchronous XML job has no portal to answer its certificate requests
// (docs/protocol.md, "POST /CardJob"); without a CA, jobs that generate
// keys are refused before card I/O.
func setCardJobIssuer(srv *agent.Server, cfg *config.Config, flagDir string, log *slog.Logger) error {
	dir, where := flagDir, "--issuer-ca"
	if dir == "" {
		dir, where = cfg.IssuerCADir, cfg.IssuerCAAt+": [issuer] ca_dir"
	}
	if dir == "" {
		log.Info("POST /CardJob has no certificate issuer: jobs that generate keys are refused ([issuer] ca_dir or --issuer-ca configures one)")
		return nil
	}
	ca, err := issuer.OpenLocalCA(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	log.Info("POST /CardJob certificates are issued by a local CA", "dir", dir, "ca", ca.Certificate().Subject.String())
	srv.SetCardJobIssuer(localCAIssuer(ca, log))
	return nil
}

// localCAIssuer answers a job's certificate requests from a local CA. It
// cannot archive keys: key_archival templates need a portal.
func localCAIssuer(ca issuer.Issuer, log *slog.Logger) agent.CertificateIssuer {
	return func(ctx context.Context, req agent.CertRequest) (*agent.CertAnswer, error) {
		fail := func(msg string) error {
			return &api.JobError{Code: api.CodeIssuerError, Message: msg, Step: "request"}
		}
		if req.KeyArchival {
			return nil, fail("Application_" + req.Application + ": the local CA cannot archive keys (template " + req.Template + " needs a portal)")
		}
		der, chain, err := ca.Issue(ctx, issuer.Request{CSR: req.CSR, Application: req.Application})
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, &api.JobError{Code: api.CodeCancelled, Message: "job cancelled while the local CA issued the certificate", Step: "request"}
		}
		if err != nil {
			log.Warn("the local CA refused a request", "application", req.Application, "err", err)
			return nil, fail("the local CA refused the request of Application_" + req.Application + ": " + err.Error())
		}
		ans := &agent.CertAnswer{}
		if ans.Certificate, err = x509.ParseCertificate(der); err != nil {
			return nil, fail("parsing the local CA's certificate: " + err.Error())
		}
		for _, c := range chain {
			cert, err := x509.ParseCertificate(c)
			if err != nil {
				return nil, fail("parsing the local CA's chain: " + err.Error())
			}
			ans.Chain = append(ans.Chain, cert)
		}
		log.Info("certificate issued by the local CA", "application", req.Application, "template", req.Template, "serial", fmt.Sprintf("%X", ans.Certificate.SerialNumber))
		return ans, nil
	}
}
