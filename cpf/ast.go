package cpf

// The syntax tree of a profile. Every node carries the position of its
// first token. Names keep their spelling; keywords and built-in function
// names compare case-insensitively, variables case-sensitively.

// Expr is an expression: a literal, a variable or a function call.
type Expr interface {
	Pos() Pos
	expr()
}

// Ident is a variable, or a bare word in an attribute value (always, auto…).
type Ident struct {
	At   Pos
	Name string
}

// StringLit is 'text'.
type StringLit struct {
	At    Pos
	Value string
}

// NumberLit is 22000 or 0x5015.
type NumberLit struct {
	At    Pos
	Value int64
	Text  string
}

// BytesLit is 0x{ … }.
type BytesLit struct {
	At    Pos
	Value []byte
}

// Call is Name(args…), as a statement or in an expression.
type Call struct {
	At   Pos
	Name string
	Args []Expr
	// Damaged says a syntax error cut the arguments short; the error is
	// reported and the checker does not count them.
	Damaged bool
}

// BadExpr stands for a value with a syntax error, already reported. The
// statement around it is kept so the checker still sees its name.
type BadExpr struct {
	At Pos
}

func (e *Ident) Pos() Pos     { return e.At }
func (e *StringLit) Pos() Pos { return e.At }
func (e *NumberLit) Pos() Pos { return e.At }
func (e *BytesLit) Pos() Pos  { return e.At }
func (e *Call) Pos() Pos      { return e.At }
func (e *BadExpr) Pos() Pos   { return e.At }
func (*Ident) expr()          {}
func (*StringLit) expr()      {}
func (*NumberLit) expr()      {}
func (*BytesLit) expr()       {}
func (*Call) expr()           {}
func (*BadExpr) expr()        {}

// Stmt is a statement of the profile.
type Stmt interface {
	Pos() Pos
	stmt()
}

// CardModelStmt is CardModel 'NAME'.
type CardModelStmt struct {
	At    Pos
	Model *StringLit // nil after a syntax error
}

// AssignStmt is NAME = expression.
type AssignStmt struct {
	At    Pos
	Name  string
	Value Expr
}

// CallStmt is a call on a line of its own.
type CallStmt struct {
	Call *Call
}

// Attr is name=value in a file or PIN declaration.
type Attr struct {
	At    Pos
	Name  string
	Value Expr
}

// FileDecl is CreateDf (with its children, up to EndDF) or CreateEf.
type FileDecl struct {
	At       Pos
	DF       bool
	Name     string
	NameAt   Pos
	Attrs    []*Attr
	Damaged  bool // a syntax error cut the attributes short
	Children []*FileDecl
}

// MasterFileBlock is MasterFile … Endfile.
type MasterFileBlock struct {
	At      Pos
	Attrs   []*Attr
	Damaged bool // a syntax error cut the attributes short
	Files   []*FileDecl
}

// ContentLine is data = expression or record = expression in a File block.
type ContentLine struct {
	At    Pos
	Key   string
	Value Expr
}

// FileBlock is File Static|Dynamic NAME … Endfile.
type FileBlock struct {
	At      Pos
	Dynamic bool
	Name    string
	NameAt  Pos
	Lines   []*ContentLine
}

// CreatePinStmt is CreatePin NAME attr=value….
type CreatePinStmt struct {
	At      Pos
	Name    string
	NameAt  Pos
	Attrs   []*Attr
	Damaged bool // a syntax error cut the attributes short
}

func (s *CardModelStmt) Pos() Pos   { return s.At }
func (s *AssignStmt) Pos() Pos      { return s.At }
func (s *CallStmt) Pos() Pos        { return s.Call.At }
func (s *MasterFileBlock) Pos() Pos { return s.At }
func (s *FileBlock) Pos() Pos       { return s.At }
func (s *CreatePinStmt) Pos() Pos   { return s.At }
func (*CardModelStmt) stmt()        {}
func (*AssignStmt) stmt()           {}
func (*CallStmt) stmt()             {}
func (*MasterFileBlock) stmt()      {}
func (*FileBlock) stmt()            {}
func (*CreatePinStmt) stmt()        {}

// File is a parsed profile.
type File struct {
	Name  string
	Stmts []Stmt
}
