package certfilter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// jkind is the type of a JSON value (RFC 8259 §3).
type jkind uint8

const (
	jNull jkind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

func (k jkind) String() string {
	return [...]string{"null", "a boolean", "a number", "a string", "a list", "an object"}[k]
}

// jvalue is a decoded JSON value that remembers where it started, so that
// validation errors can point at it. Object members keep their order.
type jvalue struct {
	kind jkind
	off  int    // byte offset of the value's first character
	str  string // string value, or number literal
	keys []string
	koff []int     // offsets of the member names
	elem []*jvalue // object member values (parallel to keys) or list elements
}

func (v *jvalue) member(name string) (*jvalue, int, bool) {
	for i, k := range v.keys {
		if k == name {
			return v.elem[i], v.koff[i], true
		}
	}
	return nil, 0, false
}

// decoder builds a jvalue tree from strict JSON: one value, valid UTF-8, no
// duplicate member names, no trailing data, bounded nesting.
type decoder struct {
	src []byte
	dec *json.Decoder
}

// MaxDepth bounds the nesting of filter objects, so that a hostile filter
// cannot exhaust the stack or the evaluator.
const MaxDepth = 64

func decodeJSON(src []byte) (*jvalue, *Error) {
	if !utf8.Valid(src) {
		off := 0
		for off < len(src) {
			r, n := utf8.DecodeRune(src[off:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			off += n
		}
		return nil, newError(src, off, "", "invalid UTF-8")
	}
	d := &decoder{src: src, dec: json.NewDecoder(bytes.NewReader(src))}
	d.dec.UseNumber()
	v, err := d.value("", 0)
	if err != nil {
		return nil, err
	}
	off := d.start()
	if _, terr := d.dec.Token(); terr != io.EOF {
		return nil, newError(src, off, "", "data after the filter object")
	}
	return v, nil
}

// start is the offset of the next token: InputOffset stops right after the
// previous token, before white space and separators.
func (d *decoder) start() int {
	off := int(d.dec.InputOffset())
	for off < len(d.src) {
		switch d.src[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
			continue
		}
		break
	}
	return off
}

func (d *decoder) syntax(err error, path string) *Error {
	off := d.start()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = int(se.Offset)
		if off > 0 {
			off-- // Offset counts the offending byte
		}
		return newError(d.src, off, path, "invalid JSON: "+se.Error())
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return newError(d.src, len(d.src), path, "invalid JSON: unexpected end of input")
	}
	return newError(d.src, off, path, "invalid JSON: "+err.Error())
}

func (d *decoder) value(path string, depth int) (*jvalue, *Error) {
	off := d.start()
	tok, err := d.dec.Token()
	if err != nil {
		return nil, d.syntax(err, path)
	}
	v := &jvalue{off: off}
	switch t := tok.(type) {
	case nil:
		v.kind = jNull
	case bool:
		v.kind = jBool
		if t {
			v.str = "true"
		} else {
			v.str = "false"
		}
	case json.Number:
		v.kind, v.str = jNumber, string(t)
	case string:
		v.kind, v.str = jString, t
	case json.Delim:
		if depth >= 2*MaxDepth { // an object and its list per filter level
			return nil, newError(d.src, off, path, fmt.Sprintf("nested deeper than %d filters", MaxDepth))
		}
		switch t {
		case '[':
			v.kind = jArray
			for i := 0; d.dec.More(); i++ {
				e, err := d.value(fmt.Sprintf("%s[%d]", path, i), depth+1)
				if err != nil {
					return nil, err
				}
				v.elem = append(v.elem, e)
			}
		case '{':
			v.kind = jObject
			for d.dec.More() {
				koff := d.start()
				kt, err := d.dec.Token()
				if err != nil {
					return nil, d.syntax(err, path)
				}
				k, _ := kt.(string) // the decoder guarantees a string here
				mpath := join(path, k)
				if _, _, dup := v.member(k); dup {
					return nil, newError(d.src, koff, mpath, fmt.Sprintf("duplicate member %q", k))
				}
				e, verr := d.value(mpath, depth+1)
				if verr != nil {
					return nil, verr
				}
				v.keys = append(v.keys, k)
				v.koff = append(v.koff, koff)
				v.elem = append(v.elem, e)
			}
		}
		if _, err := d.dec.Token(); err != nil { // closing delimiter
			return nil, d.syntax(err, path)
		}
	}
	return v, nil
}

// join appends an object member name to a JSON path; names that are not
// plain words are quoted: value[0]["od d"].
func join(path, name string) string {
	plain := name != ""
	for _, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return fmt.Sprintf("%s[%q]", path, name)
	case path == "":
		return name
	}
	return path + "." + name
}
