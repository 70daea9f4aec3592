package dsc

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ObjectCriteria selects an existing PKCS#11 object instead of generating a
// key: "CKO_<class>,CKA_<attribute>,<type>,<value>", e.g.
// CKO_PUBLIC_KEY,CKA_LABEL,string,"Digital Signature". The numeric values are
// those of PKCS#11 v2.40 (§4 object classes, §4.2 attributes) so that the p11
// adapter can build a template without a name table of its own.
type ObjectCriteria struct {
	Class     string `json:"class"`     // e.g. "CKO_PUBLIC_KEY"
	ClassID   uint   `json:"class_id"`  // CKO_ value
	Attribute string `json:"attribute"` // e.g. "CKA_LABEL"
	AttrID    uint   `json:"attr_id"`   // CKA_ value
	Type      string `json:"type"`      // string, hex, bool or int (lower case)
	Text      string `json:"text"`      // the value as written, quotes removed
	// Bytes is the attribute value as PKCS#11 wants it: UTF-8 for string,
	// the decoded bytes for hex, one byte 0/1 (CK_BBOOL) for bool. For int
	// it is empty: use Int (a CK_ULONG, whose width is the module's).
	Bytes []byte `json:"bytes,omitempty"`
	Bool  bool   `json:"bool,omitempty"`
	Int   uint64 `json:"int,omitempty"`
}

// String writes the criteria back in description syntax.
func (c *ObjectCriteria) String() string {
	v := c.Text
	if c.Type == "string" {
		v = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
	}
	return c.Class + "," + c.Attribute + "," + c.Type + "," + v
}

// PKCS#11 v2.40 §4 object classes.
var ckoValues = map[string]uint{
	"CKO_DATA": 0, "CKO_CERTIFICATE": 1, "CKO_PUBLIC_KEY": 2, "CKO_PRIVATE_KEY": 3,
	"CKO_SECRET_KEY": 4, "CKO_HW_FEATURE": 5, "CKO_DOMAIN_PARAMETERS": 6, "CKO_MECHANISM": 7,
	"CKO_OTP_KEY": 8,
}

// PKCS#11 v2.40 attribute types (pkcs11t.h) usable as criteria.
var ckaValues = map[string]uint{
	"CKA_CLASS": 0x0, "CKA_TOKEN": 0x1, "CKA_PRIVATE": 0x2, "CKA_LABEL": 0x3,
	"CKA_APPLICATION": 0x10, "CKA_VALUE": 0x11, "CKA_OBJECT_ID": 0x12,
	"CKA_CERTIFICATE_TYPE": 0x80, "CKA_ISSUER": 0x81, "CKA_SERIAL_NUMBER": 0x82,
	"CKA_TRUSTED": 0x86, "CKA_CERTIFICATE_CATEGORY": 0x87,
	"CKA_KEY_TYPE": 0x100, "CKA_SUBJECT": 0x101, "CKA_ID": 0x102, "CKA_SENSITIVE": 0x103,
	"CKA_ENCRYPT": 0x104, "CKA_DECRYPT": 0x105, "CKA_WRAP": 0x106, "CKA_UNWRAP": 0x107,
	"CKA_SIGN": 0x108, "CKA_SIGN_RECOVER": 0x109, "CKA_VERIFY": 0x10A,
	"CKA_VERIFY_RECOVER": 0x10B, "CKA_DERIVE": 0x10C,
	"CKA_MODULUS": 0x120, "CKA_MODULUS_BITS": 0x121, "CKA_PUBLIC_EXPONENT": 0x122,
	"CKA_VALUE_LEN": 0x161, "CKA_EXTRACTABLE": 0x162, "CKA_LOCAL": 0x163,
	"CKA_NEVER_EXTRACTABLE": 0x164, "CKA_ALWAYS_SENSITIVE": 0x165, "CKA_MODIFIABLE": 0x170,
	"CKA_EC_PARAMS": 0x180, "CKA_EC_POINT": 0x181, "CKA_ALWAYS_AUTHENTICATE": 0x202,
}

// ParseObjectCriteria parses an ObjectCriteria value. Class and attribute
// names are matched case-insensitively and returned in upper case; a
// numeric class or attribute (0x… or decimal, for vendor-defined ones) is
// accepted too. A string value may be quoted with '"' (then \" and \\ are
// escapes), which it must be if it has a comma or leading/trailing blanks.
func ParseObjectCriteria(s string) (*ObjectCriteria, error) {
	parts := make([]string, 0, 4)
	rest := s
	for range 3 {
		i := strings.IndexByte(rest, ',')
		if i < 0 {
			return nil, fmt.Errorf("want 4 comma-separated parts CKO_<class>,CKA_<attribute>,<type>,<value>, have %d", len(parts)+1)
		}
		parts = append(parts, strings.TrimSpace(rest[:i]))
		rest = rest[i+1:]
	}
	c := &ObjectCriteria{}
	var ok bool
	c.Class, c.ClassID, ok = ckName(parts[0], "CKO_", ckoValues)
	if !ok {
		return nil, fmt.Errorf("unknown object class %q (want CKO_DATA, CKO_CERTIFICATE, CKO_PUBLIC_KEY, CKO_PRIVATE_KEY, CKO_SECRET_KEY or a number)", parts[0])
	}
	c.Attribute, c.AttrID, ok = ckName(parts[1], "CKA_", ckaValues)
	if !ok {
		return nil, fmt.Errorf("unknown attribute %q (want a CKA_ name such as CKA_LABEL or CKA_ID, or a number)", parts[1])
	}
	c.Type = strings.ToLower(parts[2])
	v := strings.TrimSpace(rest)
	switch c.Type {
	case "string":
		if strings.HasPrefix(v, `"`) {
			u, err := unquote(v)
			if err != nil {
				return nil, err
			}
			v = u
		}
		c.Text, c.Bytes = v, []byte(v)
	case "hex":
		h := strings.Map(func(r rune) rune {
			if r == ' ' || r == ':' {
				return -1
			}
			return r
		}, strings.TrimPrefix(strings.TrimPrefix(v, "0x"), "0X"))
		b, err := hex.DecodeString(h)
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("value %q is not hex bytes", v)
		}
		c.Text, c.Bytes = v, b
	case "bool":
		switch strings.ToLower(v) {
		case "true", "1":
			c.Bool, c.Bytes = true, []byte{1}
		case "false", "0":
			c.Bool, c.Bytes = false, []byte{0}
		default:
			return nil, fmt.Errorf("value %q is not a boolean (true or false)", v)
		}
		c.Text = v
	case "int":
		n, err := strconv.ParseUint(v, 0, 64)
		if err != nil {
			return nil, fmt.Errorf("value %q is not an unsigned integer", v)
		}
		c.Text, c.Int = v, n
	default:
		return nil, fmt.Errorf("unknown value type %q (want string, hex, bool or int)", parts[2])
	}
	return c, nil
}

func ckName(s, prefix string, table map[string]uint) (string, uint, bool) {
	u := strings.ToUpper(s)
	if n, ok := table[u]; ok {
		return u, n, true
	}
	if n, err := strconv.ParseUint(s, 0, 32); err == nil && s != "" {
		return s, uint(n), true
	}
	return "", 0, false
}

var errUnterminated = errors.New(`unterminated quoted value`)

// unquote removes '"' quotes; \" and \\ are the only escapes.
func unquote(v string) (string, error) {
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			if i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\') {
				b.WriteByte(v[i+1])
				i++
				continue
			}
			b.WriteByte(c)
		case '"':
			if strings.TrimSpace(v[i+1:]) != "" {
				return "", fmt.Errorf("unexpected text after closing quote: %q", v[i+1:])
			}
			return b.String(), nil
		default:
			b.WriteByte(c)
		}
	}
	return "", errUnterminated
}
