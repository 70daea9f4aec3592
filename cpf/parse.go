package cpf

import (
	"strings"
)

// maxDFDepth bounds the nesting of CreateDf blocks (and the parser's
// recursion).
const maxDFDepth = 8

// Parse parses a profile into its syntax tree. name is the file name used
// in positions. The error, if any, is an ErrorList.
func Parse(name string, src []byte) (*File, error) {
	errs := &errorSink{file: name}
	f := parse(name, src, errs)
	errs.list.Sort()
	return f, errs.list.Err()
}

func parse(name string, src []byte, errs *errorSink) *File {
	p := &parser{lx: newLexer(src, errs), errs: errs}
	p.next()
	f := &File{Name: name}
	for p.tok.kind != tEOF {
		if p.tok.kind == tNewline {
			p.next()
			continue
		}
		if s := p.statement(); s != nil {
			f.Stmts = append(f.Stmts, s)
		}
	}
	return f
}

type parser struct {
	lx   *lexer
	tok  token
	errs *errorSink
}

func (p *parser) next() { p.tok = p.lx.next() }

// errorf reports an error at the current token unless the lexer already
// reported it.
func (p *parser) errorf(format string, args ...any) {
	if p.tok.kind != tIllegal {
		p.errs.errorf(p.tok.pos, format, args...)
	}
}

// skipLine drops the rest of the logical line.
func (p *parser) skipLine() {
	for p.tok.kind != tNewline && p.tok.kind != tEOF {
		p.next()
	}
}

// endLine expects the end of the statement.
func (p *parser) endLine() {
	switch p.tok.kind {
	case tNewline:
		p.next()
	case tEOF:
	default:
		p.errorf("unexpected %s after the statement", p.tok.describe())
		p.skipLine()
	}
}

func kw(t token, word string) bool { return t.kind == tIdent && strings.EqualFold(t.text, word) }

func (p *parser) statement() Stmt {
	if p.tok.kind != tIdent {
		p.errorf("expected a statement, found %s", p.tok.describe())
		p.skipLine()
		return nil
	}
	first := p.tok
	p.next()
	switch p.tok.kind {
	case tAssign:
		p.next()
		v := p.expr()
		if isBad(v) {
			p.skipLine()
		}
		p.endLine()
		return &AssignStmt{At: first.pos, Name: first.text, Value: v}
	case tLParen:
		c := p.callArgs(first)
		if c.Damaged {
			p.skipLine()
		}
		p.endLine()
		return &CallStmt{Call: c}
	}
	switch strings.ToLower(first.text) {
	case "cardmodel":
		if p.tok.kind != tString {
			p.errorf("CardModel needs a quoted model name, found %s", p.tok.describe())
			p.skipLine()
			return &CardModelStmt{At: first.pos}
		}
		s := &CardModelStmt{At: first.pos, Model: &StringLit{At: p.tok.pos, Value: p.tok.text}}
		p.next()
		p.endLine()
		return s
	case "masterfile":
		b := &MasterFileBlock{At: first.pos}
		b.Attrs, b.Damaged = p.attrs()
		p.endLine()
		b.Files = p.fileItems(first, "", 0)
		return b
	case "file":
		return p.fileBlock(first)
	case "createpin":
		if p.tok.kind != tIdent {
			p.errorf("CreatePin needs a credential name, found %s", p.tok.describe())
			p.skipLine()
			return nil
		}
		s := &CreatePinStmt{At: first.pos, Name: p.tok.text, NameAt: p.tok.pos}
		p.next()
		s.Attrs, s.Damaged = p.attrs()
		p.endLine()
		return s
	case "createdf", "createef":
		p.errs.errorf(first.pos, "%s outside a MasterFile block", first.text)
	case "enddf":
		p.errs.errorf(first.pos, "EndDF without CreateDf")
	case "endfile":
		p.errs.errorf(first.pos, "Endfile without MasterFile or File")
	case "static", "dynamic", "data", "record":
		p.errs.errorf(first.pos, "%s outside a File block", first.text)
	default:
		if p.tok.kind == tNewline || p.tok.kind == tEOF {
			p.errs.errorf(first.pos, "unknown statement %s (a call needs parentheses: %s())", first.text, first.text)
		} else {
			p.errs.errorf(first.pos, "unknown statement %s", first.text)
		}
	}
	p.skipLine()
	return nil
}

// attrs parses name=value pairs up to the end of the line. After a
// syntax error it skips the rest of the line and reports damaged.
func (p *parser) attrs() (out []*Attr, damaged bool) {
	for p.tok.kind == tIdent {
		a := &Attr{At: p.tok.pos, Name: p.tok.text}
		p.next()
		if p.tok.kind != tAssign {
			p.errorf("expected '=' after attribute %s, found %s", a.Name, p.tok.describe())
			p.skipLine()
			return out, true
		}
		p.next()
		a.Value = p.expr()
		out = append(out, a)
		if isBad(a.Value) {
			p.skipLine()
			return out, true
		}
	}
	return out, false
}

// fileItems parses CreateDf/CreateEf lines up to EndDF (when df is set)
// or Endfile (the MasterFile block).
func (p *parser) fileItems(open token, df string, depth int) []*FileDecl {
	var out []*FileDecl
	for {
		switch p.tok.kind {
		case tNewline:
			p.next()
			continue
		case tEOF:
			if df != "" {
				p.errs.errorf(open.pos, "CreateDf %s not closed by EndDF", df)
			} else {
				p.errs.errorf(open.pos, "MasterFile block not closed by Endfile")
			}
			return out
		case tIdent:
		default:
			p.errorf("expected CreateDf, CreateEf, EndDF or Endfile, found %s", p.tok.describe())
			p.skipLine()
			continue
		}
		t := p.tok
		switch strings.ToLower(t.text) {
		case "createdf", "createef":
			p.next()
			if p.tok.kind != tIdent {
				p.errorf("%s needs a file name, found %s", t.text, p.tok.describe())
				p.skipLine()
				continue
			}
			d := &FileDecl{At: t.pos, DF: strings.EqualFold(t.text, "createdf"), Name: p.tok.text, NameAt: p.tok.pos}
			p.next()
			d.Attrs, d.Damaged = p.attrs()
			p.endLine()
			if d.DF {
				if depth+1 >= maxDFDepth {
					p.errs.errorf(t.pos, "DFs nested deeper than %d levels", maxDFDepth)
				}
				d.Children = p.fileItems(t, d.Name, depth+1)
			}
			out = append(out, d)
		case "enddf":
			if df == "" {
				p.errs.errorf(t.pos, "EndDF without CreateDf")
				p.next()
				p.skipLine()
				continue
			}
			p.next()
			p.endLine()
			return out
		case "endfile":
			if df != "" {
				p.errs.errorf(open.pos, "CreateDf %s not closed by EndDF", df)
				return out // the MasterFile level takes the Endfile
			}
			p.next()
			p.endLine()
			return out
		default:
			p.errs.errorf(t.pos, "expected CreateDf, CreateEf, EndDF or Endfile, found %s", t.describe())
			p.skipLine()
		}
	}
}

// fileBlock parses File Static|Dynamic NAME … Endfile.
func (p *parser) fileBlock(first token) Stmt {
	b := &FileBlock{At: first.pos}
	switch {
	case kw(p.tok, "static"):
	case kw(p.tok, "dynamic"):
		b.Dynamic = true
	default:
		p.errorf("expected Static or Dynamic after File, found %s", p.tok.describe())
		p.skipLine()
		p.skipBlock()
		return nil
	}
	p.next()
	if p.tok.kind != tIdent {
		p.errorf("File needs the name of an EF, found %s", p.tok.describe())
		p.skipLine()
		p.skipBlock()
		return nil
	}
	b.Name, b.NameAt = p.tok.text, p.tok.pos
	p.next()
	p.endLine()
	for {
		switch {
		case p.tok.kind == tNewline:
			p.next()
		case p.tok.kind == tEOF:
			p.errs.errorf(first.pos, "File %s not closed by Endfile", b.Name)
			return b
		case kw(p.tok, "endfile"):
			p.next()
			p.endLine()
			return b
		case kw(p.tok, "data") || kw(p.tok, "record"):
			l := &ContentLine{At: p.tok.pos, Key: strings.ToLower(p.tok.text)}
			p.next()
			if p.tok.kind != tAssign {
				p.errorf("expected '=' after %s, found %s", l.Key, p.tok.describe())
				l.Value = &BadExpr{At: p.tok.pos}
			} else {
				p.next()
				l.Value = p.expr()
			}
			b.Lines = append(b.Lines, l)
			if isBad(l.Value) {
				p.skipLine()
			}
			p.endLine()
		default:
			p.errorf("expected data = …, record = … or Endfile in File %s, found %s", b.Name, p.tok.describe())
			p.skipLine()
		}
	}
}

// skipBlock drops lines up to and including the next Endfile.
func (p *parser) skipBlock() {
	for p.tok.kind != tEOF {
		if kw(p.tok, "endfile") {
			p.next()
			p.skipLine()
			return
		}
		p.next()
	}
}

// isBad reports whether e is a BadExpr or a call with damaged arguments.
func isBad(e Expr) bool {
	switch e := e.(type) {
	case *BadExpr:
		return true
	case *Call:
		return e.Damaged
	}
	return false
}

// expr parses a literal, a variable or a call; a BadExpr after an error.
func (p *parser) expr() Expr {
	t := p.tok
	switch t.kind {
	case tString:
		p.next()
		return &StringLit{At: t.pos, Value: t.text}
	case tNumber:
		p.next()
		return &NumberLit{At: t.pos, Value: t.num, Text: t.text}
	case tBytes:
		p.next()
		return &BytesLit{At: t.pos, Value: t.bytes}
	case tIdent:
		p.next()
		if p.tok.kind == tLParen {
			return p.callArgs(t)
		}
		return &Ident{At: t.pos, Name: t.text}
	}
	p.errorf("expected a value, found %s", t.describe())
	return &BadExpr{At: t.pos}
}

// callArgs parses (args…) after the name; the current token is '('. After
// a syntax error the call is Damaged and the rest of the line unread.
func (p *parser) callArgs(name token) *Call {
	c := &Call{At: name.pos, Name: name.text}
	p.next()
	if p.tok.kind == tRParen {
		p.next()
		return c
	}
	for {
		a := p.expr()
		if isBad(a) {
			c.Damaged = true
			return c
		}
		if _, nested := a.(*Call); nested {
			p.errs.errorf(a.Pos(), "a call cannot be an argument")
			c.Damaged = true
			return c
		}
		c.Args = append(c.Args, a)
		switch p.tok.kind {
		case tComma:
			p.next()
		case tRParen:
			p.next()
			return c
		default:
			p.errorf("expected ',' or ')' in the call of %s, found %s", c.Name, p.tok.describe())
			c.Damaged = true
			return c
		}
	}
}
