// Package softstore is the agent's own soft-token store: PKCS#12 software
// tokens (token profile type FILEP12SW, spec/certfilter.md) delivered by a
// portal and kept on the local disk. Each token is one file holding its
// certificate and chain in clear (so certificates can be listed and
// filtered without a passphrase) and its private key (PKCS#8) sealed with
// AES-256-GCM under a key derived from the token's passphrase with
// Argon2id (RFC 9106). The passphrase is the one the PKCS#12 was delivered
// with: the user types one secret, and the key is no longer protected only
// by the PKCS#12's legacy PBE (often 3DES or RC2 with 2048 SHA-1 rounds).
//
// The metadata is bound to the key as GCM additional data, so a file whose
// certificate was swapped does not open.
package softstore

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/cardwright/cardwright/secret"
)

// ProfileFileP12SW is the token profile type of a PKCS#12 software token
// (token.profiletype, spec/certfilter.md).
const ProfileFileP12SW = "FILEP12SW"

// Errors.
var (
	// ErrWrongPassphrase: the PKCS#12 or a stored key does not open with
	// the passphrase given. Nothing was stored.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrNotFound: no token with that key id in the store.
	ErrNotFound = errors.New("no such soft token")
	// ErrMalformed: a PKCS#12 or a store file that does not decode.
	ErrMalformed = errors.New("malformed soft token")
)

// KDF are the Argon2id parameters (RFC 9106 §4, second recommended
// option: t=3, 64 MiB, p=4).
type KDF struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// DefaultKDF is what Put uses unless the Store says otherwise.
var DefaultKDF = KDF{Time: 3, MemoryKiB: 64 << 10, Threads: 4}

const (
	version   = 1
	aadPrefix = "cardwright softstore v1\x00"
	fileExt   = ".json"
	maxFile   = 1 << 20
)

// Store is a folder of soft tokens. It is safe for concurrent use within
// one process.
type Store struct {
	Dir string
	KDF KDF // zero: DefaultKDF

	mu sync.Mutex
}

// New returns a Store over dir (created on the first Put, 0700).
func New(dir string) *Store { return &Store{Dir: dir} }

// DefaultDir is the per-user folder: $XDG_DATA_HOME/cardwright/softtokens,
// else ~/.local/share/cardwright/softtokens; on Windows under the roaming
// application-data folder.
func DefaultDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "cardwright", "softtokens"), nil
	}
	if os.PathSeparator == '\\' {
		d, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("finding the soft-token folder: %w", err)
		}
		return filepath.Join(d, "cardwright", "softtokens"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the soft-token folder: %w", err)
	}
	return filepath.Join(home, ".local", "share", "cardwright", "softtokens"), nil
}

// Entry is one stored token as listed: everything but the key.
type Entry struct {
	KeyID       []byte // SHA-1 of the public key's bits (as p11.KeyID, RFC 5280 §4.2.1.2 method 1)
	Label       string
	ProfileType string
	Created     time.Time
	Cert        *x509.Certificate
	Chain       []*x509.Certificate
}

// KeyIDHex is the key id as upper-case hex (key.id of certfilter).
func (e *Entry) KeyIDHex() string { return strings.ToUpper(hex.EncodeToString(e.KeyID)) }

// file is the on-disk form, one JSON object a token.
type file struct {
	Version     int      `json:"version"`
	KeyID       string   `json:"key_id"`
	Label       string   `json:"label"`
	ProfileType string   `json:"profile_type"`
	Created     string   `json:"created"`
	Certificate []byte   `json:"certificate"` // DER
	Chain       [][]byte `json:"chain,omitempty"`
	KDF         string   `json:"kdf"` // "argon2id"
	Params      KDF      `json:"params"`
	Salt        []byte   `json:"salt"`
	Nonce       []byte   `json:"nonce"`
	Sealed      []byte   `json:"sealed"` // AES-256-GCM of the PKCS#8 key
}

// Opened is a decoded PKCS#12: what Decode returns.
type Opened struct {
	Key   crypto.Signer
	Cert  *x509.Certificate
	Chain []*x509.Certificate
}

// Decode opens a PKCS#12 (RFC 7292) with passphrase and checks that its key
// belongs to its certificate. A wrong passphrase is ErrWrongPassphrase.
// The file is checked against the limits first (CheckP12).
func Decode(p12 []byte, passphrase secret.Value) (*Opened, error) {
	if err := CheckP12(p12); err != nil {
		return nil, fmt.Errorf("opening the PKCS#12: %w", err)
	}
	key, cert, chain, err := pkcs12.DecodeChain(p12, passphrase.Reveal())
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			return nil, fmt.Errorf("opening the PKCS#12: %w", ErrWrongPassphrase)
		}
		return nil, fmt.Errorf("opening the PKCS#12: %w: %w", ErrMalformed, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("opening the PKCS#12: %w: key type %T cannot sign", ErrMalformed, key)
	}
	if !samePublic(signer.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("opening the PKCS#12: %w: its key does not belong to its certificate", ErrMalformed)
	}
	return &Opened{Key: signer, Cert: cert, Chain: chain}, nil
}

func samePublic(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// KeyID is the SHA-1 of the subjectPublicKey bits of cert's key (RFC 5280
// §4.2.1.2 method 1), the CKA_ID p11.KeyID gives the same key.
func KeyID(cert *x509.Certificate) []byte {
	var spki struct {
		Alg asn1.RawValue
		Key asn1.BitString
	}
	// x509 parsed RawSubjectPublicKeyInfo already: it decodes.
	asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki)
	h := sha1.Sum(spki.Key.Bytes)
	return h[:]
}

// Put opens p12 with passphrase and stores its key and certificates under
// label (profileType "" is FILEP12SW). A wrong passphrase stores nothing
// and is ErrWrongPassphrase. A token with the same key id is replaced.
func (s *Store) Put(p12 []byte, passphrase secret.Value, label, profileType string) (*Entry, error) {
	o, err := Decode(p12, passphrase)
	if err != nil {
		return nil, err
	}
	return s.PutOpened(o, passphrase, label, profileType)
}

// PutOpened stores an already decoded PKCS#12, sealing its key under
// passphrase.
func (s *Store) PutOpened(o *Opened, passphrase secret.Value, label, profileType string) (*Entry, error) {
	if passphrase.IsZero() {
		return nil, fmt.Errorf("storing the soft token: %w: an empty passphrase", ErrWrongPassphrase)
	}
	if profileType == "" {
		profileType = ProfileFileP12SW
	}
	if label == "" {
		label = o.Cert.Subject.CommonName
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(o.Key)
	if err != nil {
		return nil, fmt.Errorf("storing the soft token: %w", err)
	}
	defer wipe(pkcs8)
	kdf := s.KDF
	if kdf == (KDF{}) {
		kdf = DefaultKDF
	}
	now := time.Now().UTC()
	f := file{Version: version, KeyID: strings.ToUpper(hex.EncodeToString(KeyID(o.Cert))), Label: label,
		ProfileType: profileType, Created: now.Format(time.RFC3339), Certificate: o.Cert.Raw,
		KDF: "argon2id", Params: kdf, Salt: make([]byte, 16), Nonce: make([]byte, 12)}
	for _, c := range o.Chain {
		f.Chain = append(f.Chain, c.Raw)
	}
	if _, err := rand.Read(f.Salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(f.Nonce); err != nil {
		return nil, err
	}
	aead, err := f.aead(passphrase)
	if err != nil {
		return nil, err
	}
	f.Sealed = aead.Seal(nil, f.Nonce, pkcs8, f.aad())
	data, err := json.MarshalIndent(&f, "", "  ")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("storing the soft token: %w", err)
	}
	tmp, err := os.CreateTemp(s.Dir, ".new-*")
	if err != nil {
		return nil, fmt.Errorf("storing the soft token: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err = tmp.Write(data); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(s.Dir, f.KeyID+fileExt))
	}
	if err != nil {
		return nil, fmt.Errorf("storing the soft token: %w", err)
	}
	return f.entry()
}

// List returns the stored tokens, sorted by label then key id. Files that
// do not decode are skipped; their errors are returned with what did.
func (s *Store) List() ([]*Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing soft tokens: %w", err)
	}
	var out []*Entry
	var errs []error
	for _, de := range ents {
		if de.IsDir() || !strings.HasSuffix(de.Name(), fileExt) || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		f, err := s.read(filepath.Join(s.Dir, de.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e, err := f.entry()
		if err != nil {
			errs = append(errs, fmt.Errorf("reading %s: %w", de.Name(), err))
			continue
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Label != out[j].Label {
			return out[i].Label < out[j].Label
		}
		return out[i].KeyIDHex() < out[j].KeyIDHex()
	})
	return out, errors.Join(errs...)
}

// Open returns the private key of the token with keyID, unsealed with
// passphrase. A wrong passphrase is ErrWrongPassphrase.
func (s *Store) Open(keyID []byte, passphrase secret.Value) (crypto.Signer, *Entry, error) {
	s.mu.Lock()
	f, err := s.read(filepath.Join(s.Dir, strings.ToUpper(hex.EncodeToString(keyID))+fileExt))
	s.mu.Unlock()
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("opening soft token %X: %w", keyID, ErrNotFound)
	}
	if err != nil {
		return nil, nil, err
	}
	e, err := f.entry()
	if err != nil {
		return nil, nil, err
	}
	key, err := f.open(passphrase)
	if err != nil {
		return nil, nil, fmt.Errorf("opening soft token %q: %w", e.Label, err)
	}
	if !samePublic(key.Public(), e.Cert.PublicKey) {
		return nil, nil, fmt.Errorf("opening soft token %q: %w: key and certificate differ", e.Label, ErrMalformed)
	}
	return key, e, nil
}

// Remove deletes the token with keyID.
func (s *Store) Remove(keyID []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := os.Remove(filepath.Join(s.Dir, strings.ToUpper(hex.EncodeToString(keyID))+fileExt))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing soft token %X: %w", keyID, ErrNotFound)
	}
	return err
}

func (s *Store) read(path string) (*file, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	buf, err := io.ReadAll(io.LimitReader(fh, maxFile+1))
	if err != nil {
		return nil, err
	}
	n := len(buf)
	if n > maxFile {
		return nil, fmt.Errorf("reading %s: %w: over %d bytes", filepath.Base(path), ErrMalformed, maxFile)
	}
	f, err := parseFile(buf[:n])
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Base(path), err)
	}
	return f, nil
}

// parseFile decodes and checks one store file (the decoder the fuzz test
// drives).
func parseFile(data []byte) (*file, error) {
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	switch {
	case f.Version != version:
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, f.Version)
	case f.KDF != "argon2id":
		return nil, fmt.Errorf("%w: kdf %q", ErrMalformed, f.KDF)
	case f.Params.Time == 0 || f.Params.Time > 64 || f.Params.Threads == 0 ||
		f.Params.MemoryKiB < 8*uint32(f.Params.Threads) || f.Params.MemoryKiB > 1<<21:
		return nil, fmt.Errorf("%w: kdf parameters out of range", ErrMalformed)
	case len(f.Salt) < 16 || len(f.Nonce) != 12 || len(f.Sealed) < 16:
		return nil, fmt.Errorf("%w: salt, nonce or sealed key of the wrong size", ErrMalformed)
	}
	if _, err := f.entry(); err != nil {
		return nil, err
	}
	return &f, nil
}

func (f *file) entry() (*Entry, error) {
	cert, err := x509.ParseCertificate(f.Certificate)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %w", ErrMalformed, err)
	}
	id, err := hex.DecodeString(f.KeyID)
	if err != nil || !strings.EqualFold(f.KeyID, hex.EncodeToString(KeyID(cert))) {
		return nil, fmt.Errorf("%w: key id does not match the certificate", ErrMalformed)
	}
	e := &Entry{KeyID: id, Label: f.Label, ProfileType: f.ProfileType, Cert: cert}
	e.Created, _ = time.Parse(time.RFC3339, f.Created)
	for _, der := range f.Chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: chain: %w", ErrMalformed, err)
		}
		e.Chain = append(e.Chain, c)
	}
	return e, nil
}

// aad binds the metadata a listing shows to the sealed key.
func (f *file) aad() []byte {
	b := []byte(aadPrefix)
	for _, s := range []string{f.KeyID, f.Label, f.ProfileType, string(f.Certificate)} {
		b = append(b, s...)
		b = append(b, 0)
	}
	return b
}

func (f *file) aead(passphrase secret.Value) (cipher.AEAD, error) {
	k := argon2.IDKey(passphrase.Bytes(), f.Salt, f.Params.Time, f.Params.MemoryKiB, f.Params.Threads, 32)
	defer wipe(k)
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (f *file) open(passphrase secret.Value) (crypto.Signer, error) {
	aead, err := f.aead(passphrase)
	if err != nil {
		return nil, err
	}
	pkcs8, err := aead.Open(nil, f.Nonce, f.Sealed, f.aad())
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	defer wipe(pkcs8)
	k, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("%w: sealed key: %w", ErrMalformed, err)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return k.(crypto.Signer), nil
	}
	return nil, fmt.Errorf("%w: key type %T", ErrMalformed, k)
}

func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}
