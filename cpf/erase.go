package cpf

import (
	"context"
	"errors"
	"fmt"

	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/secret"
)

// Errors of DeleteProfile, wrapped with the card's status error.
var (
	// ErrNoProfile means the card has no file system to erase (the card
	// eraser found nothing: SELECT/DELETE of the MF gave 6A82).
	ErrNoProfile = errors.New("the card holds no profile (no MF)")
	// ErrNotErasable means the MF's delete rule refused the erase: the
	// profile burnt the fuse without MakeCardEraseable(), and no (or the
	// wrong) credential was given.
	ErrNotErasable = errors.New("the card's profile cannot be erased with the given credential")
)

// Login is a credential presented before the erase.
type Login struct {
	Ref   byte
	Value secret.Value
}

// LoginFor picks the credential DeleteProfile logs in with from those of
// the encoding description: the higher one, the PUK (reference 84, as
// CreatePin PUK has by default), else PIN1 (81); nil for neither (an
// anonymous erase).
func LoginFor(pin, puk secret.Value) *Login {
	switch {
	case !puk.IsZero():
		return &Login{Ref: defaultRefs["PUK"], Value: puk}
	case !pin.IsZero():
		return &Login{Ref: defaultRefs["PIN1"], Value: pin}
	}
	return nil
}

// DeleteProfile erases the card back to its virgin state (the
// DeleteProfile job): it verifies login when given, then deletes the MF
// (ISO/IEC 7816-9 §8.2), which takes every file and credential with it.
// Whether that is allowed follows from the profile that initialized the
// card: an MF made by a profile with MakeCardEraseable(), or whose fuse was
// never burnt, can be deleted anonymously; otherwise only after verifying
// the so=yes credential.
func DeleteProfile(ctx context.Context, card iso7816.Card, login *Login) error {
	if login != nil {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("erasing the card: %w", err)
		}
		if _, err := iso7816.Send(card, iso7816.Verify(login.Ref, login.Value.Bytes())); err != nil {
			if errors.Is(err, iso7816.ErrDataNotFound) {
				err = fmt.Errorf("%w: %w", ErrNotErasable, err)
			}
			return fmt.Errorf("erasing the card: verifying credential %02X: %w", login.Ref, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("erasing the card: %w", err)
	}
	_, err := iso7816.Send(card, iso7816.DeleteFile(iso7816.MFID))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, iso7816.ErrFileNotFound):
		return fmt.Errorf("erasing the card: %w: %w", ErrNoProfile, err)
	case errors.Is(err, iso7816.ErrSecurityStatus):
		return fmt.Errorf("erasing the card: deleting the MF: %w: %w", ErrNotErasable, err)
	}
	return fmt.Errorf("erasing the card: deleting the MF: %w", err)
}
