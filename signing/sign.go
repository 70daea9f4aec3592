package signing

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/cardwright/cardwright/prompt"
)

// Request is a signing request. Exactly one of Data and Digest is set.
type Request struct {
	Select    Selector
	Algorithm Algorithm // "": DefaultAlgorithm of the chosen certificate's key
	Data      []byte    // signed as the algorithm prescribes (hashed first)
	Digest    []byte    // a precomputed hash: needs Algorithm, and its hash's length
	Origin    string    // the page that asks, shown in the PIN prompt; "" for the local user

	// A digest can be the hash of an authentication value for any origin:
	// take digests only from the local user (the CLI), never from a page,
	// unless the certificates it may pick cannot authenticate (no
	// clientAuth). Service does not offer it.
}

// Result is a signature and what made it.
type Result struct {
	// Signature: RSA as the PKCS#1 signature octets (RFC 8017 §8), ECDSA as
	// an ASN.1 Ecdsa-Sig-Value (RFC 3279 §2.2.3), as X.509 and CMS carry it.
	Signature []byte
	Algorithm Algorithm
	Digest    []byte // what was signed
	Candidate *Candidate
}

// Check validates the request before any token is touched (Sign calls it
// first); callers may use it to report a malformed request early.
func (r *Request) Check() error {
	if r.Algorithm != "" {
		if _, err := ParseAlgorithm(string(r.Algorithm)); err != nil {
			return err
		}
	}
	switch {
	case r.Data != nil && r.Digest != nil:
		return fmt.Errorf("%w: both data and a digest given", ErrInvalidRequest)
	case r.Digest != nil:
		if r.Algorithm == "" {
			return fmt.Errorf("%w: a digest needs an algorithm", ErrInvalidRequest)
		}
		if n := r.Algorithm.Hash().Size(); len(r.Digest) != n {
			return fmt.Errorf("%w: %s digest of %d bytes, want %d", ErrInvalidRequest, r.Algorithm, len(r.Digest), n)
		}
	case r.Data == nil:
		return fmt.Errorf("%w: nothing to sign (no data, no digest)", ErrInvalidRequest)
	case bytes.HasPrefix(r.Data, []byte(authContext)):
		return fmt.Errorf("%w: the data is an authentication value (use authenticate)", ErrInvalidRequest)
	}
	return nil
}

// Sign signs with the key of the one certificate the request selects, after
// the local user enters the token PIN. The signature is verified with the
// certificate before it is returned, so a key that does not belong to the
// certificate is an error, not a useless signature.
func Sign(ctx context.Context, store Store, p prompt.Prompter, req Request) (*Result, error) {
	if err := req.Check(); err != nil {
		return nil, err
	}
	c, err := choose(ctx, store, p, req.Select, req.Algorithm, prompt.Sign)
	if err != nil {
		return nil, err
	}
	alg := req.Algorithm
	if alg == "" {
		if alg, err = DefaultAlgorithm(c.Cert.PublicKey); err != nil {
			return nil, err
		}
	}
	digest := req.Digest
	if digest == nil {
		h := alg.Hash().New()
		h.Write(req.Data)
		digest = h.Sum(nil)
	}
	// The dialog names the origin, the token and the certificate's
	// subject itself (prompt.Request).
	label := c.Token.secretLabel()
	sig, err := signDigest(ctx, store, p, c, pinRequest(prompt.Sign, label, req.Origin, c), alg, digest)
	if err != nil {
		return nil, err
	}
	return &Result{Signature: sig, Algorithm: alg, Digest: digest, Candidate: c}, nil
}

// choose picks the one candidate the selector admits that suits alg (any
// when alg is ""): a single match, or the user's choice when p is a
// Chooser.
func choose(ctx context.Context, store Store, p prompt.Prompter, sel Selector, alg Algorithm, kind prompt.Kind) (*Candidate, error) {
	cands, err := List(ctx, store, sel)
	if err != nil {
		return nil, err
	}
	n := len(cands)
	if alg != "" {
		usable := cands[:0:0]
		for _, c := range cands {
			if alg.checkKey(c.Cert.PublicKey) == nil {
				usable = append(usable, c)
			}
		}
		cands = usable
	}
	switch {
	case len(cands) == 1:
		return cands[0], nil
	case len(cands) == 0 && n > 0:
		return nil, fmt.Errorf("%w: %d certificates match %s, none with an %s key for %s", ErrNoCertificate, n, sel.describe(), alg.KeyType(), alg)
	case len(cands) == 0:
		return nil, fmt.Errorf("%w: %s", ErrNoCertificate, sel.describe())
	}
	ch, ok := p.(Chooser)
	if !ok {
		return nil, fmt.Errorf("%w: %d certificates match %s", ErrAmbiguous, len(cands), sel.describe())
	}
	c, err := ch.Choose(ctx, kind, cands)
	if err != nil {
		return nil, fmt.Errorf("choosing a certificate: %w", err)
	}
	for _, x := range cands {
		if x == c {
			return c, nil
		}
	}
	return nil, fmt.Errorf("choosing a certificate: %w: the chooser returned a certificate not offered", ErrInvalidRequest)
}

// signDigest asks for the PIN, opens the key and signs digest with alg,
// checking the result against the certificate.
func signDigest(ctx context.Context, store Store, p prompt.Prompter, c *Candidate, pr prompt.Request, alg Algorithm, digest []byte) ([]byte, error) {
	if err := alg.checkKey(c.Cert.PublicKey); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("asking for the PIN: %w", prompt.ErrUnavailable)
	}
	a, err := p.Ask(ctx, pr)
	defer a.Wipe()
	if err != nil {
		return nil, fmt.Errorf("asking for the PIN: %w", err)
	}
	pin := a.PIN
	if pin.IsZero() {
		return nil, fmt.Errorf("asking for the PIN: %w", prompt.ErrRefused)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key, release, err := store.Key(ctx, c, pin)
	if err != nil {
		return nil, fmt.Errorf("opening the key of %s: %w", c, err)
	}
	defer release()
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := key.Public().(equaler); !ok || !e.Equal(c.Cert.PublicKey) {
		return nil, fmt.Errorf("opening the key of %s: %w", c, ErrKeyMismatch)
	}
	sig, err := key.Sign(rand.Reader, digest, alg.SignerOpts())
	if err != nil {
		if errors.Is(err, ErrToken) {
			return nil, fmt.Errorf("signing with %s: %w", c, err)
		}
		return nil, fmt.Errorf("signing with %s: %w: %w", c, ErrToken, err)
	}
	if err := alg.verifyDigest(c.Cert.PublicKey, digest, sig); err != nil {
		return nil, fmt.Errorf("checking the signature of %s: %w", c, err)
	}
	return sig, nil
}
