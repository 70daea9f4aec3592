// Package secret holds values that must never be printed: PINs, PUKs,
// decrypted PINs, PKCS#12 passwords. A Value formats, logs and marshals as
// "<secret>"; only Reveal and Bytes give the plain value, so every place
// that lets a secret out is a call that can be searched for.
package secret

import (
	"fmt"
	"log/slog"
)

// Masked is what a secret prints as.
const Masked = "<secret>"

// Value is a secret byte string. The zero Value is empty.
type Value struct {
	b []byte
}

// New returns a Value holding a copy of s.
func New(s string) Value { return Value{b: []byte(s)} }

// FromBytes returns a Value holding a copy of b.
func FromBytes(b []byte) Value { return Value{b: append([]byte(nil), b...)} }

// Reveal returns the plain text. Call it only where the secret is used.
func (v Value) Reveal() string { return string(v.b) }

// Bytes returns the secret bytes (not a copy; do not keep them).
func (v Value) Bytes() []byte { return v.b }

// Len is the secret's length in bytes.
func (v Value) Len() int { return len(v.b) }

// IsZero reports whether the secret is empty.
func (v Value) IsZero() bool { return len(v.b) == 0 }

// Equal compares two secrets.
func (v Value) Equal(w Value) bool { return string(v.b) == string(w.b) }

// Wipe overwrites the secret's bytes in place. Copies made by Reveal are
// not reached.
func (v *Value) Wipe() {
	clear(v.b)
	v.b = nil
}

// String implements fmt.Stringer.
func (Value) String() string { return Masked }

// GoString implements fmt.GoStringer so %#v hides it too.
func (Value) GoString() string { return Masked }

// Format hides the value for every verb, %x and %q included.
func (Value) Format(f fmt.State, _ rune) { fmt.Fprint(f, Masked) }

// LogValue implements slog.LogValuer.
func (Value) LogValue() slog.Value { return slog.StringValue(Masked) }

// MarshalJSON marshals as "<secret>"; code that must send a secret on the
// wire copies Reveal() into a plain string field on purpose.
func (Value) MarshalJSON() ([]byte, error) { return []byte(`"` + Masked + `"`), nil }

// MarshalText marshals as "<secret>".
func (Value) MarshalText() ([]byte, error) { return []byte(Masked), nil }
