package cardinit

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/secret"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Issued is the officer's answer to a certificate request: the content of
// the file loaded (a certificate in PEM or DER, with its chain in PEM, or a
// PKCS#12) and the PKCS#12's password.
type Issued struct {
	Data     []byte
	Password secret.Value
}

// Officer answers a certificate request while the job waits (the window
// shows the request, the officer saves it, has it issued and loads the
// result). An error ends the job; a cancelled ctx ends the wait.
type Officer func(ctx context.Context, req issuer.Request) (Issued, error)

// FileIssuer is the issuer of a job without a portal: each request goes to
// the officer (spec/gui.md, "mid-job certificate requests"). The runner
// checks that the certificate is for the card's key.
type FileIssuer struct{ Officer Officer }

// Issue implements issuer.Issuer.
func (f FileIssuer) Issue(ctx context.Context, req issuer.Request) ([]byte, [][]byte, error) {
	ans, err := f.Officer(ctx, req)
	defer ans.Password.Wipe()
	if err != nil {
		return nil, nil, err
	}
	return ParseIssued(ans.Data, ans.Password)
}

// RequestPEM is the request as a PEM "CERTIFICATE REQUEST" file.
func RequestPEM(req issuer.Request) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: req.CSR})
}

// ParseIssued reads an issued certificate: PEM (the first CERTIFICATE block
// is the certificate, the others its chain), DER, or a PKCS#12 (its
// certificate and CA certificates; a key in it is ignored — the key is on
// the card). The password is used for a PKCS#12 only.
func ParseIssued(data []byte, password secret.Value) (cert []byte, chain [][]byte, err error) {
	if bytes.Contains(data, []byte("-----BEGIN")) {
		rest := data
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				continue
			}
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return nil, nil, fmt.Errorf("reading the certificate: %w", err)
			}
			if cert == nil {
				cert = b.Bytes
			} else {
				chain = append(chain, b.Bytes)
			}
		}
		if cert == nil {
			return nil, nil, errors.New("reading the certificate: the PEM file holds no CERTIFICATE")
		}
		return cert, chain, nil
	}
	if _, err := x509.ParseCertificate(data); err == nil {
		return data, nil, nil
	}
	_, c, cas, err := pkcs12.DecodeChain(data, password.Reveal())
	if err != nil {
		// A PKCS#12 without a key (certificates only).
		certs, err2 := pkcs12.DecodeTrustStore(data, password.Reveal())
		if err2 != nil || len(certs) == 0 {
			return nil, nil, fmt.Errorf("reading the file as a certificate (PEM, DER) or PKCS#12: %w", err)
		}
		c, cas = certs[0], certs[1:]
	}
	for _, ca := range cas {
		chain = append(chain, ca.Raw)
	}
	return c.Raw, chain, nil
}
