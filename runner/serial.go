package runner

import (
	"context"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/cardwright/cardwright/iso7816"
)

// ReadSerial reads a card's serial number with GET DATA 005A (ISO 7816-4
// §11.4.3, the tag of the card serial number in ISO 7816-6). Conn
// implementations use it for Serial.
func ReadSerial(card iso7816.Card) ([]byte, error) {
	b, err := iso7816.Send(card, iso7816.GetData(iso7816.TagSerialNumber, 256))
	if err != nil {
		return nil, fmt.Errorf("reading the card serial number: %w", err)
	}
	return b, nil
}

// CMSSerialLabel is the label (and CKA_APPLICATION) of the CKO_DATA object
// that holds the CMSCardSerialNumber on the card's token. The object is
// public (CKA_PRIVATE false, package p11's WriteData): selection and
// RetrieveAllTokens read it without a PIN.
const CMSSerialLabel = "CMSCardSerialNumber"

// readCMSSerial reads the CMS serial of the card in reader: the value of
// the CMSSerialLabel data object on the token that stands for it, opened
// without a login and closed again. ok is false when the card carries
// none: no token for the reader, a token not initialised, no such object,
// an empty value. It writes nothing and shows no dialog.
func readCMSSerial(ctx context.Context, tokens Tokens, module, reader string) (serial string, ok bool, err error) {
	t, err := tokens.Open(ctx, module, reader, LocationDefault)
	if errors.Is(err, ErrTokenNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("opening the token for reader %q: %w", reader, err)
	}
	defer t.Close()
	return cmsSerialOf(t)
}

// cmsSerialOf reads the CMS serial from an open token (see readCMSSerial).
func cmsSerialOf(t Token) (string, bool, error) {
	ti, err := t.Info()
	if err != nil {
		return "", false, fmt.Errorf("reading the token information: %w", err)
	}
	if !ti.Initialized {
		return "", false, nil
	}
	v, err := t.ReadData(CMSSerialLabel)
	if errors.Is(err, ErrObjectNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading the CMS serial (%s data object): %w", CMSSerialLabel, err)
	}
	s, err := parseCMSSerial(v)
	if err != nil {
		return "", false, err
	}
	return s, s != "", nil
}

// parseCMSSerial checks the value of a CMSSerialLabel data object: it is
// reported as the ICCSN and listed comma-separated (RetrieveAllTokens), so
// it must be UTF-8 text without control characters and without commas,
// at most 256 bytes. An empty value is no CMS serial ("").
func parseCMSSerial(v []byte) (string, error) {
	if len(v) > 256 {
		return "", fmt.Errorf("reading the CMS serial: the %s data object holds %d bytes, more than 256", CMSSerialLabel, len(v))
	}
	if !utf8.Valid(v) {
		return "", fmt.Errorf("reading the CMS serial: the %s data object is not UTF-8 text", CMSSerialLabel)
	}
	for _, r := range string(v) {
		if r == ',' || unicode.IsControl(r) {
			return "", fmt.Errorf("reading the CMS serial: the %s data object holds %q, which an ICCSN may not contain", CMSSerialLabel, r)
		}
	}
	return string(v), nil
}
