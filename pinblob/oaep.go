package pinblob

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// RawRSA is a bare RSA private-key operation, m = c^d mod n, as PKCS#11
// CKM_RSA_X_509 gives it (PKCS#11 v2.40 §2.1.8).
type RawRSA interface {
	Public() crypto.PublicKey
	DecryptRaw(c []byte) ([]byte, error)
}

// OAEPDecrypter turns a raw RSA key into a crypto.Decrypter that removes
// the RSA-OAEP-SHA-256 padding itself (RFC 8017 §7.1.2). It is for tokens
// whose CKM_RSA_PKCS_OAEP lacks SHA-256: SoftHSM 2.6 accepts only SHA-1
// there (CKR_ARGUMENTS_BAD otherwise) but does CKM_RSA_X_509. The stdlib
// has no OAEP decoding apart from its own private keys, hence this code.
func OAEPDecrypter(raw RawRSA) (crypto.Decrypter, error) {
	pub, ok := raw.Public().(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("wrapping a raw RSA key: %w: %T public key", ErrUnsupported, raw.Public())
	}
	return oaepDecrypter{raw: raw, pub: pub}, nil
}

type oaepDecrypter struct {
	raw RawRSA
	pub *rsa.PublicKey
}

func (d oaepDecrypter) Public() crypto.PublicKey { return d.pub }

// Decrypt accepts only *rsa.OAEPOptions with SHA-256 for both hashes and
// an empty label: the one scheme pinblob uses. Padding failures give
// rsa.ErrDecryption, with no hint of where the padding broke.
func (d oaepDecrypter) Decrypt(_ io.Reader, c []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	o, ok := opts.(*rsa.OAEPOptions)
	if !ok || o.Hash != crypto.SHA256 || (o.MGFHash != 0 && o.MGFHash != crypto.SHA256) || len(o.Label) > 0 {
		return nil, errors.New("decrypting: only RSA-OAEP with SHA-256 and no label is supported")
	}
	k := (d.pub.N.BitLen() + 7) / 8
	const hLen = sha256.Size
	if len(c) != k || k < 2*hLen+2 {
		return nil, rsa.ErrDecryption
	}
	// RSADP step 1 (RFC 8017 §5.1.2): c must be below n. Checked here, on
	// public data, because tokens refuse such input each in their own way
	// (CKR_ENCRYPTED_DATA_INVALID, CKR_DATA_INVALID, …), not as a padding
	// failure.
	if new(big.Int).SetBytes(c).Cmp(d.pub.N) >= 0 {
		return nil, rsa.ErrDecryption
	}
	m, err := d.raw.DecryptRaw(c)
	if err != nil {
		return nil, fmt.Errorf("decrypting: %w", err)
	}
	if len(m) > k {
		return nil, rsa.ErrDecryption
	}
	em := make([]byte, k) // I2OSP: left-pad to k bytes
	copy(em[k-len(m):], m)
	clear(m)
	defer clear(em)

	seed, db := em[1:1+hLen], em[1+hLen:]
	mgf1XOR(seed, db)
	mgf1XOR(db, seed)
	lHash := sha256.Sum256(nil)
	good := subtle.ConstantTimeByteEq(em[0], 0)
	good &= subtle.ConstantTimeCompare(db[:hLen], lHash[:])
	// DB = lHash || PS (zeros) || 0x01 || M: find the 0x01 without
	// branching on secret data.
	rest := db[hLen:]
	lookingFor1, index, invalid := 1, 0, 0
	for i, b := range rest {
		is0 := subtle.ConstantTimeByteEq(b, 0)
		is1 := subtle.ConstantTimeByteEq(b, 1)
		index = subtle.ConstantTimeSelect(lookingFor1&is1, i, index)
		lookingFor1 = subtle.ConstantTimeSelect(is1, 0, lookingFor1)
		invalid = subtle.ConstantTimeSelect(lookingFor1&^is0, 1, invalid)
	}
	if good&^invalid&^lookingFor1 != 1 {
		return nil, rsa.ErrDecryption
	}
	return append([]byte(nil), rest[index+1:]...), nil
}

// mgf1XOR XORs out with MGF1-SHA-256(seed) (RFC 8017 §B.2.1).
func mgf1XOR(out, seed []byte) {
	var counter [4]byte
	done := 0
	for done < len(out) {
		h := sha256.New()
		h.Write(seed)
		h.Write(counter[:])
		sum := h.Sum(nil)
		for i := 0; i < len(sum) && done < len(out); i++ {
			out[done] ^= sum[i]
			done++
		}
		for i := 3; i >= 0; i-- {
			counter[i]++
			if counter[i] != 0 {
				break
			}
		}
	}
}
