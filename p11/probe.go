package p11

import (
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// ErrLoginNeeded: the token generates keys only in a session where the
// user is logged in (CKR_USER_NOT_LOGGED_IN, which stays in the chain).
var ErrLoginNeeded = errors.New("the token wants a user login")

// ProbeKeyPair generates a key pair of spec as session objects (CKA_TOKEN
// false) and destroys both halves at once: the station self-test's
// key-generation timing (spec/station.md "Self-test"), which must leave
// nothing on the token. When the session is not logged in the private key
// is asked for with CKA_PRIVATE false, which tokens that let a public
// session generate keys accept; a token that wants a login answers
// CKR_USER_NOT_LOGGED_IN, which comes back as ErrLoginNeeded.
func (s *Session) ProbeKeyPair(spec KeySpec, loggedIn bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return errClosed
	}
	pubT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "cardwright self-test"),
	}
	privT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, loggedIn),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "cardwright self-test"),
	}
	var mech *pkcs11.Mechanism
	switch {
	case spec.Curve != nil:
		params, err := curveParams(spec.Curve)
		if err != nil {
			return fmt.Errorf("generating an %v session key pair: %w", spec, err)
		}
		mech = pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)
		pubT = append(pubT, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC), pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params))
		privT = append(privT, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC))
	case spec.RSABits > 0:
		mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)
		pubT = append(pubT, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, spec.RSABits),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}))
		privT = append(privT, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA))
	default:
		return fmt.Errorf("generating a session key pair: key spec %v is not supported", spec)
	}
	ctx := s.t.m.ctx
	pub, priv, err := ctx.GenerateKeyPair(s.h, []*pkcs11.Mechanism{mech}, pubT, privT)
	if err != nil {
		if isUnsupported(err) {
			err = &unsupportedError{what: "generating an " + spec.String() + " session key pair", err: err}
		}
		if is(err, pkcs11.CKR_USER_NOT_LOGGED_IN) {
			err = fmt.Errorf("%w: %w", ErrLoginNeeded, err)
		}
		return fmt.Errorf("generating an %v session key pair on token %q: %w", spec, s.t.label, err)
	}
	// Session objects go with the session anyway; destroying them now
	// keeps a long-lived session (the agent's) from collecting them.
	perr := ctx.DestroyObject(s.h, priv)
	if err := ctx.DestroyObject(s.h, pub); err != nil && perr == nil {
		perr = err
	}
	if perr != nil {
		return fmt.Errorf("destroying the self-test key pair on token %q: %w", s.t.label, perr)
	}
	return nil
}
