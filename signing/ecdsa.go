package signing

import (
	"crypto/ecdsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// ecdsaRaw converts an ASN.1 ECDSA signature to the fixed-size r||s form
// of JWS (RFC 7518 §3.4), each half as long as the curve's order.
func ecdsaRaw(pub *ecdsa.PublicKey, der []byte) ([]byte, error) {
	r, s, err := parseECDSA(der)
	if err != nil {
		return nil, err
	}
	n := (pub.Curve.Params().N.BitLen() + 7) / 8
	if r.BitLen() > 8*n || s.BitLen() > 8*n {
		return nil, fmt.Errorf("ECDSA signature values longer than the curve order")
	}
	out := make([]byte, 2*n)
	r.FillBytes(out[:n])
	s.FillBytes(out[n:])
	return out, nil
}

// ecdsaASN1 converts a JWS r||s ECDSA signature back to ASN.1; a length
// that does not fit the curve is an error.
func ecdsaASN1(pub *ecdsa.PublicKey, raw []byte) ([]byte, error) {
	n := (pub.Curve.Params().N.BitLen() + 7) / 8
	if len(raw) != 2*n {
		return nil, fmt.Errorf("%w: ECDSA signature of %d bytes, want %d for %s", ErrBadSignature, len(raw), 2*n, pub.Curve.Params().Name)
	}
	r := new(big.Int).SetBytes(raw[:n])
	s := new(big.Int).SetBytes(raw[n:])
	return marshalECDSA(r, s)
}

// ecdsaSig is Ecdsa-Sig-Value (RFC 3279 §2.2.3).
type ecdsaSig struct{ R, S *big.Int }

func parseECDSA(der []byte) (r, s *big.Int, err error) {
	var v ecdsaSig
	rest, err := asn1.Unmarshal(der, &v)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing the ECDSA signature: %w", err)
	}
	if len(rest) > 0 || v.R == nil || v.S == nil || v.R.Sign() <= 0 || v.S.Sign() <= 0 {
		return nil, nil, errors.New("parsing the ECDSA signature: malformed Ecdsa-Sig-Value")
	}
	return v.R, v.S, nil
}

func marshalECDSA(r, s *big.Int) ([]byte, error) {
	return asn1.Marshal(ecdsaSig{r, s})
}
