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

// localCAIssuer is the local CA as issuer.Issuer, logging what it issues
// and refusing with the wire codes (a cancelled job stays cancelled). A CA
// that answers key-archival requests (issuer.LocalCA) stays an
// issuer.Archiver.
func localCAIssuer(ca issuer.Issuer, log *slog.Logger) issuer.Issuer {
	if a, ok := ca.(issuer.Archiver); ok {
		return caArchiveLog{caLog{ca: ca, log: log}, a}
	}
	return caLog{ca: ca, log: log}
}

type caArchiveLog struct {
	caLog
	a issuer.Archiver
}

// Archive answers a key-archival request with the local CA: a new key and
// its certificate as a PKCS#12. The password is not logged.
func (c caArchiveLog) Archive(ctx context.Context, req issuer.Request) (issuer.Archived, error) {
	a, err := c.a.Archive(ctx, req)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return a, &api.JobError{Code: api.CodeCancelled, Message: "job cancelled while the local CA made the archived key", Step: "request"}
	}
	if err != nil {
		c.log.Warn("the local CA refused a key-archival request", "application", req.Application, "err", err)
		return a, &api.JobError{Code: api.CodeIssuerError, Step: "request",
			Message: "the local CA refused the key-archival request of Application_" + req.Application + ": " + err.Error()}
	}
	c.log.Info("key made and certified by the local CA (key archival)", "application", req.Application, "template", req.Template)
	return a, nil
}

type caLog struct {
	ca  issuer.Issuer
	log *slog.Logger
}

func (c caLog) Issue(ctx context.Context, req issuer.Request) ([]byte, [][]byte, error) {
	der, chain, err := c.ca.Issue(ctx, req)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil, nil, &api.JobError{Code: api.CodeCancelled, Message: "job cancelled while the local CA issued the certificate", Step: "request"}
	}
	if err != nil {
		c.log.Warn("the local CA refused a request", "application", req.Application, "err", err)
		return nil, nil, &api.JobError{Code: api.CodeIssuerError, Step: "request",
			Message: "the local CA refused the request of Application_" + req.Application + ": " + err.Error()}
	}
	serial := ""
	if cert, err := x509.ParseCertificate(der); err == nil {
		serial = fmt.Sprintf("%X", cert.SerialNumber)
	}
	c.log.Info("certificate issued by the local CA", "application", req.Application, "template", req.Template, "serial", serial)
	return der, chain, nil
}
