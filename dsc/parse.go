package dsc

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// Parse scans and parses a description. name is used in positions. It
// accepts a UTF-8 byte-order mark and CRLF line ends. Lines whose first
// non-blank character is '^' are vendor-encrypted and refused, each with its
// position. The returned File is never nil; err, if not nil, is a
// Diagnostics of errors only, sorted.
//
// Parse keeps duplicate keys and unknown sections: Check reports them.
func Parse(name string, src []byte) (*File, error) {
	p := parser{f: &File{Name: name}}
	p.parse(src)
	if len(p.errs) > 0 {
		p.errs.Sort()
		return p.f, p.errs
	}
	return p.f, nil
}

type parser struct {
	f        *File
	errs     Diagnostics
	cur      *Section
	comments []Comment // pending comment lines
	slab     []Entry   // backing store for entries: one allocation per file
}

func (p *parser) errorf(pos Pos, msg string) {
	p.errs = append(p.errs, Diagnostic{Pos: pos, Severity: SeverityError, Msg: msg})
}

var bom = []byte{0xEF, 0xBB, 0xBF}

func (p *parser) parse(src []byte) {
	src = bytes.TrimPrefix(src, bom)
	text := string(src) // one copy; every key and value is a substring of it
	// Capacity for one entry per line, so that appending never moves the
	// entries that Section.Entries points to.
	p.slab = make([]Entry, 0, strings.Count(text, "\n")+1)
	for line := 1; len(text) > 0; line++ {
		var l string
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			l, text = text[:i], text[i+1:]
		} else {
			l, text = text, ""
		}
		l = strings.TrimRight(l, "\r") // CRLF (and stray CRs) end the line
		p.line(line, l)
	}
	if p.cur == nil {
		p.f.Comments = append(p.f.Comments, p.comments...)
	} else {
		p.f.Trailing = p.comments
	}
	p.comments = nil
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func (p *parser) line(n int, l string) {
	pos := Pos{File: p.f.Name, Line: n, Col: 1}
	if !utf8.ValidString(l) {
		for i := 0; i < len(l); {
			r, size := utf8.DecodeRuneInString(l[i:])
			if r == utf8.RuneError && size <= 1 {
				pos.Col = i + 1
				break
			}
			i += size
		}
		p.errorf(pos, "invalid UTF-8")
		return
	}
	i := 0
	for i < len(l) && isBlank(l[i]) {
		i++
	}
	if i == len(l) {
		return // blank line
	}
	pos.Col = i + 1
	rest := l[i:]
	switch rest[0] {
	case '#', ';':
		p.comments = append(p.comments, Comment{Text: strings.TrimRight(rest, " \t\r"), Pos: pos})
		return
	case '^':
		p.errorf(pos, "vendor-encrypted line ('^'): cardwright cannot read encrypted descriptions")
		return
	case '[':
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			p.errorf(pos, "section header without ']'")
			return
		}
		name := strings.TrimSpace(rest[1:end])
		if name == "" {
			p.errorf(pos, "empty section name")
			return
		}
		if tail := strings.TrimSpace(rest[end+1:]); tail != "" {
			p.errorf(Pos{File: pos.File, Line: n, Col: i + end + 2 + strings.Index(rest[end+1:], tail)}, "unexpected text after section header")
			return
		}
		if p.cur != nil {
			p.cur.Trailing = p.comments
		} else {
			p.f.Comments = p.comments
		}
		p.comments = nil
		p.cur = &Section{Name: name, Pos: pos}
		p.f.Sections = append(p.f.Sections, p.cur)
		return
	}
	eq := strings.IndexByte(rest, '=')
	if eq < 0 {
		p.errorf(pos, "expected Key=Value, a [Section] header or a comment")
		return
	}
	key := strings.TrimRight(rest[:eq], " \t")
	if key == "" {
		p.errorf(pos, "missing key before '='")
		return
	}
	if p.cur == nil {
		p.errorf(pos, "key "+key+" outside a section")
		return
	}
	v := rest[eq+1:]
	vcol := i + eq + 2
	for len(v) > 0 && isBlank(v[0]) {
		v = v[1:]
		vcol++
	}
	// A CR left before the blanks would end the line once the blanks
	// are gone (Format), so it goes with them.
	v = strings.TrimRight(v, " \t\r")
	p.slab = append(p.slab, Entry{Key: key, Value: v, Pos: pos, ValuePos: Pos{File: pos.File, Line: n, Col: vcol}, Comments: p.comments})
	e := &p.slab[len(p.slab)-1]
	p.comments = nil
	p.cur.Entries = append(p.cur.Entries, e)
}
