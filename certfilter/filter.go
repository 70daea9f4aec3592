// Package certfilter parses and evaluates certificate filters: the JSON
// expressions a portal uses to say which certificate and key on a token may
// be used for signing or authentication (docs/certfilter.md).
//
// A filter is an object with an op and either a list of filters in value
// (and, or, not) or a param and a string or number value (eq, nq, co, sw,
// ew, lt, gt, le/lte, ge/gte). Parse validates strictly: an unknown op or
// param, a missing list or param, or a value of the wrong type is an error
// pointing at the JSON path of the offending member, never a filter that
// silently matches nothing. Match evaluates a parsed filter against a
// Candidate, the facts of one certificate, its key and its token.
package certfilter

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

type op uint8

const (
	opAnd op = iota
	opOr
	opNot
	opEq
	opNq
	opCo
	opSw
	opEw
	opLt
	opGt
	opLe
	opGe
)

// opNames are the canonical op names; ops maps every accepted spelling.
var opNames = [...]string{"and", "or", "not", "eq", "nq", "co", "sw", "ew", "lt", "gt", "le", "ge"}

var ops = map[string]op{
	"and": opAnd, "or": opOr, "not": opNot,
	"eq": opEq, "nq": opNq, "co": opCo, "sw": opSw, "ew": opEw,
	"lt": opLt, "gt": opGt, "le": opLe, "lte": opLe, "ge": opGe, "gte": opGe,
}

func (o op) logical() bool  { return o <= opNot }
func (o op) textOnly() bool { return o == opCo || o == opSw || o == opEw }
func (o op) String() string { return opNames[o] }

// Filter is a parsed, validated filter. The zero Filter and a nil *Filter
// match every candidate. A Filter is safe for concurrent use.
type Filter struct {
	root *node
}

type node struct {
	op    op
	kids  []*node // logical ops
	param param   // value ops
	val   operand
}

// operand is a value op's value, prepared for comparison.
type operand struct {
	isNum bool
	num   number
	text  string // the string, or the number's literal
	upper string // text in upper case, for facts compared without case
}

// number is a JSON number: exact when it is an integer that fits int64.
type number struct {
	isInt bool
	i     int64
	f     float64
}

// parseNumber reads a decimal number in JSON syntax (RFC 8259 §6); other
// spellings (hex, "Inf", leading zeros, "+1") are not numbers.
func parseNumber(s string) (number, bool) {
	if !isJSONNumber(s) {
		return number{}, false
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return number{isInt: true, i: i, f: float64(i)}, true
	}
	f, _ := strconv.ParseFloat(s, 64) // out of range gives ±Inf, still ordered
	return number{f: f}, true
}

func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i, n = i+1, n+1
		}
		return n
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

func (a number) cmp(b number) int {
	if a.isInt && b.isInt {
		switch {
		case a.i < b.i:
			return -1
		case a.i > b.i:
			return 1
		}
		return 0
	}
	switch {
	case a.f < b.f:
		return -1
	case a.f > b.f:
		return 1
	}
	return 0
}

// Parse parses and validates a JSON filter. A malformed filter gives an
// ErrorList (all problems found, sorted by position).
func Parse(data []byte) (*Filter, error) {
	v, err := decodeJSON(data)
	if err != nil {
		return nil, ErrorList{err}
	}
	c := &compiler{src: data}
	root := c.filter(v, "")
	if len(c.errs) > 0 {
		c.errs.sort()
		return nil, c.errs
	}
	return &Filter{root: root}, nil
}

type compiler struct {
	src  []byte
	errs ErrorList
}

func (c *compiler) errorf(off int, path, format string, args ...any) {
	c.errs = append(c.errs, newError(c.src, off, path, fmt.Sprintf(format, args...)))
}

func (c *compiler) filter(v *jvalue, path string) *node {
	if v.kind != jObject {
		c.errorf(v.off, path, "a filter must be an object, not %s", v.kind)
		return nil
	}
	n := &node{op: opAnd} // a missing op means and
	opOK := true
	for i, k := range v.keys {
		switch k {
		case "op", "param", "value":
		default:
			c.errorf(v.koff[i], join(path, k), "unknown member %q (a filter has op, param and value)", k)
		}
	}
	if ov, _, ok := v.member("op"); ok {
		switch o, known := ops[ov.str]; {
		case ov.kind != jString:
			c.errorf(ov.off, join(path, "op"), "op must be a string, not %s", ov.kind)
			opOK = false
		case !known:
			c.errorf(ov.off, join(path, "op"), "unknown op %q", ov.str)
			opOK = false
		default:
			n.op = o
		}
	}
	pv, _, hasParam := v.member("param")
	vv, _, hasValue := v.member("value")
	if !opOK {
		return nil
	}
	if n.op.logical() {
		if hasParam && pv.kind != jNull { // the incumbent's apps send "param": null
			c.errorf(pv.off, join(path, "param"), "logical op %q takes no param", n.op)
		}
		switch {
		case !hasValue:
			c.errorf(v.off, path, "logical op %q without a list of filters in value", n.op)
		case vv.kind != jArray:
			c.errorf(vv.off, join(path, "value"), "logical op %q needs a list of filters in value, not %s", n.op, vv.kind)
		default:
			n.kids = make([]*node, 0, len(vv.elem))
			for i, e := range vv.elem {
				n.kids = append(n.kids, c.filter(e, fmt.Sprintf("%s[%d]", join(path, "value"), i)))
			}
		}
		return n
	}
	ok := true
	switch {
	case !hasParam:
		c.errorf(v.off, path, "value op %q without param", n.op)
		ok = false
	case pv.kind != jString:
		c.errorf(pv.off, join(path, "param"), "param must be a string, not %s", pv.kind)
		ok = false
	default:
		p, known := paramByName[pv.str]
		if !known {
			c.errorf(pv.off, join(path, "param"), "unknown param %q", pv.str)
			ok = false
		}
		n.param = p
	}
	switch {
	case !hasValue:
		c.errorf(v.off, path, "value op %q without value", n.op)
		return nil
	case vv.kind != jString && vv.kind != jNumber:
		c.errorf(vv.off, join(path, "value"), "value op %q takes a string or number value, not %s", n.op, vv.kind)
		return nil
	case n.op.textOnly() && vv.kind != jString:
		c.errorf(vv.off, join(path, "value"), "%q takes a string value, not a number", n.op)
		return nil
	}
	if !ok {
		return nil
	}
	if msg := n.setOperand(vv); msg != "" {
		c.errorf(vv.off, join(path, "value"), "%s", msg)
		return nil
	}
	return n
}

// setOperand prepares the value for the param's comparison rules
// (docs/certfilter.md, "Comparing"); it returns a message when the value
// cannot apply to the param.
func (n *node) setOperand(v *jvalue) string {
	o := operand{text: v.str}
	if v.kind == jNumber {
		o.num, o.isNum = parseNumber(v.str)
		if !o.isNum { // the JSON decoder accepted it, so this cannot happen
			return fmt.Sprintf("malformed number %s", v.str)
		}
	}
	switch n.param {
	case pKeySize:
		if n.op.textOnly() {
			return fmt.Sprintf("%q compares text, but key.size is a number", n.op)
		}
		if !o.isNum {
			num, ok := parseNumber(v.str)
			if !ok {
				return fmt.Sprintf("key.size is a number of bits, not %q", v.str)
			}
			o.num, o.isNum = num, true
		}
	case pSerial:
		if o.isNum {
			return "cert.serial is hexadecimal text: write the value as a string"
		}
		s := strings.ToUpper(strings.NewReplacer(":", "", " ", "").Replace(v.str))
		neg := strings.HasPrefix(s, "-")
		digits := strings.TrimPrefix(s, "-")
		for _, r := range digits {
			if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'F') {
				return fmt.Sprintf("cert.serial is hexadecimal, %q is not", v.str)
			}
		}
		if !n.op.textOnly() { // a whole serial: leading zeros do not count
			digits = strings.TrimLeft(digits, "0")
			if digits == "" {
				digits, neg = "0", false
			}
			if neg {
				digits = "-" + digits
			}
			s = digits
		}
		if s == "" {
			return "cert.serial: empty serial"
		}
		o.text, o.upper = s, s
	case pKeyType:
		if o.isNum {
			return "key.type is text (RSA, ECC or EdDSA), not a number"
		}
		o.upper = strings.ToUpper(v.str)
		if n.op == opEq || n.op == opNq {
			switch o.upper {
			case "RSA", "ECC", "EDDSA":
			default:
				return fmt.Sprintf("key.type is RSA, ECC or EdDSA, not %q", v.str)
			}
		}
	case pKeyID:
		o.upper = strings.ToUpper(v.str)
	}
	n.val = o
	return ""
}

// Match reports whether the candidate satisfies the filter.
func (f *Filter) Match(c *Candidate) bool {
	if f == nil || f.root == nil {
		return true
	}
	return f.root.match(c)
}

// Select returns the candidates that satisfy the filter, in order.
func (f *Filter) Select(cs []*Candidate) []*Candidate {
	var out []*Candidate
	for _, c := range cs {
		if f.Match(c) {
			out = append(out, c)
		}
	}
	return out
}

func (n *node) match(c *Candidate) bool {
	switch n.op {
	case opAnd:
		for _, k := range n.kids {
			if !k.match(c) {
				return false
			}
		}
		return true
	case opOr:
		for _, k := range n.kids {
			if k.match(c) {
				return true
			}
		}
		return false
	case opNot: // none of (NOR)
		for _, k := range n.kids {
			if k.match(c) {
				return false
			}
		}
		return true
	case opNq: // the complement of eq: no value is equal, or there is none
		return !n.any(c, opEq)
	}
	return n.any(c, n.op)
}

// any reports whether some value of the candidate's fact satisfies the
// value op o: a multi-valued attribute matches if any value does, an absent
// one never does.
func (n *node) any(c *Candidate, o op) bool {
	if n.param == pKeySize {
		if c.size == 0 {
			return false
		}
		return cmpOK(o, number{isInt: true, i: int64(c.size), f: float64(c.size)}.cmp(n.val.num))
	}
	want := n.val.text
	fold := n.param == pKeyType || n.param == pKeyID && c.keyIDHex // key type and CKA_ID hex ignore case
	if fold {
		want = n.val.upper
	}
	for _, v := range c.vals[n.param] {
		if fold {
			v = strings.ToUpper(v)
		}
		if n.test(o, v, want) {
			return true
		}
	}
	return false
}

func (n *node) test(o op, v, want string) bool {
	switch o {
	case opCo:
		return strings.Contains(v, want)
	case opSw:
		return strings.HasPrefix(v, want)
	case opEw:
		return strings.HasSuffix(v, want)
	}
	if n.val.isNum {
		// A number compares only with values that are numbers.
		num, ok := parseNumber(v)
		return ok && cmpOK(o, num.cmp(n.val.num))
	}
	if n.param == pSerial {
		return cmpOK(o, cmpHex(v, want))
	}
	return cmpOK(o, strings.Compare(v, want))
}

// cmpHex orders upper-case hexadecimal serials by value; both are without
// leading zeros, so the longer is larger.
func cmpHex(a, b string) int {
	an, bn := strings.HasPrefix(a, "-"), strings.HasPrefix(b, "-")
	switch {
	case an && !bn:
		return -1
	case !an && bn:
		return 1
	}
	r := 0
	switch {
	case len(a) < len(b):
		r = -1
	case len(a) > len(b):
		r = 1
	default:
		r = strings.Compare(a, b)
	}
	if an {
		r = -r
	}
	return r
}

func cmpOK(o op, r int) bool {
	switch o {
	case opEq:
		return r == 0
	case opLt:
		return r < 0
	case opGt:
		return r > 0
	case opLe:
		return r <= 0
	case opGe:
		return r >= 0
	}
	return false
}

// MarshalJSON writes the filter in canonical form: every op explicit and
// spelled in its short form (le, ge), params by canonical name, values as
// normalised for comparison (e.g. cert.serial without separators). Parsing
// the result gives an equivalent filter.
func (f *Filter) MarshalJSON() ([]byte, error) {
	if f == nil || f.root == nil {
		return []byte(`{"op":"and","value":[]}`), nil
	}
	var b []byte
	return f.root.appendJSON(b), nil
}

// String is the canonical JSON form.
func (f *Filter) String() string {
	b, _ := f.MarshalJSON()
	return string(b)
}

func (n *node) appendJSON(b []byte) []byte {
	b = append(b, `{"op":`...)
	b = strconv.AppendQuote(b, n.op.String())
	if n.op.logical() {
		b = append(b, `,"value":[`...)
		for i, k := range n.kids {
			if i > 0 {
				b = append(b, ',')
			}
			b = k.appendJSON(b)
		}
		return append(b, "]}"...)
	}
	b = append(b, `,"param":`...)
	b = strconv.AppendQuote(b, n.param.String())
	b = append(b, `,"value":`...)
	if n.val.isNum {
		b = append(b, n.val.text...)
	} else {
		b = appendJSONString(b, n.val.text)
	}
	return append(b, '}')
}

// appendJSONString quotes s as a JSON string (RFC 8259 §7).
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
