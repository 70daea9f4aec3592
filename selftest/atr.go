package selftest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ATRPattern is a [dialects] key that names cards by their ATR rather
// than by a card-model name: the ATR in hex (spaces and colons allowed
// between bytes), or its first bytes followed by "*". It must begin with
// TS, 3B (direct convention) or 3F (inverse), ISO/IEC 7816-3 §8.1, which
// keeps it apart from model names such as ISO7816.
type ATRPattern struct {
	Bytes  []byte
	Prefix bool // "*": any ATR that begins with Bytes
}

// ParseATRPattern reads a [dialects] key as an ATR pattern.
func ParseATRPattern(s string) (ATRPattern, error) {
	var p ATRPattern
	t := strings.TrimSpace(s)
	if rest, ok := strings.CutSuffix(t, "*"); ok {
		p.Prefix, t = true, strings.TrimSpace(rest)
	}
	t = strings.NewReplacer(" ", "", ":", "", "\t", "").Replace(t)
	b, err := hex.DecodeString(t)
	if err != nil {
		return ATRPattern{}, fmt.Errorf("ATR pattern %q: not hex bytes: %w", s, err)
	}
	if len(b) < 2 || len(b) > 33 { // TS, T0, then at most 31 bytes (7816-3 §8.2.1)
		return ATRPattern{}, fmt.Errorf("ATR pattern %q: %d bytes, want 2 to 33", s, len(b))
	}
	if b[0] != 0x3B && b[0] != 0x3F {
		return ATRPattern{}, errors.New("ATR pattern " + fmt.Sprintf("%q", s) + ": does not begin with 3B or 3F")
	}
	p.Bytes = b
	return p, nil
}

// Match reports whether atr fits the pattern.
func (p ATRPattern) Match(atr []byte) bool {
	if p.Prefix {
		return bytes.HasPrefix(atr, p.Bytes)
	}
	return bytes.Equal(atr, p.Bytes)
}

func (p ATRPattern) String() string {
	s := fmt.Sprintf("%X", p.Bytes)
	if p.Prefix {
		s += "*"
	}
	return s
}

// DialectForATR finds the [dialects] entry whose key is an ATR pattern
// matching atr: an exact ATR wins over prefixes, a longer prefix over a
// shorter one. Keys that are not ATR patterns (card-model names) are
// passed over.
func DialectForATR(dialects map[string]string, atr []byte) (pattern, dialect string, ok bool) {
	best := -1
	for k, v := range dialects {
		p, err := ParseATRPattern(k)
		if err != nil || !p.Match(atr) {
			continue
		}
		score := len(p.Bytes)
		if !p.Prefix {
			score = 1000
		}
		if score > best || score == best && p.String() < pattern {
			best, pattern, dialect = score, p.String(), v
		}
	}
	return pattern, dialect, best >= 0
}
