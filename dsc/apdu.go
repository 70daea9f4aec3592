package dsc

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// Script is a parsed .apdu script (docs/dsc.md, "APDU scripts"): one command
// per line, hex bytes with optional blanks, "${NAME}" field placeholders with
// an optional <hex>, <string> or <base64> prefix, optional "|" separators
// that make the parser compute Lc, and an optional "=> 9000,61XX" list of
// accepted status words.
type Script struct {
	Name  string       `json:"name"`
	Lines []ScriptLine `json:"lines"`
}

// ScriptLine is one command line of a script, unresolved.
type ScriptLine struct {
	Pos Pos `json:"pos"`
	// Segments are the "|"-separated parts: 1 (raw APDU), 2 (header, data)
	// or 3 (header, data, Le).
	Segments [][]ScriptToken `json:"segments"`
	Expect   []string        `json:"expect,omitempty"` // 4 hex digits, X = any
}

// ScriptToken is literal bytes or a field placeholder.
type ScriptToken struct {
	Bytes []byte `json:"bytes,omitempty"`
	Field string `json:"field,omitempty"`
	Enc   string `json:"enc,omitempty"` // hex (default), string or base64
}

// ScriptCommand is one resolved command.
type ScriptCommand struct {
	Line   int      `json:"line"`
	APDU   []byte   `json:"apdu"`
	Expect []string `json:"expect,omitempty"`
	// Secret: a placeholder took a secret field's value; the command must
	// not be logged or put in a transcript in clear.
	Secret bool `json:"secret,omitempty"`
}

// MarshalJSON hides the bytes of a secret command.
func (c ScriptCommand) MarshalJSON() ([]byte, error) {
	type plain ScriptCommand
	if c.Secret {
		return json.Marshal(struct {
			plain
			APDU string `json:"apdu"`
		}{plain(c), "<secret>"})
	}
	return json.Marshal(plain(c))
}

// Accepts reports whether sw is accepted: any status word when the line
// named none, else one of the patterns.
func (c *ScriptCommand) Accepts(sw uint16) bool {
	if len(c.Expect) == 0 {
		return true
	}
	s := fmt.Sprintf("%04X", sw)
	for _, p := range c.Expect {
		ok := true
		for i := range 4 {
			if p[i] != 'X' && p[i] != s[i] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// ParseScript parses an APDU script. Errors are a Diagnostics.
func ParseScript(name string, src []byte) (*Script, error) {
	s := &Script{Name: name}
	var errs Diagnostics
	text := strings.TrimPrefix(string(src), "\ufeff")
	for n := 1; len(text) > 0; n++ {
		var l string
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			l, text = text[:i], text[i+1:]
		} else {
			l, text = text, ""
		}
		l = strings.TrimSuffix(l, "\r")
		if i := strings.IndexAny(l, "#;"); i >= 0 {
			l = l[:i]
		}
		if i := strings.Index(l, "//"); i >= 0 {
			l = l[:i]
		}
		if strings.TrimSpace(l) == "" {
			continue
		}
		col := len(l) - len(strings.TrimLeft(l, " \t")) + 1
		pos := Pos{File: name, Line: n, Col: col}
		line, err := parseScriptLine(l)
		if err != nil {
			errs = append(errs, Diagnostic{Pos: pos, Msg: err.Error()})
			continue
		}
		line.Pos = pos
		s.Lines = append(s.Lines, line)
	}
	if len(errs) > 0 {
		return s, errs
	}
	return s, nil
}

func parseScriptLine(l string) (ScriptLine, error) {
	var line ScriptLine
	if body, exp, ok := strings.Cut(l, "=>"); ok {
		l = body
		for _, p := range strings.Split(exp, ",") {
			p = strings.ToUpper(strings.TrimSpace(p))
			if len(p) != 4 || strings.Trim(p, "0123456789ABCDEFX") != "" {
				return line, fmt.Errorf("expected status word %q: want 4 hex digits, X for any", p)
			}
			line.Expect = append(line.Expect, p)
		}
	}
	segs := strings.Split(l, "|")
	if len(segs) > 3 {
		return line, fmt.Errorf("more than two '|': want HEADER | DATA | LE")
	}
	for _, seg := range segs {
		toks, err := parseScriptSegment(seg)
		if err != nil {
			return line, err
		}
		line.Segments = append(line.Segments, toks)
	}
	if len(segs) > 1 {
		if h := line.Segments[0]; len(h) != 1 || h[0].Field != "" || len(h[0].Bytes) != 4 {
			return line, fmt.Errorf("the header before '|' must be 4 literal bytes (CLA INS P1 P2)")
		}
	}
	if len(segs) == 3 {
		if le := line.Segments[2]; len(le) != 1 || le[0].Field != "" || len(le[0].Bytes) != 1 {
			//lint:ignore ST1005 Le is the ISO 7816-4 field name
			return line, fmt.Errorf("Le after the second '|' must be one literal byte")
		}
	}
	if len(segs) == 1 && len(line.Segments[0]) == 0 {
		return line, fmt.Errorf("empty command")
	}
	return line, nil
}

func parseScriptSegment(seg string) ([]ScriptToken, error) {
	var toks []ScriptToken
	var digits []byte
	flush := func() error {
		if len(digits) == 0 {
			return nil
		}
		if len(digits)%2 != 0 {
			return fmt.Errorf("odd number of hex digits in %q", digits)
		}
		b := make([]byte, len(digits)/2)
		if _, err := hex.Decode(b, digits); err != nil {
			return fmt.Errorf("not hex: %q", digits)
		}
		toks = append(toks, ScriptToken{Bytes: b})
		digits = digits[:0]
		return nil
	}
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c == ' ' || c == '\t':
		case strings.HasPrefix(seg[i:], "${"):
			if err := flush(); err != nil {
				return nil, err
			}
			end := strings.IndexByte(seg[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("placeholder without '}'")
			}
			name := seg[i+2 : i+end]
			enc := "hex"
			for _, e := range []string{"hex", "string", "base64"} {
				if p := "<" + e + ">"; len(name) > len(p) && equalFold(name[:len(p)], p) {
					enc, name = e, name[len(p):]
				}
			}
			if name == "" || strings.ContainsAny(name, " <>") {
				return nil, fmt.Errorf("bad placeholder ${%s}", seg[i+2:i+end])
			}
			toks = append(toks, ScriptToken{Field: name, Enc: enc})
			i += end
		case strings.ContainsRune("0123456789abcdefABCDEF", rune(c)):
			digits = append(digits, c)
		default:
			return nil, fmt.Errorf("unexpected %q in APDU", c)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return toks, nil
}

// Fields returns the field names the script's placeholders use, in order
// of first use.
func (s *Script) Fields() []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range s.Lines {
		for _, seg := range l.Segments {
			for _, t := range seg {
				if t.Field != "" && !seen[t.Field] {
					seen[t.Field] = true
					out = append(out, t.Field)
				}
			}
		}
	}
	return out
}

// Resolve fills the placeholders. value returns a field's job value and
// whether it is secret. An error names the line and field.
func (s *Script) Resolve(value func(field string) (v string, isSecret bool, ok bool)) ([]ScriptCommand, error) {
	out := make([]ScriptCommand, 0, len(s.Lines))
	for _, l := range s.Lines {
		cmd := ScriptCommand{Line: l.Pos.Line, Expect: l.Expect}
		segs := make([][]byte, len(l.Segments))
		for i, seg := range l.Segments {
			for _, t := range seg {
				if t.Field == "" {
					segs[i] = append(segs[i], t.Bytes...)
					continue
				}
				v, sec, ok := value(t.Field)
				if !ok {
					return nil, fmt.Errorf("%s: field %s is not declared in [Fields]", l.Pos, t.Field)
				}
				cmd.Secret = cmd.Secret || sec
				var b []byte
				var err error
				switch t.Enc {
				case "string":
					b = []byte(v)
				case "base64":
					b, err = base64.StdEncoding.DecodeString(v)
				default:
					b, err = hex.DecodeString(strings.ReplaceAll(v, " ", ""))
				}
				if err != nil {
					return nil, fmt.Errorf("%s: field %s: value is not %s", l.Pos, t.Field, t.Enc)
				}
				segs[i] = append(segs[i], b...)
			}
		}
		apdu := segs[0]
		if len(segs) > 1 {
			if n := len(segs[1]); n > 0 {
				if n > 255 {
					return nil, fmt.Errorf("%s: data of %d bytes is longer than a short APDU allows (255)", l.Pos, n)
				}
				apdu = append(append(apdu, byte(n)), segs[1]...)
			}
			if len(segs) == 3 {
				apdu = append(apdu, segs[2]...)
			}
		}
		if len(apdu) < 4 {
			return nil, fmt.Errorf("%s: an APDU has at least 4 bytes (CLA INS P1 P2), this has %d", l.Pos, len(apdu))
		}
		cmd.APDU = apdu
		out = append(out, cmd)
	}
	return out, nil
}
