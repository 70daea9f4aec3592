package signing

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/cardwright/cardwright/prompt"
)

// AuthFormat is the format tag of version 1 authentication tokens.
const AuthFormat = "cardwright-auth:1"

// Nonce limits: a challenge carries at least 32 random bytes (the Web eID
// rule) and, as text, at most MaxNonceLen characters.
const (
	MinNonceBytes = 32
	MaxNonceLen   = 256
)

// MaxTokenLen bounds the size of an authentication token ParseAuthToken
// accepts, ahead of any JSON decoding.
const MaxTokenLen = 64 << 10

// AuthToken is the answer to an authentication challenge. In JSON:
//
//	{"format":"cardwright-auth:1","algorithm":"ES384",
//	 "certificate":"MIIB…","signature":"q83v…"}
//
// certificate is the signer's DER certificate and signature the signature
// over hash(origin) || hash(nonce), both in standard base64 with padding.
// The ECDSA signature is r||s, each as long as the curve order (RFC 7518
// §3.4), as in a JWS.
type AuthToken struct {
	Format      string    `json:"format"`
	Algorithm   Algorithm `json:"algorithm"`
	Certificate []byte    `json:"certificate"`
	Signature   []byte    `json:"signature"`
}

// AuthRequest is an authentication challenge: the origin of the page that
// asks (from the connection, never from the page's message) and its nonce.
type AuthRequest struct {
	Select    Selector
	Algorithm Algorithm // "": DefaultAlgorithm of the certificate's key
	Origin    string
	Nonce     string
}

// CanonicalOrigin checks that origin can be authenticated to and returns its
// serialisation (RFC 6454 §6.2): scheme "https" with a host, or "http" with
// host localhost (for development); lower case, no default port, no path,
// query, fragment or user information.
func CanonicalOrigin(origin string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: %q %s", ErrInvalidOrigin, origin, why)
	}
	if origin == "" {
		return bad("is empty (the request did not come from a web page)")
	}
	u, err := url.Parse(origin)
	if err != nil {
		return bad("is not a URL")
	}
	switch {
	case u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		return bad("is not an origin (scheme://host[:port] only)")
	case u.Host == "" || u.Hostname() == "":
		return bad("has no host")
	}
	for _, r := range u.Host {
		if r > 0x7e || r < 0x21 {
			return bad("has a host that is not ASCII (use its A-label)")
		}
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	switch {
	case scheme == "https":
		if port == "443" {
			port = ""
		}
	case scheme == "http" && host == "localhost":
		if port == "80" {
			port = ""
		}
	case scheme == "http":
		return bad("is not https (plain http is allowed for localhost only)")
	default:
		return bad("has scheme " + scheme + ", not https")
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// CheckNonce checks a challenge nonce: base64 (standard or URL alphabet,
// padded or not) of at least MinNonceBytes bytes, at most MaxNonceLen
// characters.
func CheckNonce(nonce string) error {
	if len(nonce) > MaxNonceLen {
		return fmt.Errorf("%w: %d characters, at most %d", ErrInvalidNonce, len(nonce), MaxNonceLen)
	}
	if strings.IndexFunc(nonce, func(r rune) bool { return !isBase64Char(r, true) }) >= 0 {
		return fmt.Errorf("%w: not base64", ErrInvalidNonce)
	}
	var b []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err = enc.Strict().DecodeString(nonce); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("%w: not base64", ErrInvalidNonce)
	}
	if len(b) < MinNonceBytes {
		return fmt.Errorf("%w: %d bytes, at least %d", ErrInvalidNonce, len(b), MinNonceBytes)
	}
	return nil
}

// authContext starts every value an authentication token signs. Sign
// refuses data that starts with it, so that a page allowed to ask for
// signatures cannot have the agent sign an authentication value for
// another origin (docs/signing.md, "Why the context prefix").
const authContext = AuthFormat + "\x00"

// SignedValue is what an authentication token signs for origin and nonce
// (already checked and canonical): the context "cardwright-auth:1" and a
// zero byte, then hash(origin) || hash(nonce) as Web eID signs them, hash
// being the algorithm's, over the UTF-8 text of each as sent. The signature
// then hashes this value once more, as the algorithm prescribes.
func SignedValue(alg Algorithm, origin, nonce string) []byte {
	h := alg.Hash()
	a := h.New()
	a.Write([]byte(origin))
	b := h.New()
	b.Write([]byte(nonce))
	return b.Sum(a.Sum([]byte(authContext)))
}

// Authenticate answers a challenge: it checks the origin and the nonce,
// picks the one certificate the request selects, asks the local user for
// the PIN (telling them which site asks) and signs
// SignedValue(origin, nonce).
func Authenticate(ctx context.Context, store Store, p prompt.Prompter, req AuthRequest) (*AuthToken, error) {
	origin, err := CanonicalOrigin(req.Origin)
	if err != nil {
		return nil, err
	}
	if err := CheckNonce(req.Nonce); err != nil {
		return nil, err
	}
	if req.Algorithm != "" {
		if _, err := ParseAlgorithm(string(req.Algorithm)); err != nil {
			return nil, err
		}
	}
	c, err := choose(ctx, store, p, req.Select, req.Algorithm, prompt.SignIn)
	if err != nil {
		return nil, err
	}
	alg := req.Algorithm
	if alg == "" {
		if alg, err = DefaultAlgorithm(c.Cert.PublicKey); err != nil {
			return nil, err
		}
	}
	h := alg.Hash().New()
	h.Write(SignedValue(alg, origin, req.Nonce))
	label := c.Token.secretLabel()
	sig, err := signDigest(ctx, store, p, c, pinRequest(prompt.SignIn, label, origin, c), alg, h.Sum(nil))
	if err != nil {
		return nil, err
	}
	if pub, ok := c.Cert.PublicKey.(*ecdsa.PublicKey); ok {
		if sig, err = ecdsaRaw(pub, sig); err != nil {
			return nil, fmt.Errorf("encoding the signature: %w", err)
		}
	}
	return &AuthToken{Format: AuthFormat, Algorithm: alg, Certificate: c.Cert.Raw, Signature: sig}, nil
}

// Marshal gives the token's JSON.
func (t *AuthToken) Marshal() []byte {
	b, _ := json.Marshal(t) // only strings and byte slices: cannot fail
	return b
}

// ParseAuthToken decodes a token strictly: one JSON object, exactly the four
// members, known format and algorithm, standard base64, a parsable
// certificate and a non-empty signature. It does not verify anything.
func ParseAuthToken(data []byte) (*AuthToken, *x509.Certificate, error) {
	if len(data) > MaxTokenLen {
		return nil, nil, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidToken, len(data), MaxTokenLen)
	}
	raw, err := tokenMembers(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if raw["format"] != AuthFormat {
		return nil, nil, fmt.Errorf("%w: format %q, want %q", ErrInvalidToken, raw["format"], AuthFormat)
	}
	alg, ok := lookupAlgorithm(raw["algorithm"])
	if !ok {
		return nil, nil, fmt.Errorf("%w: unknown algorithm %q", ErrInvalidToken, raw["algorithm"])
	}
	der, err := decodeStd(raw["certificate"])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: certificate: %w", ErrInvalidToken, err)
	}
	sig, err := decodeStd(raw["signature"])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: signature: %w", ErrInvalidToken, err)
	}
	if len(sig) == 0 {
		return nil, nil, fmt.Errorf("%w: empty signature", ErrInvalidToken)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: certificate: %w", ErrInvalidToken, err)
	}
	return &AuthToken{Format: AuthFormat, Algorithm: alg, Certificate: der, Signature: sig}, cert, nil
}

// VerifyOptions are the trust settings of VerifyWith.
type VerifyOptions struct {
	Roots         *x509.CertPool // required
	Intermediates *x509.CertPool
	CurrentTime   time.Time // zero: now
}

// Verify checks an authentication token for a portal: the token parses,
// the certificate chains to roots for client authentication, and the
// signature is over SignedValue(expectedOrigin, expectedNonce) — so a token
// made for another origin or another challenge fails. It returns the
// authenticated certificate.
func Verify(token []byte, expectedOrigin, expectedNonce string, roots *x509.CertPool) (*x509.Certificate, error) {
	return VerifyWith(token, expectedOrigin, expectedNonce, VerifyOptions{Roots: roots})
}

// VerifyWith is Verify with intermediates and a verification time.
func VerifyWith(token []byte, expectedOrigin, expectedNonce string, opts VerifyOptions) (*x509.Certificate, error) {
	origin, err := CanonicalOrigin(expectedOrigin)
	if err != nil {
		return nil, err
	}
	if err := CheckNonce(expectedNonce); err != nil {
		return nil, err
	}
	if opts.Roots == nil {
		return nil, fmt.Errorf("%w: no trusted roots given", ErrBadCertificate)
	}
	t, cert, err := ParseAuthToken(token)
	if err != nil {
		return nil, err
	}
	if err := t.Algorithm.checkKey(cert.PublicKey); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots: opts.Roots, Intermediates: opts.Intermediates, CurrentTime: opts.CurrentTime,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return nil, fmt.Errorf("%w: key usage lacks digitalSignature", ErrBadCertificate)
	}
	sig := t.Signature
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); ok {
		if sig, err = ecdsaASN1(pub, sig); err != nil {
			return nil, err
		}
	}
	h := t.Algorithm.Hash().New()
	h.Write(SignedValue(t.Algorithm, origin, expectedNonce))
	if err := t.Algorithm.verifyDigest(cert.PublicKey, h.Sum(nil), sig); err != nil {
		return nil, fmt.Errorf("%w for origin %s and this nonce", err, origin)
	}
	return cert, nil
}

// tokenMembers reads the token object: exactly the four members, each a
// string, each once, names matched exactly (encoding/json alone would
// match them ignoring case and keep the last of two duplicates).
func tokenMembers(data []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		return nil, err
	} else if tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	m := make(map[string]string, 4)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		switch name {
		case "format", "algorithm", "certificate", "signature":
		default:
			return nil, fmt.Errorf("unknown member %q", name)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("member %q twice", name)
		}
		if tok, err = dec.Token(); err != nil {
			return nil, err
		}
		v, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("member %q is not a string", name)
		}
		m[name] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the token object")
	}
	for _, name := range []string{"format", "algorithm", "certificate", "signature"} {
		if _, ok := m[name]; !ok {
			return nil, fmt.Errorf("no %q member", name)
		}
	}
	return m, nil
}

// isBase64Char reports whether r is in the standard base64 alphabet or
// padding, or with url in the URL alphabet. encoding/base64 skips CR and LF
// even in strict mode; a token or nonce with them is rejected here.
func isBase64Char(r rune, url bool) bool {
	switch {
	case 'A' <= r && r <= 'Z', 'a' <= r && r <= 'z', '0' <= r && r <= '9', r == '=':
		return true
	case r == '+' || r == '/':
		return true
	case url && (r == '-' || r == '_'):
		return true
	}
	return false
}

// decodeStd decodes padded standard base64 (RFC 4648 §4) and nothing else.
func decodeStd(s string) ([]byte, error) {
	if i := strings.IndexFunc(s, func(r rune) bool { return !isBase64Char(r, false) }); i >= 0 {
		return nil, fmt.Errorf("byte %d is not standard base64", i)
	}
	return base64.StdEncoding.Strict().DecodeString(s)
}
