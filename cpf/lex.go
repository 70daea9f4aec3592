package cpf

import (
	"fmt"
	"strconv"
	"strings"
)

// tokKind is the kind of a lexical token (docs/cpf.md, "Lexical structure").
type tokKind int

const (
	tEOF     tokKind = iota
	tNewline         // end of a logical line
	tIdent           // name, keyword or variable
	tString          // 'text'
	tNumber          // 22000 or 0x5015
	tBytes           // 0x{ A0 00 ... }
	tAssign          // =
	tLParen          // (
	tRParen          // )
	tComma           // ,
	tIllegal         // a character the language does not use; already reported
)

func (k tokKind) String() string {
	switch k {
	case tEOF:
		return "end of file"
	case tNewline:
		return "end of line"
	case tIdent:
		return "name"
	case tString:
		return "string"
	case tNumber:
		return "number"
	case tBytes:
		return "byte string"
	case tAssign:
		return "'='"
	case tLParen:
		return "'('"
	case tRParen:
		return "')'"
	case tComma:
		return "','"
	}
	return "illegal character"
}

type token struct {
	kind  tokKind
	pos   Pos
	text  string // source text of names and numbers; the value of strings
	num   int64
	bytes []byte
}

func (t token) describe() string {
	switch t.kind {
	case tIdent:
		return fmt.Sprintf("name %s", t.text)
	case tNumber:
		return fmt.Sprintf("number %s", t.text)
	}
	return t.kind.String()
}

// lexer turns a profile into tokens. Comments (';' to the end of the
// line) and line continuations ('\' at the end of a line) are skipped;
// newlines are tokens because statements end at the end of a line.
type lexer struct {
	src  []byte
	off  int
	line int
	col  int // column of src[off]
	errs *errorSink
}

func newLexer(src []byte, errs *errorSink) *lexer {
	return &lexer{src: src, line: 1, col: 1, errs: errs}
}

func (l *lexer) pos() Pos { return Pos{l.line, l.col} }

func (l *lexer) peekByte(k int) byte {
	if l.off+k < len(l.src) {
		return l.src[l.off+k]
	}
	return 0
}

func (l *lexer) advance() {
	if l.off >= len(l.src) {
		return
	}
	if l.src[l.off] == '\n' {
		l.line++
		l.col = 1
	} else {
		l.col++
	}
	l.off++
}

func (l *lexer) skipComment() {
	for l.off < len(l.src) && l.src[l.off] != '\n' {
		l.advance()
	}
}

// continuation reports whether the '\' at the current offset ends the
// line (only blanks and a comment may follow it) and skips it with the
// newline if so.
func (l *lexer) continuation() bool {
	i := l.off + 1
	for i < len(l.src) && (l.src[i] == ' ' || l.src[i] == '\t' || l.src[i] == '\r') {
		i++
	}
	if i < len(l.src) && l.src[i] == ';' {
		for i < len(l.src) && l.src[i] != '\n' {
			i++
		}
	}
	if i < len(l.src) && l.src[i] != '\n' {
		return false
	}
	for l.off < i {
		l.advance()
	}
	l.advance() // the newline (no-op at EOF)
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isHex(c byte) bool    { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// next returns the next token.
func (l *lexer) next() token {
	for {
		if l.off >= len(l.src) {
			return token{kind: tEOF, pos: l.pos()}
		}
		c := l.src[l.off]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\f':
			l.advance()
			continue
		case c == ';':
			l.skipComment()
			continue
		case c == '\\':
			p := l.pos()
			if l.continuation() {
				continue
			}
			l.advance()
			l.errs.errorf(p, "'\\' continues a line only at its end")
			continue
		}
		p := l.pos()
		switch {
		case c == '\n':
			l.advance()
			return token{kind: tNewline, pos: p}
		case isLetter(c):
			start := l.off
			for l.off < len(l.src) && (isLetter(l.src[l.off]) || isDigit(l.src[l.off])) {
				l.advance()
			}
			return token{kind: tIdent, pos: p, text: string(l.src[start:l.off])}
		case isDigit(c):
			if c == '0' && (l.peekByte(1) == 'x' || l.peekByte(1) == 'X') && l.peekByte(2) == '{' {
				return l.byteString(p)
			}
			return l.number(p)
		case c == '\'':
			return l.str(p)
		case c == '=':
			l.advance()
			return token{kind: tAssign, pos: p}
		case c == '(':
			l.advance()
			return token{kind: tLParen, pos: p}
		case c == ')':
			l.advance()
			return token{kind: tRParen, pos: p}
		case c == ',':
			l.advance()
			return token{kind: tComma, pos: p}
		case c == '.' && l.peekByte(1) == '.' && l.peekByte(2) == '.':
			l.advance()
			l.advance()
			l.advance()
			l.errs.errorf(p, "'...' is a placeholder: write a value, e.g. SECRANDOM(8)")
			return token{kind: tIllegal, pos: p}
		}
		l.advance()
		if c < 0x20 || c >= 0x7F {
			l.errs.errorf(p, "illegal character %#02x", c)
		} else {
			l.errs.errorf(p, "illegal character %q", rune(c))
		}
		return token{kind: tIllegal, pos: p}
	}
}

// number scans 22000 or 0x5015.
func (l *lexer) number(p Pos) token {
	start := l.off
	base := 10
	if l.src[l.off] == '0' && (l.peekByte(1) == 'x' || l.peekByte(1) == 'X') {
		base = 16
		l.advance()
		l.advance()
	}
	digits := l.off
	for l.off < len(l.src) && (isHex(l.src[l.off]) || isLetter(l.src[l.off])) {
		l.advance()
	}
	text := string(l.src[start:l.off])
	n, err := strconv.ParseInt(string(l.src[digits:l.off]), base, 64)
	if err != nil || digits == l.off {
		msg := "malformed number " + strconv.Quote(text)
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			msg = "number " + text + " out of range"
		}
		l.errs.errorf(p, "%s", msg)
		return token{kind: tIllegal, pos: p, text: text}
	}
	return token{kind: tNumber, pos: p, text: text, num: n}
}

// str scans 'text'; a quote inside is written twice ('it”s').
func (l *lexer) str(p Pos) token {
	l.advance()
	var b strings.Builder
	for {
		if l.off >= len(l.src) || l.src[l.off] == '\n' {
			l.errs.errorf(p, "string not terminated")
			return token{kind: tIllegal, pos: p}
		}
		c := l.src[l.off]
		l.advance()
		if c == '\'' {
			if l.off < len(l.src) && l.src[l.off] == '\'' {
				l.advance()
				b.WriteByte('\'')
				continue
			}
			return token{kind: tString, pos: p, text: b.String()}
		}
		b.WriteByte(c)
	}
}

// byteString scans 0x{ ... }: pairs of hex digits; blanks, newlines and
// comments between the groups. Every group of adjacent digits must have
// an even length.
func (l *lexer) byteString(p Pos) token {
	l.advance()
	l.advance()
	l.advance() // 0x{
	var out []byte
	ok := true
	for {
		if l.off >= len(l.src) {
			l.errs.errorf(p, "byte string not closed by '}'")
			return token{kind: tIllegal, pos: p}
		}
		c := l.src[l.off]
		switch {
		case c == '}':
			l.advance()
			if !ok {
				return token{kind: tIllegal, pos: p}
			}
			if out == nil {
				out = []byte{}
			}
			return token{kind: tBytes, pos: p, bytes: out}
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f':
			l.advance()
		case c == ';':
			l.skipComment()
		case isHex(c):
			gp := l.pos()
			start := l.off
			for l.off < len(l.src) && isHex(l.src[l.off]) {
				l.advance()
			}
			g := l.src[start:l.off]
			if len(g)%2 != 0 {
				l.errs.errorf(gp, "odd number of hex digits %q in byte string", g)
				ok = false
				continue
			}
			for i := 0; i < len(g); i += 2 {
				out = append(out, unhex(g[i])<<4|unhex(g[i+1]))
			}
		default:
			l.errs.errorf(l.pos(), "unexpected %q in byte string", rune(c))
			ok = false
			l.advance()
		}
	}
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
