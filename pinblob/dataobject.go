package pinblob

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// DataObject is one labelled value in a card file. Its DER form is
// SEQUENCE { label UTF8String, value OCTET STRING }; a file holds one or
// more of them back to back, and may be padded after the last with 0x00 or
// 0xFF bytes (the unused rest of a transparent EF).
type DataObject struct {
	Label string
	Value []byte
}

// MarshalDataObject encodes one data object.
func MarshalDataObject(label string, value []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(label)) })
		b.AddASN1OctetString(value)
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("encoding data object %q: %w", label, err)
	}
	return out, nil
}

// ParseDataObjects decodes a card file's content into its data objects.
// Empty or padding-only content gives none. Values alias content.
func ParseDataObjects(content []byte) ([]DataObject, error) {
	s := cryptobyte.String(content)
	var dos []DataObject
	for !s.Empty() && !padding(s) {
		var do, label, val cryptobyte.String
		if !s.ReadASN1(&do, cbasn1.SEQUENCE) || !do.ReadASN1(&label, cbasn1.UTF8String) ||
			!do.ReadASN1(&val, cbasn1.OCTET_STRING) || !do.Empty() {
			return dos, fmt.Errorf("%w: data object %d at offset %d is not well formed", ErrMalformed, len(dos)+1, len(content)-len(s))
		}
		dos = append(dos, DataObject{Label: string(label), Value: val})
	}
	return dos, nil
}

// FindDataObject returns the value of the first data object with the
// label. It returns ErrNoBlob when there is none, also when the content is
// not a list of data objects at all (then ErrMalformed too is in the
// chain): to the caller, a card with a foreign file has no encrypted PINs.
func FindDataObject(content []byte, label string) ([]byte, error) {
	dos, err := ParseDataObjects(content)
	for _, d := range dos {
		if d.Label == label {
			return d.Value, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoBlob, err)
	}
	return nil, ErrNoBlob
}

// padding reports whether s is all 0x00 or all 0xFF.
func padding(s []byte) bool {
	for _, b := range s {
		if b != s[0] {
			return false
		}
	}
	return s[0] == 0x00 || s[0] == 0xFF
}
