package runner

import (
	"fmt"

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
